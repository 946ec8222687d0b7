#!/usr/bin/env python3
"""The training step on one GPU, in one call of at most about 8 minutes: what the cost table needs.

    python workflow/scripts/gpu_step_bench.py --out DIR [--device cuda|cpu] [--tiny] [--budget-s 480]
        [--config config/paper.yaml]

Every stage times the real step (`astromorphic bench throughput`'s measure_throughput: train_epoch with fused
AdamW, the gradient norm, augmentation, the run's precision, reads every train.sync_every steps; and evaluation
at train.eval_batch_size), in a process of its own under its own time cap, and appends its rows to DIR/steps.csv
(DIR/share.csv for the processes at once) as each measurement finishes, so a stage cut off by its cap, or a call
cut off by the machine's limit, still leaves what it measured. DIR/status.csv has one row per stage (ok, timeout,
error, skipped) with its seconds. The stages, in order (CIFAR-10 astro at the paper's shape unless named):

  baseline           eager, TF32 on, memory fill on: the configuration as it runs (the eager baseline)
  no_tf32            eager, TF32 off
  no_fill            eager, train.fill_uninitialized_memory off
  compile_default    train.compile=default (compile time: warmup_s; graph breaks counted)
  compile_reduce     train.compile=reduce-overhead
  cuda_graph         the whole step as one CUDA graph (measure_graphed_step; DIR/graph.csv): the bound for
                     launch overhead
  share              1, 2, 4 and 8 processes at once, eager and the best settings (DIR/share.csv)
  lm                 the language model (WikiText-2 astro, bfloat16), eager and best
  presets            every other preset of the three tasks at the best settings, as long as time is left

"Best": the fastest of the run settings measured above (compile mode, memory fill, TF32). CUDA-only stages
(TF32, reduce-overhead, the CUDA graph) and compilation (seconds to minutes on a CPU, measured by
tests/test_compile.py) are skipped on the CPU with a row saying so. `--tiny` shrinks every model and batch, for a
dry run on the CPU (tests/test_gpu_step_bench.py). `astromorphic.bench.cost.step_bench_inputs` turns the CSVs
into the cost table's inputs:

    python workflow/scripts/gpu_step_bench.py --cost DIR --gpu nvidia-h200
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from astromorphic.tasks import BY_NAME, LM_TASKS, REGISTRY, TASK_NAMES

ROOT = Path(__file__).resolve().parents[2]
# (stage, cap in seconds on the GPU, cap with --tiny); the caps sum to the 480 s budget's order
STAGES = [("baseline", 45, 20), ("no_tf32", 30, 20), ("no_fill", 30, 20), ("compile_default", 75, 20),
          ("compile_reduce", 75, 20), ("cuda_graph", 35, 20), ("share", 130, 40), ("lm", 45, 20),
          ("presets", 60, 20)]  # fmt: skip
CUDA_ONLY = {"no_tf32": "TF32 is a CUDA setting", "compile_reduce": "reduce-overhead records CUDA graphs",
             "cuda_graph": "CUDA graphs", "compile_default": "compiling takes minutes on a CPU (tests/test_compile.py)"}  # fmt: skip
VARIANTS = {  # run settings of each step stage, as configuration keys of tasks.<task>.train
    "baseline": {}, "no_tf32": {"tf32": "false"}, "no_fill": {"fill_uninitialized_memory": "false"},
    "compile_default": {"compile": "default"}, "compile_reduce": {"compile": "reduce-overhead"},
}  # fmt: skip
# The step the cost hinges on: the paper's image classifier (most of the paper's GPU-hours), and its language model.
TASK = next(t.name for t in REGISTRY if not t.tokenized and not t.language_model)
LM_TASK, MODEL = LM_TASKS[0], "astro"
STALL_ENV = "GPU_STEP_BENCH_STALL_AFTER_ROWS"  # testing hook: a stage stalls after that many rows (its cap cuts it)


def tiny_overrides(task: str) -> list[str]:
    tokenized = BY_NAME[task].tokenized
    model = "d_model=16,n_layers=1,n_heads=2" + (",max_len=32" if tokenized else "")
    out = [f"tasks.{task}.model.{kv}" for kv in model.split(",")]
    out += [f"tasks.{task}.train.batch_size=4", f"tasks.{task}.train.eval_batch_size=8"]
    if tokenized:
        out += [f"tasks.{task}.data.seq_len=32"]
    else:
        out += [f"tasks.{task}.model.stem_channels=8", f"tasks.{task}.model.patch=8"]
    return out


def load(args, task: str, settings: dict) -> dict:
    from astromorphic.config import load_config  # deferred: the parent process never loads torch

    overrides = [f"tasks.{task}.train.device={args.device}"]
    overrides += [f"tasks.{task}.train.{k}={v}" for k, v in settings.items()]
    if args.tiny:
        overrides += tiny_overrides(task)
    return load_config(args.config, overrides)


def append(path: Path, row: dict) -> None:
    """One row appended at once (a cut-off process keeps what it wrote); the header from the first row."""
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row), lineterminator="\n", extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def read(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open())) if path.exists() else []


def sizes(args) -> dict:
    return {"n_batches": 3 if args.tiny else 40, "repeats": 2 if args.tiny else 3, "eval_batches": 2 if args.tiny else 4,
            "vocab_size": 64 if args.tiny else None}  # fmt: skip


def stall(rows_written: int) -> None:
    after = os.environ.get(STALL_ENV)
    if after and rows_written >= int(after):
        time.sleep(3600)


def measure(args, task: str, model: str, stage: str, settings: dict) -> dict:
    # deferred: only a stage's own process loads torch
    import torch
    from astromorphic.bench.throughput import measure_throughput

    counters = None
    if settings.get("compile"):
        from torch._dynamo.utils import counters  # deferred: the compiler stack only for compiled stages

        counters.clear()
    s = sizes(args)
    row = measure_throughput(task, model, load(args, task, settings), s["n_batches"], repeats=s["repeats"],
                             vocab_size=s["vocab_size"], eval_batches=s["eval_batches"])  # fmt: skip
    breaks = sum(counters["graph_break"].values()) if counters is not None else None
    row = {"stage": stage, "settings": json.dumps(settings, sort_keys=True), "graph_breaks": breaks,
           "gpu": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", **row}  # fmt: skip
    append(args.out / "steps.csv", row)
    print(f"{stage:>16} {task}/{model}: train {row['train_throughput']:.1f} {row['unit']}/s (spread "
          f"{row['train_spread']:.1%}), eval {row['eval_throughput']:.1f} at batch {row['eval_batch_size']}", flush=True)
    return row


def best_settings(out: Path) -> dict:
    """The fastest measured run settings of CIFAR-10 astro: the compile mode (or eager) whose stage was fastest,
    with the memory fill off and TF32 off only where that stage beat the baseline."""
    rate = {r["stage"]: float(r["train_throughput"]) for r in read(out / "steps.csv")
            if r["task"] == TASK and r["model"] == MODEL}  # fmt: skip
    base = rate.get("baseline")
    if base is None:
        return {}
    best = {}
    compiled = {s: v for s, v in rate.items() if s.startswith("compile_")}
    if compiled and max(compiled.values()) > base:
        best.update(VARIANTS[max(compiled, key=compiled.get)])
    for stage in ("no_fill", "no_tf32"):
        if rate.get(stage, 0.0) > base:
            best.update(VARIANTS[stage])
    return best


def stage_share(args) -> None:
    """K processes of CIFAR-10 astro at once for K in 1, 2, 4, 8 (tiny: 1, 2), eager and best; each process
    writes its own row, gathered into share.csv when the K processes are done."""
    parts = args.out / "share_parts"
    parts.mkdir(exist_ok=True)
    best = best_settings(args.out)
    variants = [("eager", {})] + ([("best", best)] if best else [])
    for name, settings in variants:
        for k in (int(k) for k in args.share_ks.split(",")):
            procs = [subprocess.Popen([sys.executable, __file__, "--worker", f"{name}-k{k}-p{i}", "--settings",
                                       json.dumps(settings), *common_args(args)]) for i in range(1, k + 1)]  # fmt: skip
            for proc in procs:
                proc.wait()
            for i in range(1, k + 1):
                for row in read(parts / f"{name}-k{k}-p{i}.csv"):
                    append(args.out / "share.csv", {"variant": name, "settings": json.dumps(settings, sort_keys=True),
                                                    "concurrency": k, "process": i, **row})  # fmt: skip
            total = sum(float(r["train_throughput"]) for r in read(args.out / "share.csv")
                        if r["variant"] == name and int(r["concurrency"]) == k)  # fmt: skip
            print(f"share {name}: {k} at once, {total:.1f} samples/s in all", flush=True)


def stage(args, name: str) -> None:
    written = 0
    if name in VARIANTS:
        measure(args, TASK, MODEL, name, VARIANTS[name])
    elif name == "cuda_graph":
        from astromorphic.bench.throughput import measure_graphed_step  # deferred: torch in the stage's process

        s = sizes(args)
        row = measure_graphed_step(TASK, MODEL, load(args, TASK, {}), s["n_batches"], repeats=s["repeats"])
        append(args.out / "graph.csv", {"stage": name, "settings": "{}", **row})
    elif name == "share":
        stage_share(args)
    elif name == "lm":
        for settings in dict.fromkeys(json.dumps(s, sort_keys=True) for s in ({}, best_settings(args.out))):
            measure(args, LM_TASK, MODEL, name, json.loads(settings))
            written += 1
            stall(written)
    elif name == "presets":
        from astromorphic.config import models_for_task  # deferred: torch in the stage's process

        best = best_settings(args.out)
        for task in (TASK, *(t for t in TASK_NAMES if t != TASK)):
            for model in models_for_task(load(args, task, {}), task):
                if (task, model) not in ((TASK, MODEL), (LM_TASK, MODEL)):
                    measure(args, task, model, name, best)
                    written += 1
                    stall(written)


def common_args(args) -> list[str]:
    out = ["--out", str(args.out), "--device", args.device, "--config", str(args.config), "--share-ks", args.share_ks]
    return out + (["--tiny"] if args.tiny else [])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="folder of the CSVs (appended to)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--tiny", action="store_true", help="tiny models and batches: a dry run on the CPU")
    p.add_argument("--budget-s", type=float, default=480.0, help="seconds for all stages together")
    p.add_argument("--config", type=Path, default=ROOT / "config" / "paper.yaml")
    p.add_argument("--stages", help="comma-separated stages to run (default: all, in order)")
    p.add_argument("--cap-s", type=float, help="one cap for every stage instead of each stage's own")
    p.add_argument("--share-ks", help="processes at once in the share stage (default 1,2,4,8; --tiny 1,2)")
    p.add_argument("--stage", help=argparse.SUPPRESS)  # one stage, in a process of its own
    p.add_argument("--worker", help=argparse.SUPPRESS)  # one process of the share stage
    p.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    p.add_argument("--cost", type=Path, help="write the cost table of --config from the CSVs in this folder")
    p.add_argument("--gpu", help="--cost: the card's folder name under results/reference/bench/ (e.g. nvidia-h200)")
    args = p.parse_args(argv)
    args.share_ks = args.share_ks or ("1,2" if args.tiny else "1,2,4,8")
    if args.cost:
        from astromorphic.bench.cost import step_bench_cost  # deferred: only the cost step needs pandas and torch

        for path in step_bench_cost(args.cost, args.config, ROOT / "results" / "reference" / "bench" / args.gpu):
            print(f"wrote {path}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        from astromorphic.bench.throughput import measure_throughput  # deferred: torch in the worker's process

        s = sizes(args)

        row = measure_throughput(TASK, MODEL, load(args, TASK, json.loads(args.settings)), s["n_batches"],
                                 repeats=s["repeats"], vocab_size=s["vocab_size"], eval_batches=1)  # fmt: skip
        append(args.out / "share_parts" / f"{args.worker}.csv", row)
        return 0
    if args.stage:
        stage(args, args.stage)
        return 0
    start = time.monotonic()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    chosen = args.stages.split(",") if args.stages else [name for name, _, _ in STAGES]
    for name, cap_gpu, cap_tiny in (s for s in STAGES if s[0] in chosen):
        left = args.budget_s - (time.monotonic() - start)
        cap = min(args.cap_s or (cap_tiny if args.tiny else cap_gpu), left)
        t0 = time.monotonic()
        if args.device == "cpu" and name in CUDA_ONLY:
            status, detail = "skipped", f"CUDA only: {CUDA_ONLY[name]}"
        elif cap < 5:
            status, detail = "skipped", "no time left in the budget"
        else:
            # its own process group, so that a cap ends the stage's workers too
            proc = subprocess.Popen([sys.executable, __file__, "--stage", name, *common_args(args)], env=env,
                                    start_new_session=True)  # fmt: skip
            try:
                rc = proc.wait(timeout=cap)
                status, detail = ("ok", "") if rc == 0 else ("error", f"exit status {rc}")
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
                status, detail = "timeout", f"cut off at its cap of {cap:.0f} s"
        append(args.out / "status.csv", {"stage": name, "status": status, "seconds": round(time.monotonic() - t0, 1),
                                         "cap_s": round(cap, 1), "detail": detail})  # fmt: skip
        print(f"stage {name}: {status} {detail}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
