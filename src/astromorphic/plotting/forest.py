"""The paper's claims at a glance: a forest plot, one panel per task.

Each row is one Table I pair (the paper's better model first): our difference of seed means with its 95 % Welch
interval (a dot alone where the groups have no interval), and the paper's difference marked with a cross; the
dashed line is no difference, the grey band the task's equivalence margin. The language model's rows are log
ratios of perplexities (the page compares them as ratios), labelled ``a / b``. Read from the claims table of
``astromorphic findings --claims`` (one row per pair: ``diff``, ``low``, ``high``, ``margin`` in the same units,
``paper_diff``, ``verdict``), so the figure shows what the page states.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pandas as pd

from astromorphic.plotting import common

OURS, PAPER, MARGIN = "#1f77b4", "#d62728", "0.9"


def wrap(text: str, width: int = 28) -> str:
    """A verdict on lines of at most ``width`` characters (long verdicts would squeeze the panels)."""
    return textwrap.fill(str(text), width)


def plot(claims_csv: str | Path, out_stem: str | Path, label: str | None = None) -> list[Path]:
    plt = common.setup()
    claims = pd.read_csv(claims_csv)
    tasks = [t for t in common.TASK_NAMES if t in set(claims["task"])] or ["(none)"]
    n = len(tasks)
    height = 1.2 + 0.45 * max([int((claims["task"] == t).sum()) for t in tasks] + [1])
    legend_h = 0.35  # inches: the legend's row under the panels, where it covers no point
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n, height + 0.9 + legend_h), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = claims[claims["task"] == task].reset_index(drop=True)
        if rows.empty:
            ax.text(0.5, 0.5, "no claims", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        y = list(range(len(rows)))[::-1]
        for yi, (_, r) in zip(y, rows.iterrows()):
            bounded = math.isfinite(r["low"]) and math.isfinite(r["high"])
            if bounded:
                ax.plot([r["low"], r["high"]], [yi, yi], color=OURS, lw=2, solid_capstyle="butt")
            ax.plot([r["diff"]], [yi], "o", color=OURS, ms=5, mfc=OURS if bounded else "white")
            if math.isfinite(r["paper_diff"]):
                ax.plot([r["paper_diff"]], [yi], "x", color=PAPER, ms=7, mew=2)
        margin = float(rows["margin"].iloc[0]) if "margin" in rows else math.nan
        if math.isfinite(margin) and margin > 0:  # the task's equivalence margin, in the units of the panel
            ax.axvspan(-margin, margin, color=MARGIN, lw=0, zorder=0)
        ax.axvline(0, color="black", lw=0.8, ls="--")
        ax.set_yticks(y)
        ratio = "ratio" in str(rows["unit"].iloc[0])
        ax.set_yticklabels([f"{r['a']} {'/' if ratio else '−'} {r['b']}\n{wrap(r['verdict'])}"
                            for _, r in rows.iterrows()], fontsize=7)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_title(common.TASK_NAMES.get(task, task))
        ax.set_xlabel("ln of the perplexity ratio" if ratio else f"difference ({rows['unit'].iloc[0]})")
    handles = [plt.Line2D([], [], color=OURS, marker="o", lw=2, label="ours: difference, 95 % Welch interval"),
               plt.Line2D([], [], color=PAPER, marker="x", lw=0, mew=2, label="the paper's difference")]
    if "margin" in claims and (claims["margin"] > 0).any():
        handles.append(plt.Rectangle((0, 0), 1, 1, color=MARGIN, lw=0, label="± the task's equivalence margin"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    synthetic = "data_source" in claims.columns and claims["data_source"].astype(str).ne("real").any()
    fig.suptitle(f"The paper's Table I pairs: our difference against the paper's\n"
                 f"{common.provenance_line(synthetic, label, width=90)}", fontsize=9)
    return common.finish(fig, out_stem, rect=(0, legend_h / fig.get_figheight(), 1, 1))
