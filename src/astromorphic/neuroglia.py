"""The neuron-astrocyte model behind the attention (SPEC.md section 5; paper Sec. III-B, Appendix D, Fig. 2-3).

What lives here:

1. **The tripartite synapse as ODEs** (Fig. 3 data).  One presynaptic terminal fires a Poisson spike train at a
   given rate; each spike releases transmitter with probability PR(t); a release injects a synaptic current into
   a leaky integrate-and-fire (LIF) postsynaptic neuron, which also receives the astrocyte's slow inward current
   (SIC).  Each postsynaptic spike releases the endocannabinoid 2-AG, which (a) depresses release directly
   (DSE) and (b) drives IP3 production in the astrocyte.  IP3 opens the ER channels of the Li-Rinzel Ca2+ model;
   astrocyte Ca2+ above a threshold releases glutamate, which potentiates release indirectly (eSP).  This is the
   "AN model" of Wade et al. (2011, 2012) as restated in the paper's Appendix D:

   ===========================  =====================================================================
   LIF (Eq. 6)                  tau_m dv/dt = -v + R_m (I_syn + I_astro);  v >= v_th: spike, v <- v_reset
   synaptic current             dI_syn/dt = -I_syn / tau_syn;  release at a spike: I_syn += w_syn
   release probability          PR(t) = PR(0) + PR(0) (DSE(t) + eSP(t)) / 100,  clipped to [0, 1]
   2-AG                         dAG/dt = -AG / tau_AG + r_AG sum_k delta(t - t_post,k)
   direct feedback              DSE(t) = -K_AG AG(t)                                (percent)
   IP3                          dIP3/dt = (IP3* - IP3) / tau_IP3 + r_IP3 AG
   Li-Rinzel Ca2+               dCa/dt = -J_chan - J_leak - J_pump,  dq/dt = a_q (1 - q) - b_q q
   SIC                          I_astro = s_SIC 2.11 Theta(ln y) ln y,  y = Ca / nM - 196.69
   glutamate                    dGlu/dt = -Glu / tau_Glu + r_Glu Theta(Ca - Ca_th)
   indirect feedback            tau_eSP deSP/dt = -eSP + m_eSP Glu                  (percent)
   ===========================  =====================================================================

   Units throughout: time s, voltage mV (relative to rest), current nA, resistance MOhm (MOhm x nA = mV),
   concentrations uM, DSE/eSP percent.  Every constant is a field of :class:`SynapseParams` with its value,
   unit and source.

   Integration is event-driven.  The presynaptic spike times are drawn up front.  ``scipy.integrate.solve_ivp``
   integrates the whole 8-variable state between events, with a terminal event for the postsynaptic threshold
   crossing (reset and 2-AG jump, then the integration resumes).  At a presynaptic spike the release is decided
   against PR(t_spike) with a uniform draw and, if it happens, the synaptic current jumps.  A spike that fails
   to release changes no state, so the solver runs through it (PR there is read from the solver's output at that
   time; see :func:`simulate_synapse`).  The system is stiff (ms neuron and synapse, s astrocyte), so the default
   solver is LSODA, which switches to BDF where needed; tests check it against RK45 at tight tolerance.
   All randomness (spike times and release draws) comes from seeded ``numpy.random.Generator`` streams, so a
   run is a pure function of (rate, params, duration, seed).

   Where the Fig. 3 curve bends: in these runs the time-averaged Ca2+ saturates mainly because the Li-Rinzel
   astrocyte saturates in IP3 (finite ER store, Ca2+ inactivation of the IP3 receptor); DSE adds a little.
   The fitted exponent therefore depends on where 1-10 Hz falls on the IP3 axis, i.e. on the IP3 production
   gain ``r_ip3``, which the sources do not fix (see its note).  It also depends on what is fitted: the
   absolute Ca2+ includes the resting level, which flattens the curve in log-log axes.  The command
   therefore reports the exponent of the absolute Ca2+, of the Ca2+ above rest, and of both with ``r_ip3``
   halved and doubled (:func:`fit_table`).

   Time averages are exact integrals of the trajectory (accumulator states), not samples.

2. **The simulation settings** (:func:`resolve_simulation_config`): the ``simulation`` section of a
   configuration, validated by ``astromorphic.config.SimulationConfig``, which holds its defaults.

(The per-token write/read network of Fig. 2, Eq. 8-17, a literal token-by-token counterpart of
``astromorphic.attention.astromorphic_attention``, is a test oracle: ``tests/_oracles.py``.)

Command: ``astromorphic simulate --config CFG --out-dir DIR`` runs the frequency sweep and writes
``sweep.csv`` (one row per frequency x spike train), ``fit.csv`` (the fitted exponents of Ca ~ f^alpha with
their confidence intervals, next to the paper's 0.25: one row per fit, see :func:`fit_table`),
``sweep_r_ip3.csv`` (the two sweeps with r_IP3 halved and doubled: the same frequencies, trains and seeds),
``params.csv`` (every constant with unit and source) and ``simulation.json`` (resolved settings and wall times).
The two extra sweeps triple the simulation time: the default sweep (10 frequencies x 5 trains of 90 s) took
20-36 s on one shared CPU core, all three sweeps (150 runs) 75-84 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

PAPER_ALPHA = 0.25  # the exponent the paper takes from its Fig. 3 (Sec. III-B, Eq. 14)
R_IP3_FACTORS = (0.5, 2.0)  # the sensitivity sweeps: r_IP3 halved and doubled

# ---------------------------------------------------------------------------------------------- sources

LR94 = ("Li & Rinzel 1994, J. Theor. Biol. 166:461; the same set is reused by De Pitta et al. 2009, "
        "J. Biol. Phys. 35:383 (Table 1)")
NJ03 = "Nadkarni & Jung 2003, Phys. Rev. Lett. 91:268101"
W11 = "Wade et al. 2011, PLoS ONE 6:e29445 (AN model)"
W12 = "Wade et al. 2012, Front. Comput. Neurosci. 6:76"
TPM98 = "Tsodyks, Pawelzik & Markram 1998, Neural Comput. 10:821 (tau_in = 3 ms)"
CHOICE = "project choice"

# How firmly each value rests on its source:
#   literature            the value as published, checked against a second published table;
#   literature-unchecked  the value attributed to the cited paper, not re-checked against its original table
#                         when this module was written: verify before quoting it as the source's value;
#   choice                not given by the sources (the paper gives no constants at all, SPEC 5); the reason
#                         is stated next to the value.  Each choice puts the model in a stated operating range;
#                         none was tuned toward the paper's exponent.  Some (r_ip3 above all) do move the fitted
#                         exponent: report it with the constants it came from.
KINDS = ("literature", "literature-unchecked", "choice")


def _p(value: float, unit: str, source: str, kind: str, note: str = "") -> Any:
    assert kind in KINDS
    return field(default=value, metadata={"unit": unit, "source": source, "kind": kind, "note": note})


@dataclass(frozen=True)
class SynapseParams:
    """Every constant of the tripartite-synapse model: value, unit, source (see :data:`KINDS`)."""

    # --- presynaptic release ------------------------------------------------------------------------
    pr0: float = _p(0.5, "1", W12, "literature-unchecked", "baseline release probability PR(0) of a healthy synapse")
    # --- synaptic current and postsynaptic LIF (Eq. 6-7) ------------------------------------------------
    tau_syn: float = _p(0.003, "s", TPM98, "literature-unchecked", "decay of the postsynaptic current")
    w_syn: float = _p(1.7, "nA", CHOICE, "choice",
                      "current step per release; with tau_m, R_m, v_th below the PSP peaks at about 1.2 v_th "
                      "from rest: one release gives one postsynaptic spike (a strong single synapse; a large SIC "
                      "can add a second)")
    tau_m: float = _p(0.020, "s", CHOICE, "choice", "membrane time constant, a typical cortical value")
    r_m: float = _p(100.0, "MOhm", CHOICE, "choice", "membrane resistance, a typical cortical value")
    v_th: float = _p(15.0, "mV", CHOICE, "choice", "firing threshold above rest")
    v_reset: float = _p(0.0, "mV", CHOICE, "choice", "reset to rest after a spike (no refractory period)")
    # --- 2-AG and direct feedback (DSE) ---------------------------------------------------------------
    tau_ag: float = _p(10.0, "s", W11, "literature-unchecked", "2-AG decay time constant")
    r_ag: float = _p(0.1, "uM", CHOICE, "choice", "2-AG released per postsynaptic spike (sets the 2-AG scale only)")
    k_ag: float = _p(10.0, "%/uM", CHOICE, "choice",
                     "DSE gain: a sustained 5 Hz postsynaptic rate (2-AG = r_AG tau_AG 5 Hz = 5 uM) lowers PR by "
                     "50 %; K_AG = 0 removes the direct feedback")
    # --- IP3 (Nadkarni & Jung form, driven by 2-AG as in Wade et al.) ---------------------------------------
    ip3_star: float = _p(0.16, "uM", NJ03, "literature-unchecked", "resting IP3 concentration [IP3]*")
    tau_ip3: float = _p(1.0 / 0.14, "s", NJ03, "literature-unchecked", "IP3 degradation time constant (rate 0.14 /s)")
    r_ip3: float = _p(0.12, "1/s", CHOICE, "choice",
                      "IP3 production per uM of 2-AG (Wade's r_IP3 AG term); chosen so that 1-10 Hz spans the "
                      "Li-Rinzel dynamic range of IP3 (mean IP3 about 0.6-3.3 uM); the command refits the "
                      "exponent with it halved and doubled")
    # --- Li-Rinzel astrocyte Ca2+ ---------------------------------------------------------------------
    c0: float = _p(2.0, "uM", LR94, "literature", "total free Ca2+ per cytosolic volume")
    c1: float = _p(0.185, "1", LR94, "literature", "ER-to-cytosol volume ratio")
    v1: float = _p(6.0, "1/s", LR94, "literature", "maximal IP3R (channel) flux rate")
    v2: float = _p(0.11, "1/s", LR94, "literature", "ER leak rate")
    v3: float = _p(0.9, "uM/s", LR94, "literature", "maximal SERCA pump rate")
    k3: float = _p(0.1, "uM", LR94, "literature", "SERCA Ca2+ affinity")
    d1: float = _p(0.13, "uM", LR94, "literature", "IP3 dissociation constant")
    d2: float = _p(1.049, "uM", LR94, "literature", "Ca2+ inactivation dissociation constant")
    d3: float = _p(0.9434, "uM", LR94, "literature", "IP3 dissociation constant (inactivated)")
    d5: float = _p(0.08234, "uM", LR94, "literature", "Ca2+ activation dissociation constant")
    a2: float = _p(0.2, "1/(uM s)", LR94, "literature", "IP3R Ca2+-inactivation binding rate")
    # --- slow inward current (SIC) into the postsynaptic neuron ---------------------------------------------
    sic_amp: float = _p(2.11, "1", NJ03, "literature-unchecked", "I_astro = 2.11 Theta(ln y) ln y")
    sic_offset_nm: float = _p(196.69, "nM", NJ03, "literature-unchecked", "y = [Ca2+]/nM - 196.69")
    sic_scale: float = _p(0.005, "nA", CHOICE, "choice",
                          "converts Nadkarni & Jung's current (uA/cm2 in a Hodgkin-Huxley cell) to this LIF; keeps "
                          "the SIC subthreshold on its own (R_m I_astro is about 7 mV at Ca = 1 uM, v_th = 15 mV)")
    # --- gliotransmitter (glutamate) and indirect feedback (eSP) -------------------------------------------
    ca_th: float = _p(0.19669, "uM", W11, "literature-unchecked",
                      "Ca2+ threshold for glutamate release (the SIC onset of Nadkarni & Jung)")
    tau_glu: float = _p(0.1, "s", W11, "literature-unchecked", "glutamate decay time constant")
    r_glu: float = _p(10.0, "uM/s", W11, "literature-unchecked", "glutamate release rate above threshold")
    tau_esp: float = _p(40.0, "s", W11, "literature-unchecked", "eSP time constant")
    m_esp: float = _p(10.0, "%/uM", CHOICE, "choice",
                      "eSP gain: sustained release (Glu = r_Glu tau_Glu = 1 uM) raises PR by 10 %")

    # ------------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, overrides: Mapping[str, Any] | None = None, base: "SynapseParams | None" = None
    ) -> "SynapseParams":
        """Defaults (or ``base``) with ``overrides`` applied; an unknown name is an error, not a silent no-op."""
        base = base or cls()
        overrides = dict(overrides or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown synapse parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        clean = {}
        for key, value in overrides.items():
            try:
                clean[key] = float(value)
            except (TypeError, ValueError) as err:
                raise ValueError(f"synapse parameter {key} must be a number, got {value!r}") from err
            if not math.isfinite(clean[key]):
                raise ValueError(f"synapse parameter {key} must be finite, got {value!r}")
        return dataclasses.replace(base, **clean)

    def to_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def table(self) -> "Any":
        """A pandas DataFrame: name, value, unit, kind, source, note (the constants table of the report)."""
        import pandas as pd

        rows = []
        defaults = SynapseParams()
        for f in dataclasses.fields(self):
            value = float(getattr(self, f.name))
            changed = value != float(getattr(defaults, f.name))
            rows.append(
                {
                    "name": f.name,
                    "value": value,
                    "unit": f.metadata["unit"],
                    "kind": "config override" if changed else f.metadata["kind"],
                    "source": "configuration" if changed else f.metadata["source"],
                    "note": f.metadata["note"],
                }
            )
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- model

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


def _make_rhs(p: SynapseParams):
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
        self.rhs = _make_rhs(p)

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


# ---------------------------------------------------------------------------------------------- power-law fit


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


# ---------------------------------------------------------------------------------------------- command line

WORKFLOW_KEYS = ("enabled", "resources")


def resolve_simulation_config(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``simulation`` section of a configuration, validated by ``astromorphic.config.SimulationConfig``
    (which holds the defaults), with every constant in ``params`` checked against :class:`SynapseParams`.

    ``enabled`` and ``resources`` belong to the workflow: checked, then left out of the result. Errors are
    ``ValueError`` (``astromorphic.config.ConfigError``) naming the key, e.g. ``simulation.n_trains``."""
    from pydantic import ValidationError

    from astromorphic.config import ConfigError, SimulationConfig, describe_error

    try:
        model = SimulationConfig.model_validate(dict(section or {}))
    except ValidationError as exc:
        raise ConfigError(f"simulation.{describe_error(exc)}") from None
    cfg = model.model_dump(mode="python", exclude=set(WORKFLOW_KEYS))
    cfg["params"] = dict(cfg["params"])
    SynapseParams.from_dict(cfg["params"])  # fail early on an unknown constant
    cfg["frequencies"] = [float(f) for f in cfg["frequencies"]]
    return cfg


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="astromorphic simulate",
        description="Simulate the tripartite synapse over presynaptic spike frequencies (Fig. 3 data).",
    )
    ap.add_argument("--config", help="YAML configuration; its `simulation` section is used (or the whole file)")
    ap.add_argument("--out-dir", help="folder for sweep.csv, fit.csv, params.csv, simulation.json (required)")
    ap.add_argument("--frequencies", type=float, nargs="+", help="presynaptic rates in Hz")
    ap.add_argument("--n-trains", type=int)
    ap.add_argument("--duration-s", type=float)
    ap.add_argument("--warmup-s", type=float)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--rtol", type=float)
    ap.add_argument("--method", choices=["RK45", "RK23", "DOP853", "LSODA", "Radau", "BDF"])
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="override one constant")
    ap.add_argument("--list-params", action="store_true", help="print the constants with units and sources, then exit")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(list(argv))


def _csv_text(df: "Any") -> str:
    return df.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def main(argv: Sequence[str] | None = None) -> int:
    import pandas as pd

    from astromorphic.io import write_json, write_text

    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if args.list_params:
        table = SynapseParams().table()
        print(table[["name", "value", "unit", "kind", "source"]].to_string(index=False))
        return 0
    if not args.out_dir:
        print("astromorphic simulate: --out-dir is required", file=sys.stderr)
        return 2
    section: dict[str, Any] = {}
    if args.config:
        import yaml

        with open(args.config, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        section = dict(doc.get("simulation", doc) or {}) if isinstance(doc, dict) else {}
    for key in ("frequencies", "n_trains", "duration_s", "warmup_s", "seed", "rtol", "method"):
        value = getattr(args, key)
        if value is not None:
            section[key] = value
    if args.param:  # NAME=VALUE, read like every other override (astromorphic.config.apply_overrides)
        from astromorphic.config import apply_overrides

        section = apply_overrides(section, [f"params.{item}" for item in args.param])
    cfg = resolve_simulation_config(section)
    p = SynapseParams.from_dict(cfg["params"])

    sweep_args = (cfg["frequencies"], cfg["n_trains"], cfg["duration_s"], cfg["seed"])
    options = dict(warmup_s=cfg["warmup_s"], method=cfg["method"], rtol=cfg["rtol"], progress=not args.quiet)
    start = time.perf_counter()
    df = sweep(*sweep_args, p, **options)
    main_s = time.perf_counter() - start
    variants = r_ip3_sweeps(*sweep_args, p, **options)
    sim_s = time.perf_counter() - start
    fits = fit_table({1.0: df, **variants}, p.r_ip3, column=cfg["fit_column"], n_boot=cfg["n_boot"], seed=cfg["seed"])

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "sweep.csv", _csv_text(df))
    write_text(out / "sweep_r_ip3.csv", _csv_text(pd.concat(list(variants.values()), ignore_index=True)))
    write_text(out / "fit.csv", _csv_text(fits))
    write_text(out / "params.csv", _csv_text(p.table()))
    n_runs = len(df) * (1 + len(variants))
    timing = {"wall_time_s": round(sim_s, 3), "wall_time_main_sweep_s": round(main_s, 3), "n_runs": n_runs}
    records = fits.astype(object).where(fits.notna(), None).to_dict(orient="records")
    write_json(out / "simulation.json",
               {"config": cfg, "params": p.to_dict(), **timing, "fit": records[0], "fits": records})  # fmt: skip
    if not args.quiet:
        _print_fits(fits, n_runs, sim_s, out)
    return 0


def _print_fits(fits: "Any", n_runs: int, sim_s: float, out: Path) -> None:
    main_fit = fits.iloc[0]
    others = ", ".join(f"{r.fit} {r.alpha:.3f}" for r in fits.iloc[1:].itertuples())
    print(
        f"alpha = {main_fit['alpha']:.3f} [{main_fit['ci_low']:.3f}, {main_fit['ci_high']:.3f}] (paper {PAPER_ALPHA}); "
        f"increasing={main_fit['curve_increasing']} concave={main_fit['curve_concave']}; {others}; "
        f"{n_runs} runs in {sim_s:.1f} s -> {out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    raise SystemExit(main())
