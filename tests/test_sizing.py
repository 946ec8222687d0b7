"""Sizing a campaign from a pilot (astromorphic.findings.sizing, `astromorphic records size`): the half-width of a
Welch interval of n seeds against the textbook formula, the smallest n that reaches a target, and the plan read
from run records (validation spread, minutes per run), never from the test split unless asked."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from astromorphic.findings.sizing import half_width, plan, seeds_needed
from astromorphic.runs.records_command import main as records_main

REPO = Path(__file__).resolve().parents[1]


def textbook_half_width(sd_a: float, sd_b: float, n: int) -> float:
    va, vb = sd_a**2 / n, sd_b**2 / n
    df = (va + vb) ** 2 / (va**2 / (n - 1) + vb**2 / (n - 1))
    return stats.t.ppf(0.975, df) * math.sqrt(va + vb)


@pytest.mark.parametrize("sd_a,sd_b", [(1.0, 1.0), (0.5, 1.2), (2.4, 0.4)])
def test_half_width_is_the_welch_formula_and_seeds_needed_the_first_n_under_the_target(sd_a, sd_b):
    for n in (2, 3, 8, 16):
        assert half_width(sd_a, sd_b, n) == pytest.approx(textbook_half_width(sd_a, sd_b, n), rel=1e-12)
    n = seeds_needed(sd_a, sd_b, 1.0)
    assert textbook_half_width(sd_a, sd_b, n) <= 1.0 < textbook_half_width(sd_a, sd_b, n - 1) or n == 2
    assert seeds_needed(sd_a, sd_b, 1e-6, n_max=50) is None  # not reachable within the limit: said, not capped
    assert seeds_needed(math.nan, sd_b, 1.0) is None


def summary_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, timing = [], []
    values = {"astro": [0.80, 0.82, 0.81], "vanilla": [0.84, 0.80, 0.88]}
    for model, accs in values.items():
        for seed, acc in enumerate(accs):
            rows.append(dict(task="imdb", model=model, preset=model, seed=seed, complete=True, epochs=3,
                             best_valid_acc=acc, best_test_acc=0.5))
            timing += [dict(task="imdb", model=model, seed=seed, epoch=e, time_epoch_s=30.0) for e in range(4)]
    rows.append(dict(task="imdb", model="astro@m_scale=64", preset="astro", seed=0, complete=True, epochs=3,
                     best_valid_acc=0.1, best_test_acc=0.5))  # a sweep variant: not a preset of the plan
    rows.append(dict(task="imdb", model="astro", preset="astro", seed=9, complete=False, epochs=1,
                     best_valid_acc=0.1, best_test_acc=0.5))  # still running: no seed of the plan
    return pd.DataFrame(rows), pd.DataFrame(timing)


def test_the_plan_takes_each_presets_worst_pair_from_the_validation_spread():
    summary, timing = summary_rows()
    frame = plan(summary, timing, "imdb", target=2.0).set_index("model")
    sd = {m: pd.Series(v).std() * 100 for m, v in {"astro": [0.80, 0.82, 0.81], "vanilla": [0.84, 0.80, 0.88]}.items()}
    assert frame.loc["astro", "sd"] == pytest.approx(sd["astro"]) and frame.loc["astro", "n_pilot"] == 3
    assert frame.loc["vanilla", "seeds_needed"] == seeds_needed(sd["vanilla"], sd["vanilla"], 2.0)
    assert frame.loc["astro", "seeds_needed"] == seeds_needed(sd["astro"], sd["vanilla"], 2.0)
    assert frame.loc["astro", "minutes_per_run"] == pytest.approx(2.0)  # 4 rows of 30 s
    with pytest.raises(ValueError, match="no valid_ppl"):
        plan(summary, timing, "imdb", 1.0, metric="valid_ppl")


def test_the_command_sizes_from_committed_records_and_names_a_bad_argument(tmp_path, capsys):
    records = REPO / "tests" / "records" / "tiny-imdb" / "runs"
    out = tmp_path / "plan.csv"
    assert records_main(["size", "--runs", str(records), "--task", "imdb", "--half-width", "5",
                         "--metric", "best_test_acc", "--csv", str(out)]) == 0
    assert "seeds per preset for a 5 pp half-width" in capsys.readouterr().out
    assert set(pd.read_csv(out)["model"]) == {"astro", "linearized"}
    assert records_main(["size", "--runs", str(records), "--task", "imdb", "--half-width", "1"]) == 1
    assert "no best_valid_acc" in capsys.readouterr().err  # tiny records have no validation split
    assert records_main(["size", "--runs", str(records), "--task", "imbd", "--half-width", "1"]) == 1
    assert "--task imbd: not a task; choose among imdb" in capsys.readouterr().err


def test_the_summary_line_says_why_there_is_no_number():
    from astromorphic.findings.sizing import MAX_SEEDS, summary_line

    rows = pd.DataFrame(dict(task="cifar10", model=["vanilla", "astro", "linearized"], n_pilot=[3, 2, 1],
                             seeds_needed=[4, 5, None]))
    assert summary_line(rows, 2.5) == ("cifar10: no estimate yet: linearized has fewer than 2 runs "
                                       "(no seed spread of best_valid_acc)")
    rows["n_pilot"] = 3
    assert summary_line(rows, 2.5).startswith(f"cifar10: more than {MAX_SEEDS} seeds per preset for a 2.5 pp")
    rows["seeds_needed"] = [4, 5, 3]
    assert summary_line(rows, 2.5) == ("cifar10: 5 seeds per preset for a 2.5 pp half-width of every pair "
                                       "(best_valid_acc)")


def test_a_language_model_is_sized_on_the_log_of_its_validation_perplexity():
    from astromorphic.findings.sizing import summary_line

    ppl = {"astro": [210.0, 220.0, 205.0], "vanilla": [200.0, 196.0, 204.0]}
    summary = pd.DataFrame([dict(task="wikitext2", model=m, preset=m, seed=s, complete=True, epochs=6,
                                 best_valid_ppl=v, best_test_ppl=1.0)
                            for m, vs in ppl.items() for s, v in enumerate(vs)])
    frame = plan(summary, pd.DataFrame(), "wikitext2", target=5.0).set_index("model")
    sd = {m: pd.Series(v).apply(math.log).std() for m, v in ppl.items()}
    assert (frame["metric"] == "best_valid_ppl").all() and (frame["unit"] == "ln").all()
    assert frame.loc["astro", "sd"] == pytest.approx(sd["astro"])
    assert frame.loc["astro", "mean"] == pytest.approx(sum(map(math.log, ppl["astro"])) / 3)
    assert frame.loc["astro", "target_half_width"] == pytest.approx(math.log(1.05))
    worst = max(sd.values())
    assert frame.loc["vanilla", "seeds_needed"] == seeds_needed(sd["vanilla"], worst, math.log(1.05))
    assert frame.loc["vanilla", "half_width_at_needed"] <= math.log(1.05)
    line = summary_line(frame.reset_index(), 5.0)
    assert line.startswith("wikitext2: ") and "± 5 % half-width in perplexity ratio (± 0.0488 in ln)" in line
    assert line.endswith("(best_valid_ppl)")
    as_imdb = summary.assign(task="imdb")
    assert plan(as_imdb, pd.DataFrame(), "imdb", 1.0, metric="best_valid_ppl")["unit"].eq("ln").all()
    with pytest.raises(ValueError, match="no best_valid_acc"):
        plan(as_imdb, pd.DataFrame(), "imdb", 1.0)
