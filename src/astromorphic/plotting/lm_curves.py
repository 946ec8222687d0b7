"""WikiText-2 perplexity against epoch for every preset (the paper describes it in words).

Left: the validation perplexity per token (the model-selection metric: a plateau shows there), with a dot at
each seed's selected epoch (lowest validation perplexity); middle: test perplexity per token; right: per word.
Mean over seeds with a ± sd band (seaborn) on a log axis, from epoch 1 (epoch 0 is the initialisation, whose
perplexity is about the size of the output vocabulary and would flatten the rest); a run that diverged is marked
with a cross at its last finite value, at the epoch it diverged.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from astromorphic.plotting import common
from astromorphic.tasks import LM_TASKS

METRICS = (("valid_ppl", "validation perplexity per token"), ("test_ppl", "test perplexity per token"),
           ("test_word_ppl", "test perplexity per word"))
FIRST_EPOCH = 1  # epoch 0 (the initialisation) is left out


def plot(runs_csv: str | Path, out_stem: str | Path, task: str = LM_TASKS[0], label: str | None = None,
         summary_csv: str | Path | None = None) -> list[Path]:
    plt = common.setup()
    runs = common.plain_runs(pd.read_csv(runs_csv), task)
    if (runs["epoch"] >= FIRST_EPOCH).any():
        runs = runs[runs["epoch"] >= FIRST_EPOCH]
    summary = common.plain_runs(pd.read_csv(summary_csv), task) if summary_csv is not None else None
    diverged = _diverged_epochs(summary)
    metrics = [(m, t) for m, t in METRICS if m in runs.columns and pd.to_numeric(runs[m], errors="coerce").notna().any()]
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(4.2 * max(len(metrics), 1), 3.4), squeeze=False)
    models = common.ordered_models(runs["model"].unique())
    for k, (ax, (metric, title)) in enumerate(zip(axes[0], metrics)):
        common.seed_lines(ax, runs, metric, models, legend=k == 0)
        for i, model in enumerate(models):
            rows = runs[runs["model"] == model]
            for seed, epoch in sorted(diverged.get(model, {}).items()):
                curve = rows[rows["seed"] == seed].sort_values("epoch")
                vals = pd.to_numeric(curve[metric], errors="coerce")
                finite = curve[np.isfinite(vals)]
                if finite.empty:
                    continue
                ax.plot([epoch], [float(finite[metric].iloc[-1])], marker="x", ms=7, mew=1.6,
                        color=common.style(model, i)[0], ls="none")
        if metric == "valid_ppl":
            _mark_selected(ax, runs, summary, models)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        ax.set_title(title)
    if diverged:
        axes[0][0].plot([], [], marker="x", color="0.2", ls="none", label="diverged (run stopped)")
    axes[0][0].legend(loc="upper right")
    fig.suptitle(f"{common.TASK_NAMES.get(task, task)}: perplexity against epoch\n"
                 f"{common.provenance_line(common.is_synthetic(runs), label)}", fontsize=9)
    return common.finish(fig, out_stem)


def _mark_selected(ax, runs: pd.DataFrame, summary: pd.DataFrame | None, models: list[str]) -> None:
    """A dot at each seed's selected epoch (``best_epoch`` of the per-run summary) on its validation curve."""
    if summary is None or "best_epoch" not in summary.columns:
        return
    for i, model in enumerate(models):
        for _, row in summary[summary["model"] == model].iterrows():
            if not math.isfinite(float(row["best_epoch"])):
                continue
            at = runs[(runs["model"] == model) & (runs["seed"] == row["seed"]) & (runs["epoch"] == row["best_epoch"])]
            if len(at):
                ax.plot([int(row["best_epoch"])], [float(at["valid_ppl"].iloc[0])], marker="o", ms=3.5,
                        color=common.style(model, i)[0], ls="none", zorder=3)
    ax.plot([], [], marker="o", ms=3.5, color="0.2", ls="none", label="selected epoch (one per seed)")


def _diverged_epochs(summary: pd.DataFrame | None) -> dict[str, dict[int, int]]:
    """model -> {seed: epoch of divergence}, from the per-run summary."""
    if summary is None:
        return {}
    out: dict[str, dict[int, int]] = {}
    for _, row in summary[summary["status"] == "diverged"].iterrows():
        epoch = row.get("diverged_epoch")
        if epoch is not None and not (isinstance(epoch, float) and math.isnan(epoch)):
            out.setdefault(row["model"], {})[int(row["seed"])] = int(epoch)
    return out
