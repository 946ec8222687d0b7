"""The paper's claims against ours: Table I order, the language-model gap, the divergence of the Linearized
model (an observation); and the tidy table of the Table I comparisons that the forest plot draws. Learning
speed: :mod:`astromorphic.findings.speed`."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd

from astromorphic.findings.base import (
    LM,
    TABLE1_MODELS,
    TASK_NAMES,
    Findings,
    equivalence_margin,
    markdown_table,
    unit,
)
from astromorphic.findings.stats import (
    CONTRADICTED,
    LEVEL,
    NO_CLAIM,
    REPRODUCES,
    Comparison,
    Group,
    RatioComparison,
    adjust,
    compare,
    num,
    p_text,
    resolution_text,
    size_statement,
    verdict_word,
)

OBSERVATION = "observation, not a verdict"
# The families of the claims table (the generated summary counts verdicts per family)
FAMILIES = TABLE1_FAMILY, SPEED_FAMILY, LM_FAMILY, DIVERGENCE_FAMILY = (
    "Table I pairs", "Learning speed", "Language model", "Divergence")


@dataclass(frozen=True)
class Claim:
    claim: str
    paper: str
    ours: str
    verdict: str
    resolution: str = "-"
    p_adjusted: str = "-"
    size: str = ""  # beside the verdict: larger / smaller than the paper's difference, at this scale
    family: str = ""


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
        """:func:`astromorphic.findings.stats.verdict`: the paper claims the first model better."""
        return self.cmp.verdict_on(1)

    @property
    def size(self) -> str:
        return size_statement(self.cmp.interval, self.paper_diff)


def overall(verdicts: list[str]) -> str:
    """One verdict for a claim made of several comparisons: the common verdict when every pair has it; the common
    direction when every pair has it, some within the margin ('reproduces (1 of 3 pairs within ± 2 pp)'); else
    the count of each ('mixed: reproduces 1, not resolved 2')."""
    if not verdicts:
        return "not run"
    if len(set(verdicts)) == 1:
        return verdicts[0]
    words = {verdict_word(v) for v in verdicts}
    if len(words) == 1 and words <= {REPRODUCES, CONTRADICTED}:
        word = words.pop()
        within = [v for v in verdicts if v != word]  # 'reproduces (within ± 2 pp)': the qualifier in brackets
        qualifier = within[0].split(" (", 1)[1].rstrip(")")
        return f"{word} ({len(within)} of {len(verdicts)} pairs {qualifier})"
    counts = {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}
    return "mixed: " + ", ".join(f"{v} {k}" for v, k in counts.items())


def with_size(verdict: str, size: str) -> str:
    """A verdict and, beside it, the size statement ('reproduces; larger than the paper's difference, at this
    scale')."""
    return f"{verdict}; {size}" if size else verdict


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
    return compare(ga, gb, task != LM, unit(task), RatioComparison if task == LM else Comparison,
                   margin=equivalence_margin(f, task))


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
    """'± 3.47 pp; MDE 4.9 pp (widest pair)' (of the comparison with the largest interval half-width among
    ``cmps``; the label only where there are several)."""
    bounded = [c for c in cmps if math.isfinite(c.resolution)]
    if not bounded:
        return "none (no interval)"
    text = resolution_text(max(bounded, key=lambda c: c.resolution), task_unit)
    return f"{text} (widest pair)" if len(cmps) > 1 else text


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
        sizes = [p.size.split(" than")[0] for p in pairs if p.size]
        size = "; ".join(f"{sizes.count(w)} of {len(pairs)} pairs {w} than the paper's difference, at this scale"
                         for w in dict.fromkeys(sizes))
        out.append(Claim(f"Table I order on {TASK_NAMES[task]} ({what})", order_text(f, task, models, True),
                         order_text(f, task, models, False), overall([p.verdict for p in pairs]),
                         widest_resolution([p.cmp for p in pairs], unit(task)),
                         "; ".join(p_text(p.cmp.p_adjusted) for p in pairs), size, TABLE1_FAMILY))
    return out


def ordering_section(f: Findings) -> str:
    rows = []
    for task in f.tasks():
        for p in ordering_pairs(f, task):
            rows.append([TASK_NAMES[task], p.paper, paper_difference_text(task, p.paper_diff), p.cmp.text(),
                         resolution_text(p.cmp, unit(task)), p_text(p.cmp.p), p_text(p.cmp.p_adjusted),
                         p_text(p.cmp.p_tost_adjusted), NO_CLAIM if f.synthetic else p.verdict,
                         "-" if f.synthetic else p.size or "-"])
    header = ["Task", "Paper", "Paper's difference",
              f"Ours: difference of means (WikiText-2: ratio of geometric means) [{LEVEL:.0%} Welch interval]",
              "Half-width; MDE (80 % power)", "Welch p", "Holm p (task family)", "Holm TOST p", "Verdict",
              "Size beside the verdict"]
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
                             mde=c.min_detectable, margin=c.margin, paper_diff=p.paper_diff, p=c.p,
                             p_holm=c.p_adjusted, p_tost_holm=c.p_tost_adjusted, n_a=c.a.n, n_b=c.b.n,
                             verdict=NO_CLAIM if f.synthetic else p.verdict, size="" if f.synthetic else p.size,
                             data_source=f.data_source))
    columns = ["task", "a", "b", "unit", "diff", "low", "high", "resolution", "mde", "margin", "paper_diff", "p",
               "p_holm", "p_tost_holm", "n_a", "n_b", "verdict", "size", "data_source"]
    return pd.DataFrame(rows, columns=columns)


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
    size = size_statement(cmp.interval, paper_difference(LM, pa, pv))
    return Claim("WikiText-2: astro's perplexity below vanilla's", paper, cmp.text(), cmp.verdict_on(psign),
                 resolution_text(cmp), p_text(cmp.p_adjusted), size, LM_FAMILY)


def divergence_claim(f: Findings) -> Claim | None:
    """The paper's Linearized model diverges on the language model: how many of our seeds diverged, an observation
    outside the verdicts (a handful of seeds cannot estimate a divergence rate)."""
    r = f.row(LM, "linearized")
    if r is None:
        return None
    n, k = int(r["n_seeds"]), int(r.get("n_diverged", 0) or 0)
    note = str(r.get("note") or "")
    paper = "diverges" if "diverge" in note.lower() else "no divergence stated"
    epochs = diverged_epochs(f, LM, "linearized")
    ours = f"diverged in {k} of {n} seeds" + (f" (epochs {epochs})" if epochs else "")
    verdict = OBSERVATION if paper == "diverges" else "no claim in the paper"
    return Claim("WikiText-2: Linearized [18] diverges", paper, ours, verdict, family=DIVERGENCE_FAMILY)


def diverged_epochs(f: Findings, task: str, model: str) -> str:
    s = f.table("runs_summary")
    if s.empty or "diverged_epoch" not in s.columns:
        return ""
    rows = s[(s["task"] == task) & (s["model"] == model) & (s["status"] == "diverged")]
    return ", ".join(num(e, 0) for e in rows.sort_values("seed")["diverged_epoch"])


def divergence_section(f: Findings) -> str:
    """Diverged seeds of every model on the language model."""
    rows = []
    for model in f.models(LM):
        r = f.row(LM, model)
        epochs = diverged_epochs(f, LM, model)
        rows.append([model, f"{int(r.get('n_diverged', 0) or 0)} of {int(r['n_seeds'])}", epochs or "-"])
    return markdown_table(rows, ["Model", "Diverged seeds", "At epoch"])

