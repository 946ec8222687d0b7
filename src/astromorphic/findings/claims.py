"""The paper's claims against ours: Table I order, learning speed, the language-model gap, the divergence of
the Linearized model; and the tidy table of the Table I comparisons that the forest plot draws."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd

from astromorphic import tasks as task_registry
from astromorphic.findings.base import (
    CLASSIFIERS,
    LM,
    PAPER_THRESHOLD,
    TABLE1_MODELS,
    TASK_NAMES,
    Findings,
    markdown_table,
    unit,
)
from astromorphic.findings.stats import (
    LEVEL,
    NO_CLAIM,
    NOT_RESOLVED,
    REPRODUCES,
    Comparison,
    Group,
    RatioComparison,
    adjust,
    claim_verdict,
    compare,
    num,
    p_text,
    resolution_text,
)


@dataclass(frozen=True)
class Claim:
    claim: str
    paper: str
    ours: str
    verdict: str
    resolution: str = "-"
    p_adjusted: str = "-"


@dataclass(frozen=True)
class Pair:
    """One comparison the paper makes: our comparison (the paper's better model first) and the paper's difference
    in the same orientation and units (the language model: the log of the paper's ratio; NaN when the paper's
    numbers are in other units: direction only)."""

    task: str
    cmp: Comparison
    paper: str
    paper_diff: float = math.nan

    @property
    def verdict(self) -> str:
        return claim_verdict(self.cmp.sign, 1, self.cmp.interval, self.paper_diff, self.cmp.why)


def overall(verdicts: list[str]) -> str:
    """One verdict for a claim made of several comparisons."""
    if not verdicts:
        return "not run"
    if all(v == REPRODUCES for v in verdicts):
        return REPRODUCES
    bad = sum(v.startswith("contradicted") for v in verdicts)
    if bad:
        return f"contradicted ({bad} of {len(verdicts)} pairs)"
    good = sum(v == REPRODUCES for v in verdicts)
    if good:
        return f"partly ({good} of {len(verdicts)} pairs reproduce)"
    return NOT_RESOLVED if NOT_RESOLVED in verdicts else verdicts[0]


def all_diverged(f: Findings, task: str, model: str) -> bool:
    r = f.row(task, model)
    return r is not None and int(r["n_seeds"]) > 0 and int(r.get("n_diverged", 0) or 0) == int(r["n_seeds"])


@dataclass(frozen=True)
class DivergedComparison(Comparison):
    """A comparison in which one side diverged in every seed: that side has no result, so it is the worse one."""

    diverged: str = ""

    @property
    def sign(self) -> int | None:
        if self.diverged == self.a.label:
            return -1
        return 1 if self.diverged == self.b.label else None

    def text(self, digits: int = 2) -> str:
        return f"{self.a.label} vs {self.b.label}: {self.diverged} diverged in every seed"


def claim_group(f: Findings, task: str, model: str) -> Group | None:
    """The seeds a claim compares: Table I's numbers; the language model's on the log scale (ratios)."""
    return f.log_group(task, model) if task == LM else f.group(task, model)


def paper_difference(task: str, better: float, worse: float) -> float:
    """The paper's difference in the units of :func:`claim_group`: the language model's as a log ratio."""
    if task == LM:
        return math.log(better / worse) if better > 0 and worse > 0 else math.nan
    return better - worse


def claim_unit(task: str) -> str:
    return "ln perplexity ratio" if task == LM else unit(task).strip()


def compare_runs(f: Findings, task: str, a: str, b: str) -> Comparison:
    """The claim groups (:func:`claim_group`) of ``a`` and ``b`` compared; a model that diverged in every seed loses
    to one that did not."""
    ga, gb = claim_group(f, task, a), claim_group(f, task, b)
    da, db = all_diverged(f, task, a), all_diverged(f, task, b)
    if da != db:
        return DivergedComparison(ga, gb, task != LM, unit(task), None, diverged=a if da else b)
    return compare(ga, gb, task != LM, unit(task), RatioComparison if task == LM else Comparison)


def ordering_pairs(f: Findings, task: str) -> list[Pair]:
    """Every pair of the Table I models, the paper's better one first; Holm-adjusted within the task."""
    higher = task != LM
    ranked = []
    for model in TABLE1_MODELS:
        r = f.row(task, model)
        if r is not None and pd.notna(r.get("paper_value")) and claim_group(f, task, model) is not None:
            ranked.append((model, float(r["paper_value"])))
    ranked.sort(key=lambda mv: -mv[1] if higher else mv[1])
    pairs = []
    for i, (a, pa) in enumerate(ranked):
        for b, pb in ranked[i + 1 :]:
            if pa != pb:
                pairs.append(Pair(task, compare_runs(f, task, a, b), f"{a} {num(pa, 1)} vs {b} {num(pb, 1)}",
                                  paper_difference(task, pa, pb)))
    adjusted = adjust([p.cmp for p in pairs])
    return [replace(p, cmp=c) for p, c in zip(pairs, adjusted)]


def order_text(f: Findings, task: str, models: list[str], paper: bool) -> str:
    """'vanilla > astro > linearized' by the paper's values or by our means (perplexity: '<')."""
    higher = task != LM
    key = "paper_value" if paper else "mean"
    values = [(m, float(f.row(task, m)[key])) for m in models if f.row(task, m) is not None]
    values = [(m, v) for m, v in values if math.isfinite(v)]
    values.sort(key=lambda mv: -mv[1] if higher else mv[1])
    texts = [f"{m} ({num(v, 1)})" for m, v in values]
    if not paper:  # a model without a result in any seed ranks last
        texts += [f"{m} (diverged)" for m in models if all_diverged(f, task, m)]
    return (" > " if higher else " < ").join(texts) or "n/a"


def widest_resolution(cmps: list[Comparison], task_unit: str) -> str:
    """'± 3.47 pp' (the largest interval half-width among ``cmps``)."""
    bounded = [c for c in cmps if math.isfinite(c.resolution)]
    if not bounded:
        return "none (no interval)"
    return "± " + resolution_text(max(bounded, key=lambda c: c.resolution), task_unit)


def paper_difference_text(task: str, diff: float) -> str:
    """'+0.2 pp'; the language model's as the paper's ratio."""
    if task == LM:
        return f"ratio {num(math.exp(diff), 2)}" if math.isfinite(diff) else "n/a"
    return num(diff, 1, True) + unit(task)


def ordering_claims(f: Findings) -> list[Claim]:
    out = []
    for task in f.tasks():
        pairs = ordering_pairs(f, task)
        if not pairs:
            continue
        models = [m for m in TABLE1_MODELS if f.group(task, m) is not None]
        what = "test perplexity" if task == LM else "test accuracy (%)"
        out.append(Claim(f"Table I order on {TASK_NAMES[task]} ({what})", order_text(f, task, models, True),
                         order_text(f, task, models, False), overall([p.verdict for p in pairs]),
                         widest_resolution([p.cmp for p in pairs], unit(task)),
                         "; ".join(p_text(p.cmp.p_adjusted) for p in pairs)))
    return out


def ordering_section(f: Findings) -> str:
    rows = []
    for task in f.tasks():
        for p in ordering_pairs(f, task):
            rows.append([TASK_NAMES[task], p.paper, paper_difference_text(task, p.paper_diff), p.cmp.text(),
                         resolution_text(p.cmp), p_text(p.cmp.p), p_text(p.cmp.p_adjusted),
                         NO_CLAIM if f.synthetic else p.verdict])
    header = ["Task", "Paper", "Paper's difference",
              f"Ours: difference of means (WikiText-2: ratio of geometric means) [{LEVEL:.0%} Welch interval]",
              "Resolution (± half-width)", "Welch p", "Holm p (task family)", "Claim"]
    return markdown_table(rows, header)


def claims_frame(f: Findings) -> pd.DataFrame:
    """One row per Table I pair: our difference, its interval and resolution, the paper's difference, p-values and
    the verdict (what the forest plot draws)."""
    rows = []
    for task in f.tasks():
        for p in ordering_pairs(f, task):
            c = p.cmp
            interval = c.interval
            rows.append(dict(task=task, a=c.a.label, b=c.b.label, unit=claim_unit(task),
                             diff=c.a.mean - c.b.mean, low=interval.low if interval else math.nan,
                             high=interval.high if interval else math.nan, resolution=c.resolution,
                             paper_diff=p.paper_diff, p=c.p, p_holm=c.p_adjusted, n_a=c.a.n, n_b=c.b.n,
                             verdict=NO_CLAIM if f.synthetic else p.verdict, data_source=f.data_source))
    columns = ["task", "a", "b", "unit", "diff", "low", "high", "resolution", "paper_diff", "p", "p_holm", "n_a",
               "n_b", "verdict", "data_source"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------------ learning speed


def speed_rows(f: Findings, task: str) -> tuple[pd.DataFrame, str]:
    """The learning-speed rows of ``task`` at the finest resolution present (optimiser steps, else epochs), indexed
    by model, and their unit."""
    ls = f.table("learning_speed")
    if ls.empty:
        return ls, ""
    for criterion, what in (("steps_to_threshold", "steps"), ("epochs_to_threshold", "epochs")):
        rows = ls[(ls["task"] == task) & (ls["criterion"] == criterion)]
        if len(rows):
            return rows.set_index("model"), what
    return ls.iloc[:0], ""


def speed_comparison(f: Findings, task: str, fast: str, slow: str) -> tuple[str, str, Comparison | None, int | None,
                                                                             str] | None:
    """(paper text, our text, comparison, our direction, why undetermined) for 'fast reaches the threshold first'."""
    rows, what = speed_rows(f, task)
    if fast not in rows.index or slow not in rows.index:
        return None
    a, b = rows.loc[fast], rows.loc[slow]
    paper = f"{fast} {num(a['paper_value'], 0)} vs {slow} {num(b['paper_value'], 0)} epochs"
    na, nb, sa, sb = int(a["n_reached"]), int(b["n_reached"]), int(a["n_seeds"]), int(b["n_seeds"])
    thr = f"{num(100 * float(a['threshold']), 0)} %"
    if na == sa > 0 and nb == sb > 0:
        cmp = compare(Group(fast, a["mean"], a["sd"], na), Group(slow, b["mean"], b["sd"], nb), False, f" {what}")
        return paper, cmp.text(1), cmp, cmp.sign, cmp.why
    if na == sa > 0 and nb == 0:
        return paper, f"{fast} reached {thr} in every seed ({num(a['mean'], 1)} {what}), {slow} in none", None, 1, ""
    if nb == sb > 0 and na == 0:
        return paper, f"{slow} reached {thr} in every seed ({num(b['mean'], 1)} {what}), {fast} in none", None, -1, ""
    ours = f"{fast} reached {thr} in {na}/{sa} seeds, {slow} in {nb}/{sb}"
    return paper, ours, None, None, "censored: the threshold was not reached in every seed"


def _paper_speed_sign(f: Findings, task: str, fast: str, slow: str) -> int | None:
    rows, _ = speed_rows(f, task)
    pa, pb = float(rows.loc[fast, "paper_value"]), float(rows.loc[slow, "paper_value"])
    if not (math.isfinite(pa) and math.isfinite(pb)) or pa == pb:
        return None
    return 1 if pa < pb else -1


def speed_claims(f: Findings) -> list[Claim]:
    """The paper's speed statements, direction only (the paper counts epochs to 85 %, we count optimiser steps or
    epochs to our threshold); Holm-adjusted among the pairs of one task."""
    out = []
    for task in [t for t in f.tasks() if task_registry.get(t).speedup_pairs]:
        pairs = task_registry.get(task).speedup_pairs  # the paper's learning-speed statements, Sec. IV-C-4
        found = [(fast, slow, speed_comparison(f, task, fast, slow)) for fast, slow in pairs]
        found = [(fast, slow, c) for fast, slow, c in found if c is not None]
        tested = adjust([c[2] for _, _, c in found if c[2] is not None])
        what = speed_rows(f, task)[1]
        for fast, slow, (paper, ours, cmp, sign, why) in found:
            if cmp is not None:
                cmp = tested.pop(0)
                sign = cmp.sign
            psign = _paper_speed_sign(f, task, fast, slow)
            verdict = claim_verdict(sign, psign, why=why) if sign is not None or not psign else f"undetermined ({why})"
            out.append(Claim(f"{TASK_NAMES[task]}: {fast} learns faster than {slow}", paper, ours, verdict,
                             f"± {num(cmp.resolution, 1)} {what}" if cmp is not None else "-",
                             p_text(cmp.p_adjusted) if cmp is not None else "-"))
    return out


def learning_speed_section(f: Findings) -> str:
    """Steps (epochs for records without a learning curve) to the threshold per model, the threshold and its
    resolution stated next to the paper's criterion."""
    ls = f.table("learning_speed")
    if ls.empty:
        return "_No learning-speed table in this configuration._\n"
    lines, rows = [], []
    for task in [t for t in f.tasks() if t in set(ls["task"])]:
        sub = ls[ls["task"] == task]
        unit_ = str(sub["unit"].iloc[0]) if "unit" in sub.columns else "epochs"
        if task == LM:
            criterion = f"{unit_} to the lowest validation perplexity (paper: epochs to its best test perplexity)"
        else:
            criterion = (f"{unit_} to {num(100 * float(sub['threshold'].iloc[0]), 0)} % accuracy (paper: epochs to "
                         f"{100 * PAPER_THRESHOLD:.0f} % test accuracy)")
        basis = ("optimiser steps, from the runs' learning curves" if unit_ == "steps" else
                 "epochs: the records have no step-resolution learning curve, so the per-epoch metrics are used")
        lines.append(f"- {TASK_NAMES[task]}: {criterion}; resolution: {basis}.")
        for _, r in sub.iterrows():
            ours = (f"{num(r['mean'], 1)} ± {num(r['sd'], 1)}" if int(r["n_reached"]) else
                    "not reached" if task != LM else "diverged")
            rows.append([TASK_NAMES[task], r["model"], ours,
                         f"{int(r['n_reached'])}/{int(r['n_seeds'])}", num(r["paper_value"], 0)])
    table = markdown_table(rows, ["Task", "Model", "Ours (mean ± sd)", "Seeds reached", "Paper (epochs)"])
    return "\n".join(lines) + "\n\n" + table


def speedup_section(f: Findings) -> str:
    sp = f.table("speedups")
    rows = [[TASK_NAMES.get(r["task"], r["task"]), r["fast"], r["slow"], pct(r["speedup"]), pct(r["paper_speedup"])]
            for _, r in sp.iterrows()] if not sp.empty else []
    return markdown_table(rows, ["Task", "Fast", "Slow", "Ours: (slow - fast) / slow", "Paper"])


def pct(value) -> str:
    text = num(value, 3)
    return text if text == "n/a" else f"{100 * float(value):.0f} %"


# ------------------------------------------------------------------------------------------ the language model


def lm_gap_claim(f: Findings) -> Claim | None:
    """Astro's perplexity against vanilla's, as a ratio (Holm-adjusted among the LM's Table I pairs)."""
    ra, rv = f.row(LM, "astro"), f.row(LM, "vanilla")
    if ra is None or rv is None or claim_group(f, LM, "astro") is None or claim_group(f, LM, "vanilla") is None:
        return None
    pa, pv = float(ra["paper_value"]), float(rv["paper_value"])
    pairs = [p.cmp for p in ordering_pairs(f, LM) if (p.cmp.a.label, p.cmp.b.label) == ("astro", "vanilla")]
    cmp = pairs[0] if pairs else compare_runs(f, LM, "astro", "vanilla")
    paper = f"astro {num(pa, 1)} vs vanilla {num(pv, 1)} (ratio {num(pa / pv, 2)})"
    psign = (1 if pa < pv else -1) if math.isfinite(pa) and math.isfinite(pv) and pa != pv else None
    verdict = claim_verdict(cmp.sign, psign, cmp.interval, paper_difference(LM, pa, pv), cmp.why)
    return Claim("WikiText-2: astro's perplexity below vanilla's", paper, cmp.text(), verdict, resolution_text(cmp),
                 p_text(cmp.p_adjusted))


def divergence_claim(f: Findings) -> Claim | None:
    r = f.row(LM, "linearized")
    if r is None:
        return None
    n, k = int(r["n_seeds"]), int(r.get("n_diverged", 0) or 0)
    note = str(r.get("note") or "")
    paper = "diverges" if "diverge" in note.lower() else "no divergence stated"
    epochs = diverged_epochs(f, LM, "linearized")
    ours = f"diverged in {k} of {n} seeds" + (f" (epochs {epochs})" if epochs else "")
    if paper != "diverges":
        verdict = "no direction in the paper"
    else:
        verdict = REPRODUCES if k == n > 0 else (f"partly ({k} of {n} seeds)" if k else "not reproduced")
    return Claim("WikiText-2: Linearized [18] diverges", paper, ours, verdict)


def diverged_epochs(f: Findings, task: str, model: str) -> str:
    s = f.table("runs_summary")
    if s.empty or "diverged_epoch" not in s.columns:
        return ""
    rows = s[(s["task"] == task) & (s["model"] == model) & (s["status"] == "diverged")]
    return ", ".join(num(e, 0) for e in rows.sort_values("seed")["diverged_epoch"])


def claims(f: Findings) -> list[Claim]:
    """Every claim; on anything but real data the verdict is withheld."""
    out = ordering_claims(f) + speed_claims(f)
    out += [c for c in (lm_gap_claim(f), divergence_claim(f)) if c is not None]
    return [replace(c, verdict=NO_CLAIM) for c in out] if f.synthetic else out


def claims_section(f: Findings) -> str:
    rows = [[c.claim, c.paper, c.ours, c.resolution, c.p_adjusted, c.verdict if f.synthetic else f"**{c.verdict}**"]
            for c in claims(f)]
    return markdown_table(rows, ["Claim", "Paper", "Ours", "Resolution (± half-width)", "Holm p", "Verdict"])


def divergence_section(f: Findings) -> str:
    """Diverged seeds of every model on the language model."""
    rows = []
    for model in f.models(LM):
        r = f.row(LM, model)
        epochs = diverged_epochs(f, LM, model)
        rows.append([model, f"{int(r.get('n_diverged', 0) or 0)} of {int(r['n_seeds'])}", epochs or "-"])
    return markdown_table(rows, ["Model", "Diverged seeds", "At epoch"])

