"""The m_scale control: the task metric against one swept attention constant (log axis), one line per preset,
with the no-attention control's level drawn across. Shows whether the attention term matters at the paper's
scale m = 500·D (IMDB, CIFAR-10) or 100·D (WikiText-2), where it is divided by tens of thousands.

Each point is the mean ± sample sd over seeds (seaborn, ``errorbar="sd"``) of the metric the tables report
(``astromorphic.tables.run_metric``; diverged seeds left out, as in the sweep table); the preset's plain run
is the point at the configured value.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from astromorphic.run_names import parse_model_name
from astromorphic.config import load_config
from astromorphic import tasks as task_registry
from astromorphic.plotting import common
from astromorphic.tasks import TASK_NAMES
from astromorphic.tables import run_metric, sweep_default

CONTROL = "no-attention"


def default_value(config: dict, task: str, key: str) -> float:
    """The value the preset's plain run used for ``key``: the tables' (:func:`astromorphic.tables.sweep_default`)."""
    return float(sweep_default(config, task, key))


def sweep_points(sweep: pd.DataFrame, summary: pd.DataFrame, config: dict, task: str, key: str) -> pd.DataFrame:
    """One row per run: model (the preset), value of ``key``, seed and the tables' metric. The presets swept
    over ``key`` come from the sweep table; their plain runs and the no-attention control sit at the configured
    value."""
    report = config.get("report") or {}
    metric = task_registry.get(task).metric
    swept = set(sweep.loc[(sweep["task"] == task) & (sweep["key"] == key), "preset"])
    x_default = default_value(config, task, key)
    rows = []
    for _, run in summary[summary["task"] == task].sort_values(["model", "seed"]).iterrows():
        preset, overrides = parse_model_name(str(run["model"]))
        if run.get("status") == "diverged" or (preset not in swept and preset != CONTROL):
            continue
        if overrides and (set(overrides) != {key} or preset == CONTROL):
            continue
        x = float(overrides[key]) if overrides else x_default
        rows.append(dict(model=preset, value=x, seed=int(run["seed"]), metric=run_metric(run, task, metric, report)))
    return pd.DataFrame(rows, columns=["model", "value", "seed", "metric"])


def plot(sweep_csv: str | Path, summary_csv: str | Path, config_path: str | Path, out_stem: str | Path,
         task: str = TASK_NAMES[0], key: str = "m_scale", label: str | None = None) -> list[Path]:
    plt = common.setup()
    config = load_config(config_path)
    summary = pd.read_csv(summary_csv)
    points = sweep_points(pd.read_csv(sweep_csv), summary, config, task, key)
    lines = points[points["model"] != CONTROL]
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    common.seed_lines(ax, lines, "metric", common.ordered_models(lines["model"].unique()), x="value",
                      err_style="bars", err_kws={"capsize": 2, "lw": 1.0}, marker="o", markersize=4,
                      markeredgewidth=0)
    control = points.loc[points["model"] == CONTROL, "metric"]
    if len(control):
        ax.axhline(float(control.mean()), color="0.3", linestyle="--", label=CONTROL)
    ax.axvline(default_value(config, task, key), color="0.7", linestyle=":", label=f"configured {key}")
    ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel("test perplexity per token" if task_registry.get(task).language_model else "test accuracy (%)")
    ax.legend(loc="best", fontsize=7)
    fig.suptitle(f"{common.TASK_NAMES.get(task, task)}: metric against {key} (mean ± sd over seeds)\n"
                 f"{common.provenance_line(common.is_synthetic(summary[summary['task'] == task]), label)}",
                 fontsize=9)
    return common.finish(fig, out_stem)
