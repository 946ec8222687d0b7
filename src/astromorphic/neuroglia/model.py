"""The tripartite synapse as ODEs: state layout, rates, the integrator, one run and the frequency sweep."""

from __future__ import annotations

import math
import sys
from typing import Any, Mapping, Sequence

import numpy as np

from astromorphic.neuroglia.params import SynapseParams

# state layout
IV, ISYN, IAG, IIP3, ICA, IQ, IGLU, IESP = range(8)
IACC = 8  # accumulators: integral of Ca, IP3, AG, PR, Glu dt
ACC_NAMES = ("ca", "ip3", "ag", "pr", "glu")
N_STATE = IACC + len(ACC_NAMES)
# absolute tolerances of the integrator, per state (v mV, I_syn nA, AG uM, IP3 uM, Ca uM, q 1, Glu uM, eSP %)
ATOL = (1e-2, 1e-3, 1e-5, 1e-6, 1e-6, 1e-6, 1e-5, 1e-4)


def release_probability(ag: float, esp: float, p: SynapseParams) -> float:
    """PR(t) = PR(0) + PR(0) (DSE + eSP) / 100 with DSE = -K_AG AG, clipped to a probability."""
    pr = p.pr0 * (1.0 + (esp - p.k_ag * ag) / 100.0)
    return min(1.0, max(0.0, pr))


def slow_inward_current(ca: float, p: SynapseParams) -> float:
    """Nadkarni & Jung's SIC, 2.11 Theta(ln y) ln y with y = [Ca]/nM - 196.69, scaled to nA."""
    y = ca * 1000.0 - p.sic_offset_nm
    return p.sic_scale * p.sic_amp * math.log(y) if y > 1.0 else 0.0


def li_rinzel_rates(ca: float, q: float, ip3: float, p: SynapseParams) -> tuple[float, float]:
    """dCa/dt and dq/dt of the Li-Rinzel model (fluxes in uM/s per cytosolic volume)."""
    ca_er = (p.c0 - ca) / p.c1
    m_inf = ip3 / (ip3 + p.d1)
    n_inf = ca / (ca + p.d5)
    j_chan = p.c1 * p.v1 * (m_inf * n_inf * q) ** 3 * (ca - ca_er)
    j_leak = p.c1 * p.v2 * (ca - ca_er)
    j_pump = p.v3 * ca * ca / (p.k3 * p.k3 + ca * ca)
    alpha_q = p.a2 * p.d2 * (ip3 + p.d1) / (ip3 + p.d3)
    beta_q = p.a2 * ca
    return -j_chan - j_leak - j_pump, alpha_q * (1.0 - q) - beta_q * q


def resting_state(p: SynapseParams) -> tuple[float, float]:
    """Ca2+ and q at rest (IP3 = IP3*, no input): the stable fixed point of the Li-Rinzel model."""
    from scipy.optimize import brentq

    ip3 = p.ip3_star

    def q_inf(ca: float) -> float:
        alpha_q = p.a2 * p.d2 * (ip3 + p.d1) / (ip3 + p.d3)
        return alpha_q / (alpha_q + p.a2 * ca)

    def dca(ca: float) -> float:
        return li_rinzel_rates(ca, q_inf(ca), ip3, p)[0]

    hi = p.c0 / (1.0 + p.c1) * (1 - 1e-9)  # Ca where the ER is empty
    grid = np.linspace(1e-6, hi, 2001)
    vals = [dca(c) for c in grid]
    for a, b, fa, fb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:]):
        if fa > 0 >= fb:  # first stable crossing from below
            ca = brentq(dca, a, b, xtol=1e-14)
            return ca, q_inf(ca)
    raise RuntimeError("no resting state of the Li-Rinzel model for these parameters")


def make_rhs(p: SynapseParams):
    """The right-hand side for ``solve_ivp``: the 8 model variables, then the 5 accumulators (Ca, IP3, AG, PR, Glu)."""
    # local copies: the right-hand side is called ~10^5 times per run
    tau_m, r_m, tau_syn, tau_ag = p.tau_m, p.r_m, p.tau_syn, p.tau_ag
    ip3_star, tau_ip3, r_ip3 = p.ip3_star, p.tau_ip3, p.r_ip3
    ca_th, tau_glu, r_glu, tau_esp, m_esp = p.ca_th, p.tau_glu, p.r_glu, p.tau_esp, p.m_esp

    def rhs(t: float, y: np.ndarray) -> list[float]:
        v, isyn, ag, ip3, ca, q, glu, esp = y.tolist()[:8]
        dca, dq = li_rinzel_rates(ca, q, ip3, p)
        return [
            (-v + r_m * (isyn + slow_inward_current(ca, p))) / tau_m,
            -isyn / tau_syn,
            -ag / tau_ag,
            (ip3_star - ip3) / tau_ip3 + r_ip3 * ag,
            dca,
            dq,
            -glu / tau_glu + (r_glu if ca > ca_th else 0.0),
            (m_esp * glu - esp) / tau_esp,
            ca,
            ip3,
            ag,
            release_probability(ag, esp, p),
            glu,
        ]

    return rhs


def poisson_spike_train(rate_hz: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Homogeneous Poisson spike times in (0, duration_s): a unit-rate Poisson process (cumulative exponential
    intervals) divided by the rate.  The same generator state therefore gives the same train at every rate, only
    faster or slower (common random numbers across the frequency sweep, which keeps the shape of the
    frequency curve free of between-frequency sampling noise)."""
    if rate_hz <= 0:
        return np.zeros(0)
    mean_n = rate_hz * duration_s
    n_guess = int(mean_n + 10 * math.sqrt(mean_n) + 20)
    times = np.cumsum(rng.exponential(1.0, size=n_guess)) / rate_hz
    while times[-1] < duration_s:  # practically never: the guess covers 10 sd
        more = times[-1] + np.cumsum(rng.exponential(1.0, size=n_guess)) / rate_hz
        times = np.concatenate([times, more])
    return times[times < duration_s]


def simulate_synapse(
    rate_hz: float,
    params: SynapseParams | Mapping[str, Any] | None = None,
    duration_s: float = 90.0,
    seed: int | np.random.SeedSequence = 0,
    *,
    warmup_s: float = 30.0,
    record_dt: float | None = None,
    method: str = "LSODA",
    rtol: float = 1e-3,
    stop_every_spike: bool = False,
) -> dict[str, Any]:
    """Simulate the tripartite synapse driven by a Poisson train at ``rate_hz`` for ``duration_s`` seconds.

    Returns a dict with ``summary`` (scalars; time averages over the analysis window [warmup_s, duration_s]:
    ``ca_mean``; over its second half: ``ca_steady``), ``spikes`` (arrays of presynaptic spike, release and
    postsynaptic spike times) and, when ``record_dt`` is given, ``trace`` (the state sampled every ``record_dt``
    seconds: t, v, i_syn, ag, ip3, ca, q, glu, esp, pr).

    Randomness: ``seed`` seeds two independent streams, one for the spike train (see
    :func:`poisson_spike_train`) and one for the release draws (one uniform per presynaptic spike, in spike
    order; spike j releases iff its draw is below PR(t_j)).

    Event handling: the integration stops at each postsynaptic threshold crossing (a terminal ``solve_ivp``
    event) and at each presynaptic spike that releases transmitter, where the jumps are applied.  A spike that
    fails to release changes no state, so the integration runs through it; to know whether it fails, PR is
    evaluated from the state the solver reports at the spike time (``t_eval``), and a release found there
    restarts the integration from that spike.  (Which spikes are integrated through is guessed from a cheap forecast of
    PR; the guess decides only where the solver stops, never whether a spike releases.
    ``stop_every_spike=True`` stops at every presynaptic spike instead: slower, same result to solver accuracy.)
    """
    p = params if isinstance(params, SynapseParams) else SynapseParams.from_dict(params)
    if not 0 <= warmup_s < duration_s:
        raise ValueError(f"need 0 <= warmup_s < duration_s, got warmup_s={warmup_s}, duration_s={duration_s}")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    spike_ss, draw_ss = ss.spawn(2)
    pre = poisson_spike_train(rate_hz, duration_s, np.random.default_rng(spike_ss))
    draws = np.random.default_rng(draw_ss).random(pre.size)

    run = _SynapseRun(p, pre, draws, method=method, rtol=rtol, stop_every_spike=stop_every_spike)
    rec_t = np.arange(0.0, duration_s + 1e-12, record_dt) if record_dt else None
    if rec_t is not None:
        run.start_recording(rec_t)
    mid_s = 0.5 * (warmup_s + duration_s)
    snapshots = [run.accumulators_at(t_mark) for t_mark in (warmup_s, mid_s, duration_s)]
    out: dict[str, Any] = {
        "summary": {"rate_hz": float(rate_hz), **_summary(run, snapshots, warmup_s, mid_s, duration_s)},
        "spikes": {"pre": pre, "release": np.asarray(run.releases), "post": np.asarray(run.post)},
    }
    if rec_t is not None:
        out["trace"] = run.trace()
    return out


class _SynapseRun:
    """The state of one event-driven integration (see :func:`simulate_synapse`), advanced mark by mark."""

    def __init__(
        self, p: SynapseParams, pre: np.ndarray, draws: np.ndarray, *, method: str, rtol: float, stop_every_spike: bool
    ) -> None:
        self.p, self.pre, self.draws = p, pre, draws
        self.method, self.rtol, self.stop_every_spike = method, rtol, stop_every_spike
        self.rhs = make_rhs(p)

        def threshold(t: float, y: np.ndarray) -> float:
            return y[IV] - p.v_th

        threshold.terminal = True
        threshold.direction = 1.0
        self.threshold = threshold
        self.ca_rest, q_rest = resting_state(p)
        self.y = np.zeros(N_STATE)
        self.y[IV], self.y[IIP3], self.y[ICA], self.y[IQ] = p.v_reset, p.ip3_star, self.ca_rest, q_rest
        self.atol = np.array(list(ATOL) + [1e12] * len(ACC_NAMES))  # the accumulators follow the others, unchecked
        self.t = 0.0
        self.i = 0  # next presynaptic spike not yet decided
        self.releases: list[float] = []
        self.post: list[float] = []
        self.n_calls = 0
        self.rec_t: np.ndarray | None = None
        self.rec_times: list[np.ndarray] = []
        self.rec_y: list[np.ndarray] = []

    def start_recording(self, rec_t: np.ndarray) -> None:
        self.rec_t = rec_t
        self.rec_times, self.rec_y = [np.array([0.0])], [self.y[:IACC].copy()[:, None]]

    def forecast(self) -> int:
        """Index of the first spike from i on that may release: PR forecast with 2-AG decaying freely and eSP
        frozen, with a margin; only used to choose where to stop."""
        if self.stop_every_spike:
            return self.i
        p, pre, draws, t0 = self.p, self.pre, self.draws, self.t
        ag0, esp0 = self.y[IAG], self.y[IESP]
        decay_ag = 1.0 / p.tau_ag
        for j in range(self.i, pre.size):
            ag = ag0 * math.exp(-(pre[j] - t0) * decay_ag)
            if draws[j] < release_probability(ag, esp0, p) + 0.05:
                return j
        return pre.size

    def accumulators_at(self, t_mark: float) -> np.ndarray:
        """Run up to ``t_mark`` (deciding every spike before it) and return the accumulators there."""
        pre = self.pre
        while True:
            j = self.forecast()
            stop_at_spike = j < pre.size and pre[j] < t_mark
            t_stop = float(pre[j]) if stop_at_spike else t_mark
            if t_stop > self.t and self._advance(t_stop):
                continue  # stopped early, at a release or a postsynaptic spike
            if not stop_at_spike:
                return self.y[IACC:].copy()
            # at spike j (= i): decide it from the exact state
            if self.draws[self.i] < release_probability(self.y[IAG], self.y[IESP], self.p):
                self.y[ISYN] += self.p.w_syn
                self.releases.append(self.t)
            self.i += 1

    def _advance(self, t_stop: float) -> bool:
        """Integrate from t towards t_stop; True when the piece ended early at a release or a postsynaptic spike."""
        from scipy.integrate import solve_ivp

        pre, t = self.pre, self.t
        # ask the solver for the state at the spikes it runs through (to decide them), at the stop, and at the
        # recording times
        hi = int(np.searchsorted(pre, t_stop, side="left"))
        wanted = [pre[self.i : hi], [t_stop]]
        rec_now = None
        if self.rec_t is not None:
            lo_r, hi_r = np.searchsorted(self.rec_t, [t, t_stop], side="right")
            rec_now = self.rec_t[lo_r:hi_r]
            wanted.append(rec_now)
        t_eval = np.unique(np.concatenate(wanted))
        sol = solve_ivp(self.rhs, (t, t_stop), self.y, method=self.method, events=self.threshold, rtol=self.rtol,
                        atol=self.atol, t_eval=t_eval)  # fmt: skip
        self.n_calls += 1
        if sol.status < 0:
            raise RuntimeError(f"integration failed at t={t:.6f} s: {sol.message}")
        t_end = float(sol.t_events[0][0]) if sol.status == 1 else t_stop
        sol_t = np.asarray(sol.t, dtype=float)
        released = self._first_release(sol, sol_t, hi, t_end)
        t_cut = float(pre[released]) if released is not None else t_end
        if rec_now is not None and sol_t.size:
            keep = np.isin(sol_t, rec_now) & (sol_t <= t_cut)
            self.rec_times.append(sol_t[keep])
            self.rec_y.append(sol.y[:IACC][:, keep])
        if released is not None:  # restart from the releasing spike
            self.t = t_cut
            self.y = sol.y[:, int(np.searchsorted(sol_t, t_cut))].copy()
            self.y[ISYN] += self.p.w_syn
            self.releases.append(t_cut)
            self.i = released + 1
            return True
        if sol.status == 1:  # postsynaptic spike: reset, 2-AG release, carry on from the crossing
            self.t = t_end
            self.y = sol.y_events[0][0].copy()
            self.y[IV] = self.p.v_reset
            self.y[IAG] += self.p.r_ag
            self.post.append(t_end)
            return True
        self.t = t_stop
        self.y = sol.y[:, -1].copy()
        return False

    def _first_release(self, sol: Any, sol_t: np.ndarray, hi: int, t_end: float) -> int | None:
        """The spikes integrated through (strictly before the end of this piece): the first that releases."""
        pre = self.pre
        while self.i < hi and pre[self.i] < t_end:
            y_i = sol.y[:, int(np.searchsorted(sol_t, pre[self.i]))]
            if self.draws[self.i] < release_probability(y_i[IAG], y_i[IESP], self.p):
                return self.i
            self.i += 1
        return None

    def trace(self) -> dict[str, np.ndarray]:
        ts = np.concatenate(self.rec_times)
        ys = np.concatenate(self.rec_y, axis=1)
        order = np.argsort(ts, kind="stable")
        ts, ys = ts[order], ys[:, order]
        keep = np.concatenate([[True], np.diff(ts) > 0])  # a sample time reached twice appears once
        ts, ys = ts[keep], ys[:, keep]
        pr = np.array([release_probability(ag, esp, self.p) for ag, esp in zip(ys[IAG], ys[IESP])])
        return {
            "t": ts, "v": ys[IV], "i_syn": ys[ISYN], "ag": ys[IAG], "ip3": ys[IIP3], "ca": ys[ICA],
            "q": ys[IQ], "glu": ys[IGLU], "esp": ys[IESP], "pr": pr,
        }  # fmt: skip


def _summary(
    run: _SynapseRun, snapshots: list[np.ndarray], warmup_s: float, mid_s: float, duration_s: float
) -> dict[str, Any]:
    """Time averages over the analysis window (from accumulator snapshots at warmup_s, mid_s, duration_s), rates."""
    p, pre = run.p, run.pre
    window = duration_s - warmup_s
    means = (snapshots[2] - snapshots[0]) / window
    late = (snapshots[2] - snapshots[1]) / (duration_s - mid_s)
    return {
        "duration_s": float(duration_s),
        "warmup_s": float(warmup_s),
        "ca_mean": float(means[0]),
        "ca_steady": float(late[0]),
        "ip3_mean": float(means[1]),
        "ag_mean": float(means[2]),
        "pr_mean": float(means[3]),
        "glu_mean": float(means[4]),
        "dse_mean": float(-p.k_ag * means[2]),
        "ca_rest": float(run.ca_rest),
        "ca_final": float(run.y[ICA]),
        "esp_final": float(run.y[IESP]),
        "pre_rate_hz": float(pre[pre >= warmup_s].size / window),
        "release_rate_hz": float(np.sum(np.asarray(run.releases) >= warmup_s) / window),
        "post_rate_hz": float(np.sum(np.asarray(run.post) >= warmup_s) / window),
        "n_pre_spikes": int(pre.size),
        "n_releases": len(run.releases),
        "n_post_spikes": len(run.post),
        "n_solver_calls": run.n_calls,
    }


def train_seed(seed: int, train: int) -> int:
    """The seed of spike train ``train``: a function of (seed, train index) only, so that train k is the same
    unit-rate train at every frequency (common random numbers) and adding a frequency or a train to the sweep
    leaves every other row unchanged."""
    ss = np.random.SeedSequence([int(seed), int(train)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def sweep(
    frequencies: Sequence[float],
    n_trains: int = 5,
    duration_s: float = 90.0,
    seed: int = 0,
    params: SynapseParams | Mapping[str, Any] | None = None,
    *,
    warmup_s: float = 30.0,
    method: str = "LSODA",
    rtol: float = 1e-3,
    progress: bool = False,
) -> "Any":
    """Simulate every (frequency, train) pair; a DataFrame with one row each, sorted by frequency then train."""
    import pandas as pd

    p = params if isinstance(params, SynapseParams) else SynapseParams.from_dict(params)
    if n_trains < 1:
        raise ValueError(f"n_trains must be >= 1, got {n_trains}")
    freqs = [float(f) for f in frequencies]
    if not freqs or any(f <= 0 for f in freqs):
        raise ValueError(f"frequencies must be positive, got {frequencies}")
    rows = []
    for f in sorted(freqs):
        for k in range(int(n_trains)):
            s = train_seed(seed, k)
            res = simulate_synapse(f, p, duration_s, s, warmup_s=warmup_s, method=method, rtol=rtol)
            row = {"frequency_hz": f, "train": k, "train_seed": s}
            row.update({key: val for key, val in res["summary"].items() if key not in ("rate_hz",)})
            rows.append(row)
            if progress:
                print(f"  f={f:g} Hz train {k}: mean Ca {row['ca_mean']:.4f} uM", file=sys.stderr)
    return pd.DataFrame(rows)
