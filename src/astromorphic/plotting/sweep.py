"""The m_scale control: the task metric against one swept attention constant (log axis), one line per preset,
with the no-attention control's level drawn across. Shows whether the attention term matters at the paper's
scale m = 500·D (IMDB, CIFAR-10) or 100·D (WikiText-2), where it is divided by tens of thousands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from astromorphic.config import load_config, resolve_task_config
from astromorphic.plotting import common


def default_value(config: dict, task: str, key: str) -> float:
    """The value the preset's plain run used for ``key`` (m_scale resolves to m_scale_factor * d_model)."""
    cfg = resolve_task_config(config, task)
    attention = cfg["attention"]
    if key == "m_scale":
        return float(attention.get("m_scale") or attention["m_scale_factor"] * cfg["model"]["d_model"])
    return float(attention[key])


def plot(sweep_csv: str | Path, summary_csv: str | Path, config_path: str | Path, out_stem: str | Path,
         task: str = "imdb", key: str = "m_scale", label: str | None = None) -> list[Path]:
    plt = common.setup()
    sweep = pd.read_csv(sweep_csv)
    sweep = sweep[(sweep["task"] == task) & (sweep["key"] == key)]
    summary = pd.read_csv(summary_csv)
    summary = summary[(summary["task"] == task) & (summary["overrides"].isna())]
    metric = "final_test_acc" if task != "wikitext2" else "final_test_ppl"
    scale = 100.0 if metric == "final_test_acc" else 1.0
    x_default = default_value(load_config(config_path), task, key)
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for i, preset in enumerate(common.ordered_models(sweep["preset"].unique())):
        rows = sweep[sweep["preset"] == preset][["value", "mean", "sd"]].astype(float)
        base = summary[summary["model"] == preset][metric].astype(float) * scale
        if len(base):
            rows = pd.concat([rows, pd.DataFrame({"value": [x_default], "mean": [base.mean()],
                                                  "sd": [base.std(ddof=1) if len(base) > 1 else 0.0]})])
        rows = rows.sort_values("value")
        color, linestyle, name = common.style(preset, i)
        ax.errorbar(rows["value"], rows["mean"], yerr=rows["sd"].fillna(0.0), label=name, color=color,
                    linestyle=linestyle, marker="o", markersize=3, capsize=2)
    control = summary[summary["model"] == "no-attention"][metric].astype(float) * scale
    if len(control):
        ax.axhline(float(np.mean(control)), color="0.3", linestyle="--", label="no-attention")
    ax.axvline(x_default, color="0.7", linestyle=":", label=f"configured {key}")
    ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel("test accuracy (%)" if scale == 100.0 else "test perplexity per token")
    ax.legend(loc="best", fontsize=7)
    fig.suptitle(f"{common.TASK_NAMES.get(task, task)}: metric against {key} (mean ± sd over seeds)\n"
                 f"{common.provenance_line(common.is_synthetic(summary), label)}", fontsize=9)
    return common.finish(fig, out_stem)
