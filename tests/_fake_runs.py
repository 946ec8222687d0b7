"""Fabricated run directories that follow the run contract (docs/architecture.md), for testing the
aggregation, tables and figures without training anything."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

MODELS = ["vanilla", "linearized", "astro", "astro-no-relpos", "astro-no-nonlin", "astro-no-feedback", "astro-gate-only",
          "no-attention"]
SPEED = {"astro": 1.5, "astro-no-relpos": 2.5, "astro-no-nonlin": 5.0, "linearized": 6.0, "vanilla": 2.0,
         "astro-no-feedback": 3.0, "astro-gate-only": 1.6, "no-attention": 40.0, "astro-leaky": 1.0}


# the value-sensitivity probe of each preset (1: attention over values; 0: no value path)
VALUE_SENS = {"astro": 0.001, "astro-no-relpos": 0.001, "astro-no-feedback": 0.001, "astro-leaky": 0.001,
              "astro-gate-only": 0.0, "no-attention": 0.0}


def config(tasks=("imdb", "cifar10", "wikitext2"), seeds=(0, 1), epochs=6) -> dict:
    return {
        "label": "fake",
        "synthetic": True,
        "seeds": list(seeds),
        "models": MODELS,
        "lm_extra_models": ["astro-leaky"],
        "tasks": {t: {"data": {"source": "synthetic"}, "train": {"epochs": epochs, "threshold": 0.85}} for t in tasks},
    }


def learning_curve(task: str, preset: str, seed: int, points: int = 21, every: int = 5) -> dict:
    """A made-up ``learning_curve`` as the training loop records it: accuracy (LM: validation perplexity) on a fixed
    held-out subset every ``every`` optimiser steps, step 0 = initialisation."""
    k = SPEED.get(preset, 3.0) * (1 + 0.1 * seed) * 4
    steps = [i * every for i in range(points)]
    if task == "wikitext2":
        values = [round(20 + 300 * math.exp(-i / k) + 0.02 * max(0, i - 15) ** 2, 4) for i in range(points)]
        return {"metric": "valid_ppl", "every_steps": every, "n_examples": 64, "steps": steps, "values": values}
    values = [round(0.5 + 0.48 * (1 - math.exp(-i / k)), 4) for i in range(points)]
    return {"metric": "accuracy", "every_steps": every, "n_examples": 64, "steps": steps, "values": values}


def write_run(root: Path, task: str, model: str, seed: int, epochs: int = 6, diverge_at: int | None = None,
              layers: int = 1, curve: dict | None = None) -> Path:
    """A run directory written by the project's own record writer (astromorphic.runs), with made-up numbers."""
    from astromorphic.runs import RunDir

    run = root / task / model / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    preset = model.split("@")[0]
    k = SPEED.get(preset, 3.0) * (1 + 0.1 * seed)
    lm = task == "wikitext2"
    metric_cols = ["valid_ppl", "test_ppl", "valid_word_ppl", "test_word_ppl"] if lm else ["test_acc"]
    probe = [f"attn_ratio_l{i}" for i in range(layers)] + [f"value_sens_l{i}" for i in range(layers)]
    cols = ["epoch", "train_loss", *metric_cols, "lr", "grad_norm", *probe, "time_epoch_s", "time_throughput"]
    rows = []
    last = epochs if diverge_at is None else diverge_at - 1
    for e in range(last + 1):
        acc = round(0.5 + 0.48 * (1 - math.exp(-e / k)), 4)
        ppl = round(20 + 300 * math.exp(-e / k), 4)
        row = {"epoch": e, "train_loss": None if e == 0 else round(1 / (1 + e), 6), "lr": 0.001,
               "grad_norm": None if e == 0 else 1.5, "time_epoch_s": round(0.1 + 0.01 * e, 3),
               "time_throughput": None if e == 0 else 1000.0}  # fmt: skip
        if lm:
            row.update(valid_ppl=ppl, test_ppl=round(ppl * 1.05, 4), valid_word_ppl=round(ppl * 1.4, 4),
                       test_word_ppl=round(ppl * 1.45, 4))  # fmt: skip
        else:
            row["test_acc"] = acc
        for i in range(layers):
            row[f"attn_ratio_l{i}"] = 0.0 if preset == "no-attention" else round(0.3 + 0.05 * e + 0.01 * i, 4)
            row[f"value_sens_l{i}"] = VALUE_SENS.get(preset, 1.0)
        rows.append(row)
    record = {
        "task": task, "model": model, "preset": preset, "seed": seed,
        "status": "finished" if diverge_at is None else "diverged",
        "diverged_epoch": diverge_at, "config": {"data": {"source": "synthetic"}, "train": {"epochs": epochs}},
        "synthetic_config": True, "data_synthetic": True, "data_source": "synthetic",
        "probe_init": [{"attn_ratio": 0.0 if preset == "no-attention" else 0.25,
                        "value_sens": VALUE_SENS.get(preset, 1.0)} for _ in range(layers)],
        "data": {"source": "synthetic", "synthetic": True, "tokenizer": None if task == "cifar10" else "word",
                 "embedding": "pixels (convolutional stem)" if task == "cifar10" else "learned token embedding",
                 "train_from": "train", "held_out": ["valid", "test"] if lm else ["test"],
                 "tokens_per_word": {"test": 1.0} if lm else None},
    }  # fmt: skip
    if lm:
        record["causality_audit"] = {"max_abs_change": 0.0, "passed": True}
    if curve is not None:
        record["learning_curve"] = curve
    RunDir(run).publish(task, record, cols, rows)
    return run


def make_runs(root: Path, tasks=("imdb", "cifar10", "wikitext2"), seeds=(0, 1), epochs=6,
              curves: bool = False) -> tuple[Path, Path]:
    """Write fake runs under ``root/runs`` and the configuration to ``root/config.yaml``; with ``curves``, every run
    records a step-resolution learning curve."""
    runs = root / "runs"
    for task in tasks:
        models = MODELS + (["astro-leaky"] if task == "wikitext2" else [])
        for model in models:
            for seed in seeds:
                diverge = 3 if (task == "wikitext2" and model == "linearized") else None
                curve = learning_curve(task, model.split("@")[0], seed) if curves else None
                write_run(runs, task, model, seed, epochs, diverge, curve=curve)
    cfg_path = root / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(config(tasks, seeds, epochs), sort_keys=False))
    return runs, cfg_path
