"""Sizing a campaign from a pilot: how many seeds per preset make the Welch interval of a difference of two preset
means no wider than a target half-width, and what a run costs.

The spread is read from a metric that chooses nothing and is not reported: by default ``best_valid_acc``, the
validation accuracy at each run's selected epoch, so the test split plays no part in sizing. A validation split is
smaller than the test split, so its binomial noise makes this spread, and the number of seeds, conservative.
For every preset the plan takes the worst pair it belongs to (its own seed sd with the largest other one), and the
campaign's number is the largest over presets. Costs are the measured wall time of the pilot's epochs
(``time_epoch_s`` of their metrics.csv) per run, and the epochs each run trained (early stopping included).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from astromorphic.findings.stats import LEVEL, Group, welch_interval
from astromorphic.tables.aggregate import tidy_runs

DEFAULT_METRIC = "best_valid_acc"
MAX_SEEDS = 200


def half_width(sd_a: float, sd_b: float, n: int, level: float = LEVEL) -> float:
    """The half-width of the Welch interval of a difference of two means of ``n`` seeds each with these seed sds."""
    interval = welch_interval(Group("a", 0.0, sd_a, n), Group("b", 0.0, sd_b, n), level)
    return interval.half_width if interval is not None and interval.bounded else math.nan


def seeds_needed(sd_a: float, sd_b: float, target: float, level: float = LEVEL, n_max: int = MAX_SEEDS) -> int | None:
    """The smallest n >= 2 whose :func:`half_width` is at most ``target``; None when not even ``n_max`` seeds do."""
    if not (math.isfinite(sd_a) and math.isfinite(sd_b)):
        return None
    for n in range(2, n_max + 1):
        width = half_width(sd_a, sd_b, n, level)
        if not math.isfinite(width) or width <= target:  # no spread at all: any two seeds
            return n
    return None


def plan(summary: pd.DataFrame, timing: pd.DataFrame, task: str, target: float, metric: str = DEFAULT_METRIC,
         scale: float = 100.0, level: float = LEVEL) -> pd.DataFrame:
    """Per preset of ``task`` (plain presets only, complete runs): pilot seeds, mean and sd of ``metric`` (times
    ``scale``: percentage points for an accuracy), epochs per run, minutes per run, the seeds its worst pair needs
    for a half-width of ``target`` (in the scaled unit) and the half-width that number gives."""
    runs = summary[(summary["task"] == task) & (summary["model"] == summary["preset"]) & summary["complete"]]
    if metric not in runs.columns or not pd.to_numeric(runs[metric], errors="coerce").notna().any():
        raise ValueError(f"the runs of {task} have no {metric} (a classifier trained with a validation split has "
                         "best_valid_acc; choose --metric)")
    rows = []
    minutes = _minutes_per_run(timing, runs)
    for model, group in runs.groupby("model", sort=False):
        values = pd.to_numeric(group[metric], errors="coerce").dropna() * scale
        rows.append(dict(task=task, model=model, metric=metric, n_pilot=len(values), mean=values.mean(),
                         sd=values.std(ddof=1) if len(values) > 1 else math.nan,
                         epochs_per_run=float(group["epochs"].mean()),
                         minutes_per_run=float(minutes.get(model, math.nan))))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    worst = frame["sd"].max()
    frame["seeds_needed"] = [seeds_needed(sd, worst, target, level) for sd in frame["sd"]]
    frame["target_half_width"] = target
    frame["half_width_at_needed"] = [half_width(sd, worst, n, level) if n else math.nan
                                     for sd, n in zip(frame["sd"], frame["seeds_needed"])]
    return frame


def summary_line(rows: pd.DataFrame, target: float, metric: str = DEFAULT_METRIC) -> str:
    """One line for a task's :func:`plan`: the seeds per preset, or why there is no number (a preset with fewer
    than two runs has no seed spread; a spread that ``MAX_SEEDS`` seeds do not bring under the target)."""
    task = rows["task"].iloc[0]
    lonely = rows.loc[rows["n_pilot"] < 2, "model"].tolist()
    if lonely:
        return (f"{task}: no estimate yet: {', '.join(lonely)} {'has' if len(lonely) == 1 else 'have'} fewer than "
                f"2 runs (no seed spread of {metric})")
    needed = rows["seeds_needed"]
    count = f"more than {MAX_SEEDS}" if needed.isna().any() else f"{int(needed.max())}"
    return f"{task}: {count} seeds per preset for a {target:g} pp half-width of every pair ({metric})"


def _minutes_per_run(timing: pd.DataFrame, runs: pd.DataFrame) -> dict[str, float]:
    """Mean over a preset's ``runs`` of their summed ``time_epoch_s`` (initial evaluation included), in minutes."""
    if timing.empty or "time_epoch_s" not in timing.columns or runs.empty:
        return {}
    keys = set(zip(runs["task"], runs["model"], runs["seed"]))
    rows = timing[[k in keys for k in zip(timing["task"], timing["model"], timing["seed"])]]
    per_run = rows.groupby(["model", "seed"])["time_epoch_s"].sum() / 60.0
    return per_run.groupby("model").mean().to_dict()


def plan_runs(runs_dir: str | Path, tasks: list[str], targets: dict[str, float], metric: str = DEFAULT_METRIC,
              level: float = LEVEL) -> pd.DataFrame:
    """:func:`plan` for each task of a results/runs tree (or records folder)."""
    _, summary, timing = tidy_runs([runs_dir])
    if summary.empty:
        raise ValueError(f"no run records under {runs_dir}")
    frames = [f for task in tasks if not (f := plan(summary, timing, task, targets[task], metric, level=level)).empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
