"""Fig. S2 as a measurement: time and peak memory of softmax, linearized and astromorphic attention against N.

Reads the CSV of ``astromorphic bench attention`` (one row per device, dtype, kind, causal and N; see
``astromorphic.bench.attention``) and draws forward time, forward + backward time and peak memory on log-log axes,
solid for bidirectional and dashed for causal attention. The numbers are timings of the machine that ran the
benchmark, so unlike the other figures this one changes when the benchmark is run again; drawn twice from
the same CSV it is byte-identical.

The causal astromorphic layer is drawn once per causal kernel present in the CSV (``astromorphic_torch``:
the PyTorch path; ``astromorphic_cpp``: the compiled CPU kernel; ``astromorphic_triton``: the Triton kernel),
dotted, beside the ``astromorphic`` rows (the kernel the dispatch picked). One precision (float32 when
measured) and one head size (64 when measured) per figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from astromorphic.plotting import common

KERNEL_KINDS = {  # causal kernel rows: kind -> (colour, marker, label)
    "astromorphic_torch": ("#e377c2", "s", "astromorphic, PyTorch path (causal)"),
    "astromorphic_cpp": ("#bcbd22", "^", "astromorphic, compiled CPU kernel (causal)"),
    "astromorphic_triton": ("#17becf", "v", "astromorphic, Triton kernel (causal)"),
}
PANELS = (("fwd_ms", "forward (ms)"), ("fwdbwd_ms", "forward + backward (ms)"), ("peak_mem_mb", "peak memory (MiB)"))


def plot(bench_csv: str | Path, out_stem: str | Path, label: str | None = None) -> list[Path]:
    # deferred: the benchmark and the attention registry import torch; the other figures are drawn without it
    from astromorphic.bench.attention import KINDS  # the benchmarked mechanisms
    from astromorphic.attention import ATTENTION_REGISTRY

    plt = common.setup()
    bench = pd.read_csv(bench_csv)
    if "status" in bench.columns:
        bench = bench[bench["status"] == "ok"]
    bench = bench[bench["kind"].isin(list(KINDS) + list(KERNEL_KINDS))]
    dtypes = list(dict.fromkeys(bench["dtype"])) if "dtype" in bench.columns else []
    if len(dtypes) > 1:  # one precision per figure: float32 when it was measured
        bench = bench[bench["dtype"] == ("float32" if "float32" in dtypes else dtypes[0])]
    dims = sorted(set(bench["d"])) if "d" in bench.columns else []
    if len(dims) > 1:  # one head size per figure: 64 when it was measured
        bench = bench[bench["d"] == (64 if 64 in dims else dims[0])]
    panels = [(col, title) for col, title in PANELS if col in bench.columns]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 2.4, 3.2), squeeze=False)
    for ax, (col, title) in zip(axes[0], panels):
        for i, kind in enumerate(KINDS):
            for causal, ls in ((False, "-"), (True, "--")):
                rows = bench[(bench["kind"] == kind) & (bench["causal"].astype(str).str.lower() == str(causal).lower())]
                if rows.empty:
                    continue
                stats = rows.groupby("N", sort=True)[col].min()
                stats = stats[np.isfinite(stats) & (stats > 0)]
                colour = common.style(ATTENTION_REGISTRY[kind].bench_preset, i)[0]  # its preset's colour
                ax.plot(
                    stats.index,
                    stats.values,
                    marker="o",
                    ms=3,
                    color=colour,
                    ls=ls,
                    label=f"{ATTENTION_REGISTRY[kind].label}{' (causal)' if causal else ''}",
                )
        for kind, (colour, marker, kernel_label) in KERNEL_KINDS.items():
            rows = bench[(bench["kind"] == kind) & (bench["causal"].astype(str).str.lower() == "true")]
            if rows.empty:
                continue
            stats = rows.groupby("N", sort=True)[col].min()
            stats = stats[np.isfinite(stats) & (stats > 0)]
            ax.plot(stats.index, stats.values, marker=marker, ms=3, color=colour, ls=":", label=kernel_label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length N")
        ax.set_title(title)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)  # beside the panels
    device = ", ".join(str(d) for d in dict.fromkeys(bench["device"])) if "device" in bench.columns else ""
    shape = ""
    if {"B", "H", "d"} <= set(bench.columns) and len(bench):
        first = bench.iloc[0]
        shape = f", B={first['B']}, H={first['H']}, d={first['d']}"
    dtype = f", {bench['dtype'].iloc[0]}" if "dtype" in bench.columns and len(bench) else ""
    note = f"configuration: {label}; " if label else ""
    fig.suptitle(
        f"Fig. S2 (measured): attention cost against N on {device}{dtype}{shape}\n"
        f"{note}random inputs; timings of this machine",
        fontsize=9,
    )
    return common.finish(fig, out_stem)
