"""What the attention adds: the attention probes against epoch, one column per task.

Top row: ||attention term|| / ||residual input|| on a fixed batch, averaged over layers; a preset whose ratio
falls towards zero has learned to ignore its attention (the no-attention control sits at zero).
Bottom row: the value-sensitivity probe ||out(V) - out(V = 0)|| / ||out(V)|| of the attention term (log
scale): 1 for attention that reads only the values, 0 for astro-gate-only; near 0 at the paper's m, where
the astromorphic term is a per-token gate that hardly depends on V.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from astromorphic.plotting import common

PROBES = (("attn_ratio", "||attention|| / ||residual input||", "linear"),
          ("value_sens", "value sensitivity", "log"))  # fmt: skip


def _layer_mean(runs: pd.DataFrame, probe: str) -> pd.Series:
    cols = sorted((c for c in runs.columns if re.fullmatch(rf"{probe}_l\d+", c)), key=lambda c: int(c.rsplit("_l", 1)[1]))
    if not cols:
        return pd.Series(float("nan"), index=runs.index)
    return runs[cols].apply(pd.to_numeric, errors="coerce").mean(axis=1)


def plot(runs_csv: str | Path, out_stem: str | Path, label: str | None = None) -> list[Path]:
    plt = common.setup()
    runs = common.plain_runs(pd.read_csv(runs_csv))
    runs = runs.assign(**{probe: _layer_mean(runs, probe) for probe, _, _ in PROBES})
    tasks = [t for t in common.TASK_NAMES if t in set(runs["task"])]
    n = max(len(tasks), 1)
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 5.6), squeeze=False)
    for col, task in enumerate(tasks):
        rows = runs[runs["task"] == task]
        for row, (probe, ylabel, scale) in enumerate(PROBES):
            ax = axes[row][col]
            finite = rows[pd.to_numeric(rows[probe], errors="coerce") > 0] if scale == "log" else rows
            drawn = common.seed_lines(ax, finite, probe, common.ordered_models(rows["model"].unique()),
                                      legend=(row, col) == (0, n - 1))  # fmt: skip
            if scale == "log" and drawn:
                ax.set_yscale("log")
            ax.set_title(f"{common.TASK_NAMES[task]}" if row == 0 else "")
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
    axes[0][-1].legend(loc="best")
    fig.suptitle("Attention probes (mean over layers; value sensitivity: astro-gate-only is 0, not drawn)\n"
                 f"{common.provenance_line(common.is_synthetic(runs), label)}", fontsize=9)
    return common.finish(fig, out_stem)
