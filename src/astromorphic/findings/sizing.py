"""Sizing a campaign from a pilot: how many seeds per preset make the Welch interval of a difference of two preset
means no wider than a target half-width, and what a run costs.

The spread is read from a metric that chooses nothing and is not reported: by default the task's validation
selection metric at each run's selected epoch (the task registry's: ``best_valid_acc`` for a classifier,
``best_valid_ppl`` for the language model), so the test split plays no part in sizing. Accuracies are sized in
percentage points; perplexities as the page compares them, on the log scale, with the target given in percent of
the perplexity ratio (5: a half-width of ln 1.05). A validation split is smaller than the test split, so its
binomial noise makes this spread, and the number of seeds, conservative.
For every preset the plan takes the worst pair it belongs to (its own seed sd with the largest other one), and the
campaign's number is the largest over presets. Costs are the measured wall time of the pilot's epochs
(``time_epoch_s`` of their metrics.csv) per run, and the epochs each run trained (early stopping included).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from astromorphic import tasks as task_registry
from astromorphic.findings.stats import LEVEL, Group, welch_interval
from astromorphic.tables.aggregate import tidy_runs

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


def default_metric(task: str) -> str:
    """The runs_summary column a task is sized on when none is named: its registry's selection metric on
    validation data (``valid_selection_metric``, else ``selection_metric``) at the selected epoch."""
    spec = task_registry.get(task)
    return f"best_{spec.valid_selection_metric or spec.selection_metric}"


def is_perplexity(metric: str) -> bool:
    return metric.endswith("ppl")


def unit_target(metric: str, target: float) -> float:
    """``target`` in the unit the spread is measured in: percentage points as given for an accuracy; for a
    perplexity, ``target`` percent of the ratio as a difference of logs (ln(1 + target / 100))."""
    return math.log1p(target / 100.0) if is_perplexity(metric) else target


def plan(summary: pd.DataFrame, timing: pd.DataFrame, task: str, target: float, metric: str | None = None,
         scale: float = 100.0, level: float = LEVEL) -> pd.DataFrame:
    """Per preset of ``task`` (plain presets only, complete runs): pilot seeds, mean and sd of ``metric`` (an
    accuracy times ``scale``: percentage points; a perplexity: its natural log), epochs per run, minutes per run,
    the seeds its worst pair needs for a half-width of ``target`` (:func:`unit_target`: percentage points, or
    percent of the perplexity ratio) and the half-width that number gives, in the same unit (``unit``)."""
    metric = metric or default_metric(task)
    runs = summary[(summary["task"] == task) & (summary["model"] == summary["preset"]) & summary["complete"]]
    if metric not in runs.columns or not pd.to_numeric(runs[metric], errors="coerce").notna().any():
        raise ValueError(f"the runs of {task} have no {metric} (a run trained with a validation split has "
                         f"{default_metric(task)}; choose --metric)")
    log = is_perplexity(metric)
    goal = unit_target(metric, target)
    rows = []
    minutes = _minutes_per_run(timing, runs)
    for model, group in runs.groupby("model", sort=False):
        values = pd.to_numeric(group[metric], errors="coerce").dropna()
        values = np.log(values) if log else values * scale
        rows.append(dict(task=task, model=model, metric=metric, unit="ln" if log else "pp", n_pilot=len(values),
                         mean=values.mean(),
                         sd=values.std(ddof=1) if len(values) > 1 else math.nan,
                         epochs_per_run=float(group["epochs"].mean()),
                         minutes_per_run=float(minutes.get(model, math.nan))))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    worst = frame["sd"].max()
    frame["seeds_needed"] = [seeds_needed(sd, worst, goal, level) for sd in frame["sd"]]
    frame["target_half_width"] = goal
    frame["half_width_at_needed"] = [half_width(sd, worst, n, level) if n else math.nan
                                     for sd, n in zip(frame["sd"], frame["seeds_needed"])]
    return frame


def summary_line(rows: pd.DataFrame, target: float, metric: str | None = None) -> str:
    """One line for a task's :func:`plan`: the seeds per preset, or why there is no number (a preset with fewer
    than two runs has no seed spread; a spread that ``MAX_SEEDS`` seeds do not bring under the target)."""
    task = rows["task"].iloc[0]
    metric = metric or default_metric(task)
    lonely = rows.loc[rows["n_pilot"] < 2, "model"].tolist()
    if lonely:
        return (f"{task}: no estimate yet: {', '.join(lonely)} {'has' if len(lonely) == 1 else 'have'} fewer than "
                f"2 runs (no seed spread of {metric})")
    needed = rows["seeds_needed"]
    count = f"more than {MAX_SEEDS}" if needed.isna().any() else f"{int(needed.max())}"
    width = (f"± {target:g} % half-width in perplexity ratio (± {unit_target(metric, target):.4f} in ln)"
             if is_perplexity(metric) else f"{target:g} pp half-width")
    return f"{task}: {count} seeds per preset for a {width} of every pair ({metric})"


def _minutes_per_run(timing: pd.DataFrame, runs: pd.DataFrame) -> dict[str, float]:
    """Mean over a preset's ``runs`` of their summed ``time_epoch_s`` (initial evaluation included), in minutes."""
    if timing.empty or "time_epoch_s" not in timing.columns or runs.empty:
        return {}
    keys = set(zip(runs["task"], runs["model"], runs["seed"]))
    rows = timing[[k in keys for k in zip(timing["task"], timing["model"], timing["seed"])]]
    per_run = rows.groupby(["model", "seed"])["time_epoch_s"].sum() / 60.0
    return per_run.groupby("model").mean().to_dict()


def plan_runs(runs_dir: str | Path, tasks: list[str], targets: dict[str, float], metric: str | None = None,
              level: float = LEVEL) -> pd.DataFrame:
    """:func:`plan` for each task of a results/runs tree (or records folder)."""
    _, summary, timing = tidy_runs([runs_dir])
    if summary.empty:
        raise ValueError(f"no run records under {runs_dir}")
    frames = [f for task in tasks if not (f := plan(summary, timing, task, targets[task], metric, level=level)).empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
