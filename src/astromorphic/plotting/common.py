"""What every figure shares: a fixed style, fixed colours per preset, mean ± sd bands, provenance lines.

Figures must be byte-identical for identical data: the Agg backend, a fixed font, a fixed SVG hash salt,
no timestamps or software metadata (``astromorphic.io.save_figure``) and bands of mean ± sample sd over
seeds drawn by seaborn (``errorbar="sd"``), never by a random bootstrap.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from astromorphic.config import FIG4_VARIANTS  # noqa: F401 (the four Fig. 4 variants, defined once)
from astromorphic.tasks import DISPLAY_NAMES
from astromorphic.io import save_figure

PRESET_STYLE = {
    # preset: (colour, line style, label)
    "astro": ("#d62728", "-", "astro (nonlinearity + rel. position)"),
    "astro-no-relpos": ("#ff7f0e", "-", "nonlinearity only"),
    "astro-no-nonlin": ("#2ca02c", "-", "rel. position only"),
    "linearized": ("#1f77b4", "-", "linearized [18] (neither)"),
    "vanilla": ("#7f7f7f", "--", "vanilla softmax"),
    "astro-no-feedback": ("#9467bd", "--", "astro, no feedback"),
    "astro-leaky": ("#8c564b", ":", "astro-leaky (diagnostic, non-causal)"),
    "no-attention": ("#000000", ":", "no attention (control)"),
    "astro-gate-only": ("#e377c2", "-.", "astro, gate only (control: no value path)"),
}
TASK_NAMES = DISPLAY_NAMES


def setup():
    """Import pyplot on the Agg backend with the project's fixed style; returns ``pyplot``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcdefaults()
    plt.rcParams.update(
        {
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "axes.titlesize": 9,
            "axes.labelsize": 9,
            "legend.fontsize": 7,
            "svg.hashsalt": "astromorphic",
            "svg.fonttype": "path",
            "pdf.fonttype": 42,
            "figure.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )
    return plt


NO_POSITIONS = "@position_embedding=none"  # run-name suffix of the ablation runs without absolute positions


def style(preset: str, index: int = 0) -> tuple[str, str, str]:
    if preset.endswith(NO_POSITIONS) and preset[: -len(NO_POSITIONS)] in PRESET_STYLE:
        colour, _, label = PRESET_STYLE[preset[: -len(NO_POSITIONS)]]
        return colour, ":", f"{label}, no abs. positions"
    if preset in PRESET_STYLE:
        return PRESET_STYLE[preset]
    import matplotlib

    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    return colours[index % len(colours)], "-.", preset


def provenance_line(synthetic: bool, label: str | None, width: int = 60) -> str:
    """Where the figure's data come from, wrapped to ``width`` characters."""
    import textwrap

    cfg = f" (configuration: {label})" if label else ""
    text = f"synthetic stand-in data{cfg}: not comparable with the paper" if synthetic else f"real data{cfg}"
    return "\n".join(textwrap.wrap(text, width))


def dash_pattern(linestyle: str) -> str | tuple[float, ...]:
    """A matplotlib line style as the dash pattern seaborn takes ("" is solid)."""
    import matplotlib

    names = {"--": "lines.dashed_pattern", ":": "lines.dotted_pattern", "-.": "lines.dashdot_pattern"}
    return tuple(matplotlib.rcParams[names[linestyle]]) if linestyle in names else ""


def seed_lines(ax, frame: pd.DataFrame, value: str, models: Iterable[str], x: str = "epoch", scale: float = 1.0,
               legend: bool = True, every_seed: bool = False, **kwargs) -> list[str]:
    """One line per preset in ``models`` (in that order): the mean over seeds of ``value`` against ``x``, with a
    band of ± one sample sd (seaborn, ``errorbar="sd"``: no bootstrap), in the preset's fixed colour, line style
    and label (with the number of seeds). Non-finite values are left out; ``kwargs`` go to ``sns.lineplot``
    (e.g. ``err_style="bars"``). ``every_seed``: each line ends at the last ``x`` that every seed of its preset
    reached (runs ended by early stopping: a mean over the runs still going would be a mean over the runs that
    were still improving). Returns the legend labels drawn."""
    import seaborn as sns

    data = frame[[x, "model", "seed", value]].copy()
    data[value] = pd.to_numeric(data[value], errors="coerce") * scale
    n_seeds = data.groupby("model")["seed"].nunique()
    data = data[np.isfinite(data[value])]
    if every_seed and not data.empty:
        reached = data.groupby(["model", "seed"])[x].max().groupby("model").min()
        data = data[data[x] <= data["model"].map(reached)]
    present = set(data["model"])
    styles = {m: style(m, i) for i, m in enumerate(models) if m in present}
    if not styles:
        return []
    names = {m: f"{label} (n={n_seeds[m]})" for m, (_, _, label) in styles.items()}
    order = list(names.values())
    data["variant"] = data["model"].map(names)
    data = data[data["variant"].notna()]
    options = {"estimator": "mean", "errorbar": "sd", "err_kws": {"alpha": 0.18, "lw": 0}, "lw": 1.4, **kwargs}
    sns.lineplot(data=data, x=x, y=value, hue="variant", style="variant", hue_order=order, style_order=order,
                 palette={names[m]: colour for m, (colour, _, _) in styles.items()},
                 dashes={names[m]: dash_pattern(ls) for m, (_, ls, _) in styles.items()},
                 legend=legend, ax=ax, **options)
    return order


def is_synthetic(frame: pd.DataFrame) -> bool:
    return "synthetic" in frame.columns and bool(frame["synthetic"].astype(bool).any())


def plain_runs(frame: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Runs of plain presets (sweep variants, named ``<preset>@key=value``, excluded)."""
    rows = frame[frame["model"] == frame["preset"]] if "preset" in frame.columns else frame
    return rows[rows["task"] == task] if task is not None else rows


def ordered_models(models: Iterable[str]) -> list[str]:
    known = list(PRESET_STYLE)
    models = set(models)
    return [m for m in known if m in models] + sorted(models - set(known))


def finish(fig, out_stem: str | Path, formats: tuple[str, ...] = ("png", "pdf"),
           rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> list[Path]:
    """Lay the figure out (within ``rect``, figure coordinates: room left for a figure legend), save and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=rect)
    paths = save_figure(fig, out_stem, formats)
    plt.close(fig)
    return paths


def finite_max(values: Iterable[float]) -> float:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return max(vals) if vals else math.nan
