"""Runs with a validation split: valid_acc and test_acc every epoch, the epoch selected on valid_acc, early stopping
derived from the metric rows (so a resumed run stops where an uninterrupted one does), the learning curve on the
validation split, and records made before validation splits keeping their summaries."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from astromorphic import training
from astromorphic.data import prepare
from astromorphic.runs import early_stop_epoch, read_metrics, selection_metric, summarise
from astromorphic.runs.records import record_problem
from astromorphic.tables.aggregate import tidy_runs
from astromorphic.tables.context import classifier_selection
from astromorphic.tasks import LM_TASKS
from astromorphic.training import TrainingRun, train_run
from test_training import strip_time, tiny_config

REPO = Path(__file__).resolve().parents[1]
VALID = 64  # validation reviews of the synthetic stand-in
EPOCHS, PATIENCE = 10, 2


def valid_config(**train) -> dict:
    config = tiny_config("imdb", **{"epochs": EPOCHS, "early_stopping": PATIENCE, "curve_every_steps": 3,
                                    "curve_samples": 32, **train})  # fmt: skip
    config["tasks"]["imdb"]["data"]["valid_size"] = VALID
    return config


@pytest.fixture(scope="module")
def valid_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "imdb"
    prepare("imdb", "synthetic", out, n_train=256, n_test=128, seq_len=32, vocab_size=200, valid_size=VALID)
    return out


@pytest.fixture(scope="module")
def stopped_run(valid_data, tmp_path_factory):
    """An uninterrupted run that early stopping ends before its last epoch (the reference of the tests below)."""
    out = tmp_path_factory.mktemp("runs") / "imdb" / "astro" / "seed3"  # laid out as a record
    return out, train_run("imdb", "astro", 3, valid_config(), out, valid_data)


def test_each_epoch_measures_valid_and_test_and_the_best_epoch_is_chosen_on_valid(stopped_run):
    out, record = stopped_run
    rows = read_metrics(out / "metrics.csv")
    assert list(rows[0])[:5] == ["epoch", "train_loss", "valid_acc", "test_acc", "lr"]
    scored = [r for r in rows if r["epoch"] >= 1]
    top = max(r["valid_acc"] for r in scored)
    chosen = min(r["epoch"] for r in scored if r["valid_acc"] == top)  # ties: the earliest
    assert record["best"]["selected_by"] == "valid_acc" and record["best"]["epoch"] == chosen
    assert record["best"]["test_acc"] == rows[chosen]["test_acc"]  # the test accuracy at the selected epoch
    assert record["data"]["held_out"] == ["valid", "test"]


def test_early_stopping_ends_the_run_and_says_why(stopped_run):
    out, record = stopped_run
    rows = read_metrics(out / "metrics.csv")
    last = rows[-1]["epoch"]
    assert record["status"] == "finished" and last < EPOCHS and record["epochs_completed"] == last
    assert record["stopped"] == {"reason": "early_stopping", "epoch": last, "patience": PATIENCE, "metric": "valid_acc"}
    assert last - record["best"]["epoch"] == PATIENCE  # no improvement for PATIENCE epochs, and not one more
    assert early_stop_epoch("imdb", rows, PATIENCE) == last and early_stop_epoch("imdb", rows[:-1], PATIENCE) is None
    assert record_problem(out) is None  # a record of it holds together


def test_the_learning_curve_is_measured_on_the_validation_split(stopped_run):
    _, record = stopped_run
    curve = record["learning_curve"]
    assert curve["metric"] == "valid_acc" and curve["n_examples"] == 32 and curve["steps"][0] == 0
    assert len(curve["values"]) == len(curve["steps"]) > 2


def test_the_same_seed_stops_at_the_same_epoch_with_the_same_rows(stopped_run, valid_data, tmp_path):
    out, _ = stopped_run
    train_run("imdb", "astro", 3, valid_config(), tmp_path / "again", valid_data)
    assert strip_time(tmp_path / "again" / "metrics.csv") == strip_time(out / "metrics.csv")


class Killed(RuntimeError):
    pass


@pytest.mark.parametrize("where", ["mid-run", "after the stopping epoch"])
def test_a_killed_and_resumed_run_gives_the_same_rows_and_stop(stopped_run, valid_data, tmp_path, monkeypatch, where):
    out, reference = stopped_run
    resumed = tmp_path / "resumed"
    if where == "mid-run":
        real = training.train_epoch

        def killed_in_epoch_3(run, epoch, *args):
            if epoch == 3:
                raise Killed("killed")
            return real(run, epoch, *args)

        monkeypatch.setattr(training, "train_epoch", killed_in_epoch_3)
    else:  # the stopping epoch is saved, the run is not yet marked finished
        monkeypatch.setattr(TrainingRun, "stop_reason", lambda self, patience: (_ for _ in ()).throw(Killed("k")))
    with pytest.raises(Killed):
        train_run("imdb", "astro", 3, valid_config(), resumed, valid_data)
    assert json.loads((resumed / "run.json").read_text())["status"] == "running"
    monkeypatch.undo()
    record = train_run("imdb", "astro", 3, valid_config(), resumed, valid_data)
    assert strip_time(resumed / "metrics.csv") == strip_time(out / "metrics.csv")
    assert record["stopped"] == reference["stopped"] and record["best"] == reference["best"]
    assert record["resumed_from_epochs"] == ([2] if where == "mid-run" else [reference["epochs_completed"]])


def test_a_run_without_early_stopping_trains_every_epoch(valid_data, tmp_path):
    record = train_run("imdb", "astro", 3, valid_config(epochs=2, early_stopping=None), tmp_path / "r", valid_data)
    assert record["stopped"] == {"reason": "max_epochs", "epoch": 2} and record["best"]["selected_by"] == "valid_acc"


def test_a_record_that_trained_past_its_stop_is_refused(stopped_run, tmp_path):
    out, record = stopped_run
    copy = tmp_path / "imdb" / "astro" / "seed3"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("checkpoint.pt", "*.log", "run.lock"))
    record = json.loads((copy / "run.json").read_text())
    record["config"]["train"]["early_stopping"] = 1  # would have ended it earlier than its metrics go
    (copy / "run.json").write_text(json.dumps(record))
    assert "but early stopping ends it after epoch" in record_problem(copy)


def row(epoch: int, **values) -> dict:
    return {"epoch": epoch, "train_loss": None if epoch == 0 else 0.5, **values}


def test_selection_without_a_validation_split_is_the_one_records_were_made_with():
    rows = [row(0, test_acc=0.9), row(1, test_acc=0.6), row(2, test_acc=0.8), row(3, test_acc=0.8)]
    assert selection_metric("imdb", rows) == ("test_acc", True)
    best = summarise("imdb", rows, [])["best"]
    assert (best["selected_by"], best["epoch"]) == ("test_acc", 2)  # from epoch 1, ties: the earlier
    with_valid = [row(0, valid_acc=0.5, test_acc=0.9), row(1, valid_acc=0.7, test_acc=0.6),
                  row(2, valid_acc=0.6, test_acc=0.8)]  # fmt: skip
    best = summarise("imdb", with_valid, [])["best"]
    assert (best["selected_by"], best["epoch"], best["test_acc"]) == ("valid_acc", 1, 0.6)
    lm = [row(0, valid_ppl=90.0), row(1, valid_ppl=50.0), row(2, valid_ppl=60.0)]
    assert summarise("wikitext2", lm, [])["best"]["epoch"] == 1  # the language model keeps its selection


def test_early_stop_epoch_from_the_rows():
    accs = [0.5, 0.6, 0.7, 0.7, 0.65, 0.8, 0.79, 0.79, 0.8]  # epochs 0..8
    rows = [row(e, valid_acc=a, test_acc=0.5) for e, a in enumerate(accs)]
    assert early_stop_epoch("imdb", rows, None) is None
    assert early_stop_epoch("imdb", rows, 2) == 4  # best 0.7 at epoch 2 (epoch 3 ties, no improvement)
    assert early_stop_epoch("imdb", rows, 3) == 8  # best 0.8 at epoch 5; 0.8 again at 8 is no improvement
    assert early_stop_epoch("imdb", rows, 4) is None
    nan_rows = [row(0, valid_acc=0.5), row(1, valid_acc=math.nan), row(2, valid_acc=0.4), row(3, valid_acc=0.3)]
    assert early_stop_epoch("imdb", nan_rows, 1) == 3
    with pytest.raises(ValueError, match="validation metric.*data.valid_size"):
        early_stop_epoch("imdb", [row(0, test_acc=0.5), row(1, test_acc=0.6)], 2)


def test_committed_records_keep_their_summaries_and_stops():
    folders = sorted((REPO / "results" / "reference").glob("*/runs/*/*/seed*"))
    assert folders, "no committed records found"
    problems = [problem for folder in folders if (problem := record_problem(folder))]
    assert not problems, problems[:3]
    for folder in folders[:: max(1, len(folders) // 20)]:
        stored = json.loads((folder / "run.json").read_text())
        if stored["task"] not in LM_TASKS and stored["best"]:
            valid = "valid" in (stored.get("data") or {}).get("held_out", [])
            assert stored["best"]["selected_by"] == ("valid_acc" if valid else "test_acc")


def test_the_summary_and_the_tables_say_which_split_chose_the_epoch(stopped_run):
    out, record = stopped_run
    _, summary, _ = tidy_runs([out])
    r = summary.iloc[0]
    assert (r["selected_by"], r["stopped"], r["early_stopping"], r["max_epochs"]) == ("valid_acc", "early_stopping",
                                                                                     PATIENCE, EPOCHS)
    assert r["best_valid_acc"] == record["best"]["valid_acc"] and r["best_test_acc"] == record["best"]["test_acc"]
    assert r["final_valid_acc"] == record["final"]["valid_acc"] and r["best_epoch"] == record["best"]["epoch"]
    text = classifier_selection(summary, "imdb", "best")
    assert "highest validation accuracy" in text and "test split chooses nothing" in text
    assert f"patience {PATIENCE} epochs" in text and f"at most {EPOCHS} epochs" in text and "ended 1 of 1 runs" in text
    old = summary.assign(selected_by="test_acc", stopped="max_epochs")  # as records without a validation split
    assert "chosen on the test set" in classifier_selection(old, "imdb", "best")
    mixed = pd.concat([summary, old], ignore_index=True)
    assert "highest validation accuracy in 1 of 2 runs" in classifier_selection(mixed, "imdb", "best")
    assert "last epoch" in classifier_selection(mixed, "imdb", "final")
    committed = tidy_runs([REPO / "tests" / "records" / "tiny-imdb" / "runs" / "imdb" / "astro" / "seed0"])[1]
    assert (committed["selected_by"] == "test_acc").all() and (committed["stopped"] == "max_epochs").all()


def test_the_page_says_when_the_epoch_cap_and_not_early_stopping_chose_the_epoch():
    runs = pd.DataFrame({"task": "cifar10", "selected_by": "valid_acc", "early_stopping": 3, "max_epochs": 12,
                         "stopped": ["max_epochs", "max_epochs", "max_epochs", "early_stopping"],
                         "epochs": [12, 12, 12, 9], "best_epoch": [12, 11, 12, 6]})
    text = classifier_selection(runs, "cifar10", "best")
    assert "ended 1 of 4 runs before their last epoch" in text and "selected epochs 6-12" in text
    assert "in 2 of the 3 runs the cap ended, the selected epoch is the last one trained" in text
    plateau = runs.assign(best_epoch=[10, 11, 9, 6])
    text = classifier_selection(plateau, "cifar10", "best")
    assert "selected epochs 6-11" in text and "the cap ended" not in text
    assert "selected epoch 3" in classifier_selection(plateau.assign(best_epoch=3), "cifar10", "best")
