"""Fig. 3: astrocyte Ca2+ against presynaptic spike frequency, from the tripartite-synapse simulation.

Reads the two tables of ``astromorphic simulate`` (``sweep.csv``: one row per frequency x spike train;
``fit.csv``: the fitted exponent of Ca ~ f^alpha) and draws
(a) the time-averaged astrocyte Ca2+ against frequency on linear axes: each spike train as a dot, the mean over
    trains with a band of ± one sample sd (seaborn, ``errorbar="sd"``: no bootstrap), the fitted power law, and
    the paper's alpha = 0.25 for reference (its shape only: the prefactor is fitted to our curve in log space);
(b) the same on log-log axes, where a power law is a straight line of slope alpha.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns

from astromorphic.plotting import common

DATA_COLOUR = "#1f77b4"
FIT_COLOUR = "#d62728"
PAPER_COLOUR = "0.35"


def _fit_row(fit_csv: str | Path) -> dict:
    fit = pd.read_csv(fit_csv)
    if fit.empty:
        raise ValueError(f"{fit_csv}: no fit row")
    return fit.iloc[0].to_dict()


def plot(sweep_csv: str | Path, fit_csv: str | Path, out_stem: str | Path, label: str | None = None) -> list[Path]:
    plt = common.setup()
    sweep = pd.read_csv(sweep_csv)
    fit = _fit_row(fit_csv)
    column = str(fit.get("column", "ca_mean"))
    if column not in sweep.columns:
        raise ValueError(f"{sweep_csv}: column {column!r} named by the fit is missing")

    values = sweep[["frequency_hz", column]].apply(pd.to_numeric, errors="coerce")
    values = values[np.isfinite(values[column])]
    stats = values.groupby("frequency_hz", sort=True)[column].agg(["mean", "count"])
    f = stats.index.to_numpy(dtype=float)
    mean = stats["mean"].to_numpy(dtype=float)
    n_trains = int(stats["count"].min()) if len(stats) else 0

    alpha = float(fit["alpha"])
    prefactor = float(fit["prefactor_uM"])
    paper_alpha = float(fit.get("paper_alpha", 0.25))
    # the paper's exponent with the prefactor that best matches our mean curve in log space
    paper_prefactor = float(np.exp(np.mean(np.log(mean) - paper_alpha * np.log(f)))) if len(f) else math.nan
    f_line = np.linspace(f.min(), f.max(), 200) if len(f) else np.array([])

    ci = float(fit.get("ci_level", 0.95))
    fit_label = (f"fit Ca = {prefactor:.3g} f^{alpha:.3f}, alpha {ci:.0%} CI "
                 f"[{float(fit['ci_low']):.3f}, {float(fit['ci_high']):.3f}]")
    paper_label = f"paper: alpha = {paper_alpha:g} (shape only)"
    what = "time-averaged" if column == "ca_mean" else "late-window (steady-state)"
    window = ""
    if {"warmup_s", "duration_s"} <= set(sweep.columns) and len(sweep):
        window = f" over {sweep['warmup_s'].iloc[0]:g}-{sweep['duration_s'].iloc[0]:g} s"

    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.5))
    for ax, loglog in zip(axes, (False, True)):
        ax.plot(sweep["frequency_hz"], sweep[column], "o", ms=2.5, color=DATA_COLOUR, alpha=0.35, lw=0,
                label=f"single spike trains (n={n_trains} per frequency)")
        sns.lineplot(data=values, x="frequency_hz", y=column, estimator="mean", errorbar="sd", color=DATA_COLOUR,
                     err_kws={"alpha": 0.18, "lw": 0}, marker="o", ms=3.5, mec=DATA_COLOUR, lw=1.4,
                     label="mean ± sd over trains", legend=False, ax=ax)
        ax.plot(f_line, prefactor * f_line**alpha, "--", lw=1.2, color=FIT_COLOUR, label=fit_label)
        ax.plot(f_line, paper_prefactor * f_line**paper_alpha, ":", lw=1.4, color=PAPER_COLOUR, label=paper_label)
        ax.set_xlabel("presynaptic spike frequency (Hz)")
        if loglog:
            ax.set_xscale("log")
            ax.set_yscale("log")
            from matplotlib.ticker import FormatStrFormatter, NullFormatter

            ax.set_xticks([1, 2, 5, 10])
            ax.set_xticklabels(["1", "2", "5", "10"])
            ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title("(b) log-log axes: a power law is a line of slope alpha")
            ax.set_ylabel("")
        else:
            ax.set_ylabel("astrocyte [Ca$^{2+}$] ($\\mu$M)")
            ax.set_title(f"(a) {what} Ca$^{{2+}}${window} of each run")
            ax.set_xlim(0, f.max() * 1.05 if len(f) else 10)
            ax.set_ylim(bottom=0)
            ax.legend(loc="lower right")
    cfg = f" (configuration: {label})" if label else ""
    fig.suptitle(
        f"Fig. 3: astrocyte Ca$^{{2+}}$ against presynaptic spike frequency, tripartite-synapse simulation{cfg}\n"
        f"fitted alpha = {alpha:.3f} [{float(fit['ci_low']):.3f}, {float(fit['ci_high']):.3f}] "
        f"against the paper's {paper_alpha:g}",
        fontsize=9,
    )
    return common.finish(fig, out_stem)


def main(argv: list[str] | None = None) -> int:
    """``python -m astromorphic.plotting.fig3 --sweep S --fit F --out STEM`` (same as ``astromorphic plot fig3``)."""
    import argparse

    ap = argparse.ArgumentParser(prog="fig3", description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", required=True)
    ap.add_argument("--fit", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--label")
    args = ap.parse_args(argv)
    for path in plot(args.sweep, args.fit, args.out, label=args.label):
        print(f"plot fig3: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
