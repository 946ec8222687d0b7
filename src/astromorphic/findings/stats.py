"""The statistics behind every verdict of the findings page.

Two groups of seeds are compared by the difference of their means with a 95 % Welch interval and the Welch
t-test p-value (the same test: p < 0.05 exactly when the interval excludes 0). The comparisons of one family
(:func:`holm`; the page names its families) are corrected for multiple testing by Holm's step-down method;
a direction ("better", "worse", a claim that "reproduces") needs the Holm-adjusted p below 0.05 as well as
an interval that excludes 0. Two groups without spread have no interval (a zero-width one would claim
certainty that a handful of seeds cannot give): their comparison is undetermined, never decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

LEVEL = 0.95
ALPHA = 1 - LEVEL

REPRODUCES = "reproduces"
CONTRADICTED = "contradicted"
NOT_RESOLVED = "not resolved at this resolution"
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
    return Interval(diff, diff - half, diff + half, df)


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
    """+1: a better than b, -1: worse, 0: not shown (the interval contains 0, or the Holm-adjusted p is 0.05 or
    more), None: no interval."""
    if interval is None or not interval.bounded:
        return None
    if interval.contains(0) or (math.isfinite(p_adjusted) and p_adjusted >= ALPHA):
        return 0
    return (1 if interval.diff > 0 else -1) * (1 if higher_is_better else -1)


VERDICT = {1: "better", -1: "worse", 0: "not distinguishable", None: f"undetermined ({FEW_SEEDS})"}


def claim_verdict(ours: int | None, paper: int | None, interval: Interval | None = None,
                  paper_diff: float = math.nan, why: str = FEW_SEEDS) -> str:
    """Our comparison against the paper's: "contradicted" when our interval excludes the paper's difference (or,
    with no paper difference in our units, when we find the opposite direction), "reproduces" when it holds the
    paper's difference and excludes 0 on the paper's side, "not resolved at this resolution" when it holds both
    the paper's difference and 0."""
    if not paper:
        return "no direction in the paper"
    if ours is None:
        return f"undetermined ({why})"
    if interval is not None and interval.bounded and math.isfinite(paper_diff) and not interval.contains(paper_diff):
        if ours == -paper:
            return f"{CONTRADICTED} (opposite direction)"
        beyond = interval.low > paper_diff if paper_diff > 0 else interval.high < paper_diff
        return f"{CONTRADICTED} ({'larger' if beyond else 'smaller'} than the paper's difference)"
    if ours == 0:
        return NOT_RESOLVED
    return REPRODUCES if ours == paper else f"{CONTRADICTED} (opposite direction)"


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

    @property
    def sign(self) -> int | None:
        return better_sign(self.interval, self.higher_is_better, self.p_adjusted)

    @property
    def why(self) -> str:
        """Why there is no direction: too few seeds or no spread."""
        return NO_SPREAD if self.interval is not None and not self.interval.bounded else FEW_SEEDS

    @property
    def verdict(self) -> str:
        return VERDICT[self.sign] if self.sign is not None else f"undetermined ({self.why})"

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


def resolution_text(cmp: Comparison, unit: str = "") -> str:
    """The interval's half-width ('1.23 pp'); of a ratio comparison, on the log scale and as a factor."""
    res = cmp.resolution
    if isinstance(cmp, RatioComparison) and math.isfinite(res):
        return f"{num(res, 3)} in ln (a factor {num(math.exp(res), 3)})"
    return f"{num(res, 2)}{unit}" if math.isfinite(res) else "n/a"


def compare(a: Group, b: Group, higher_is_better: bool, unit: str = "", kind: type = Comparison) -> Comparison:
    """``kind`` RatioComparison: ``a`` and ``b`` are groups of log values."""
    return kind(a, b, higher_is_better, unit, welch_interval(a, b), welch_p(a, b))


def adjust(family: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons of one family with their Holm-adjusted p-values."""
    adjusted = holm([c.p for c in family])
    return [replace(c, p_adjusted=p) for c, p in zip(family, adjusted)]
