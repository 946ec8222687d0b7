"""Training and evaluation speed of the task models: ``astromorphic bench throughput``.

Times a few optimiser steps (forward, backward, AdamW) and forward passes of each task/preset at a
configuration's sizes on random inputs, and projects the wall time of a whole run (epochs x (training
units / training speed + evaluation units / evaluation speed)). Without ``--config`` the sizes are the
paper's. Results are appended to a CSV; the numbers are a measurement of this machine, not of the method.
"""

from __future__ import annotations

import argparse
import csv
import io as _stdio
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
from astromorphic.data.batches import TASK_DATA
from astromorphic.training.evaluation import autocast
from astromorphic.runs import fmt_cell
from astromorphic import tasks as task_registry
from astromorphic.tasks import REGISTRY
from astromorphic.training import resolve_device, seed_everything, torch_settings, build_run_model
from astromorphic.bench.plain_loop import compare

# Paper-scale dataset sizes, for the projected time of a full training run (SPEC.md section 6).
PAPER_DATA_SIZES = {t.name: {"train": t.paper_train_units, "eval": t.paper_eval_units} for t in REGISTRY}


def _timed(fn, n: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` over ``n`` calls, after the device is idle."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / n


def measure_throughput(
    task: str,
    preset: str,
    config: dict,
    n_batches: int = 3,
    *,
    warmup: int = 1,
    batch_size: int | None = None,
    vocab_size: int | None = None,
) -> dict:
    """Training and evaluation speed of one task/preset at the configuration's sizes, on random inputs.

    Vocabulary sizes, unless given in ``data.vocab_size``: IMDB 20,000 word types, WikiText-2 50,257 (GPT-2).
    """
    cfg = validate_run(config, task, preset)
    require_device(cfg, task)
    train = cfg["train"]
    bs = int(batch_size or train["batch_size"])
    device, dtype, threads = resolve_device(train["device"]), train["dtype"], int(train["threads"])
    record = task_registry.get(task)
    vocab = int(vocab_size or cfg["data"].get("vocab_size") or record.default_vocab_size or 0)
    info = {"vocab_size": vocab, "n_classes": record.n_classes or 2, "pad_id": 0}
    loss_of = TASK_DATA[task].loss
    with torch_settings(threads, device):
        seed_everything(0)
        net, _ = build_run_model(task, preset, cfg, info)
        net.to(device).train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=train["lr"], weight_decay=train["weight_decay"])
        batch = TASK_DATA[task].random_batch(cfg, bs, vocab, torch.Generator().manual_seed(0)).to(device)

        def train_step():
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, dtype):
                logits = net(*batch.inputs)
            loss_of(logits, batch.targets).backward()
            optimizer.step()

        @torch.no_grad()
        def eval_step():
            with autocast(device, dtype):
                net(*batch.inputs)

        for _ in range(warmup):
            train_step()
        step_s = _timed(train_step, n_batches, device)
        net.eval()
        eval_step()
        eval_s = _timed(eval_step, n_batches, device)
    unit_per_batch = batch.tokens if record.cost_unit == "tokens" else batch.samples
    return {
        "task": task, "model": preset, "d_model": cfg["model"]["d_model"], "n_layers": cfg["model"]["n_layers"],
        "n_heads": cfg["model"]["n_heads"], "seq_len": record.fixed_seq_len or int(train_seq_len(cfg)),
        "batch_size": bs, "vocab_size": vocab if record.tokenized else None,
        "n_parameters": sum(p.numel() for p in net.parameters()), "device": device.type, "dtype": dtype,
        "threads": threads, "n_batches": n_batches, "unit": record.cost_unit,
        "train_step_s": step_s, "train_throughput": unit_per_batch / step_s,
        "eval_throughput": unit_per_batch / eval_s, "epochs": int(train["epochs"]),
    }  # fmt: skip


def run_sizes(task: str, cfg: dict) -> dict:
    """Training and evaluation units per epoch of a run under ``cfg`` (samples; LM: tokens).

    The data section's ``n_train``/``n_test`` (LM: ``n_valid`` + ``n_test``) when given, else the paper's
    dataset sizes; then the caps of ``train``.
    """
    d, t = cfg["data"], cfg["train"]
    n_train = d.get("n_train") or PAPER_DATA_SIZES[task]["train"]
    if task_registry.get(task).language_model:
        given = d.get("n_train")
        n_eval = (d.get("n_valid") or 0) + (d.get("n_test") or 0) if given else PAPER_DATA_SIZES[task]["eval"]
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
    """Projected wall time of a whole run: epochs x (training units / training speed + evaluation units / eval speed)."""
    per_epoch = sizes["train"] / result["train_throughput"] + sizes["eval"] / result["eval_throughput"]
    return sizes["epochs"] * per_epoch / 3600.0


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
    import os

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
            res = measure_throughput(task, model, config, args.n_batches, batch_size=args.batch_size,
                                     vocab_size=args.vocab_size)  # fmt: skip
            plan = run_sizes(task, validate_run(config, task, model))
            res.update(sizes=sizes, run_train_units=plan["train"], run_eval_units=plan["eval"])
            res["projected_run_h"] = projected_hours(res, plan)
            _emit(args.csv, res, f"{sizes:>8} {task:>9} {model:>18}  bs={res['batch_size']:<3} "
                  f"train {res['train_throughput']:10.1f} {res['unit']}/s  eval {res['eval_throughput']:10.1f} "
                  f"{res['unit']}/s  run ({plan['epochs']} epochs) ~ {_duration(res['projected_run_h'])}")  # fmt: skip
    return 0


def add_parser(sub) -> None:
    """The ``throughput`` sub-command of ``astromorphic bench``."""
    p = sub.add_parser("throughput", help="training/evaluation speed of the task models and projected run times")
    p.add_argument("--config", help="configuration YAML (default: the paper's sizes)")
    p.add_argument("--task", help="comma-separated tasks (default: those of the configuration)")
    p.add_argument("--model", help="comma-separated presets (default: those the configuration trains)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="configuration override")
    p.add_argument("--n-batches", type=int, default=3, help="timed batches")
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
    p.add_argument("--repeats", type=int, default=3, help="--reference: timed epochs of each, interleaved")
    p.add_argument("--compile", action="store_true", help="--reference: torch.compile the project's model (a measurement)")
