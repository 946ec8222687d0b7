"""Learning speed without a chosen threshold: the area under each run's learning curve over a fixed budget.

Per run, the mean of its learning curve (accuracy) over steps 0 to a budget (``report.speed_budget_steps``, else
the largest step every run of the task reached; epochs for records without a step-resolution curve), by
:func:`astromorphic.tables.speed.curve_auc`. The paper's learning-speed pairs (the task registry's
``speedup_pairs``: the first model learns faster) are compared on it with a Welch interval, beside the
comparisons with ``vanilla`` and ``no-attention`` (not claims of the paper), all one Holm family per task, and
judged by the page's one verdict rule. Steps to a threshold are shown over a range of thresholds (the
steps-to-threshold figure) and the paper's 85 % as how many seeds' learning curves reach it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from astromorphic import tasks as task_registry
from astromorphic.findings.base import (
    CONTROL,
    LM,
    PAPER_THRESHOLD,
    TASK_NAMES,
    Findings,
    equivalence_margin,
    headline_metric,
    markdown_table,
)
from astromorphic.findings.claims import SPEED_FAMILY, Claim
from astromorphic.findings.stats import (
    LEVEL,
    NO_CLAIM,
    Comparison,
    Group,
    adjust,
    compare,
    num,
    p_text,
    resolution_text,
)
from astromorphic.tables.speed import curve_budget, curve_split, run_aucs, run_curves

SPEED_WORDS = ("faster", "slower")
# Beside the paper's pairs (not claims of the paper): the softmax model and the model without attention
# against the two the paper compares most.
REFERENCE_PAIRS = (("vanilla", "astro"), ("vanilla", "linearized"), ("astro", CONTROL), ("linearized", CONTROL))


@dataclass(frozen=True)
class SpeedCurves:
    """The learning curves of one task's finished runs and their areas (``aucs``: model, seed, auc in %)."""

    task: str
    unit: str  # "steps" or "epochs"
    metric: str  # the curve's metric (test_acc: the test split; valid_acc: the validation split)
    budget: float
    frame: pd.DataFrame
    aucs: pd.DataFrame
    n_examples: int | None = None

    @property
    def split(self) -> str:
        return curve_split(self.metric)

    def group(self, model: str) -> Group | None:
        values = self.aucs[self.aucs["model"] == model]["auc"]
        values = values[values.notna()]
        if values.empty:
            return None
        return Group(model, float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                     len(values))

    def reaching(self, model: str, threshold: float) -> tuple[int, int]:
        """(seeds whose curve reaches ``threshold`` at some point of the run, seeds)."""
        rows = self.frame[self.frame["model"] == model]
        best = rows.groupby("seed")["value"].max()
        return int((best >= threshold).sum()), len(best)


def speed_curves(f: Findings, task: str) -> SpeedCurves | None:
    """The task's curves at the finest resolution all its runs share, and each run's area; None without curves."""
    tidy = f.table("runs")
    if tidy.empty or task == LM:
        return None
    frame, unit_, metric = run_curves(f.table("learning_curves"), tidy, task, headline_metric(task))
    if frame.empty:
        return None
    budget = curve_budget(frame)
    given = (f.config.get("report") or {}).get("speed_budget_steps")
    if unit_ == "steps" and given:
        budget = float(given)
    aucs = run_aucs(frame, budget).assign(auc=lambda d: 100 * d["auc"])  # percentage points, as Table I
    curves = f.table("learning_curves")
    n_examples = None
    if unit_ == "steps" and "n_examples" in curves.columns:
        n_examples = int(curves[curves["task"] == task]["n_examples"].max())
    return SpeedCurves(task, unit_, metric, budget, frame, aucs, n_examples)


@dataclass(frozen=True)
class SpeedPair:
    fast: str
    slow: str
    claimed: bool  # one of the paper's pairs (else beside them)
    cmp: Comparison


def speed_pairs(f: Findings, task: str) -> list[SpeedPair]:
    """The paper's pairs and, beside them, the reference pairs, on the area under the curve; one Holm family."""
    sc = speed_curves(f, task)
    if sc is None:
        return []
    pairs = [(a, b, True) for a, b in task_registry.get(task).speedup_pairs]
    pairs += [(a, b, False) for a, b in REFERENCE_PAIRS if (a, b) not in {(x, y) for x, y, _ in pairs}]
    found = []
    for fast, slow, claimed in pairs:
        ga, gb = sc.group(fast), sc.group(slow)
        if ga is not None and gb is not None:
            found.append((fast, slow, claimed, compare(ga, gb, True, " pp", margin=equivalence_margin(f, task))))
    adjusted = adjust([c for *_, c in found])
    return [SpeedPair(fast, slow, claimed, c) for (fast, slow, claimed, _), c in zip(found, adjusted)]


def paper_epochs(f: Findings, task: str, model: str) -> float:
    """The paper's epochs to 85 % of ``model`` (learning_speed.csv ``paper_value``); NaN when not given."""
    ls = f.table("learning_speed")
    if ls.empty:
        return math.nan
    rows = ls[(ls["task"] == task) & (ls["model"] == model)]
    return float(rows["paper_value"].iloc[0]) if len(rows) and pd.notna(rows["paper_value"].iloc[0]) else math.nan


def paper_sign(f: Findings, task: str, p: SpeedPair) -> int | None:
    """+1: the paper counts fewer epochs to 85 % for the first model (learns faster); None beside its pairs."""
    if not p.claimed:
        return None
    pa, pb = paper_epochs(f, task, p.fast), paper_epochs(f, task, p.slow)
    return (1 if pa < pb else -1) if math.isfinite(pa) and math.isfinite(pb) and pa != pb else 1


def basis_text(sc: SpeedCurves) -> str:
    """'mean accuracy over steps 0-1500, test split, a fixed subset of 1000 examples'."""
    where = f"{sc.split} split" + (f", a fixed subset of {sc.n_examples} examples" if sc.n_examples else "")
    return f"mean accuracy over {sc.unit} 0-{num(sc.budget, 0)}, {where}"


def speed_claims(f: Findings) -> list[Claim]:
    """The paper's learning-speed statements, judged on the area under the learning curve."""
    out = []
    for task in f.tasks():
        sc = speed_curves(f, task)
        for p in speed_pairs(f, task):
            if not p.claimed:
                continue
            pa, pb = paper_epochs(f, task, p.fast), paper_epochs(f, task, p.slow)
            paper = f"{p.fast} {num(pa, 0)} vs {p.slow} {num(pb, 0)} epochs to 85 %"
            out.append(Claim(f"{TASK_NAMES[task]}: {p.fast} learns faster than {p.slow}", paper,
                             f"area: {p.cmp.text()} ({basis_text(sc)})", p.cmp.verdict_on(paper_sign(f, task, p),
                                                                                  SPEED_WORDS),
                             resolution_text(p.cmp, " pp"), p_text(p.cmp.p_adjusted), "", SPEED_FAMILY))
    return out


def speed_comparisons_section(f: Findings) -> str:
    """Every learning-speed comparison of the area under the curve, the paper's pairs and those beside them."""
    rows = []
    for task in f.tasks():
        for p in speed_pairs(f, task):
            which = "the paper's pair" if p.claimed else "beside them (not a claim of the paper)"
            v = NO_CLAIM if f.synthetic else p.cmp.verdict_on(paper_sign(f, task, p), SPEED_WORDS)
            rows.append([TASK_NAMES[task], which, p.cmp.text(), resolution_text(p.cmp, " pp"), p_text(p.cmp.p),
                         p_text(p.cmp.p_adjusted), p_text(p.cmp.p_tost_adjusted), v])
    header = ["Task", "Comparison", f"Area under the curve, difference [{LEVEL:.0%} Welch interval]",
              "Half-width; MDE (80 % power)", "Welch p", "Holm p (task family)", "Holm TOST p", "Verdict"]
    return markdown_table(rows, header)


def learning_speed_section(f: Findings) -> str:
    """Per task: what the area is taken over and on which split; per model the area (mean ± sd), the steps to our
    threshold (learning_speed.csv) and how many seeds reach the paper's 85 %."""
    ls = f.table("learning_speed")
    lines, rows = [], []
    for task in f.tasks():
        sc = speed_curves(f, task)
        sub = ls[ls["task"] == task] if not ls.empty else pd.DataFrame()
        if sc is None and sub.empty:
            continue
        if sc is not None:
            lines.append(f"- {TASK_NAMES[task]}: area under the learning curve = {basis_text(sc)}; "
                         + ("the curves were measured on the **test** split, not on a validation split."
                            if sc.split == "test" else f"the curves were measured on the {sc.split} split."))
        if task == LM and not sub.empty:
            lines.append(f"- {TASK_NAMES[task]}: {sub['unit'].iloc[0]} to the lowest validation perplexity "
                         "(paper: epochs to its best test perplexity); no area (the paper makes no speed claim).")
        threshold = table_threshold(sub)
        models = list(dict.fromkeys(list(sub["model"]) if not sub.empty else list(sc.aucs["model"])))
        for model in models:
            r = sub[sub["model"] == model].iloc[0] if not sub.empty and (sub["model"] == model).any() else None
            steps = "-"
            if r is not None:
                steps = (f"{num(r['mean'], 1)} ± {num(r['sd'], 1)} {r['unit']}" if int(r["n_reached"]) else
                         "not reached" if task != LM else "diverged") + f" ({int(r['n_reached'])}/{int(r['n_seeds'])})"
            g = sc.group(model) if sc is not None else None
            auc = f"{num(g.mean, 2)} ± {num(g.sd, 2)} (n={g.n})" if g is not None else "-"
            reach = "{}/{}".format(*sc.reaching(model, PAPER_THRESHOLD)) if sc is not None and g is not None else "-"
            rows.append([TASK_NAMES[task], model, auc, steps, reach,
                         num(r["paper_value"], 0) if r is not None else "n/a"])
        if math.isfinite(threshold):
            lines.append(f"- {TASK_NAMES[task]}: steps to our threshold {num(100 * threshold, 0)} % (mean ± sd of "
                         "the seeds that reach it) are descriptive only; the figure shows them over a range of "
                         "thresholds.")
    if not rows:
        return "_No learning-speed data in this configuration._\n"
    table = markdown_table(rows, ["Task", "Model", "Area under the curve (%, mean ± sd)",
                                  "To our threshold (seeds reaching it)",
                                  f"Seeds whose curve reaches {100 * PAPER_THRESHOLD:.0f} %",
                                  f"Paper (epochs to {100 * PAPER_THRESHOLD:.0f} %)"])
    return "\n".join(lines) + "\n\n" + table


def table_threshold(rows: pd.DataFrame) -> float:
    """Our threshold of one task's rows of learning_speed.csv; NaN when they have none."""
    if rows.empty or "threshold" not in rows.columns or pd.isna(rows["threshold"].iloc[0]):
        return math.nan
    return float(rows["threshold"].iloc[0])


def speedup_section(f: Findings) -> str:
    """The paper's speed-ups, ours from the mean steps to our threshold: descriptive, with the threshold named."""
    sp = f.table("speedups")
    rows = [[TASK_NAMES.get(r["task"], r["task"]), r["fast"], r["slow"], pct(r["speedup"]), pct(r["paper_speedup"])]
            for _, r in sp.iterrows()] if not sp.empty else []
    table = markdown_table(rows, ["Task", "Fast", "Slow", "Ours: (slow - fast) / slow", "Paper"])
    if not rows:
        return table
    ls = f.table("learning_speed")
    thresholds = {task: table_threshold(ls[ls["task"] == task] if not ls.empty else ls) for task in sp["task"]}
    named = [f"{TASK_NAMES.get(t, t)} {num(100 * v, 0)} %" for t, v in thresholds.items() if math.isfinite(v)]
    note = ("Ours: from the mean steps to our threshold (" + ", ".join(named) + ") in the table above; the "
            f"paper's: from its epochs to {100 * PAPER_THRESHOLD:.0f} % test accuracy. A different criterion, "
            "descriptive only, no verdict: the learning-speed verdicts are the areas'; n/a where a seed never "
            "reaches the threshold.\n\n")
    return note + table


def pct(value) -> str:
    text = num(value, 3)
    return text if text == "n/a" else f"{100 * float(value):.0f} %"
