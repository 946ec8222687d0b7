"""The one verdict rule of the findings page (direction by Holm-adjusted p either way, equivalence by two one-sided
tests against a margin, otherwise not resolved), the minimum detectable difference, the learning-speed area under
the curve, the steps-to-threshold figure and the generated summary; against computations by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from astromorphic import findings
from astromorphic.findings import Findings, Group
from astromorphic.tables import speed


def _group(label: str, values: list[float]) -> Group:
    return Group(label, float(np.mean(values)), float(np.std(values, ddof=1)), len(values))


def _welch_by_hand(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """(difference, standard error, Welch-Satterthwaite df) of two samples."""
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return float(np.mean(a) - np.mean(b)), float(math.sqrt(va + vb)), float(df)


A = [80.1, 80.6, 80.3, 80.9, 80.4]
B = [80.2, 80.0, 80.7, 80.5, 80.1]


def test_tost_p_and_minimum_detectable_difference_by_hand():
    diff, se, df = _welch_by_hand(A, B)
    cmp = findings.compare(_group("a", A), _group("b", B), True, " pp", margin=1.0)
    # two one-sided tests: H0 diff <= -1 and H0 diff >= +1, each a one-sided Welch t-test
    lower = stats.ttest_ind(A, np.array(B) - 1.0, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(A, np.array(B) + 1.0, equal_var=False, alternative="less").pvalue
    assert cmp.p_tost == pytest.approx(max(lower, upper))
    assert cmp.p_tost == pytest.approx(max(stats.t.sf((diff + 1) / se, df), stats.t.cdf((diff - 1) / se, df)))
    assert cmp.equivalent and cmp.verdict == "equivalent within ± 1 pp"
    # the MDE at 80 % power: (t_{0.975, df} + t_{0.8, df}) x SE
    assert cmp.min_detectable == pytest.approx((stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * se)
    assert cmp.min_detectable > cmp.resolution  # the half-width is the difference detected about half the time
    # a power check of the approximation: a true difference of one MDE, Welch tests on normal samples
    rng = np.random.default_rng(0)
    sd = np.std(A, ddof=1)
    hits = [stats.ttest_ind(rng.normal(cmp.min_detectable, sd, 5), rng.normal(0, sd, 5), equal_var=False).pvalue
            < 0.05 for _ in range(4000)]
    assert 0.7 < np.mean(hits) < 0.86
    # a narrower margin than the data allow: no equivalence, and not resolved
    tight = findings.compare(_group("a", A), _group("b", B), True, " pp", margin=0.1)
    assert not tight.equivalent and tight.verdict == "not resolved"


def test_one_verdict_rule_each_outcome_both_directions():
    hi, lo = [84.9, 85.1, 85.0, 85.2], [83.0, 82.8, 83.1, 82.9]
    up = findings.compare(_group("a", hi), _group("b", lo), True, " pp", margin=1.0)
    down = findings.compare(_group("a", lo), _group("b", hi), True, " pp", margin=1.0)
    assert up.p < 0.05 and up.sign == 1 and down.sign == -1
    assert up.verdict_on(1) == "reproduces" and down.verdict_on(1) == "contradicted"
    assert down.verdict_on(-1) == "reproduces" and up.verdict_on(-1) == "contradicted"
    assert up.verdict == "better" and down.verdict == "worse"  # no claim of the paper
    assert up.verdict_on(None, ("faster", "slower")) == "faster"
    # lower is better (perplexity): the same numbers read the other way
    ppl = findings.compare(_group("a", hi), _group("b", lo), False, margin=1.0)
    assert ppl.sign == -1 and ppl.verdict_on(1) == "contradicted"
    # a direction needs the Holm-adjusted p: with a family of tests the same comparison can lose it
    family = findings.adjust([up] + [findings.compare(_group("x", A), _group("y", B), True, margin=0.01)] * 3)
    assert family[0].p_adjusted == pytest.approx(min(1.0, 4 * up.p))
    weak = findings.compare(_group("a", [80.0, 81.5, 80.7, 80.9]), _group("b", [79.4, 80.1, 79.0, 80.2]), True,
                            margin=0.1)
    assert weak.p < 0.05 and weak.sign == 1
    holm = findings.adjust([weak, findings.compare(_group("c", [1.0, 2.0, 3.0]), _group("d", [1.5, 2.5, 3.5]),
                                                   True, margin=0.1)])
    assert holm[0].p_adjusted >= 0.05 and holm[0].sign == 0 and holm[0].verdict_on(1) == "not resolved"
    # a resolved direction within the margin
    close = findings.compare(_group("a", [80.30, 80.31, 80.29, 80.30]), _group("b", [80.0, 80.01, 79.99, 80.0]),
                             True, margin=1.0)
    assert close.verdict_on(1) == "reproduces (within ± 1)"
    assert findings.verdict(None, 1, False, why="fewer than 2 seeds") == "undetermined (fewer than 2 seeds)"
    # a ratio comparison's margin is on the log scale and reads as a ratio
    ratio = findings.compare(_group("a", list(np.log([100, 101, 99]))), _group("b", list(np.log([100, 99, 101]))),
                             False, kind=findings.RatioComparison, margin=math.log(1.05))
    assert ratio.verdict == "equivalent within ± 5 % in ratio"


def test_tost_is_holm_adjusted_within_the_family():
    cmps = [findings.compare(_group("a", A), _group("b", B), True, margin=m) for m in (1.0, 0.5, 0.4)]
    adjusted = findings.adjust(cmps)
    assert [c.p_tost_adjusted for c in adjusted] == pytest.approx(findings.holm([c.p_tost for c in cmps]))


def test_area_under_a_hand_made_curve():
    steps, values = [0, 10, 20, 40], [0.5, 0.7, 0.8, 0.9]
    # trapezoids: 10 * 0.6 + 10 * 0.75 + 20 * 0.85 = 30.5 over 40 steps
    assert speed.curve_auc(steps, values, 40) == pytest.approx(30.5 / 40)
    # cut at 30: the curve read at 0.85 there: 6 + 7.5 + 10 * 0.825 = 21.75 over 30
    assert speed.curve_auc(steps, values, 30) == pytest.approx(21.75 / 30)
    assert math.isnan(speed.curve_auc(steps, values, 50))  # the curve ends before the budget
    assert math.isnan(speed.curve_auc([10, 20], [0.5, 0.6], 20))  # no step 0
    frame = pd.DataFrame(dict(model=["m"] * 4 + ["n"] * 3, seed=[0] * 7, x=steps + [0, 10, 20],
                              value=values + [0.5, 0.5, 0.5]))
    assert speed.curve_budget(frame) == 20
    aucs = speed.run_aucs(frame, 20).set_index("model")["auc"]
    assert aucs["m"] == pytest.approx((6 + 7.5) / 20) and aucs["n"] == pytest.approx(0.5)
    reached = speed.steps_to_thresholds(frame, [0.7, 0.85, 0.95]).set_index(["model", "threshold"])["reached_at"]
    assert reached[("m", 0.7)] == 10 and reached[("m", 0.85)] == 40 and math.isnan(reached[("m", 0.95)])
    assert speed.threshold_grid(0.8, 0.1, 0.05) == [0.7, 0.75, 0.8, 0.85, 0.9]
    # continued upwards to the first threshold above the highest value reached: there no seed reaches it
    assert speed.threshold_grid(0.5, 0.1, 0.05, highest=0.71) == [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75]
    assert speed.threshold_grid(0.5, 0.1, 0.05, highest=0.7) == [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75]
    assert speed.threshold_grid(0.8, 0.1, 0.05, highest=0.86) == [0.7, 0.75, 0.8, 0.85, 0.9]  # within the span
    assert speed.threshold_grid(0.9, 0.1, 0.05, highest=0.99) == [0.8, 0.85, 0.9, 0.95, 1.0]  # never above 1
    assert speed.curve_split("valid_acc") == "validation" and speed.curve_split("test_acc") == "test"


def _runs(curves: dict[str, list[list[float]]]) -> pd.DataFrame:
    """runs.csv rows: per model, one per-epoch test accuracy curve per seed."""
    return pd.DataFrame([dict(task="imdb", model=m, preset=m, seed=s, status="finished", epoch=e, test_acc=v)
                         for m, seeds in curves.items() for s, curve in enumerate(seeds) for e, v in enumerate(curve)])


def test_speed_claims_on_the_area_under_the_curve():
    curves = {"astro": [[0.5, 0.80, 0.85], [0.5, 0.81, 0.86], [0.5, 0.79, 0.85]],
              "linearized": [[0.5, 0.70, 0.86], [0.5, 0.71, 0.85], [0.5, 0.69, 0.86]],
              "astro-no-relpos": [[0.5, 0.75, 0.80], [0.5, 0.70, 0.86], [0.5, 0.80, 0.84]]}
    f = Findings({"label": "hand-made"}, {"runs": _runs(curves), "table1": pd.DataFrame(
        [dict(task="imdb", model=m, metric="test_acc", kind="run", n_seeds=3, n_diverged=0, mean=85.0, sd=0.5,
              paper_value=88.0, note="", data_source="real") for m in curves])})
    pairs = {(p.fast, p.slow): p for p in findings.speed_pairs(f, "imdb")}
    auc = {m: [100 * speed.curve_auc([0, 1, 2], c, 2) for c in cs] for m, cs in curves.items()}
    p = stats.ttest_ind(auc["astro"], auc["linearized"], equal_var=False).pvalue
    first = pairs[("astro", "linearized")].cmp
    assert first.a.mean - first.b.mean == pytest.approx(np.mean(auc["astro"]) - np.mean(auc["linearized"]))
    assert first.p == pytest.approx(p)
    assert first.p_adjusted == pytest.approx(findings.holm([c.cmp.p for c in pairs.values()])[0])
    claims = {c.claim: c for c in findings.speed_claims(f)}
    assert claims["IMDB: astro learns faster than linearized"].verdict == "reproduces"
    assert "epochs 0-2, test split" in claims["IMDB: astro learns faster than linearized"].ours
    section = findings.learning_speed_section(f)
    assert "measured on the **test** split, not on a validation split" in section
    # the paper's 85 % as seeds reaching it, over the whole run
    assert "| IMDB | astro-no-relpos |" in " ".join(section.split()) and "| 1/3 |" in " ".join(section.split())


def test_summary_is_computed_from_a_claims_table():
    table = pd.DataFrame([
        dict(family="Table I pairs", claim="Table I order on IMDB", verdict="mixed: reproduces 1, not resolved 1",
             size="", pair=False),
        dict(family="Table I pairs", claim="vanilla vs astro (imdb)", verdict="reproduces (within ± 1 pp)", size="",
             pair=True),
        dict(family="Table I pairs", claim="astro vs linearized (imdb)", verdict="not resolved",
             size="larger than the paper's difference, at this scale", pair=True),
        dict(family="Learning speed", claim="IMDB: astro learns faster than linearized", verdict="contradicted",
             size="", pair=False),
        dict(family="Learning speed", claim="IMDB: astro learns faster than astro-no-relpos",
             verdict="equivalent within ± 1 pp", size="", pair=False)])
    text = findings.summary_section(table)
    lines = text.strip().splitlines()
    assert lines[0] == "- Table I pairs (pairs: 2): reproduces 1, not resolved 1."
    assert lines[1] == "- Learning speed (claims: 2): contradicted 1, equivalent 1."
    assert lines[2] == "- Table I order on IMDB → **mixed: reproduces 1, not resolved 1**"
    assert lines[3] == "- IMDB: astro learns faster than linearized → **contradicted**"
    assert len(lines) == 5 and "vanilla vs astro" not in text  # pairs are counted, not listed
    assert "No claim" in findings.summary_section(table.iloc[:0])


def test_speed_thresholds_figure_is_byte_identical(tmp_path):
    from astromorphic.plotting import speed_thresholds
    import yaml

    curves = {"astro": [[0.5, 0.80, 0.85], [0.5, 0.81, 0.86]], "linearized": [[0.5, 0.70, 0.86], [0.5, 0.71, 0.8]]}
    _runs(curves).to_csv(tmp_path / "runs.csv", index=False)
    (tmp_path / "curves.csv").write_text("")  # no step-resolution curve: epochs
    (tmp_path / "all.yaml").write_text(yaml.safe_dump({"report": {"threshold": 0.8}}))
    outs = []
    for name in ("a", "b"):
        paths = speed_thresholds.plot(tmp_path / "curves.csv", tmp_path / "runs.csv", tmp_path / "all.yaml", "imdb",
                                      tmp_path / name, label="hand-made")
        outs.append([p.read_bytes() for p in paths])
    assert outs[0] == outs[1] and all(len(b) > 1000 for b in outs[0])
