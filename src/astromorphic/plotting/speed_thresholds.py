"""Steps to a threshold over a range of thresholds, one figure per task: where the orderings flip.

Top: per model, the mean over seeds of the first step (epoch, for records without a step-resolution learning
curve) whose accuracy reaches each threshold, drawn where every seed reaches it (a hollow marker where only
some do: the mean of those that do); bottom: how many seeds reach it. The paper's 85 % and our threshold are
marked. The curves are those of :func:`astromorphic.tables.speed.run_curves`, the thresholds the task's
threshold ± ``report.speed_threshold_span`` every ``report.speed_threshold_step``, continued upwards until no seed
reaches one (where the orderings end).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from astromorphic.config import load_config, threshold as task_threshold
from astromorphic.plotting import common
from astromorphic.tables.speed import PAPER_THRESHOLD, curve_split, run_curves, steps_to_thresholds, threshold_grid
from astromorphic.tasks import get as task_get


def plot(curves_csv: str | Path, runs_csv: str | Path, config_path: str | Path, task: str, out_stem: str | Path,
         label: str | None = None) -> list[Path]:
    plt = common.setup()
    cfg = load_config(config_path)
    report = cfg["report"]
    centre = task_threshold(cfg, task)
    curves = pd.read_csv(curves_csv) if Path(curves_csv).stat().st_size else pd.DataFrame()
    tidy = pd.read_csv(runs_csv)
    frame, unit, metric = run_curves(curves, tidy, task, task_get(task).metric)
    frame = frame[~frame["model"].str.contains("@", regex=False)]  # plain presets (no sweep or ablation runs)
    grid = threshold_grid(centre, report["speed_threshold_span"], report["speed_threshold_step"],
                          highest=float(frame["value"].max()) if len(frame) else None)
    reached = steps_to_thresholds(frame, grid)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.6, 5.4), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    models = common.ordered_models(reached["model"].unique())
    for i, model in enumerate(models):
        colour, ls, name = common.style(model, i)
        rows = reached[reached["model"] == model]
        stats = rows.groupby("threshold")["reached_at"].agg(["mean", "count", "size"]).reset_index()
        full = stats[stats["count"] == stats["size"]]
        part = stats[(stats["count"] > 0) & (stats["count"] < stats["size"])]
        n = int(stats["size"].max()) if len(stats) else 0
        top.plot(100 * full["threshold"], full["mean"], color=colour, ls=ls, marker="o", ms=3, lw=1.2,
                 label=f"{name} (n={n})")
        top.plot(100 * part["threshold"], part["mean"], color=colour, ls="none", marker="o", ms=4, mfc="white")
        bottom.plot(100 * stats["threshold"], stats["count"], color=colour, ls=ls, lw=1.2, drawstyle="steps-mid")
    for ax in (top, bottom):
        ax.axvline(100 * centre, color="0.4", ls="--", lw=0.8)
        if grid and grid[0] <= PAPER_THRESHOLD <= grid[-1]:
            ax.axvline(100 * PAPER_THRESHOLD, color="#d62728", ls=":", lw=1.0)
    if reached.empty:
        top.text(0.5, 0.5, "no learning curves", ha="center", va="center", transform=top.transAxes)
    top.set_ylabel(f"{unit} to the threshold (mean)")
    bottom.set_ylabel("seeds reaching")
    most = int(reached.groupby("model")["seed"].nunique().max()) if len(reached) else 1
    bottom.set_ylim(-0.3, most + 0.3)
    bottom.yaxis.set_major_locator(plt.MaxNLocator(integer=True, nbins=4))
    paper = (f"; dotted: the paper's {100 * PAPER_THRESHOLD:.0f} %" if grid and grid[0] <= PAPER_THRESHOLD <= grid[-1]
             else "")
    bottom.set_xlabel(f"threshold: accuracy on the {curve_split(metric)} split (%)\n"
                      f"dashed: our threshold{paper}")
    top.legend(loc="upper left", fontsize=6)
    synthetic = common.is_synthetic(tidy[tidy["task"] == task]) if "synthetic" in tidy.columns else False
    top.set_title(f"{common.TASK_NAMES.get(task, task)}: {unit} to a threshold, over a range of thresholds\n"
                  f"hollow: not every seed reaches it; {common.provenance_line(synthetic, label, width=70)}")
    return common.finish(fig, out_stem)
