"""Collect run directories into tidy tables: ``astromorphic aggregate``.

A run directory (``results/runs/<task>/<model>/seed<k>/``) holds ``run.json`` (provenance, status) and
``metrics.csv`` (one row per epoch, epoch 0 = the model at initialisation). This module turns a set of them
into

* the tidy per-epoch table (one row per task/model/seed/epoch), without the ``time_*`` columns, which are the
  only values that differ between two runs of the same configuration;
* a per-run summary (status, final and best metrics, attention-magnitude probe), one row per run;
* optionally the timing columns on their own.

The model directory name may carry attention overrides from a sweep, ``<preset>@<key>=<value>[@...]``
(e.g. ``astro@m_scale_factor=50``); :func:`parse_model_name` splits it.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from astromorphic.io import atomic_path

TASK_ORDER = ("imdb", "cifar10", "wikitext2")
ID_COLUMNS = ["task", "model", "preset", "overrides", "seed"]
# metric -> True when higher is better
METRIC_DIRECTION = {
    "test_acc": True,
    "train_loss": False,
    "valid_ppl": False,
    "test_ppl": False,
    "valid_word_ppl": False,
    "test_word_ppl": False,
}
LM_METRICS = ("valid_ppl", "test_ppl", "valid_word_ppl", "test_word_ppl")
FLOAT_FORMAT = "%.10g"

_OVERRIDE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>[^@/=]+)$")


# ------------------------------------------------------------------------------------------ model names


def parse_model_name(name: str) -> tuple[str, dict[str, Any]]:
    """``"astro@m_scale_factor=50@tau=8"`` -> ``("astro", {"m_scale_factor": 50, "tau": 8})``."""
    preset, *parts = name.split("@")
    overrides: dict[str, Any] = {}
    for part in parts:
        match = _OVERRIDE.match(part)
        if not match:
            raise ValueError(f"model name {name!r}: override {part!r} is not <key>=<value>")
        overrides[match["key"]] = _parse_number(match["value"])
    return preset, overrides


def format_model_name(preset: str, overrides: dict[str, Any] | None = None) -> str:
    """Inverse of :func:`parse_model_name`; keys keep the given order."""
    parts = [preset] + [f"{key}={format_value(value)}" for key, value in (overrides or {}).items()]
    return "@".join(parts)


def format_value(value: Any) -> str:
    """A short, stable spelling of a swept value for a directory name (``500``, ``0.25``, ``1e-05``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:g}"
    return str(value)


def _parse_number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


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


def read_run(run_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    run_dir = Path(run_dir)
    with open(run_dir / "run.json", encoding="utf-8") as fh:
        record = json.load(fh)
    metrics = pd.read_csv(run_dir / "metrics.csv")
    return record, metrics


def run_identity(record: dict, run_dir: Path) -> dict[str, Any]:
    """task/model/seed of a run, from run.json, else from the directory layout ``<task>/<model>/seed<k>``."""
    task = record.get("task") or run_dir.parent.parent.name
    # The directory name is what the workflow asked for (it carries sweep overrides); run.json names the preset.
    model = run_dir.parent.name if "@" in run_dir.parent.name else (record.get("model") or run_dir.parent.name)
    seed = record.get("seed")
    if seed is None:
        seed = int(run_dir.name.removeprefix("seed"))
    preset, overrides = parse_model_name(model)
    return {
        "task": task,
        "model": model,
        "preset": preset,
        "overrides": ";".join(f"{k}={format_value(v)}" for k, v in overrides.items()),
        "seed": int(seed),
    }


def run_provenance(record: dict, task: str) -> dict[str, Any]:
    """Whether the run used synthetic stand-in data, and where its data came from (run.json, else its config)."""
    config = record.get("config") or {}
    task_cfg = (config.get("tasks") or {}).get(task) or config
    source = record.get("data_source") or (task_cfg.get("data") or {}).get("source") or ""
    flags = [record.get(k) for k in ("data_synthetic", "synthetic_config", "synthetic")] + [config.get("synthetic")]
    synthetic = any(bool(f) for f in flags if f is not None) or str(source).startswith("synthetic")
    return {"synthetic": synthetic, "data_source": str(source)}


def tidy_runs(run_dirs: Iterable[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(tidy per-epoch metrics, per-run summary, timing) for the given run directories."""
    tidy_parts, summaries, timing_parts = [], [], []
    for run_dir in find_run_dirs(run_dirs):
        record, metrics = read_run(run_dir)
        ident = run_identity(record, run_dir)
        prov = run_provenance(record, ident["task"])
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
        summaries.append(summarise_run(record, metrics.drop(columns=time_cols), ident, prov))
    tidy = _sort(pd.concat(tidy_parts, ignore_index=True)) if tidy_parts else pd.DataFrame(columns=ID_COLUMNS)
    tidy = tidy[_column_order(tidy.columns)]
    summary = _sort(pd.DataFrame(summaries)) if summaries else pd.DataFrame(columns=ID_COLUMNS)
    timing = _sort(pd.concat(timing_parts, ignore_index=True)) if timing_parts else pd.DataFrame(columns=ID_COLUMNS)
    return tidy, summary, timing


def _column_order(columns: Iterable[str]) -> list[str]:
    """Identity, epoch, the task metrics, optimiser values, then the probe columns layer by layer."""
    head = [*ID_COLUMNS, "status", "synthetic", "epoch", "train_loss", "test_acc", *LM_METRICS, "lr", "grad_norm"]
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


# ------------------------------------------------------------------------------------------ per-run summary


def _finite(series: pd.Series) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    return values[np.isfinite(values)]


def _layer_columns(columns: Iterable[str], prefix: str) -> list[str]:
    cols = [c for c in columns if re.fullmatch(rf"{prefix}_l\d+", c)]
    return sorted(cols, key=lambda c: int(c.rsplit("_l", 1)[1]))


def _probe_init_ratio(probe_init: Any) -> float:
    """Mean over layers of the attention-magnitude ratio recorded at initialisation (run.json ``probe_init``)."""
    values: list[float] = []
    if isinstance(probe_init, dict):
        if "attn_ratio" in probe_init and not isinstance(probe_init["attn_ratio"], (dict, list)):
            values.append(float(probe_init["attn_ratio"]))
        else:
            values += [float(v) for k, v in probe_init.items() if k.startswith("attn_ratio") and _is_number(v)]
            for v in probe_init.values():
                if isinstance(v, (list, dict)):
                    values.append(_probe_init_ratio(v))
    elif isinstance(probe_init, list):
        for layer in probe_init:
            if isinstance(layer, dict) and _is_number(layer.get("attn_ratio")):
                values.append(float(layer["attn_ratio"]))
            elif _is_number(layer):
                values.append(float(layer))
    values = [v for v in values if math.isfinite(v)]
    return float(np.mean(values)) if values else math.nan


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _causality_max_change(audit: Any) -> float:
    if _is_number(audit):
        return float(audit)
    if isinstance(audit, dict):
        for key in ("max_abs_change", "max_change", "max_logit_change", "max_abs_logit_change"):
            if _is_number(audit.get(key)):
                return float(audit[key])
        for key, value in sorted(audit.items()):
            if "max" in key and _is_number(value):
                return float(value)
    return math.nan


def summarise_run(record: dict, metrics: pd.DataFrame, ident: dict, prov: dict) -> dict[str, Any]:
    """One row: status, final/best metrics, attention probe; metrics of a diverged run are taken before divergence."""
    metrics = metrics.sort_values("epoch")
    row: dict[str, Any] = dict(ident)
    row["status"] = record.get("status", "unknown")
    diverged_epoch = record.get("diverged_epoch")
    row["diverged_epoch"] = int(diverged_epoch) if _is_number(diverged_epoch) else math.nan
    row["epochs"] = int(metrics["epoch"].max()) if len(metrics) else 0
    row.update(prov)
    for metric, higher in METRIC_DIRECTION.items():
        if metric not in metrics.columns:
            continue
        values = _finite(metrics[metric])
        row[f"final_{metric}"] = float(metrics[metric].iloc[-1]) if len(metrics) else math.nan
        if len(values):
            best_idx = values.idxmax() if higher else values.idxmin()
            row[f"best_{metric}"] = float(values[best_idx])
            row[f"best_{metric}_epoch"] = int(metrics.loc[best_idx, "epoch"])
        else:
            row[f"best_{metric}"] = math.nan
            row[f"best_{metric}_epoch"] = math.nan
    if "valid_ppl" in metrics.columns:
        # Model selection for the LM: the epoch with the lowest validation perplexity.
        valid = _finite(metrics["valid_ppl"])
        for metric in ("test_ppl", "test_word_ppl"):
            if metric in metrics.columns:
                row[f"{metric}_at_best_valid"] = float(metrics.loc[valid.idxmin(), metric]) if len(valid) else math.nan
    ratio_cols = _layer_columns(metrics.columns, "attn_ratio")
    if ratio_cols:
        last = metrics[ratio_cols].apply(pd.to_numeric, errors="coerce").iloc[-1]
        row["attn_ratio_final"] = float(last.mean()) if last.notna().any() else math.nan
    else:
        row["attn_ratio_final"] = math.nan
    row["attn_ratio_init"] = _probe_init_ratio(record.get("probe_init"))
    if "causality_audit" in record:
        row["causality_max_change"] = _causality_max_change(record["causality_audit"])
    return row


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
    args = parser.parse_args(argv)

    tidy, summary, timing = tidy_runs(args.runs)
    if tidy.empty:
        parser.error(f"no runs found under {' '.join(args.runs)}")
    out = Path(args.out)
    write_csv(tidy, out)
    write_csv(summary, args.summary or out.with_name(f"{out.stem}_summary.csv"))
    if args.timing:
        write_csv(timing, args.timing)
    print(f"aggregate: {summary.shape[0]} runs, {tidy.shape[0]} epoch rows -> {out}")
    return 0
