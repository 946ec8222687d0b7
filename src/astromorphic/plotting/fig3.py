"""Fig. 3: astrocyte Ca2+ against presynaptic spike frequency, from the tripartite-synapse simulation.

Reads the two tables of ``astromorphic simulate`` (``sweep.csv``: one row per frequency x spike train;
``fit.csv``: the fitted exponents of Ca ~ f^alpha, one row per fit, see ``astromorphic.neuroglia.fit_table``)
and draws
(a) the time-averaged astrocyte Ca2+ against frequency on linear axes: each spike train as a dot, the mean over
    trains with a band of ± one sample sd (seaborn, ``errorbar="sd"``: no bootstrap), the fitted power law, the
    power law fitted to the Ca2+ above rest (drawn as rest + c f^alpha), the fitted power laws with r_IP3
    halved and doubled (dashed, the range between them shaded: how far the curve and its exponent move with
    this unsourced constant), and the paper's alpha = 0.25 for reference (its shape only: the prefactor is
    fitted to our curve in log space);
(b) the same on log-log axes, where a power law is a straight line of slope alpha.
A ``fit.csv`` with one row (no ``fit`` column, as written before the sensitivity fits) draws the main fit only.
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
REST_COLOUR = "#9467bd"
RANGE_COLOUR = "#2ca02c"
RANGE_DASHES = {0.5: (4, 2), 2.0: (1.5, 1.5)}


def _fit_rows(fit_csv: str | Path) -> tuple[dict, dict[str, dict]]:
    """The main fit (row ``absolute``, else the first row) and every fit with an exponent, by name."""
    fit = pd.read_csv(fit_csv)
    if fit.empty:
        raise ValueError(f"{fit_csv}: no fit row")
    if "fit" not in fit.columns:
        return fit.iloc[0].to_dict(), {}
    rows = {str(r["fit"]): r for r in fit.to_dict(orient="records") if pd.notna(r.get("alpha"))}
    return rows.get("absolute", fit.iloc[0].to_dict()), rows


def _range_fits(rows: dict[str, dict]) -> list[dict]:
    """The absolute-Ca fits with r_IP3 scaled (factor != 1), by factor."""
    found = [r for r in rows.values() if r.get("quantity") == "absolute" and float(r.get("r_ip3_factor", 1)) != 1]
    return sorted(found, key=lambda r: float(r["r_ip3_factor"]))


def _draw_sensitivity(ax, f_line: np.ndarray, rows: dict[str, dict]) -> None:
    """The fit above rest (rest + c f^alpha) and the fits with r_IP3 scaled, with the range between them shaded."""
    above = rows.get("above_rest")
    if above is not None:
        rest, c, a = float(above["ca_rest_uM"]), float(above["prefactor_uM"]), float(above["alpha"])
        ax.plot(f_line, rest + c * f_line**a, "-.", lw=1.1, color=REST_COLOUR,
                label=f"fit above rest: Ca = {rest:.3f} + {c:.3g} f^{a:.3f}")  # fmt: skip
    curves = []
    for r in _range_fits(rows):
        factor, a = float(r["r_ip3_factor"]), float(r["alpha"])
        curve = float(r["prefactor_uM"]) * f_line**a
        curves.append(curve)
        rest_fit = rows.get(f"{r['fit']}_above_rest")
        extra = f", above rest {float(rest_fit['alpha']):.3f}" if rest_fit is not None else ""
        ax.plot(f_line, curve, color=RANGE_COLOUR, lw=1.0, dashes=RANGE_DASHES.get(factor, (3, 1, 1, 1)),
                label=f"fit with r_IP3 x{factor:g} ({float(r['r_ip3']):.3g} /s): alpha = {a:.3f}{extra}")  # fmt: skip
    if len(curves) >= 2:
        ax.fill_between(f_line, np.min(curves, axis=0), np.max(curves, axis=0), color=RANGE_COLOUR, alpha=0.1, lw=0)


def _sensitivity_title(rows: dict[str, dict]) -> str:
    parts = []
    if "above_rest" in rows:
        parts.append(f"above rest {float(rows['above_rest']['alpha']):.3f}")
    parts += [f"r_IP3 x{float(r['r_ip3_factor']):g}: {float(r['alpha']):.3f}" for r in _range_fits(rows)]
    return f"; {', '.join(parts)}" if parts else ""


def _layout(plt, with_legend_row: bool) -> tuple:
    """The figure, its two panels, and the axes that holds the legend below them (or None: legend in panel a)."""
    if not with_legend_row:
        fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.5))
        return fig, axes, None
    fig, grid = plt.subplot_mosaic([["a", "b"], ["legend", "legend"]], figsize=(8.6, 4.8),
                                   gridspec_kw={"height_ratios": [3.5, 1.0]})  # fmt: skip
    grid["legend"].axis("off")
    return fig, [grid["a"], grid["b"]], grid["legend"]


def _loglog_axes(ax) -> None:
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([1, 2, 5, 10])
    ax.set_xticklabels(["1", "2", "5", "10"])
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title("(b) log-log axes: a power law is a line of slope alpha")
    ax.set_ylabel("")


def plot(sweep_csv: str | Path, fit_csv: str | Path, out_stem: str | Path, label: str | None = None) -> list[Path]:
    plt = common.setup()
    sweep = pd.read_csv(sweep_csv)
    fit, rows = _fit_rows(fit_csv)
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

    fig, axes, legend_ax = _layout(plt, with_legend_row=bool(rows))
    for ax, loglog in zip(axes, (False, True)):
        ax.plot(sweep["frequency_hz"], sweep[column], "o", ms=2.5, color=DATA_COLOUR, alpha=0.35, lw=0,
                label=f"single spike trains (n={n_trains} per frequency)")
        sns.lineplot(data=values, x="frequency_hz", y=column, estimator="mean", errorbar="sd", color=DATA_COLOUR,
                     err_kws={"alpha": 0.18, "lw": 0}, marker="o", ms=3.5, mec=DATA_COLOUR, lw=1.4,
                     label="mean ± sd over trains", legend=False, ax=ax)
        ax.plot(f_line, prefactor * f_line**alpha, "--", lw=1.2, color=FIT_COLOUR, label=fit_label)
        _draw_sensitivity(ax, f_line, rows)
        ax.plot(f_line, paper_prefactor * f_line**paper_alpha, ":", lw=1.4, color=PAPER_COLOUR, label=paper_label)
        ax.set_xlabel("presynaptic spike frequency (Hz)")
        if loglog:
            _loglog_axes(ax)
        else:
            ax.set_ylabel("astrocyte [Ca$^{2+}$] ($\\mu$M)")
            ax.set_title(f"(a) {what} Ca$^{{2+}}${window} of each run")
            ax.set_xlim(0, f.max() * 1.05 if len(f) else 10)
            ax.set_ylim(bottom=0)
            if legend_ax is not None:
                legend_ax.legend(*ax.get_legend_handles_labels(), loc="upper left", ncol=2, frameon=False,
                                 bbox_to_anchor=(0.0, 1.0))  # fmt: skip
            else:
                ax.legend(loc="lower right")
    cfg = f" (configuration: {label})" if label else ""
    fig.suptitle(
        f"Fig. 3: astrocyte Ca$^{{2+}}$ against presynaptic spike frequency, tripartite-synapse simulation{cfg}\n"
        f"fitted alpha = {alpha:.3f} [{float(fit['ci_low']):.3f}, {float(fit['ci_high']):.3f}] "
        f"against the paper's {paper_alpha:g}{_sensitivity_title(rows)}",
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
