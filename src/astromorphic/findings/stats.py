"""The statistics behind every verdict of the findings page, and the one rule that turns them into a verdict.

Two groups of seeds are compared by the difference of their means with a 95 % Welch interval and the Welch
t-test p-value (the same test: p < 0.05 exactly when the interval excludes 0), and by two one-sided Welch tests
(TOST) against an equivalence margin (``report.equivalence_margin`` of the task). The comparisons of one family
(:func:`holm`; the page names its families) are corrected for multiple testing by Holm's step-down method, the
two-sided p-values and the TOST p-values each within the family. :func:`verdict` is the only rule: a direction
(a claim that "reproduces" or is "contradicted"; without a claim, "better" or "worse") needs the Holm-adjusted
two-sided p below the level, either way; "equivalent within ± margin" needs the Holm-adjusted TOST p below it;
anything else is "not resolved". Two groups without spread have no interval (a zero-width one would claim
certainty that a handful of seeds cannot give): their comparison is undetermined, never decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

LEVEL = 0.95
ALPHA = 1 - LEVEL

POWER = 0.80  # the power of the minimum detectable difference stated beside each half-width

REPRODUCES = "reproduces"
CONTRADICTED = "contradicted"
EQUIVALENT = "equivalent"  # shown as "equivalent within ± <margin>"
NOT_RESOLVED = "not resolved"
BETTER, WORSE = "better", "worse"
NO_CLAIM = "synthetic stand-in: no claim"
FEW_SEEDS = "fewer than 2 seeds"
NO_SPREAD = "no spread in either group: no interval"


@dataclass(frozen=True)
class Group:
    """One model's seeds of one metric: mean, sample sd and the number of seeds behind them."""

    label: str
    mean: float
    sd: float
    n: int


@dataclass(frozen=True)
class Interval:
    """mean(a) - mean(b) with its interval; ``low``/``high`` are NaN when the groups have no spread."""

    diff: float
    low: float
    high: float
    df: float = math.nan
    se: float = math.nan  # the standard error of the difference (Welch)

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def half_width(self) -> float:
        """The resolution of the comparison: a true difference smaller than this cannot exclude 0."""
        return (self.high - self.low) / 2 if self.bounded else math.nan

    def contains(self, value: float) -> bool:
        return self.bounded and self.low <= value <= self.high


def welch_interval(a: Group, b: Group, level: float = LEVEL) -> Interval | None:
    """Interval for mean(a) - mean(b) by Welch's t (unequal variances); None with fewer than 2 seeds in a group.
    Two groups without spread give the point difference with NaN bounds: no interval, no verdict."""
    from scipy import stats

    values = (a.mean, a.sd, b.mean, b.sd)
    if a.n < 2 or b.n < 2 or not all(math.isfinite(v) for v in values):
        return None
    va, vb = a.sd**2 / a.n, b.sd**2 / b.n
    diff = a.mean - b.mean
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(diff, math.nan, math.nan)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return Interval(diff, diff - half, diff + half, df, se)


def tost_p(interval: Interval | None, margin: float) -> float:
    """The p-value of two one-sided Welch tests of |true difference| < ``margin`` (the larger of the two one-sided
    p-values, on the interval's standard error and degrees of freedom); NaN without an interval or a margin."""
    from scipy import stats

    if interval is None or not interval.bounded or not (math.isfinite(margin) and margin > 0):
        return math.nan
    above = float(stats.t.sf((interval.diff + margin) / interval.se, interval.df))  # H0: diff <= -margin
    below = float(stats.t.cdf((interval.diff - margin) / interval.se, interval.df))  # H0: diff >= +margin
    return max(above, below)


def min_detectable(interval: Interval | None, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true difference a two-sided Welch test at ``alpha`` detects with probability ``power``, by the
    usual approximation (t_{1-alpha/2, df} + t_{power, df}) x SE on the interval's own SE and df (the seeds'
    spread taken as known, the other tail neglected); NaN without an interval."""
    from scipy import stats

    if interval is None or not interval.bounded:
        return math.nan
    return float(stats.t.ppf(1 - alpha / 2, interval.df) + stats.t.ppf(power, interval.df)) * interval.se


def welch_p(a: Group, b: Group) -> float:
    """Two-sided Welch t-test p-value from the groups' summaries; NaN where :func:`welch_interval` has no bounds."""
    from scipy import stats

    interval = welch_interval(a, b)
    if interval is None or not interval.bounded:
        return math.nan
    return float(stats.ttest_ind_from_stats(a.mean, a.sd, a.n, b.mean, b.sd, b.n, equal_var=False).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of one family of p-values; NaN entries are no test and stay NaN (they do not
    count in the family's size)."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and math.isfinite(p))
    m = len(tested)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def better_sign(interval: Interval | None, higher_is_better: bool, p_adjusted: float = math.nan) -> int | None:
    """+1: a better than b, -1: worse, 0: no direction (the Holm-adjusted p, or the p of an interval alone, is at
    the level or above), None: no interval."""
    if interval is None or not interval.bounded:
        return None
    if interval.contains(0) or (math.isfinite(p_adjusted) and p_adjusted >= ALPHA):
        return 0
    return (1 if interval.diff > 0 else -1) * (1 if higher_is_better else -1)


def margin_text(margin: float, unit: str = "", ratio: bool = False) -> str:
    """'± 1 pp'; a ratio comparison's margin as the factor it stands for ('± 5 % in ratio')."""
    if not math.isfinite(margin):
        return "± n/a"
    if ratio:
        return f"± {100 * (math.exp(margin) - 1):.3g} % in ratio"
    return f"± {margin:g}{unit}"


def verdict(sign: int | None, paper: int | None, equivalent: bool, margin: str = "", why: str = FEW_SEEDS,
            words: tuple[str, str] = (BETTER, WORSE)) -> str:
    """The one verdict rule of the page, for every family. ``sign``: our direction after the family's Holm
    correction (+1 the first group better, -1 worse, 0 none, None no interval); ``paper``: the paper's direction
    (+1: it claims the first group better), or None where the paper makes no claim; ``equivalent``: the
    Holm-adjusted TOST p is below the level. A direction decides first (reproduces / contradicted, or better /
    worse without a claim; with an equivalence beside it the verdict adds that the difference is within the
    margin); else equivalence; else not resolved. ``words``: the directions without a claim ('faster', 'slower')."""
    if sign is None:
        return f"undetermined ({why})"
    if sign:
        word = words[0 if sign > 0 else 1] if not paper else (REPRODUCES if sign == paper else CONTRADICTED)
        return f"{word} (within {margin})" if equivalent else word
    return f"{EQUIVALENT} within {margin}" if equivalent else NOT_RESOLVED


def verdict_word(verdict: str) -> str:
    """The verdict without what follows it ('reproduces (within ± 1 pp)' -> 'reproduces'; 'equivalent within ±
    1 pp' -> 'equivalent')."""
    head = str(verdict).split(" (")[0].split(";")[0]
    return EQUIVALENT if head.startswith(EQUIVALENT) else head


def size_statement(interval: Interval | None, paper_diff: float) -> str:
    """Beside a verdict, never a verdict: 'larger' ('smaller') 'than the paper's difference, at this scale' when
    the interval excludes the paper's difference (further from 0 on the paper's side, or short of it); '' when it
    holds it or there is no interval or no paper difference in our units."""
    if interval is None or not interval.bounded or not math.isfinite(paper_diff) or paper_diff == 0:
        return ""
    if interval.contains(paper_diff):
        return ""
    beyond = interval.low > paper_diff if paper_diff > 0 else interval.high < paper_diff
    return f"{'larger' if beyond else 'smaller'} than the paper's difference, at this scale"


def num(value: Any, digits: int = 2, sign: bool = False) -> str:
    """Fixed-digit text of a number; 'n/a' when missing."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def p_text(p: Any) -> str:
    text = num(p, 3)
    return "< 0.001" if text == "0.000" else text


@dataclass(frozen=True)
class Comparison:
    a: Group
    b: Group
    higher_is_better: bool
    unit: str = ""
    interval: Interval | None = field(default=None)
    p: float = math.nan
    p_adjusted: float = math.nan
    margin: float = math.nan  # the equivalence margin, in the units of the difference
    p_tost: float = math.nan
    p_tost_adjusted: float = math.nan

    @property
    def sign(self) -> int | None:
        return better_sign(self.interval, self.higher_is_better, self.p_adjusted)

    @property
    def equivalent(self) -> bool:
        """Both one-sided tests reject a difference beyond the margin, after the family's Holm correction (the
        TOST p of a comparison outside any family when it was not adjusted)."""
        p = self.p_tost_adjusted if math.isfinite(self.p_tost_adjusted) else self.p_tost
        return math.isfinite(p) and p < ALPHA

    @property
    def margin_text(self) -> str:
        return margin_text(self.margin, self.unit, isinstance(self, RatioComparison))

    def verdict_on(self, paper: int | None, words: tuple[str, str] = (BETTER, WORSE)) -> str:
        """:func:`verdict` of this comparison against the paper's direction (None: no claim)."""
        return verdict(self.sign, paper, self.equivalent, self.margin_text, self.why, words)

    @property
    def min_detectable(self) -> float:
        return min_detectable(self.interval)

    @property
    def why(self) -> str:
        """Why there is no direction: too few seeds or no spread."""
        return NO_SPREAD if self.interval is not None and not self.interval.bounded else FEW_SEEDS

    @property
    def verdict(self) -> str:
        """Without a claim of the paper: better / worse / equivalent within the margin / not resolved."""
        return self.verdict_on(None)

    @property
    def resolution(self) -> float:
        return self.interval.half_width if self.interval is not None else math.nan

    def text(self, digits: int = 2) -> str:
        """'astro - vanilla = +1.23 pp [-0.50, +2.96]' (95 % Welch interval)."""
        if not (math.isfinite(self.a.mean) and math.isfinite(self.b.mean)):
            return f"{self.a.label} - {self.b.label}: n/a"
        diff = self.a.mean - self.b.mean
        out = f"{self.a.label} - {self.b.label} = {num(diff, digits, True)}{self.unit}"
        if self.interval is not None and self.interval.bounded:
            out += f" [{num(self.interval.low, digits, True)}, {num(self.interval.high, digits, True)}]"
        elif self.interval is not None:
            out += " [no interval: no spread]"
        return out


@dataclass(frozen=True)
class RatioComparison(Comparison):
    """A comparison of the seeds' log values (the language model's perplexities): the interval is that of the
    difference of mean logs, shown as the ratio of geometric means, and the resolution as a factor."""

    def text(self, digits: int = 2) -> str:
        """'astro / vanilla = 1.03 [0.98, 1.08]' (ratio of geometric means, 95 % Welch interval)."""
        if not (math.isfinite(self.a.mean) and math.isfinite(self.b.mean)):
            return f"{self.a.label} / {self.b.label}: n/a"
        out = f"{self.a.label} / {self.b.label} = {num(math.exp(self.a.mean - self.b.mean), digits)}"
        if self.interval is not None and self.interval.bounded:
            out += f" [{num(math.exp(self.interval.low), digits)}, {num(math.exp(self.interval.high), digits)}]"
        elif self.interval is not None:
            out += " [no interval: no spread]"
        return out


def resolution_text(cmp: Comparison, unit: str = "", digits: int = 2) -> str:
    """The interval's half-width and the minimum difference detectable with 80 % power ('± 1.23 pp; MDE 1.75 pp');
    of a ratio comparison, on the log scale with the factors they stand for."""
    res, mde = cmp.resolution, cmp.min_detectable
    if not math.isfinite(res):
        return "n/a"
    if isinstance(cmp, RatioComparison):
        return (f"± {num(res, 3)} in ln (a factor {num(math.exp(res), 3)}); MDE {num(mde, 3)} "
                f"(a factor {num(math.exp(mde), 3)})")
    return f"± {num(res, digits)}{unit}; MDE {num(mde, digits)}{unit}"


def compare(a: Group, b: Group, higher_is_better: bool, unit: str = "", kind: type = Comparison,
            margin: float = math.nan) -> Comparison:
    """``kind`` RatioComparison: ``a`` and ``b`` are groups of log values (``margin`` then on the log scale)."""
    interval = welch_interval(a, b)
    return kind(a, b, higher_is_better, unit, interval, welch_p(a, b), margin=margin, p_tost=tost_p(interval, margin))


def adjust(family: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons of one family with their Holm-adjusted p-values: the two-sided ones, and the TOST ones, each
    within the family."""
    adjusted, tost = holm([c.p for c in family]), holm([c.p_tost for c in family])
    return [replace(c, p_adjusted=p, p_tost_adjusted=q) for c, p, q in zip(family, adjusted, tost)]
