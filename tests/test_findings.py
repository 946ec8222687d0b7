"""The findings page: verdict logic on hand-made tables, and the page rendered from fabricated runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _fake_runs import make_runs
from astromorphic import aggregate, findings, tables
from astromorphic.findings import Findings, Group, better_sign, claim_verdict, welch_interval
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


def test_welch_interval_needs_two_seeds_per_group_and_keeps_a_difference_without_spread():
    assert welch_interval(Group("a", 1.0, math.nan, 1), Group("b", 0.0, 0.1, 3)) is None
    assert welch_interval(Group("a", math.nan, math.nan, 0), Group("b", 0.0, 0.1, 3)) is None
    flat = welch_interval(Group("a", 2.0, 0.0, 2), Group("b", 1.5, 0.0, 2))
    assert (flat.low, flat.high) == (0.5, 0.5)


def test_direction_and_claim_verdicts():
    up = findings.Interval(2.0, 0.5, 3.5)
    across = findings.Interval(0.4, -0.5, 1.3)
    assert better_sign(up, higher_is_better=True) == 1
    assert better_sign(up, higher_is_better=False) == -1  # a higher perplexity is worse
    assert better_sign(across, True) == 0 and better_sign(None, True) is None
    assert claim_verdict(1, 1) == "reproduces" and claim_verdict(-1, 1) == "contradicted"
    assert claim_verdict(0, 1) == "not distinguishable"
    assert claim_verdict(None, 1).startswith("undetermined") and claim_verdict(1, None).startswith("no direction")


# ------------------------------------------------------------------------------------------ hand-made tables


def _table1(rows: list[tuple]) -> pd.DataFrame:
    """(task, model, mean, sd, n_seeds, n_diverged, paper_value, note) rows of a table1.csv."""
    out = []
    for task, model, mean, sd, n, div, paper, note in rows:
        out.append(dict(task=task, model=model, metric="test_ppl" if task == "wikitext2" else "test_acc",
                        kind="run", n_seeds=n, n_diverged=div, mean=mean, sd=sd, paper_value=paper, note=note,
                        data_source="real"))
    return pd.DataFrame(out)


def _findings(rows: list[tuple], **more: pd.DataFrame) -> Findings:
    return Findings({"label": "hand-made"}, {"table1": _table1(rows), **more})


PAPER_IMDB = {"vanilla": 88.9, "astro": 88.7, "linearized": 88.4}


def test_table1_order_reproduces_only_when_every_pair_is_separated():
    clear = _findings([("imdb", m, v, 0.1, 3, 0, PAPER_IMDB[m], "")
                       for m, v in (("vanilla", 90.0), ("astro", 85.0), ("linearized", 80.0))])
    (claim,) = findings.ordering_claims(clear)
    assert claim.verdict == "reproduces"
    assert claim.ours == "vanilla (90.0) > astro (85.0) > linearized (80.0)"
    assert claim.paper == "vanilla (88.9) > astro (88.7) > linearized (88.4)"

    close = _findings([("imdb", "vanilla", 85.1, 1.0, 3, 0, 88.9, ""), ("imdb", "astro", 85.0, 1.0, 3, 0, 88.7, ""),
                       ("imdb", "linearized", 70.0, 1.0, 3, 0, 88.4, "")])
    assert findings.ordering_claims(close)[0].verdict == "partly (2 of 3 pairs reproduce)"

    reversed_ = _findings([("imdb", m, v, 0.1, 3, 0, PAPER_IMDB[m], "")
                           for m, v in (("vanilla", 70.0), ("astro", 80.0), ("linearized", 90.0))])
    assert findings.ordering_claims(reversed_)[0].verdict == "contradicted (3 of 3 pairs)"


def test_lm_gap_and_divergence_of_linearized():
    rows = [("wikitext2", "vanilla", 70.0, 2.0, 3, 0, 73.4, ""), ("wikitext2", "astro", 60.0, 2.0, 3, 0, 33.8, ""),
            ("wikitext2", "linearized", math.nan, math.nan, 3, 3, 123.3, "paper: diverges (gradient explosion)"),
            ("wikitext2", "no-attention", 200.0, 5.0, 3, 0, math.nan, "")]
    f = _findings(rows)
    gap = findings.lm_gap_claim(f)
    assert gap.verdict == "reproduces" and "astro - vanilla = -10.00" in gap.ours
    div = findings.divergence_claim(f)
    assert div.verdict == "reproduces" and div.ours.startswith("diverged in 3 of 3 seeds")
    (order,) = findings.ordering_claims(f)  # a model without a result in any seed ranks last
    assert order.verdict == "reproduces" and order.ours.endswith("linearized (diverged)")
    controls = {c.a.label: c for c in findings.control_comparisons(f, "wikitext2")}
    assert controls["linearized"].verdict == "worse" and controls["astro"].verdict == "better"

    stable = _findings([r if r[1] != "linearized" else ("wikitext2", "linearized", 150.0, 3.0, 3, 0, 123.3,
                                                         "paper: diverges (gradient explosion)") for r in rows])
    assert findings.divergence_claim(stable).verdict == "not reproduced"


def _speed(rows: list[tuple]) -> pd.DataFrame:
    """(model, mean, sd, n_reached, n_seeds, paper) rows of learning_speed.csv for IMDB."""
    return pd.DataFrame([dict(task="imdb", model=m, criterion="epochs_to_threshold", threshold=0.85, mean=mean, sd=sd,
                              n_reached=k, n_seeds=n, paper_value=p) for m, mean, sd, k, n, p in rows])


def test_learning_speed_verdicts_with_censored_seeds():
    t1 = [("imdb", "astro", 85.0, 1.0, 3, 0, 88.7, ""), ("imdb", "linearized", 84.0, 1.0, 3, 0, 88.4, "")]
    both = _findings(t1, learning_speed=_speed([("astro", 5.0, 1.0, 3, 3, 16), ("linearized", 12.0, 1.0, 3, 3, 54)]))
    (claim,) = findings.speed_claims(both)
    assert claim.verdict == "reproduces" and claim.ours.startswith("astro - linearized = -7.0 epochs [")
    never = _findings(t1, learning_speed=_speed([("astro", 5.0, 1.0, 3, 3, 16),
                                                 ("linearized", math.nan, math.nan, 0, 3, 54)]))
    assert findings.speed_claims(never)[0].verdict == "reproduces"
    partial = _findings(t1, learning_speed=_speed([("astro", 5.0, 1.0, 3, 3, 16), ("linearized", 9.0, 0, 1, 3, 54)]))
    assert findings.speed_claims(partial)[0].verdict.startswith("undetermined (censored")


def test_gate_value_sensitivity_and_records_note():
    rows = [("imdb", "astro", 80.0, 0.5, 3, 0, 88.7, ""), ("imdb", "astro-gate-only", 80.1, 0.5, 3, 0, math.nan, "")]
    runs = pd.DataFrame([dict(task="imdb", model=m, preset=m, seed=s, status="finished", epoch=e,
                              value_sens_l0=v0 * (e + 1), value_sens_l1=v0 * (e + 1) * 3)
                         for m, v0 in (("astro", 0.001), ("astro-gate-only", 0.0)) for s in (0, 1) for e in (0, 1, 2)])
    records = pd.DataFrame(dict(task="imdb", model=["astro"] * 3, seed=[0, 1, 2], source=["record"] * 2 + ["trained"],
                                status="finished", code_current=[True, False, True], code_version=""))
    f = _findings(rows, runs=runs, records=records)
    assert "**not distinguishable**" in findings.gate_section(f)
    vs = findings.value_sensitivity(f).set_index("model")
    assert vs.loc["astro", "init_mean"] == pytest.approx(0.002)  # layer mean at epoch 0: (0.001 + 0.003) / 2
    assert vs.loc["astro", "final_mean"] == pytest.approx(0.006)
    assert vs.loc["astro-gate-only", "final_mean"] == 0.0
    note = findings.records_note(f)
    assert "2 of 3" in note and "1 of them were made by other code" in note


# ------------------------------------------------------------------------------------------ the rendered page


def _build(root: Path, cfg: Path, runs: Path) -> str:
    out = root / "tables"
    assert aggregate.main(["--runs", str(runs), "--out", str(out / "runs.csv")]) == 0
    assert tables.main(["--config", str(cfg), "--summary", str(out / "runs_summary.csv"), "--runs",
                        str(out / "runs.csv"), "--reference", str(REFERENCE), "--out-dir", str(out)]) == 0
    findings.render(NOTEBOOK, out, cfg, root / "findings")
    return (root / "findings" / "findings.md").read_text()


def _headline_cells(tables_dir: Path) -> dict[tuple[str, str], str]:
    """The text the page gives for every model's Table I mean ± sd (n), computed from table1.csv."""
    f = findings.load(tables_dir)
    return {(task, model): findings.mean_sd_text(f.group(task, model)) for task in f.tasks()
            for model in f.models(task) if f.group(task, model).n}


@pytest.mark.slow
def test_page_numbers_are_the_tables_numbers_and_follow_a_changed_metric(tmp_path):
    runs, cfg = make_runs(tmp_path)
    page = _build(tmp_path, cfg, runs)
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
    f = findings.load(tmp_path / "tables")
    order = findings.order_text(f, "imdb", ["vanilla", "linearized", "astro"], paper=False)
    assert order.index("linearized") < order.index("astro")  # astro fell below linearized, and the page says so
    row = f"| Table I order on IMDB (test accuracy (%)) | vanilla (88.9) > astro (88.7) > linearized (88.4) | {order} |"
    assert row in " ".join(changed.split())  # cells padded by the Markdown writer: whitespace collapsed
