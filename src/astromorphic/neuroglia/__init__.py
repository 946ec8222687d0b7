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

Modules: ``params`` (the constants, with unit and source), ``model`` (the ODEs, one run, the sweep), ``fit``
(the power-law fit and the fit table), ``cli`` (the command). The names below are the package's interface.
"""

from astromorphic.neuroglia.params import (  # noqa: F401
    CHOICE,
    KINDS,
    LR94,
    NJ03,
    PAPER_ALPHA,
    R_IP3_FACTORS,
    TPM98,
    W11,
    W12,
    SynapseParams,
)
from astromorphic.neuroglia.model import (  # noqa: F401
    ACC_NAMES,
    ATOL,
    IACC,
    IAG,
    ICA,
    IESP,
    IGLU,
    IIP3,
    IQ,
    ISYN,
    IV,
    N_STATE,
    li_rinzel_rates,
    make_rhs,
    poisson_spike_train,
    release_probability,
    resting_state,
    simulate_synapse,
    slow_inward_current,
    sweep,
    train_seed,
)
from astromorphic.neuroglia.fit import (  # noqa: F401
    curve_shape,
    fit_power_law,
    fit_table,
    r_ip3_sweeps,
)
from astromorphic.neuroglia.cli import (  # noqa: F401
    WORKFLOW_KEYS,
    main,
    resolve_simulation_config,
)
