"""What the attention adds: the attention-magnitude probe against epoch, one panel per task.

The probe is ||attention term|| / ||residual input|| on a fixed batch, averaged over layers; a preset whose
ratio falls towards zero has learned to ignore its attention (the no-attention control sits at zero).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from astromorphic.plotting import common


def plot(runs_csv: str | Path, out_stem: str | Path, label: str | None = None) -> list[Path]:
    plt = common.setup()
    runs = common.plain_runs(pd.read_csv(runs_csv))
    ratio_cols = sorted((c for c in runs.columns if re.fullmatch(r"attn_ratio_l\d+", c)),
                        key=lambda c: int(c.rsplit("_l", 1)[1]))
    runs = runs.assign(attn_ratio=runs[ratio_cols].apply(pd.to_numeric, errors="coerce").mean(axis=1)
                       if ratio_cols else float("nan"))
    tasks = [t for t in common.TASK_NAMES if t in set(runs["task"])]
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(3.6 * max(len(tasks), 1), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = runs[runs["task"] == task]
        common.seed_lines(ax, rows, "attn_ratio", common.ordered_models(rows["model"].unique()),
                          legend=ax is axes[0][-1])
        ax.set_title(common.TASK_NAMES[task])
        ax.set_xlabel("epoch")
        ax.set_ylabel("||attention|| / ||residual input||")
    axes[0][-1].legend(loc="best")
    fig.suptitle("Attention-magnitude probe (mean over layers)\n"
                 f"{common.provenance_line(common.is_synthetic(runs), label)}", fontsize=9)
    return common.finish(fig, out_stem)
