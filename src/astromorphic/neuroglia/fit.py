"""The power-law fit of astrocyte Ca2+ against presynaptic frequency, Ca ~ f^alpha, and the fit table."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import numpy as np

from astromorphic.neuroglia.model import sweep
from astromorphic.neuroglia.params import PAPER_ALPHA, R_IP3_FACTORS, SynapseParams

def _loglog_slope(f: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    x, yv = np.log(f), np.log(c)
    slope, intercept = np.polyfit(x, yv, 1)
    return float(slope), float(intercept)


def fit_power_law(
    df: "Any",
    *,
    column: str = "ca_mean",
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit Ca ~ c f^alpha by least squares on log(mean over trains of ``column``) against log f.

    The confidence interval is a percentile bootstrap over spike trains (at each frequency the trains are
    resampled with replacement, the means recomputed and the slope refitted), seeded.  The t-based interval of
    the slope (which treats the per-frequency means as independent, exact-model observations) is also given.
    """
    from scipy import stats

    d = df[["frequency_hz", "train", column]].dropna()
    if (d[column] <= 0).any():
        raise ValueError(f"{column} must be positive for a log-log fit")
    freqs = np.array(sorted(d["frequency_hz"].unique()), dtype=float)
    if freqs.size < 3:
        raise ValueError("a power-law fit with a confidence interval needs at least 3 frequencies")
    groups = [d.loc[d["frequency_hz"] == f, column].to_numpy(dtype=float) for f in freqs]
    means = np.array([g.mean() for g in groups])
    alpha, intercept = _loglog_slope(freqs, means)

    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        m = np.array([g[rng.integers(0, g.size, g.size)].mean() for g in groups])
        boots[b] = _loglog_slope(freqs, m)[0]
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    ci_low, ci_high = (float(v) for v in np.quantile(boots, [lo_q, hi_q]))

    x, yv = np.log(freqs), np.log(means)
    res = stats.linregress(x, yv)
    tcrit = stats.t.ppf(hi_q, freqs.size - 2)
    resid = yv - (intercept + alpha * x)
    r2 = 1.0 - float(np.sum(resid**2) / np.sum((yv - yv.mean()) ** 2))
    # curvature: quadratic term of log Ca in log f (negative = concave in log-log, i.e. still slowing down)
    quad = float(np.polyfit(x, yv, 2)[0]) if freqs.size >= 4 else float("nan")
    return {
        "alpha": alpha,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "ci_level": ci,
        "method": f"log-log least squares on the mean over trains; {ci:.0%} percentile bootstrap over trains "
        f"({n_boot} resamples, seed {seed})",
        "alpha_t_ci_low": float(res.slope - tcrit * res.stderr),
        "alpha_t_ci_high": float(res.slope + tcrit * res.stderr),
        "prefactor_uM": float(math.exp(intercept)),
        "r2_loglog": r2,
        "loglog_curvature": quad,
        "column": column,
        "n_frequencies": int(freqs.size),
        "n_trains": int(min(g.size for g in groups)),
        "f_min_hz": float(freqs.min()),
        "f_max_hz": float(freqs.max()),
        "paper_alpha": PAPER_ALPHA,
        "alpha_minus_paper": alpha - PAPER_ALPHA,
    }


def curve_shape(df: "Any", column: str = "ca_mean") -> dict[str, Any]:
    """Is the mean curve increasing and concave?  Finite differences of the mean over trains on the frequency grid."""
    g = df.groupby("frequency_hz")[column].mean().sort_index()
    f, c = g.index.to_numpy(dtype=float), g.to_numpy(dtype=float)
    slopes = np.diff(c) / np.diff(f)
    return {
        "increasing": bool(np.all(slopes > 0)),
        "concave": bool(np.all(np.diff(slopes) < 0)),
        "slopes": slopes.tolist(),
    }


def r_ip3_sweeps(
    frequencies: Sequence[float],
    n_trains: int,
    duration_s: float,
    seed: int,
    params: SynapseParams,
    factors: Sequence[float] = R_IP3_FACTORS,
    **options: Any,
) -> dict[float, "Any"]:
    """The sweep repeated with ``r_ip3`` scaled by each factor (same frequencies, trains and seeds, so the
    spike trains and release draws are those of the main sweep): ``{factor: DataFrame}``, each with the
    columns ``r_ip3_factor`` and ``r_ip3`` in front.  ``options`` go to :func:`sweep`."""
    out = {}
    for factor in factors:
        p = dataclasses.replace(params, r_ip3=params.r_ip3 * float(factor))
        df = sweep(frequencies, n_trains, duration_s, seed, p, **options)
        df.insert(0, "r_ip3", p.r_ip3)
        df.insert(0, "r_ip3_factor", float(factor))
        out[float(factor)] = df
    return out


def fit_table(
    sweeps: Mapping[float, "Any"], r_ip3: float, *, column: str = "ca_mean", n_boot: int = 2000, seed: int = 0
) -> "Any":
    """One row per fitted exponent (a DataFrame; the main fit first): for each sweep (``{r_IP3 factor: sweep}``,
    factor 1 = the configured constants) the exponent of ``column`` (``quantity`` absolute) and of ``column``
    above the resting Ca2+ (``quantity`` above_rest).  ``fit`` names the row: absolute, above_rest,
    r_ip3_x0.5, r_ip3_x0.5_above_rest, ...

    Ca2+ above rest is ``column`` minus ``ca_rest``, the stable fixed point of the model without input
    (IP3 = IP3*, no 2-AG; the SIC is zero there, so the neuron stays at rest): what a simulation at 0 Hz gives,
    without running one (the tests check that it does).  It does not depend on r_IP3.  An above-rest fit that
    cannot be made (a mean not above rest) leaves alpha empty and says why in ``note``; an absolute fit that
    cannot be made (fewer than 3 frequencies) is a ``ValueError``."""
    import pandas as pd

    rows = []
    for factor in sorted(sweeps, key=lambda k: (k != 1.0, k)):
        df = sweeps[factor]
        for quantity in ("absolute", "above_rest"):
            prefix = "" if factor == 1.0 else f"r_ip3_x{factor:g}"
            name = (prefix or "absolute") if quantity == "absolute" else "_".join(filter(None, (prefix, quantity)))
            head = {"fit": name, "quantity": quantity, "r_ip3_factor": float(factor), "r_ip3": r_ip3 * factor,
                    "ca_rest_uM": float(df["ca_rest"].iloc[0])}  # fmt: skip
            d, col = df, column
            if quantity == "above_rest":
                col = f"{column}_above_rest"
                d = df.assign(**{col: df[column] - df["ca_rest"]})
            try:
                fit = fit_power_law(d, column=col, n_boot=n_boot, seed=seed)
            except ValueError as exc:
                if quantity == "absolute":  # too few frequencies: no fit at all
                    raise
                rows.append({**head, "column": col, "note": str(exc)})
                continue
            shape = curve_shape(d, col)
            rows.append({**head, **fit, **{f"curve_{k}": v for k, v in shape.items() if k != "slopes"}, "note": ""})
    return pd.DataFrame(rows)
