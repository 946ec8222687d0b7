"""Fig. 4: test accuracy against epoch for the four nonlinearity x relative-position variants.

(a) IMDB and (b) CIFAR-10; one line per variant (mean over seeds) with a band of ± one sample sd (seaborn),
and the learning-speed threshold as a dashed line. Each line ends at the last epoch every seed of its variant
trained (runs that early stopping ended sooner would leave a mean over the runs still improving).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from astromorphic.plotting import common
from astromorphic.tasks import FIG4_PANELS as PANELS


def plot(runs_csv: str | Path, task: str, out_stem: str | Path, threshold: float | None = None,
         label: str | None = None) -> list[Path]:
    plt = common.setup()
    frame = pd.read_csv(runs_csv)
    runs = frame[frame["task"] == task]
    # the four variants, then the same without the absolute position embedding when those runs exist (dotted)
    variants = [*common.FIG4_VARIANTS, *(f"{m}{common.NO_POSITIONS}" for m in common.FIG4_VARIANTS)]
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    drawn = (common.seed_lines(ax, runs, "test_acc", variants, scale=100.0, every_seed=True)
             if "test_acc" in runs else [])
    if threshold is not None:
        ax.axhline(100.0 * threshold, color="0.4", ls="--", lw=0.8, label=f"threshold {100 * threshold:g} %")
    if not drawn:
        ax.text(0.5, 0.5, "no runs of the Fig. 4 variants", ha="center", va="center", transform=ax.transAxes)
    panel = PANELS.get(task, "")
    ax.set_title(f"Fig. 4({panel}) {common.TASK_NAMES.get(task, task)}: test accuracy\n"
                 f"{common.provenance_line(common.is_synthetic(runs), label)}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="best")
    return common.finish(fig, out_stem)
