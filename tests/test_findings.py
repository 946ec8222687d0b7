"""The findings page: verdict logic on hand-made tables, and the page rendered from fabricated runs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from _fake_runs import make_runs
from astromorphic import findings, tables
from astromorphic.tables import aggregate
from astromorphic.findings import Findings, Group, better_sign, welch_interval
from astromorphic.runs import RunDir, read_metrics

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "results" / "reference" / "paper_values.csv"
NOTEBOOK = REPO / "workflow" / "notebooks" / "findings.py"


# ------------------------------------------------------------------------------------------ statistics


def test_welch_interval_equals_scipy_on_the_raw_values():
    from scipy import stats

    a, b = [80.1, 82.4, 81.0], [78.0, 79.9, 77.2, 78.8]
    got = welch_interval(Group("a", np.mean(a), np.std(a, ddof=1), 3), Group("b", np.mean(b), np.std(b, ddof=1), 4))
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert got.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert (got.low, got.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_welch_interval_needs_two_seeds_per_group_and_gives_no_interval_without_spread():
    assert welch_interval(Group("a", 1.0, math.nan, 1), Group("b", 0.0, 0.1, 3)) is None
    assert welch_interval(Group("a", math.nan, math.nan, 0), Group("b", 0.0, 0.1, 3)) is None
    flat = welch_interval(Group("a", 2.0, 0.0, 2), Group("b", 1.5, 0.0, 2))
    assert flat.diff == 0.5 and not flat.bounded and math.isnan(flat.half_width)


def test_a_zero_spread_pair_gets_no_interval_and_no_definite_verdict():
    """Integer epoch counts equal in every seed: a zero-width interval would claim a certainty that 3 seeds
    cannot give."""
    cmp = findings.compare(Group("astro", 2.0, 0.0, 3), Group("linearized", 3.0, 0.0, 3), False, " epochs")
    assert cmp.sign is None and cmp.verdict == "undetermined (no spread in either group: no interval)"
    assert "no interval" in cmp.text() and math.isnan(cmp.p)
    assert cmp.verdict_on(1).startswith("undetermined (no spread")
    f = _findings([("imdb", m, v, 0.0, 3, 0, PAPER_IMDB[m], "") for m, v in
                   (("vanilla", 80.0), ("astro", 79.0), ("linearized", 78.0))])
    (claim,) = findings.ordering_claims(f)
    assert claim.verdict.startswith("undetermined (no spread")


def test_holm_adjustment_of_a_hand_made_family():
    # by hand: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    p = [0.01, 0.04, 0.03, 0.005]
    assert findings.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert findings.holm([0.5, math.nan, 0.01]) == pytest.approx([0.5, math.nan, 0.02], nan_ok=True)
    assert findings.holm([0.4, 0.9]) == pytest.approx([0.8, 0.9])  # capped at 1 and monotone
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    assert findings.holm(p) == pytest.approx(list(multitest.multipletests(p, method="holm")[1]))


def test_holm_takes_back_a_direction_that_only_the_unadjusted_interval_shows():
    """Among 11 presets against no-attention, a p of about 0.048 is no evidence of a difference."""
    control = ("imdb", "no-attention", 76.04, 0.40, 3, 0, math.nan, "")
    rows = [control, ("imdb", "astro", 79.38, 1.44, 3, 0, 88.7, "")]
    rows += [("imdb", f"other{i}", 76.0 + 0.1 * i, 1.5, 3, 0, math.nan, "") for i in range(10)]
    f = _findings(rows)
    alone = findings.compare(f.group("imdb", "astro"), f.group("imdb", "no-attention"), True)
    assert alone.interval.low > 0 and alone.p < 0.05 and alone.verdict == "better"  # unadjusted
    family = {c.a.label: c for c in findings.control_comparisons(f, "imdb")}
    assert family["astro"].p == pytest.approx(alone.p) and family["astro"].p_adjusted >= 0.05
    assert family["astro"].verdict == "not resolved"
    assert "Holm correction over 11 presets" in findings.controls_summary(f)


def test_direction_only_after_the_familys_correction():
    up = findings.Interval(2.0, 0.5, 3.5)
    across = findings.Interval(0.4, -0.5, 1.3)
    assert better_sign(up, higher_is_better=True) == 1
    assert better_sign(up, higher_is_better=False) == -1  # a higher perplexity is worse
    assert better_sign(across, True) == 0 and better_sign(None, True) is None
    assert better_sign(up, True, p_adjusted=0.2) == 0  # not after the family's correction
    assert up.half_width == 1.5
    # the size beside a verdict: only where the interval excludes the paper's difference
    assert findings.size_statement(up, 1.0) == ""
    assert findings.size_statement(up, 0.2) == "larger than the paper's difference, at this scale"
    assert findings.size_statement(up, 5.0) == "smaller than the paper's difference, at this scale"
    assert findings.size_statement(findings.Interval(-2.0, -3.5, -0.5), 1.0).startswith("smaller")
    assert findings.size_statement(findings.Interval(-1.0, -1.5, -0.5), -0.2).startswith("larger")


# ------------------------------------------------------------------------------------------ hand-made tables


def _table1(rows: list[tuple], source: str = "real") -> pd.DataFrame:
    """(task, model, mean, sd, n_seeds, n_diverged, paper_value, note) rows of a table1.csv."""
    out = []
    for task, model, mean, sd, n, div, paper, note in rows:
        out.append(dict(task=task, model=model, metric="test_ppl" if task == "wikitext2" else "test_acc",
                        kind="run", n_seeds=n, n_diverged=div, mean=mean, sd=sd, paper_value=paper, note=note,
                        data_source=source))
    return pd.DataFrame(out)


def _summary(rows: list[tuple]) -> pd.DataFrame:
    """runs_summary.csv of the same rows: n seeds at mean - sd, mean, mean + sd (n = 3: exactly that mean and sample
    sd), the diverged ones without a number."""
    out = []
    for task, model, mean, sd, n, div, _paper, _note in rows:
        assert n == 3 and div in (0, 3)
        metric = "test_ppl" if task == "wikitext2" else "test_acc"
        scale = 1.0 if task == "wikitext2" else 0.01
        for seed, z in enumerate((-1.0, 0.0, 1.0)):
            value = math.nan if div else (mean + z * sd) * scale
            out.append(dict(task=task, model=model, seed=seed, status="diverged" if div else "finished",
                            **{f"best_{metric}": value, f"final_{metric}": value}))
    return pd.DataFrame(out)


def _findings(rows: list[tuple], source: str = "real", **more: pd.DataFrame) -> Findings:
    tables = {"table1": _table1(rows, source), "runs_summary": _summary(rows), **more}
    return Findings({"label": "hand-made"}, tables)


PAPER_IMDB = {"vanilla": 88.9, "astro": 88.7, "linearized": 88.4}


def test_table1_order_reproduces_only_when_every_pair_holds_the_papers_difference():
    exact = _findings([("imdb", m, v, 0.05, 3, 0, v, "") for m, v in PAPER_IMDB.items()])
    (claim,) = findings.ordering_claims(exact)
    assert claim.verdict == "reproduces (within ± 1 pp)"  # each pair resolved, and each within IMDB's margin
    assert claim.ours == "vanilla (88.9) > astro (88.7) > linearized (88.4)"
    assert claim.paper == "vanilla (88.9) > astro (88.7) > linearized (88.4)"
    assert claim.resolution.startswith("± 0.1") and claim.resolution.endswith(" pp (widest pair)")
    assert "; MDE 0." in claim.resolution

    wide = _findings([("imdb", "vanilla", 88.9, 0.05, 3, 0, 88.9, ""), ("imdb", "astro", 88.7, 0.05, 3, 0, 88.7, ""),
                      ("imdb", "linearized", 88.4, 2.0, 3, 0, 88.4, "")])
    assert findings.ordering_claims(wide)[0].verdict == "mixed: reproduces (within ± 1 pp) 1, not resolved 2"
    pairs = findings.ordering_pairs(wide, "imdb")
    assert [p.verdict for p in pairs][1:] == ["not resolved"] * 2
    assert [p.paper_diff for p in pairs] == pytest.approx([0.2, 0.5, 0.3])

    # every pair in the paper's direction, one of them also within the margin: the order reproduces
    assert findings.overall(["reproduces", "reproduces", "reproduces (within ± 2 pp)"]) == (
        "reproduces (1 of 3 pairs within ± 2 pp)")
    assert findings.overall(["contradicted (within ± 1 pp)", "contradicted"]) == (
        "contradicted (1 of 2 pairs within ± 1 pp)")
    assert findings.overall(["reproduces", "not resolved", "reproduces (within ± 2 pp)"]) == (
        "mixed: reproduces 1, not resolved 1, reproduces (within ± 2 pp) 1")
    assert findings.overall(["reproduces", "contradicted"]) == "mixed: reproduces 1, contradicted 1"

    far = _findings([("imdb", m, v, 0.1, 3, 0, PAPER_IMDB[m], "")
                     for m, v in (("vanilla", 90.0), ("astro", 85.0), ("linearized", 80.0))])
    (claim,) = findings.ordering_claims(far)  # gaps far beyond the paper's: the direction reproduces; the size
    assert claim.verdict == "reproduces"      # is a statement beside it, never a contradiction by itself
    assert claim.size == "3 of 3 pairs larger than the paper's difference, at this scale"

    reversed_ = _findings([("imdb", m, v, 0.1, 3, 0, PAPER_IMDB[m], "")
                           for m, v in (("vanilla", 70.0), ("astro", 80.0), ("linearized", 90.0))])
    assert findings.ordering_claims(reversed_)[0].verdict == "contradicted"
    assert {p.verdict for p in findings.ordering_pairs(reversed_, "imdb")} == {"contradicted"}


def test_synthetic_data_give_no_verdict():
    rows = [("imdb", m, v, 0.05, 3, 0, v, "") for m, v in PAPER_IMDB.items()]
    rows += [("imdb", "no-attention", 70.0, 0.1, 3, 0, math.nan, ""), ("imdb", "astro-gate-only", 80.0, 0.1, 3, 0,
                                                                      math.nan, "")]
    real, synthetic = _findings(rows), _findings(rows, source="synthetic stand-in")
    assert findings.ordering_claims(real)[0].verdict == "reproduces (within ± 1 pp)"
    assert {c.verdict for c in findings.claims(synthetic)} == {"synthetic stand-in: no claim"}
    page = findings.claims_section(synthetic) + findings.ordering_section(synthetic)
    assert "reproduces" not in page and "contradicted" not in page and "**" not in page
    assert "better" not in findings.controls_section(synthetic) + findings.controls_summary(synthetic)
    assert "better" in findings.controls_section(real)
    assert "no claim" in findings.gate_section(synthetic) and "**" not in findings.gate_section(synthetic)
    assert set(findings.claims_frame(synthetic)["verdict"]) == {"synthetic stand-in: no claim"}
    assert "no verdict" in findings.method_section(synthetic)


def test_diagnostic_presets_are_never_counted_as_results():
    rows = [("wikitext2", "astro", 60.0, 1.0, 3, 0, 33.8, ""),
            ("wikitext2", "astro-leaky", 30.0, 1.0, 3, 0, math.nan, ""),
            ("wikitext2", "no-attention", 200.0, 1.0, 3, 0, math.nan, "")]
    f = _findings(rows)
    summary = findings.controls_summary(f)
    assert "astro-leaky" not in summary and "better: astro" in summary
    assert "after Holm correction over 1 presets" in summary
    assert "| astro-leaky | " in " ".join(findings.controls_section(f).split())
    assert "diagnostic: not a result" in findings.controls_section(f)


def test_lm_gap_and_divergence_of_linearized():
    rows = [("wikitext2", "vanilla", 73.0, 2.0, 3, 0, 73.4, ""), ("wikitext2", "astro", 34.0, 2.0, 3, 0, 33.8, ""),
            ("wikitext2", "linearized", math.nan, math.nan, 3, 3, 123.3, "paper: diverges (gradient explosion)"),
            ("wikitext2", "no-attention", 200.0, 5.0, 3, 0, math.nan, "")]
    f = _findings(rows)
    gap = findings.lm_gap_claim(f)  # a ratio of geometric means: 34 / 73 against the paper's 33.8 / 73.4
    assert gap.verdict == "reproduces" and gap.ours.startswith("astro / vanilla = 0.47 [")
    small_gap = findings.lm_gap_claim(_findings([("wikitext2", "vanilla", 70.0, 2.0, 3, 0, 73.4, ""),
                                                 ("wikitext2", "astro", 60.0, 2.0, 3, 0, 33.8, "")]))
    assert small_gap.verdict == "reproduces" and small_gap.size.startswith("smaller than the paper's difference")
    div = findings.divergence_claim(f)  # an observation outside the verdicts, whatever the seeds show
    assert div.verdict == "observation, not a verdict" and div.ours.startswith("diverged in 3 of 3 seeds")
    (order,) = findings.ordering_claims(f)  # a model without a result in any seed ranks last
    assert order.verdict == "reproduces" and order.ours.endswith("linearized (diverged)")
    controls = {c.a.label: c for c in findings.control_comparisons(f, "wikitext2")}
    assert controls["linearized"].verdict == "worse" and controls["astro"].verdict == "better"

    # The paper's ratio at another perplexity scale reproduces; its difference in perplexity would not be ours.
    scaled = _findings([("wikitext2", "vanilla", 400.0, 8.0, 3, 0, 73.4, ""),
                        ("wikitext2", "astro", 184.0, 4.0, 3, 0, 33.8, "")])
    assert findings.lm_gap_claim(scaled).verdict == "reproduces"
    (pair,) = findings.ordering_pairs(scaled, "wikitext2")
    assert pair.paper_diff == pytest.approx(math.log(33.8 / 73.4))
    logs_a, logs_b = np.log([180.0, 184.0, 188.0]), np.log([392.0, 400.0, 408.0])
    welch = stats.ttest_ind(logs_a, logs_b, equal_var=False)
    assert pair.cmp.p == pytest.approx(welch.pvalue)
    assert pair.cmp.interval.diff == pytest.approx(logs_a.mean() - logs_b.mean())
    assert "| ratio 0.46 |" in " ".join(findings.ordering_section(scaled).split())
    assert set(findings.claims_frame(scaled)["unit"]) == {"ln perplexity ratio"}

    stable = _findings([r if r[1] != "linearized" else ("wikitext2", "linearized", 150.0, 3.0, 3, 0, 123.3,
                                                         "paper: diverges (gradient explosion)") for r in rows])
    assert findings.divergence_claim(stable).verdict == "observation, not a verdict"
    assert findings.divergence_claim(stable).ours == "diverged in 0 of 3 seeds"


def test_gate_value_sensitivity_and_records_note():
    rows = [("imdb", "astro", 80.0, 0.5, 3, 0, 88.7, ""), ("imdb", "astro-gate-only", 80.1, 0.5, 3, 0, math.nan, "")]
    runs = pd.DataFrame([dict(task="imdb", model=m, preset=m, seed=s, status="finished", epoch=e,
                              value_sens_l0=v0 * (e + 1), value_sens_l1=v0 * (e + 1) * 3)
                         for m, v0 in (("astro", 0.001), ("astro-gate-only", 0.0)) for s in (0, 1) for e in (0, 1, 2)])
    records = pd.DataFrame(dict(task="imdb", model=["astro"] * 3, seed=[0, 1, 2], source=["record"] * 2 + ["trained"],
                                status="finished", code_current=[True, False, True], code_version=""))
    f = _findings(rows, runs=runs, records=records)
    gate = findings.gate_section(f)
    # the 90 % interval (both one-sided tests at 0.05) lies within IMDB's ± 1 pp, though the 95 % one does not
    assert "**equivalent within ± 1 pp**" in gate and "adds no more than the margin (± 1 pp) at n = 3" in gate
    assert "adds nothing" not in gate
    assert "the value path (with the relative-position term, which acts only through it) adds no more" in gate

    # astro-no-relpos beside astro: the two comparisons with the gate are one Holm family of the task
    pair = _findings(rows[:1] + [("imdb", "astro-no-relpos", 80.05, 0.5, 3, 0, math.nan, ""),
                                 ("imdb", "astro-gate-only", 78.0, 0.5, 3, 0, math.nan, "")])
    lines = findings.gate_section(pair).splitlines()
    assert len(lines) == 2 and lines[0].startswith("- IMDB: astro - astro-gate-only = +2.00 pp")
    assert "the value path (with the relative-position term, which acts only through it) adds to what the gate" in (
        lines[0])
    assert lines[1].startswith("- IMDB: astro-no-relpos - astro-gate-only = +2.05 pp")
    assert "the value path without relative position adds to what the gate alone achieves" in lines[1]
    p_astro, p_relpos = (findings.compare_runs(pair, "imdb", m, "astro-gate-only").p for m in ("astro",
                                                                                              "astro-no-relpos"))
    assert p_relpos < p_astro  # Holm: the smaller p times 2, the larger one at least that
    holms = [float(re.search(r"\(Holm p ([0-9.]+),", line).group(1)) for line in lines]
    assert holms == pytest.approx([max(p_astro, 2 * p_relpos), 2 * p_relpos], abs=0.0006)
    vs = findings.value_sensitivity(f).set_index("model")
    assert vs.loc["astro", "init_mean"] == pytest.approx(0.002)  # layer mean at epoch 0: (0.001 + 0.003) / 2
    assert vs.loc["astro", "final_mean"] == pytest.approx(0.006)
    assert vs.loc["astro-gate-only", "final_mean"] == 0.0
    no_probe = pd.concat([runs, runs[runs["model"] == "astro"].assign(model="no-attention", value_sens_l0=math.nan,
                                                                      value_sens_l1=math.nan)])
    table = findings.value_sensitivity_section(_findings(rows, runs=no_probe))
    cells = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[3:5]]
             for line in table.splitlines() if line.startswith("| IMDB")}
    assert cells["no-attention"] == ["n/a", "n/a"] and cells["astro"] == ["0.0020 ± 0.0000", "0.0060 ± 0.0000"]
    swept = pd.concat([runs] + [runs[runs["model"] == "astro"].assign(model=f"astro@m_scale={m}")
                                for m in (8192, 1024, 64)])
    order = list(findings.value_sensitivity(_findings(rows, runs=swept))["model"])
    assert order[-3:] == ["astro@m_scale=64", "astro@m_scale=1024", "astro@m_scale=8192"]  # after the presets
    note = findings.records_note(f)
    assert "2 of 3" in note and "1 of them were made by other code" in note


def test_sweep_section_names_the_default_and_adjusts_each_family_by_holm():
    rows = [("imdb", "astro", 86.0, 0.4, 3, 0, 88.7, ""), ("imdb", "no-attention", 84.0, 0.4, 3, 0, math.nan, "")]
    sweep = pd.DataFrame([dict(task="imdb", preset="astro", key="m_scale", value=v, base_value=32000.0, mean=m,
                               sd=0.5, n=3) for v, m in ((64, 85.0), (1024, 85.5), (8192, 86.1))])
    text = findings.sweep_section(_findings(rows, sweep=sweep))
    assert ("- IMDB: astro at m_scale = 32000 (its row of Table I) is \"default\"; the reference groups' seeds: "
            "astro n = 3, no-attention n = 3") in text
    table = [line for line in text.splitlines() if line.startswith("| IMDB")]
    assert [line.split("|")[3].strip() for line in table] == ["m_scale=64", "m_scale=1024", "m_scale=8192"]
    raw = [findings.compare(Group(f"m_scale={v}", m, 0.5, 3), Group("default", 86.0, 0.4, 3), True).p
           for v, m in ((64, 85.0), (1024, 85.5), (8192, 86.1))]
    holm = [float(line.split("|")[6].strip().replace("< 0.001", "0")) for line in table]
    assert holm == pytest.approx(findings.holm(raw), abs=0.0006)


# ------------------------------------------------------------------------------------------ the rendered page


def test_page_figures_by_name(tmp_path):
    png = tmp_path / "lm_perplexity.png"
    png.write_bytes(b"\x89PNG not really")
    assert findings.parse_figures([f"lm={png}", "forest=f.png"]) == {"lm": str(png), "forest": "f.png"}
    with pytest.raises(ValueError, match="NAME one of"):
        findings.parse_figures(["curves=x.png"])
    with pytest.raises(ValueError, match="NAME=PATH"):
        findings.parse_figures([str(png)])
    shown = findings.figure_display({"lm": str(png)}, "lm")
    assert shown["text/markdown"].endswith("](lm_perplexity.png)\n")  # the copy beside the page, by file name
    assert "base64," in shown["text/html"]
    assert findings.figure_display({"lm": str(png)}, "forest") is None  # not given: nothing shown
    assert findings.figure_display({"lm": str(tmp_path / "missing.png")}, "lm") is None


def test_the_page_reads_the_tables_it_is_given_and_none_beside_them(tmp_path):
    for name in ("runs_summary", "records", "learning_curves"):
        (tmp_path / f"{name}.csv").write_text("task,model\nimdb,astro\n")
    given = findings.load([tmp_path / "runs_summary.csv", tmp_path / "learning_curves.csv"])
    assert set(given.tables) == {"runs_summary", "learning_curves"}  # records.csv, left by another configuration,
    # is not read
    assert set(findings.load(tmp_path).tables) == {"runs_summary", "records", "learning_curves"}  # a folder
    with pytest.raises(FileNotFoundError):  # a table given that is not there is an error, not an absent table
        findings.load([tmp_path / "table1.csv"])


def _build(root: Path, cfg: Path, runs: Path) -> str:
    """Aggregate, tables, the claims table, the forest plot drawn from it, and the page showing it."""
    from astromorphic.plotting import forest

    out = root / "tables"
    assert aggregate.main(["--runs", str(runs), "--out", str(out / "runs.csv"), "--curves",
                           str(out / "learning_curves.csv")]) == 0
    assert tables.main(["--config", str(cfg), "--summary", str(out / "runs_summary.csv"), "--runs",
                        str(out / "runs.csv"), "--curves", str(out / "learning_curves.csv"), "--reference",
                        str(REFERENCE), "--out-dir", str(out)]) == 0
    assert findings.main(["--tables", str(out), "--config", str(cfg), "--claims", str(root / "claims.csv"),
                          "--no-page"]) == 0
    forest.plot(root / "claims.csv", root / "forest_claims")
    findings.render(NOTEBOOK, out, cfg, root / "findings", figures={"forest": root / "forest_claims.png"})
    return (root / "findings" / "findings.md").read_text()


def _headline_cells(tables_dir: Path) -> dict[tuple[str, str], str]:
    """The text the page gives for every model's Table I mean ± sd (n), computed from table1.csv."""
    f = findings.load(tables_dir)
    return {(task, model): findings.mean_sd_text(f.group(task, model)) for task in f.tasks()
            for model in f.models(task) if f.group(task, model).n}


@pytest.mark.slow
def test_page_numbers_are_the_tables_numbers_and_follow_a_changed_metric(tmp_path):
    runs, cfg = make_runs(tmp_path, curves=True)
    page = _build(tmp_path, cfg, runs)
    assert "](forest_claims.png)" in page and (tmp_path / "findings" / "forest_claims.png").is_file()
    assert "data:image/png;base64," in (tmp_path / "findings" / "findings.html").read_text()
    assert "area under the learning curve = mean accuracy over steps 0-" in page
    assert "## In short" in page and page.index("## In short") < page.index("## How to read it")
    assert "synthetic stand-in: no claim" in page and "**reproduces**" not in page
    claims_before = pd.read_csv(tmp_path / "claims.csv")
    before = _headline_cells(tmp_path / "tables")
    assert before and all(cell in page for cell in before.values())
    assert "Configuration: **fake**" in page and "**synthetic stand-in**" in page
    assert "Table I order on IMDB" in page and "WikiText-2: Linearized [18] diverges" in page

    run = RunDir(runs / "imdb" / "astro" / "seed0")  # one committed metric changed, through the record writer
    record, rows = run.read_record(), read_metrics(run.metrics_file)
    rows[-1]["test_acc"] = 0.55
    run.publish("imdb", record, list(rows[0]), rows)
    changed = _build(tmp_path, cfg, runs)
    after = _headline_cells(tmp_path / "tables")
    assert {k for k in before if before[k] != after[k]} == {("imdb", "astro")}
    old, new = before[("imdb", "astro")], after[("imdb", "astro")]
    other = read_metrics(runs / "imdb" / "astro" / "seed1" / "metrics.csv")[-1]["test_acc"]
    assert new.startswith(f"{(55.0 + 100 * other) / 2:.2f} ± ") and new in changed and new not in page
    assert changed.count(old) == page.count(old) - 1
    pair = ["task", "a", "b"]
    claims_after = pd.read_csv(tmp_path / "claims.csv").set_index(pair)
    before_diff = claims_before.set_index(pair)["diff"].reindex(claims_after.index)
    moved = ~np.isclose(claims_after["diff"], before_diff, equal_nan=True)  # a diverged pair stays NaN
    assert {task for task, _, _ in claims_after[moved].index} == {"imdb"}  # the forest plot's table follows
    f = findings.load(tmp_path / "tables")
    order = findings.order_text(f, "imdb", ["vanilla", "linearized", "astro"], paper=False)
    assert order.index("linearized") < order.index("astro")  # astro fell below linearized, and the page says so
    row = f"| Table I order on IMDB (test accuracy (%)) | vanilla (88.9) > astro (88.7) > linearized (88.4) | {order} |"
    assert row in " ".join(changed.split())  # cells padded by the Markdown writer: whitespace collapsed
