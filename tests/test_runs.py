"""The run directory contract (astromorphic.runs, astromorphic.io): code identity, run names, the lock, the
guard against going back to an earlier epoch, checkpoints read without running code, and how aggregation and
tables treat a run that has not ended. No training here (tests/test_training.py trains)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from _fake_runs import make_runs
from astromorphic import tables
from astromorphic.tables import aggregate
from astromorphic import io as aio
from astromorphic.config import ConfigError, validate_config
from astromorphic.runs import PACKAGE_DIR, RunDir, RunError, code_files, code_hash, data_code_hash, fingerprint
from astromorphic.run_names import format_model_name, format_value, parse_model_name

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "results" / "reference" / "paper_values.csv"
TASKS = ("imdb", "cifar10", "wikitext2")


# ------------------------------------------------------------------------------------------ code identity


def _edit(path: Path) -> None:
    """A change of behaviour: a new statement (C++: a new declaration)."""
    text = "\nint astromorphic_edit = 1;\n" if path.suffix == ".cpp" else "\nASTROMORPHIC_EDIT = 1\n"
    path.write_text(path.read_text() + text)


def test_code_hash_follows_the_code_that_computes_a_run_and_nothing_else(package_copy):
    before = {t: code_hash(t, package_copy) for t in TASKS}
    assert before == {t: code_hash(t) for t in TASKS}  # the hash reads names and bytes, not locations
    names = {p.relative_to(package_copy).as_posix() for p in code_files("imdb", package_copy)}
    assert {"attention/functional.py", "models.py", "training/__init__.py", "training/epoch.py", "data/batches.py",
            "data/imdb.py"} <= names
    assert not {"tables/__init__.py", "tables/aggregate.py", "data/cifar10.py"} & names
    assert not [n for n in names if n.startswith("plotting/")]

    for name in ("plotting/lm_curves.py", "tables/__init__.py", "tables/aggregate.py"):
        _edit(package_copy / name)  # reporting code: no run is out of date
    assert {t: code_hash(t, package_copy) for t in TASKS} == before

    _edit(package_copy / "data" / "imdb.py")  # one task's data module: that task only
    after = {t: code_hash(t, package_copy) for t in TASKS}
    assert after["imdb"] != before["imdb"] and after["cifar10"] == before["cifar10"]
    assert after["wikitext2"] == before["wikitext2"]

    _edit(package_copy / "data" / "tokenizers.py")  # a module the language model's data module imports
    split_out = {t: code_hash(t, package_copy) for t in TASKS}
    assert split_out["wikitext2"] != after["wikitext2"] and split_out["imdb"] == after["imdb"]
    assert split_out["cifar10"] == after["cifar10"]

    # shared code: every task (the training code reads the prepared data through data/__init__.py)
    for name in ("models.py", "kernels/causal_sigmoid.cpp", "data/__init__.py"):
        previous = {t: code_hash(t, package_copy) for t in TASKS}
        _edit(package_copy / name)
        assert all(code_hash(t, package_copy) != previous[t] for t in TASKS), name


def test_formatting_keeps_the_code_hash_and_a_changed_constant_does_not(package_copy):
    before = {t: code_hash(t, package_copy) for t in TASKS}
    models = package_copy / "models.py"
    # black at another line length, a reworded comment and docstring: the same program
    subprocess.run([sys.executable, "-m", "black", "-q", "--line-length", "60", str(models)], check=True)
    text = models.read_text()
    assert text != (PACKAGE_DIR / "models.py").read_text()
    models.write_text(text.replace('"""', '"""Reworded. ', 1) + "\n# a new comment\n")
    kernel = package_copy / "kernels" / "causal_sigmoid.cpp"
    kernel.write_text("// a new comment\n" + kernel.read_text().replace(";\n", " ;  /* note */\n", 3))
    assert {t: code_hash(t, package_copy) for t in TASKS} == before
    constants = [line for line in text.splitlines() if re.match(r"^[A-Z_]+ = \d", line)] or ["_EPS = 1"]
    models.write_text(text + f"\n{constants[0]}0\n")  # a changed constant (or a new one)
    assert all(code_hash(t, package_copy) != before[t] for t in TASKS)


def test_data_code_hash_follows_the_code_that_prepares_each_task(package_copy):
    before = {t: data_code_hash(t, package_copy) for t in TASKS}
    _edit(package_copy / "models.py")  # training code: the data stay
    assert {t: data_code_hash(t, package_copy) for t in TASKS} == before
    _edit(package_copy / "data" / "imdb.py")
    after = {t: data_code_hash(t, package_copy) for t in TASKS}
    assert after["imdb"] != before["imdb"] and after["cifar10"] == before["cifar10"]
    _edit(package_copy / "data" / "tokenizers.py")  # imported by the language model's data module only
    split_out = {t: data_code_hash(t, package_copy) for t in TASKS}
    assert split_out["wikitext2"] != after["wikitext2"] and split_out["imdb"] == after["imdb"]
    after = split_out
    _edit(package_copy / "data" / "synthetic.py")  # the generators of every task
    assert all(data_code_hash(t, package_copy) != after[t] for t in TASKS)


def test_the_fingerprint_holds_the_code_hash():
    cfg = {"train": {"lr": 1e-3, "threshold": 0.85}}
    one = fingerprint("imdb", "astro", 0, cfg, "data-sha", code="a" * 64)
    assert one != fingerprint("imdb", "astro", 0, cfg, "data-sha", code="b" * 64)
    assert fingerprint("imdb", "astro", 0, cfg, "data-sha") == fingerprint(
        "imdb", "astro", 0, cfg, "data-sha", code=code_hash("imdb")
    )
    # a reporting key is no part of it
    assert one == fingerprint("imdb", "astro", 0, {"train": {"lr": 1e-3, "threshold": 0.5}}, "data-sha", code="a" * 64)


# ------------------------------------------------------------------------------------------ run names


@pytest.mark.parametrize("value", [1234567, 1234568, 0.1, 1e-05, 2.5e-07, 0.30000000000000004, 123456789.5, 3])
def test_a_swept_value_reads_back_exactly_from_its_run_name(value):
    preset, overrides = parse_model_name(format_model_name("astro", {"m_scale": value}))
    assert preset == "astro" and overrides == {"m_scale": value}


def test_close_values_get_distinct_names_and_existing_names_stay():
    assert format_model_name("astro", {"m_scale": 1234567}) != format_model_name("astro", {"m_scale": 1234568})
    assert format_model_name("astro", {"m_scale": 1234567.0}) == "astro@m_scale=1234567"
    assert format_model_name("astro", {"alpha": 1.0}) == "astro@alpha=1"
    assert format_model_name("astro", {"m_scale_factor": 500}) == "astro@m_scale_factor=500"
    assert [format_value(v) for v in (0.25, 1e-05, 50.0)] == ["0.25", "1e-05", "50"]


def test_a_sweep_entry_rejects_the_same_value_written_twice():
    grid = [{"key": "m_scale_factor", "values": [500, 500.0], "models": ["astro"]}]
    with pytest.raises(ConfigError, match="sweep.grid.0.values: .*appears twice"):
        validate_config({"tasks": {"imdb": {}}, "sweep": {"tasks": ["imdb"], "grid": grid}})


# ------------------------------------------------------------------------------------------ one writer


HOLD_LOCK = """
import sys, time
from pathlib import Path
from astromorphic.runs import RunDir
with RunDir(Path(sys.argv[1])).lock():
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def lock_holder(tmp_path):
    """A second process holding the lock of tmp_path/run; yields (run dir, its pid)."""
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield run, proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_second_writer_fails_at_once_naming_the_holder(lock_holder):
    run, pid = lock_holder
    t0 = time.monotonic()
    with pytest.raises(RunError) as err:
        with RunDir(run).lock():
            pytest.fail("two writers hold one run")
    assert time.monotonic() - t0 < 5
    message = str(err.value)
    assert "\n" not in message and str(run) in message
    assert f"pid {pid}" in message and socket.gethostname() in message


def test_the_lock_goes_with_its_holder(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock():
        assert f"pid {os.getpid()}" in run.lock_file.read_text()
    with run.lock():  # released on exit, so the next writer gets it
        pass


def test_stale_temporaries_of_atomic_writes_are_found_and_removed(tmp_path):
    with pytest.raises(RuntimeError):
        with aio.atomic_path(tmp_path / "metrics.csv") as tmp:
            tmp.write_text("half")
            leftover = tmp.with_name(tmp.name.replace("metrics", "run"))
            shutil.copy(tmp, leftover)  # what a killed writer leaves (a kill skips the clean-up)
            raise RuntimeError("killed")
    keep = [tmp_path / "run.json", tmp_path / "notes.tmp", tmp_path / "train.log"]
    for path in keep:
        path.write_text("x")
    assert aio.temporary_files(tmp_path) == [leftover]
    assert RunDir(tmp_path).remove_temporaries() == [leftover]
    assert not leftover.exists() and all(p.exists() for p in keep)


def test_an_os_error_without_a_file_name_is_raised_naming_the_target(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(aio.os, "fsync", full)
    with pytest.raises(OSError) as err:
        aio.write_text(tmp_path / "run.json", "{}")
    assert err.value.filename == str(tmp_path / "run.json") and err.value.errno == 28
    assert not aio.temporary_files(tmp_path)


# ------------------------------------------------------------------------------------------ never back


def _rows(last: int) -> list[dict]:
    return [{"epoch": e, "train_loss": None if e == 0 else 1.0 / e, "test_acc": 0.5 + e / 100} for e in range(last + 1)]


def test_publish_never_writes_an_earlier_epoch_than_the_one_on_disk(tmp_path):
    run = RunDir(tmp_path)
    columns = ["epoch", "train_loss", "test_acc"]
    assert run.publish("imdb", {"status": "running", "fingerprint": "f"}, columns, _rows(3))
    disk = run.metrics_file.read_bytes()
    assert not run.publish("imdb", {"status": "running", "fingerprint": "f"}, columns, _rows(1))
    assert run.metrics_file.read_bytes() == disk and run.read_record()["epochs_completed"] == 3
    assert run.publish("imdb", {"status": "finished", "fingerprint": "f"}, columns, _rows(4))
    assert run.read_record()["epochs_completed"] == 4


def test_a_fresh_start_replaces_what_another_fingerprint_left(tmp_path):
    run = RunDir(tmp_path)
    run.publish("imdb", {"status": "finished", "fingerprint": "old"}, ["epoch", "test_acc"], _rows(2))
    run.checkpoint_file.write_bytes(b"old")
    run.start_fresh({"status": "running", "fingerprint": "new", "epochs_completed": 0})
    assert run.read_record() == {"status": "running", "fingerprint": "new", "epochs_completed": 0}
    assert not run.metrics_file.exists() and not run.checkpoint_file.exists()


# ------------------------------------------------------------------------------------------ checkpoints


class _RunsCode:
    """Unpickling this creates a folder: a checkpoint must never be able to do that."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _bad_checkpoints(tmp_path: Path) -> dict:
    good = {"format": 2, "fingerprint": "f", "epoch": 1, "weights": torch.ones(3)}
    return {
        "a list": lambda path: torch.save([1, 2, 3], path),
        "truncated": lambda path: (torch.save(good, path), path.write_bytes(path.read_bytes()[:100])),
        "code": lambda path: torch.save({**good, "payload": _RunsCode(tmp_path / "ran")}, path),
        "empty": lambda path: path.write_bytes(b""),
    }


@pytest.mark.parametrize("kind", ["a list", "truncated", "code", "empty"])
def test_an_unusable_checkpoint_gives_one_warning_and_a_fresh_start(tmp_path, caplog, kind):
    run = RunDir(tmp_path)
    _bad_checkpoints(tmp_path)[kind](run.checkpoint_file)
    log = logging.getLogger("test.checkpoint")
    with caplog.at_level(logging.WARNING, logger="test.checkpoint"):
        assert run.load_checkpoint("f", log) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "starting afresh" in warnings[0], warnings
    assert not (tmp_path / "ran").exists()  # nothing in the file was run


def test_a_checkpoint_of_tensors_and_plain_values_is_read_back(tmp_path):
    run = RunDir(tmp_path)
    state = {"fingerprint": "f", "epoch": 2, "weights": torch.arange(4.0), "rows": [{"epoch": 1, "x": None}],
             "python": (3, (1, 2, 3), None)}
    run.save_checkpoint(state)
    loaded = run.load_checkpoint("f", logging.getLogger("test.checkpoint"))
    assert torch.equal(loaded["weights"], state["weights"]) and loaded["python"] == state["python"]
    assert run.load_checkpoint("other", logging.getLogger("test.checkpoint")) is None


# ------------------------------------------------------------------------------------------ unfinished runs


def test_an_unfinished_run_is_shown_as_such_and_counted_as_no_seed(tmp_path):
    runs, cfg = make_runs(tmp_path, tasks=("imdb",), seeds=(0, 1, 2), epochs=3)
    record_file = runs / "imdb" / "astro" / "seed2" / "run.json"
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "status": "running"}))
    started = runs / "imdb" / "vanilla" / "seed2"  # started, no epoch published yet
    (started / "metrics.csv").unlink()
    record = json.loads((started / "run.json").read_text())
    (started / "run.json").write_text(json.dumps({**record, "status": "running"}))

    out = tmp_path / "tables"
    assert aggregate.main(["--runs", str(runs), "--out", str(out / "runs.csv")]) == 0
    summary = pd.read_csv(out / "runs_summary.csv")
    mine = summary.set_index(["model", "seed"])
    assert mine.loc[("astro", 2), "status"] == "running" and not mine.loc[("astro", 2), "complete"]
    assert mine.loc[("vanilla", 2), "status"] == "running" and not mine.loc[("vanilla", 2), "complete"]
    assert mine.loc[("astro", 1), "complete"]

    args = ["--config", str(cfg), "--summary", str(out / "runs_summary.csv"), "--runs", str(out / "runs.csv"),
            "--reference", str(REFERENCE), "--out-dir", str(out)]
    assert tables.main(args) == 0
    t1 = pd.read_csv(out / "table1.csv").set_index("model")
    assert (t1.loc["astro", "n_seeds"], t1.loc["vanilla", "n_seeds"], t1.loc["linearized", "n_seeds"]) == (2, 2, 3)
    speed = pd.read_csv(out / "learning_speed.csv").set_index("model")
    assert speed.loc["astro", "n_seeds"] == 2
