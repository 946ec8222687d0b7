"""Learning speed at step resolution: the runs' learning curves (``learning_curve`` in run.json) through
aggregation into the learning-speed table, and the fall-back to epochs for records without a curve."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from _fake_runs import learning_curve, make_runs
from astromorphic import tables
from astromorphic.tables import aggregate
from astromorphic.tables import speed as learning_speed
from astromorphic.tables import context as table_context

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "results" / "reference" / "paper_values.csv"


def _tables(root: Path, curves: bool, tasks=("imdb", "wikitext2")) -> tuple[Path, Path]:
    runs, cfg = make_runs(root, tasks=tasks, curves=curves)
    out = root / "tables"
    assert aggregate.main(["--runs", str(runs), "--out", str(out / "runs.csv"), "--curves",
                           str(out / "learning_curves.csv")]) == 0
    assert tables.main(["--config", str(cfg), "--summary", str(out / "runs_summary.csv"), "--runs",
                        str(out / "runs.csv"), "--curves", str(out / "learning_curves.csv"), "--reference",
                        str(REFERENCE), "--out-dir", str(out), "--table", "learning_speed", "--table", "speedups"]) == 0
    return runs, out


def test_steps_to_threshold_and_censoring_at_step_resolution(tmp_path):
    _, out = _tables(tmp_path, curves=True)
    curves = pd.read_csv(out / "learning_curves.csv")
    assert set(curves["metric"]) == {"accuracy", "valid_ppl"} and curves["step"].min() == 0
    speed = pd.read_csv(out / "learning_speed.csv")
    imdb = speed[speed["task"] == "imdb"].set_index("model")
    assert set(imdb["criterion"]) == {"steps_to_threshold"} and set(imdb["unit"]) == {"steps"}
    # astro: accuracy 0.5 + 0.48 (1 - exp(-i / k)) at step 5 i, k = 6 (seed 0) and 6.6 (seed 1): 0.85 is first
    # reached at i = 8 and i = 9, i.e. steps 40 and 45
    assert imdb.loc["astro", "mean"] == pytest.approx(42.5) and imdb.loc["astro", "n_reached"] == 2
    # no-attention (k = 160) stays below 0.56 for all 21 points: censored, never dropped
    assert imdb.loc["no-attention", "n_reached"] == 0 and imdb.loc["no-attention", "n_seeds"] == 2
    text = (out / "learning_speed.md").read_text()
    assert "not reached by step 100 (0/2 seeds)" in text
    assert "IMDB: step resolution, from the runs' learning curves (evaluated every 5 optimiser steps" in text
    assert "optimiser steps to 85 % accuracy on the held-out subset" in text
    lm = speed[speed["task"] == "wikitext2"].set_index("model")
    assert set(lm["criterion"]) == {"steps_to_best_valid_ppl"}
    # the LM's steps to its lowest validation perplexity, by hand for astro seed 0 (k = 6): the curve
    # 20 + 300 exp(-i / 6) + 0.02 max(0, i - 15)^2 is lowest at i = 20 (step 100) among i = 0..20
    values = learning_curve("wikitext2", "astro", 0)["values"]
    assert learning_speed.lowest(range(0, 105, 5), values) == 5 * values.index(min(values))
    assert lm.loc["linearized", "n_diverged"] == 2 and math.isnan(lm.loc["linearized", "mean"])


def test_records_without_curves_fall_back_to_epochs_and_say_so(tmp_path):
    runs, out = _tables(tmp_path, curves=False)
    assert pd.read_csv(out / "learning_curves.csv").empty
    speed = pd.read_csv(out / "learning_speed.csv")
    assert set(speed[speed["task"] == "imdb"]["criterion"]) == {"epochs_to_threshold"}
    assert "IMDB: epoch resolution: not every run records a learning curve" in (out / "learning_speed.md").read_text()


def test_one_run_without_a_curve_keeps_its_task_at_epoch_resolution(tmp_path):
    runs, cfg = make_runs(tmp_path, tasks=("imdb",), curves=True)
    record_file = runs / "imdb" / "astro" / "seed1" / "run.json"
    record = json.loads(record_file.read_text())
    del record["learning_curve"]
    record_file.write_text(json.dumps(record))
    ctx = table_context.Context({"label": "x", "tasks": {"imdb": {}}, "models": ["astro"]},
                         *aggregate.tidy_runs([runs])[1::-1], pd.DataFrame(), {},
                         aggregate.learning_curves([runs]))
    assert not learning_speed.has_curves(ctx, "imdb", ["astro", "vanilla"])
    assert learning_speed.has_curves(ctx, "imdb", ["vanilla", "linearized"])


def test_a_damaged_curve_is_named():
    record = {"task": "imdb", "model": "astro", "seed": 0, "learning_curve": {"steps": [0, 5], "values": [0.5]}}
    with pytest.raises(ValueError, match="imdb/astro/seed0: 2 steps but 1 values"):
        aggregate.curve_rows(record)
