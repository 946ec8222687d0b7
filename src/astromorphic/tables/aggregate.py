"""Collect run directories into tidy tables: ``astromorphic aggregate``.

A run directory (``results/runs/<task>/<model>/seed<k>/``) holds ``run.json`` (provenance, status) and
``metrics.csv`` (one row per epoch, epoch 0 = the model at initialisation). This module turns a set of them
into

* the tidy per-epoch table (one row per task/model/seed/epoch), without the ``time_*`` columns, which are the
  only values that differ between two runs of the same configuration;
* a per-run summary (status, final and best metrics, attention-magnitude probe), one row per run;
  ``complete`` is false for a run that has not ended (status ``running``): tables count no such seed;
* optionally the timing columns on their own;
* optionally the learning curves at step resolution (``learning_curve`` of ``run.json``: the metric on a fixed
  held-out subset every k optimiser steps, step 0 = initialisation), one row per run and step; empty (header
  only) when no record has one.

The model directory name may carry attention overrides from a sweep, ``<preset>@<key>=<value>[@...]``
(e.g. ``astro@m_scale_factor=50``); :func:`parse_model_name` splits it.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from astromorphic.io import atomic_path
from astromorphic.runs import FINAL_STATUSES, RunError, read_run
from astromorphic.run_names import format_value, parse_model_name
from astromorphic.tasks import TASK_NAMES

TASK_ORDER = TASK_NAMES
ID_COLUMNS = ["task", "model", "preset", "overrides", "seed"]
# metric -> True when higher is better
METRIC_DIRECTION = {
    "valid_acc": True,
    "test_acc": True,
    "train_loss": False,
    "valid_ppl": False,
    "test_ppl": False,
    "valid_word_ppl": False,
    "test_word_ppl": False,
}
LM_METRICS = ("valid_ppl", "test_ppl", "valid_word_ppl", "test_word_ppl")
FLOAT_FORMAT = "%.10g"


def run_name_order(name: str) -> tuple:
    """Sort key of run names: by preset, then by each overridden key and its value as a number where it is one
    (``astro@m_scale=64`` before ``astro@m_scale=1024``, not after it as the names' spelling sorts)."""
    preset, overrides = parse_model_name(name)
    return (preset, tuple((key, isinstance(value, str), 0 if isinstance(value, str) else value, str(value))
                          for key, value in overrides.items()))



# ------------------------------------------------------------------------------------------ reading runs


def find_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories under ``paths``: a path holding ``run.json`` is a run, others are searched."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if (path / "run.json").is_file():
            found.add(path)
        elif path.is_dir():
            found.update(p.parent for p in path.rglob("run.json"))
        else:
            raise FileNotFoundError(f"{path}: neither a run directory nor a folder of runs")
    return sorted(found, key=lambda p: str(p))


def run_identity(record: dict) -> dict[str, Any]:
    """task/model/seed of a run, from its record (``model`` carries sweep overrides: ``astro@m_scale=32``)."""
    preset, overrides = parse_model_name(record["model"])
    return {
        "task": record["task"],
        "model": record["model"],
        "preset": preset,
        "overrides": ";".join(f"{k}={format_value(v)}" for k, v in overrides.items()),
        "seed": int(record["seed"]),
    }


def run_provenance(record: dict) -> dict[str, Any]:
    """Whether the run used synthetic stand-in data, and where its data came from."""
    source = str(record.get("data_source") or "")
    synthetic = bool(record.get("data_synthetic")) or bool(record.get("synthetic_config"))
    return {"synthetic": synthetic or source.startswith("synthetic"), "data_source": source}


def tidy_runs(run_dirs: Iterable[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(tidy per-epoch metrics, per-run summary, timing) for the given run directories."""
    tidy_parts, summaries, timing_parts = [], [], []
    for run_dir in find_run_dirs(run_dirs):
        record, metrics = read_run(run_dir)
        ident = run_identity(record)
        prov = run_provenance(record)
        status = record.get("status", "unknown")
        time_cols = [c for c in metrics.columns if c.startswith("time_")]
        frame = metrics.drop(columns=time_cols)
        head = {**ident, "status": status, "synthetic": prov["synthetic"]}
        for i, (key, value) in enumerate(head.items()):
            frame.insert(i, key, value)
        tidy_parts.append(frame)
        if time_cols:
            timing = metrics[["epoch", *time_cols]].copy()
            for i, (key, value) in enumerate(ident.items()):
                timing.insert(i, key, value)
            timing_parts.append(timing)
        summaries.append(summarise_run(record, ident, prov))
    tidy = _sort(pd.concat(tidy_parts, ignore_index=True)) if tidy_parts else pd.DataFrame(columns=ID_COLUMNS)
    tidy = tidy[_column_order(tidy.columns)]
    summary = _sort(pd.DataFrame(summaries)) if summaries else pd.DataFrame(columns=ID_COLUMNS)
    timing = _sort(pd.concat(timing_parts, ignore_index=True)) if timing_parts else pd.DataFrame(columns=ID_COLUMNS)
    return tidy, summary, timing


def _column_order(columns: Iterable[str]) -> list[str]:
    """Identity, epoch, the task metrics, optimiser values, then the probe columns layer by layer."""
    head = [*ID_COLUMNS, "status", "synthetic", "epoch", "train_loss", "valid_acc", "test_acc", *LM_METRICS, "lr", "grad_norm"]
    columns = list(columns)
    probe = sorted((c for c in columns if c not in head), key=_probe_key)
    return [c for c in head if c in columns] + probe


def _probe_key(column: str) -> tuple:
    match = re.fullmatch(r"(.+)_l(\d+)", column)
    if not match:
        return (1, 0, 0, column)
    name = match[1]
    return (0, int(match[2]), 0 if name == "attn_ratio" else 1, name)


def _sort(frame: pd.DataFrame) -> pd.DataFrame:
    order = {task: i for i, task in enumerate(TASK_ORDER)}
    keys = ["_task_order", "task", "model", "seed"] + (["epoch"] if "epoch" in frame.columns else [])
    frame = frame.assign(_task_order=frame["task"].map(lambda t: order.get(t, len(order))))
    return frame.sort_values(keys, kind="mergesort").drop(columns="_task_order").reset_index(drop=True)


CURVE_COLUMNS = [*ID_COLUMNS, "status", "metric", "every_steps", "n_examples", "step", "value"]


def curve_rows(record: dict) -> list[dict[str, Any]]:
    """The ``learning_curve`` of one record as rows (none when the record has no curve)."""
    curve = record.get("learning_curve")
    if not curve:
        return []
    steps, values = list(curve.get("steps") or []), list(curve.get("values") or [])
    if len(steps) != len(values):
        raise ValueError(f"learning_curve of {record.get('task')}/{record.get('model')}/seed{record.get('seed')}: "
                         f"{len(steps)} steps but {len(values)} values; the record is damaged, export it again")
    head = {**run_identity(record), "status": record.get("status", "unknown"), "metric": curve.get("metric"),
            "every_steps": curve.get("every_steps"), "n_examples": curve.get("n_examples")}
    return [{**head, "step": int(step), "value": _number(value)} for step, value in zip(steps, values)]


def learning_curves(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """The step-resolution learning curves of the given run directories (see :func:`curve_rows`)."""
    rows = []
    for run_dir in find_run_dirs(run_dirs):
        record, _ = read_run(run_dir)
        rows += curve_rows(record)
    if not rows:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    frame = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    order = {task: i for i, task in enumerate(TASK_ORDER)}
    frame = frame.assign(_task_order=frame["task"].map(lambda t: order.get(t, len(order))))
    keys = ["_task_order", "task", "model", "seed", "step"]
    return frame.sort_values(keys, kind="mergesort").drop(columns="_task_order").reset_index(drop=True)


# ------------------------------------------------------------------------------------------ per-run summary


def summarise_run(record: dict, ident: dict, prov: dict) -> dict[str, Any]:
    """One row from the summary the run record holds (astromorphic.runs.summarise; nothing is recomputed).

    ``final_<metric>``: the last completed epoch (of a diverged run: the last one before divergence);
    ``best_<metric>`` and ``best_epoch``: the epoch chosen by the run's selection metric, from epoch 1, named in
    ``selected_by`` (classifiers with a validation split: highest ``valid_acc``, so ``best_test_acc`` is the test
    accuracy at that epoch; classifiers without one: highest test accuracy; LM: lowest validation perplexity).
    ``max_epochs``, ``early_stopping`` (patience, NaN: none) and ``stopped`` (why a finished run ended:
    ``early_stopping`` or ``max_epochs``; empty for records that do not say).
    """
    row: dict[str, Any] = dict(ident)
    row["status"] = record.get("status", "unknown")
    row["complete"] = row["status"] in FINAL_STATUSES  # a run still going ("running") is no seed of a result
    row["diverged_epoch"] = record.get("diverged_epoch") if record.get("diverged_epoch") is not None else math.nan
    row["epochs"] = int(record.get("epochs_completed") or 0)
    row.update(prov)
    for which in ("final", "best"):
        values = record.get(which) or {}
        for metric in METRIC_DIRECTION:
            row[f"{which}_{metric}"] = _number(values.get(metric))
    row["best_epoch"] = _number((record.get("best") or {}).get("epoch"))
    row["selected_by"] = (record.get("best") or {}).get("selected_by") or ""
    train = ((record.get("config") or {}).get("train") or {})
    row["max_epochs"] = _number(record.get("epochs"))
    row["early_stopping"] = _number(train.get("early_stopping"))
    row["stopped"] = (record.get("stopped") or {}).get("reason") or ""
    for probe in ("attn_ratio_final", "attn_ratio_init", "value_sens_init", "value_sens_final"):
        row[probe] = _number(record.get(probe))
    audit = record.get("causality_audit")
    if audit is not None:
        row["causality_max_change"] = _number(audit["max_abs_change"])
        row["causality_passed"] = bool(audit["passed"])
        row["prefix_max_change"] = _number(audit.get("prefix_max_abs_change"))
        row["prefix_passed"] = audit.get("prefix_passed")
    data = record.get("data") or {}
    row["data_tokenizer"] = data.get("tokenizer")
    row["data_embedding"] = data.get("embedding")
    row["data_train_from"] = data.get("train_from")
    row["data_held_out"] = ";".join(data.get("held_out") or [])
    row["data_train_fraction"] = _number(data.get("train_fraction"))
    vocab = data.get("output_vocab") or {}
    row["data_output_vocab"] = _number(vocab.get("size"))
    row["data_vocab_of"] = _number(vocab.get("of"))
    row["data_unknown_test"] = _number(vocab.get("unknown_test"))
    row.update({f"data_valid_{k}": _number(v) for k, v in validation_facts(data.get("validation")).items()})
    per_word = data.get("tokens_per_word") or {}
    row["data_tokens_per_word"] = _number(per_word.get("test"))
    return row


def validation_facts(entry: dict | None) -> dict[str, Any]:
    """What the tables say of a validation split, from the manifest's ``validation`` entry (as each run record's
    ``data`` holds it): its size and draw, and for IMDB the movies of its reviews and how many of them the training
    reviews share; None where the entry (or the data's validation split) has none."""
    entry = entry or {}
    return {"size": entry.get("size"), "seed": entry.get("seed"),
            "movies": (entry.get("movies") or {}).get("valid"),
            "shared_movies": (entry.get("shared_movies") or {}).get("train-valid")}


def _number(value: Any) -> float:
    """A record value as a float (run.json writes non-finite floats as strings); NaN when absent."""
    if value is None or isinstance(value, bool):
        return math.nan
    return float(value)


def epochs_to_threshold(epochs: Iterable[int], values: Iterable[float], threshold: float) -> float:
    """First epoch whose value reaches ``threshold``; NaN when it never does (the run is censored, not dropped)."""
    for epoch, value in zip(epochs, values):
        if value is not None and math.isfinite(value) and value >= threshold:
            return float(epoch)
    return math.nan


# ------------------------------------------------------------------------------------------ writing


def write_csv(frame: pd.DataFrame, target: str | Path) -> None:
    """Atomic CSV with a fixed float format, so equal data give equal bytes."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="astromorphic aggregate",
        description="Collect run directories (run.json + metrics.csv) into tidy CSV tables.",
    )
    parser.add_argument("--runs", nargs="+", required=True, help="run directories, or folders searched for them")
    parser.add_argument("--out", required=True, help="tidy per-epoch table (CSV; no timing columns)")
    parser.add_argument("--summary", help="per-run summary (CSV); default: <out stem>_summary.csv")
    parser.add_argument("--timing", help="per-epoch timing columns (CSV); these differ between repeated runs")
    parser.add_argument("--curves", help="step-resolution learning curves of the runs that record one (CSV)")
    args = parser.parse_args(argv)

    try:
        tidy, summary, timing = tidy_runs(args.runs)
        if tidy.empty:
            parser.error(f"no runs found under {' '.join(args.runs)}")
        out = Path(args.out)
        write_csv(tidy, out)
        write_csv(summary, args.summary or out.with_name(f"{out.stem}_summary.csv"))
        if args.timing:
            write_csv(timing, args.timing)
        if args.curves:
            write_csv(learning_curves(args.runs), args.curves)
    except (RunError, OSError) as exc:  # a damaged run, a full or read-only disk: one line naming the file
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        message = f"{where}{exc.strerror}" if where and exc.strerror else str(exc)
        print(f"astromorphic aggregate: error: {' '.join(message.split())}", file=sys.stderr)
        return 1
    print(f"aggregate: {summary.shape[0]} runs, {tidy.shape[0]} epoch rows -> {out}")
    return 0
