"""The findings page: which of the paper's claims reproduce, computed from the tables, ``astromorphic findings``.

Everything the page states is read from ``results/tables/*.csv`` (and the configuration snapshot for the
label): Table I (``table1.csv``: mean, sd and seeds of each model), the learning speed (``learning_speed.csv``,
``speedups.csv``), the controls (``controls.csv``, ``sweep.csv``), the per-epoch probe columns (``runs.csv``),
the causality audit (``runs_summary.csv``) and, when runs came from committed records, ``records.csv``.

* ``stats``     Welch intervals and p-values, Holm's correction, the verdict vocabulary (reproduces /
                contradicted / not resolved at this resolution) and the resolution of a comparison;
* ``base``      the tables of one configuration (:class:`Findings`), provenance, which epoch each number comes
                from and each threshold, and how a verdict is reached;
* ``claims``    the paper's claims against ours, and the tidy table the forest plot draws;
* ``controls``  the controls, the value-sensitivity probe, the sweep and the causality audit;
* ``render``    the notebook executed and exported as Markdown and HTML (``astromorphic findings``).

No verdict is given on synthetic stand-in data ("synthetic stand-in: no claim"), diagnostic presets are never
counted as results, and the wording is templated: no number or verdict is typed by hand.
``workflow/notebooks/findings.py`` (a jupytext percent notebook) calls the section functions.
"""

from astromorphic.findings.base import (  # noqa: F401
    CLASSIFIERS,
    CONTROL,
    DIAGNOSTICS,
    GATE,
    LEAKY,
    LM,
    PAPER_THRESHOLD,
    TABLE1_MODELS,
    TASK_NAMES,
    Findings,
    basis_section,
    headline_metric,
    load,
    markdown_table,
    mean_sd_text,
    method_section,
    provenance,
    packages_note,
    records_note,
    thresholds,
    unit,
)
from astromorphic.findings.claims import (  # noqa: F401
    Claim,
    DivergedComparison,
    Pair,
    claims,
    claims_frame,
    claims_section,
    compare_runs,
    divergence_claim,
    divergence_section,
    learning_speed_section,
    lm_gap_claim,
    order_text,
    ordering_claims,
    ordering_pairs,
    ordering_section,
    overall,
    speed_claims,
    speedup_section,
)
from astromorphic.findings.controls import (  # noqa: F401
    causality_section,
    control_comparisons,
    controls_section,
    controls_summary,
    gate_section,
    sweep_section,
    value_sensitivity,
    value_sensitivity_section,
)
from astromorphic.findings.render import (  # noqa: F401
    FIGURE_ALT,
    figure_display,
    main,
    parse_figures,
    render,
    write_claims,
)
from astromorphic.findings.stats import (  # noqa: F401
    ALPHA,
    CONTRADICTED,
    LEVEL,
    NO_CLAIM,
    NOT_RESOLVED,
    REPRODUCES,
    VERDICT,
    Comparison,
    Group,
    Interval,
    RatioComparison,
    adjust,
    better_sign,
    claim_verdict,
    compare,
    holm,
    num,
    p_text,
    resolution_text,
    welch_interval,
    welch_p,
)
