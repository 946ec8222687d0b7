"""Training and evaluation speed of the task models: ``astromorphic bench throughput``.

Times the training step a run takes (:func:`astromorphic.training.train_epoch` on a
:class:`~astromorphic.training.TrainingRun`: fused AdamW, the gradient norm, CIFAR-10's augmentation, the run's
autocast dtype, TF32, memory fill, ``train.compile`` and its reads of the losses every ``train.sync_every``
steps) over ``--n-batches`` batches, ``--repeats`` times, and the evaluation a run does
(:func:`astromorphic.training.evaluation.evaluate` at ``train.eval_batch_size``), on random data of the
configuration's shapes. Each row gives the median throughput and its spread over the repeats (min, max and
(max - min) / median), the settings it ran with, and the projected wall time of a whole run (epochs x
(training units / training speed + evaluation units / evaluation speed)). Without ``--config`` the sizes are
the paper's. Results are appended to a CSV; the numbers are a measurement of this machine, not of the method.
Throughput counts samples, or tokens for the language model (``Task.cost_unit``).
"""

from __future__ import annotations

import argparse
import csv
import io as _stdio
import os
import tempfile
import time
from pathlib import Path

import torch

from astromorphic import io as aio
from astromorphic.config import (
    TASKS,
    load_config,
    models_for_task,
    require_device,
    train_seq_len,
    validate_config,
    validate_run,
)
from astromorphic.training.evaluation import autocast, evaluate
from astromorphic.runs import RunDir, fmt_cell
from astromorphic import tasks as task_registry
from astromorphic.tasks import REGISTRY
from astromorphic.training import DEFAULT_SYNC_EVERY_CUDA, TrainingRun, resolve_device, torch_settings, train_epoch
from astromorphic.bench.plain_loop import compare, random_splits

# Paper-scale dataset sizes, for the projected time of a full training run (SPEC.md section 6), in the task's
# data units: samples, or words for the language model (converted to tokens by run_sizes).
PAPER_DATA_SIZES = {t.name: {"train": t.paper_train_units, "eval": t.paper_eval_units} for t in REGISTRY}

# GPT-2 tokens and words of WikiText-2's validation and test splits (the tokenized release), as
# `astromorphic prepare wikitext2 --tokenizer gpt2` counts them into the manifest (`counts`): a property of the
# data and the tokenizer, not of a run. The language model's throughput counts GPT-2 tokens, its paper sizes
# count words; their ratio converts one into the other (the train split's tokens are not counted here).
GPT2_WIKITEXT2_COUNTS = {"valid": {"tokens": 258_659, "words": 217_646},
                         "test": {"tokens": 295_877, "words": 245_569}}  # fmt: skip
DEFAULT_EVAL_BATCHES = 4


def tokens_per_word(counts: dict | None = None) -> float:
    """GPT-2 tokens per word over the splits of a manifest's ``counts`` (default: WikiText-2's valid + test)."""
    counts = counts or GPT2_WIKITEXT2_COUNTS
    tokens = sum(int(c["tokens"]) for c in counts.values() if c.get("tokens") and c.get("words"))
    words = sum(int(c["words"]) for c in counts.values() if c.get("tokens") and c.get("words"))
    if not words:
        raise ValueError("no split of the manifest counts has both tokens and words")
    return tokens / words


def _spread(rates: list[float]) -> dict:
    ordered = sorted(rates)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
    return {"median": median, "min": ordered[0], "max": ordered[-1],
            "spread": (ordered[-1] - ordered[0]) / median if median else float("nan")}  # fmt: skip


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_throughput(
    task: str,
    preset: str,
    config: dict,
    n_batches: int = 3,
    *,
    repeats: int = 3,
    warmup: int = 1,
    batch_size: int | None = None,
    vocab_size: int | None = None,
    eval_batches: int = DEFAULT_EVAL_BATCHES,
) -> dict:
    """Speed of a run's training step and evaluation for one task/preset at the configuration's sizes.

    ``repeats`` epochs of ``n_batches`` training steps (after ``warmup`` such epochs: allocation, autotuning,
    compilation) through ``train_epoch``, and ``repeats`` evaluations over ``eval_batches`` batches of
    ``train.eval_batch_size``; random data. Vocabulary sizes, unless given in ``data.vocab_size``: IMDB 20,000
    word types, WikiText-2 50,257 (GPT-2).
    """
    cfg = validate_run(config, task, preset)
    require_device(cfg, task)
    train = cfg["train"]
    if batch_size:
        train["batch_size"] = int(batch_size)
    train["max_train_batches"] = int(n_batches)
    bs, eval_bs = int(train["batch_size"]), int(train["eval_batch_size"])
    record = task_registry.get(task)
    seq_len = int(train_seq_len(cfg)) if record.tokenized else 1
    if record.language_model:
        train["max_eval_tokens"] = eval_batches * eval_bs * seq_len + 1
    else:
        train["max_eval_samples"] = eval_batches * eval_bs
    device, threads = resolve_device(train["device"]), int(train["threads"])
    vocab = int(vocab_size or cfg["data"].get("vocab_size") or record.default_vocab_size or 0)
    splits, manifest = random_splits(task, cfg, max(n_batches * bs, eval_batches * eval_bs), vocab)
    with torch_settings(threads, device, train["tf32"], train["fill_uninitialized_memory"]), \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        run = TrainingRun(task, preset, 0, config, cfg, RunDir(Path(tmp)), splits, manifest, device)
        t0 = time.perf_counter()
        for _ in range(warmup):  # compilation, autotuning and allocation happen here
            train_epoch(run, 1, None, 0.0, False)
        warmup_s = time.perf_counter() - t0
        rates = []
        for _ in range(repeats):
            out = train_epoch(run, 1, None, 0.0, False)  # ends with a read of the losses: the device is done
            rates.append(out["units"] / out["train_s"])
        eval_units = 2 * (run.data.eval_stream("valid").numel() - 1) if record.language_model else run.data.n_eval
        evaluate(run.net, run.data, device, run.dtype)  # warm-up
        eval_rates = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            evaluate(run.net, run.data, device, run.dtype)  # reads the metrics back: the device is done
            eval_rates.append(eval_units / (time.perf_counter() - t0))
        n_parameters = sum(p.numel() for p in run.net.parameters())
    step, ev = _spread(rates), _spread(eval_rates)
    unit_per_batch = bs * seq_len if record.cost_unit == "tokens" else bs
    sync_every = int(train.get("sync_every") or (1 if device.type == "cpu" else DEFAULT_SYNC_EVERY_CUDA))
    return {
        "task": task, "model": preset, "d_model": cfg["model"]["d_model"], "n_layers": cfg["model"]["n_layers"],
        "n_heads": cfg["model"]["n_heads"], "seq_len": record.fixed_seq_len or seq_len,
        "batch_size": bs, "vocab_size": vocab if record.tokenized else None,
        "n_parameters": n_parameters, "device": device.type, "dtype": train["dtype"],
        "threads": threads, "n_batches": n_batches, "unit": record.cost_unit,
        "train_step_s": unit_per_batch / step["median"], "train_throughput": step["median"],
        "eval_throughput": ev["median"], "epochs": int(train["epochs"]),
        "step": "train_epoch", "repeats": repeats, "train_min": step["min"], "train_max": step["max"],
        "train_spread": step["spread"], "eval_batch_size": eval_bs, "eval_batches": eval_batches,
        "eval_min": ev["min"], "eval_max": ev["max"], "eval_spread": ev["spread"],
        "tf32": bool(train["tf32"]) and device.type == "cuda", "compile": train.get("compile") or "eager",
        "fill_uninitialized_memory": bool(train["fill_uninitialized_memory"]), "sync_every": sync_every,
        "augment": bool(train.get("augment")), "warmup_s": warmup_s,
    }  # fmt: skip


def measure_graphed_step(task: str, preset: str, config: dict, n_batches: int = 20, *, repeats: int = 3,
                         batch_size: int | None = None, vocab_size: int | None = None) -> dict:  # fmt: skip
    """CUDA only: the training step (gradients zeroed, forward under the run's autocast, loss, backward, gradient
    norm, fused AdamW) captured as one CUDA graph and replayed, each step's batch (augmented as the run's)
    copied into the graph's input tensors; the learning rate stays constant (no schedule). What a step costs
    without launching its kernels one by one from Python: the bound that ``train.compile`` modes approach."""
    cfg = validate_run(config, task, preset)
    train = cfg["train"]
    if batch_size:
        train["batch_size"] = int(batch_size)
    train["max_train_batches"] = int(n_batches)
    device, bs = resolve_device(train["device"]), int(train["batch_size"])
    if device.type != "cuda":
        raise RuntimeError("a CUDA graph needs a CUDA device")
    record = task_registry.get(task)
    vocab = int(vocab_size or cfg["data"].get("vocab_size") or record.default_vocab_size or 0)
    splits, manifest = random_splits(task, cfg, n_batches * bs, vocab)
    with torch_settings(int(train["threads"]), device, train["tf32"], train["fill_uninitialized_memory"]), \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        run = TrainingRun(task, preset, 0, config, cfg, RunDir(Path(tmp)), splits, manifest, device)
        net, data = run.net, run.data
        params = [q for q in net.parameters() if q.requires_grad]
        opt = torch.optim.AdamW(params, lr=train["lr"], betas=tuple(train["betas"]), eps=train["eps"],
                                weight_decay=train["weight_decay"], fused=True, capturable=True)  # fmt: skip
        first = next(data.train_batches(run.data_gen))
        inputs, targets = tuple(t.clone() for t in first.inputs), first.targets.clone()
        for q in params:
            q.grad = torch.zeros_like(q)

        def step() -> None:
            torch._foreach_zero_([q.grad for q in params])
            with autocast(device, run.dtype):
                logits = net(*inputs)
            data.loss(logits, targets).backward()
            torch.nn.utils.get_total_norm([q.grad for q in params])
            opt.step()

        side = torch.cuda.Stream()  # warm-up on a side stream before capture, as CUDA graphs require
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        rates = []
        for _ in range(repeats):
            _sync(device)
            t0, units = time.perf_counter(), 0
            for batch in data.train_batches(run.data_gen):
                for dst, src in zip(inputs, batch.inputs):
                    dst.copy_(src, non_blocking=True)
                targets.copy_(batch.targets, non_blocking=True)
                graph.replay()
                units += data.units(batch)
            _sync(device)
            rates.append(units / (time.perf_counter() - t0))
    spread = _spread(rates)
    return {"task": task, "model": preset, "device": device.type, "dtype": train["dtype"], "batch_size": bs,
            "n_batches": n_batches, "unit": record.cost_unit, "step": "cuda_graph", "repeats": repeats,
            "train_throughput": spread["median"], "train_min": spread["min"], "train_max": spread["max"],
            "train_spread": spread["spread"], "tf32": bool(train["tf32"]),
            "fill_uninitialized_memory": bool(train["fill_uninitialized_memory"])}  # fmt: skip


def run_sizes(task: str, cfg: dict, lm_counts: dict | None = None) -> dict:
    """Training and evaluation units per epoch of a run under ``cfg`` (samples; LM: tokens).

    The data section's ``n_train``/``n_test`` (LM: ``n_valid`` + ``n_test``) when given, else the paper's
    dataset sizes; then the caps of ``train``. The language model's sizes count words, its throughput tokens:
    with the GPT-2 tokenizer (``auto`` or ``gpt2``) the words become tokens at :func:`tokens_per_word` of
    ``lm_counts`` (a prepared manifest's ``counts``; default :data:`GPT2_WIKITEXT2_COUNTS`), the measured ratio of
    the validation and test splits also standing for the training split; other tokenizers count one token a word.
    """
    d, t = cfg["data"], cfg["train"]
    n_train = d.get("n_train") or PAPER_DATA_SIZES[task]["train"]
    if task_registry.get(task).language_model:
        given = d.get("n_train")
        n_eval = (d.get("n_valid") or 0) + (d.get("n_test") or 0) if given else PAPER_DATA_SIZES[task]["eval"]
        ratio = tokens_per_word(lm_counts) if d.get("tokenizer") in ("auto", "gpt2") else 1.0
        n_train, n_eval = round(n_train * ratio), round(n_eval * ratio)
        if t.get("max_eval_tokens"):
            n_eval = min(n_eval, 2 * t["max_eval_tokens"])
        per_batch = t["batch_size"] * int(train_seq_len(cfg))
    else:
        n_eval = d.get("n_test") or PAPER_DATA_SIZES[task]["eval"]
        if t.get("max_eval_samples"):
            n_eval = min(n_eval, t["max_eval_samples"])
        per_batch = t["batch_size"]
    if t.get("max_train_batches"):
        n_train = min(n_train, t["max_train_batches"] * per_batch)
    return {"train": int(n_train), "eval": int(n_eval), "epochs": int(t["epochs"])}


def projected_hours(result: dict, sizes: dict) -> float:
    """Projected wall time of a whole run: every epoch's training, and an evaluation at initialisation and after
    every epoch (as :func:`astromorphic.bench.cost.run_hours`)."""
    train_s = sizes["epochs"] * sizes["train"] / result["train_throughput"]
    return (train_s + (sizes["epochs"] + 1) * sizes["eval"] / result["eval_throughput"]) / 3600.0


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def _append_csv(path: Path, rows: list[dict]) -> None:
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    buf = _stdio.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    if not existing:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: fmt_cell(v) if isinstance(v, float) else v for k, v in row.items()})
    aio.write_text(path, existing + buf.getvalue())


def run_reference(config: dict, tasks: list[str], models: str | None, args: argparse.Namespace) -> list[dict]:
    """``--reference``: the project's training step against the plain loop (astromorphic.bench.plain_loop); each row is
    appended to ``--csv`` as soon as it is measured (a time limit keeps what finished)."""
    rows = []  # also returned, for callers that want them
    for task in tasks:
        for model in models.split(",") if models else models_for_task(config, task):
            load_before = os.getloadavg()[0]
            res = compare(task, model, config, steps=args.n_batches, repeats=args.repeats, vocab_size=args.vocab_size,
                          batch_size=args.batch_size, compile_project=args.compile)  # fmt: skip
            res.update(sizes=args.sizes or (Path(args.config).stem if args.config else "paper"),
                       load_1min_before=load_before, load_1min_after=os.getloadavg()[0])  # fmt: skip
            rows.append(res)
            _emit(args.csv, res, f"{task:>9} {model:>22}  project {res['project_throughput']:9.1f} {res['unit']}/s  plain "
                  f"{res['plain_throughput']:9.1f} {res['unit']}/s  project/plain time {res['time_ratio']:.3f}"
                  f"  (load {load_before:.2f})")  # fmt: skip
    return rows


def _emit(csv_path: str | None, row: dict, line: str) -> None:
    """A measured row: appended to the CSV at once (a time limit keeps what finished), and printed."""
    if csv_path:
        _append_csv(Path(csv_path), [row])
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    overrides = list(args.set)
    if args.device:
        overrides += [f"tasks.{t}.train.device={args.device}" for t in TASKS]
    if args.threads:
        overrides += [f"tasks.{t}.train.threads={args.threads}" for t in TASKS]
    config = load_config(args.config, overrides) if args.config else validate_config(None)
    sizes = args.sizes or (Path(args.config).stem if args.config else "paper")
    if args.reference:
        tasks = args.task.split(",") if args.task else list(config["tasks"])
        run_reference(config, tasks, args.model, args)
        return 0
    for task in args.task.split(",") if args.task else list(config["tasks"]):
        for model in args.model.split(",") if args.model else models_for_task(config, task):
            res = measure_throughput(task, model, config, args.n_batches, repeats=args.repeats,
                                     batch_size=args.batch_size, vocab_size=args.vocab_size,
                                     eval_batches=args.eval_batches)  # fmt: skip
            plan = run_sizes(task, validate_run(config, task, model))
            res.update(sizes=sizes, run_train_units=plan["train"], run_eval_units=plan["eval"])
            res["projected_run_h"] = projected_hours(res, plan)
            _emit(args.csv, res, f"{sizes:>8} {task:>9} {model:>18}  bs={res['batch_size']:<3} "
                  f"train {res['train_throughput']:10.1f} {res['unit']}/s  eval {res['eval_throughput']:10.1f} "
                  f"{res['unit']}/s  (spread {res['train_spread']:.1%} / {res['eval_spread']:.1%})  "
                  f"run ({plan['epochs']} epochs) ~ {_duration(res['projected_run_h'])}")  # fmt: skip
    return 0


def add_parser(sub) -> None:
    """The ``throughput`` sub-command of ``astromorphic bench``."""
    p = sub.add_parser("throughput", help="training/evaluation speed of the task models and projected run times")
    p.add_argument("--config", help="configuration YAML (default: the paper's sizes)")
    p.add_argument("--task", help="comma-separated tasks (default: those of the configuration)")
    p.add_argument("--model", help="comma-separated presets (default: those the configuration trains)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="configuration override")
    p.add_argument("--n-batches", type=int, default=3, help="timed training batches per repeat")
    p.add_argument("--eval-batches", type=int, default=DEFAULT_EVAL_BATCHES,
                   help="timed evaluation batches (of train.eval_batch_size) per repeat")  # fmt: skip
    p.add_argument("--batch-size", type=int, help="override the configured batch size")
    p.add_argument("--device", help="override train.device")
    p.add_argument("--threads", type=int, help="override train.threads")
    p.add_argument("--vocab-size", type=int, help="vocabulary size (default: data.vocab_size, else 20000 / 50257)")
    p.add_argument("--sizes", help="label of the size set in the output")
    p.add_argument("--csv", help="append the results to this CSV")
    p.add_argument(
        "--reference",
        action="store_true",
        help="time the project's training step against a plain PyTorch loop of the identical model, interleaved "
        "(--n-batches steps per epoch, --repeats epochs each; astromorphic.bench.plain_loop)",
    )
    p.add_argument("--repeats", type=int, default=3,
                   help="timed repeats (the median and spread are recorded); --reference: epochs of each, interleaved")
    p.add_argument("--compile", action="store_true", help="--reference: torch.compile the project's model (a measurement)")
