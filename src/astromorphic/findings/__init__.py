"""The findings page: which of the paper's claims reproduce, computed from the tables, ``astromorphic findings``.

Everything the page states is read from ``results/tables/*.csv`` (and the configuration snapshot for the
label): Table I (``table1.csv``: mean, sd and seeds of each model), the learning speed (``learning_speed.csv``,
``speedups.csv``), the controls (``controls.csv``, ``sweep.csv``), the per-epoch probe columns (``runs.csv``),
the causality audit (``runs_summary.csv``) and, when runs came from committed records, ``records.csv``.

* ``stats``     Welch intervals and p-values, two one-sided tests against a margin, Holm's correction, the
                minimum detectable difference, and the one verdict rule (reproduces / contradicted / equivalent
                within ± margin / not resolved; better / worse without a claim of the paper);
* ``base``      the tables of one configuration (:class:`Findings`), provenance, which epoch each number comes
                from and each threshold, and how a verdict is reached;
* ``claims``    the paper's Table I and language-model claims against ours, and the tidy table the forest plot
                draws;
* ``speed``     learning speed: the area under each run's learning curve, the paper's pairs and those beside them;
* ``summary``   every claim in one table, and the generated summary at the top of the page;
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
    equivalence_margin,
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
    OBSERVATION,
    Claim,
    DivergedComparison,
    Pair,
    claims_frame,
    compare_runs,
    divergence_claim,
    divergence_section,
    lm_gap_claim,
    order_text,
    ordering_claims,
    ordering_pairs,
    ordering_section,
    overall,
)
from astromorphic.findings.speed import (  # noqa: F401
    SpeedCurves,
    learning_speed_section,
    speed_claims,
    speed_comparisons_section,
    speed_curves,
    speed_pairs,
    speedup_section,
)
from astromorphic.findings.summary import (  # noqa: F401
    claims,
    claims_section,
    claims_table,
    summary_section,
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
    EQUIVALENT,
    LEVEL,
    NO_CLAIM,
    NOT_RESOLVED,
    POWER,
    REPRODUCES,
    Comparison,
    Group,
    Interval,
    RatioComparison,
    adjust,
    better_sign,
    compare,
    holm,
    min_detectable,
    num,
    p_text,
    resolution_text,
    size_statement,
    tost_p,
    verdict,
    welch_interval,
    welch_p,
)
