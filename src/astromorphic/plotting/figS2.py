"""Fig. S2 as a measurement: time and peak memory of softmax, linearized and astromorphic attention against N.

Reads the CSV of ``astromorphic bench attention`` (one row per attention kind and sequence length) and draws
two log-log panels. The numbers are timings of this machine, so unlike every other figure this one differs
between two runs of the benchmark; drawn twice from the same CSV it is byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from astromorphic.plotting import common

KIND_COLUMNS = ("attention", "kind", "variant", "model")
N_COLUMNS = ("n", "seq_len", "N")
# column -> factor to the plotted unit
TIME_COLUMNS = {"time_ms": 1.0, "ms": 1.0, "time_s": 1e3, "seconds": 1e3, "time": 1e3}
MEMORY_COLUMNS = {"peak_memory_mb": 1.0, "memory_mb": 1.0, "peak_mem_mb": 1.0, "mem_mb": 1.0,
                  "peak_memory_bytes": 1 / 2**20, "memory_bytes": 1 / 2**20, "peak_bytes": 1 / 2**20}
KIND_STYLE = {"softmax": "vanilla", "linearized": "linearized", "astromorphic": "astro"}


def _first(frame: pd.DataFrame, names) -> str | None:
    return next((c for c in names if c in frame.columns), None)


def plot(bench_csv: str | Path, out_stem: str | Path, label: str | None = None, synthetic: bool = False) -> list[Path]:
    plt = common.setup()
    bench = pd.read_csv(bench_csv)
    kind_col, n_col = _first(bench, KIND_COLUMNS), _first(bench, N_COLUMNS)
    if kind_col is None or n_col is None:
        raise ValueError(f"{bench_csv}: expected a kind column ({', '.join(KIND_COLUMNS)}) and an N column")
    panels = []
    for table, title in ((TIME_COLUMNS, "time per forward (ms)"), (MEMORY_COLUMNS, "peak memory (MiB)")):
        col = _first(bench, table)
        if col is not None:
            panels.append((col, table[col], title))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(3.8 * max(len(panels), 1), 3.2), squeeze=False)
    kinds = list(dict.fromkeys(bench[kind_col]))
    for ax, (col, factor, title) in zip(axes[0], panels):
        for i, kind in enumerate(kinds):
            rows = bench[bench[kind_col] == kind]
            stats = rows.groupby(n_col, sort=True)[col].median() * factor
            stats = stats[np.isfinite(stats) & (stats > 0)]
            colour, _, _ = common.style(KIND_STYLE.get(kind, kind), i)
            ax.plot(stats.index, stats.values, marker="o", ms=3, color=colour, label=str(kind))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length N")
        ax.set_ylabel(title)
        ax.set_title(title)
    axes[0][0].legend(loc="upper left")
    device = ""
    if "device" in bench.columns and bench["device"].nunique() == 1:
        device = f" on {bench['device'].iloc[0]}"
    note = common.provenance_line(synthetic, label) if synthetic else (f"configuration: {label}" if label else "")
    fig.suptitle(f"Fig. S2: attention cost against sequence length{device} (random inputs)"
                 + (f"\n{note}" if note else ""), fontsize=9)
    return common.finish(fig, out_stem)
