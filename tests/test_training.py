"""Training runs: resume after SIGKILL, determinism, divergence, learning, config errors, probe and audit.

Everything runs on tiny synthetic data and tiny models on CPU with one thread.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from astromorphic import training
from astromorphic.bench import throughput
from astromorphic.config import TASK_MODELS, apply_overrides, resolve_task_config, validate_run
from astromorphic.data.batches import ImageData
from astromorphic.runs import RunDir, RunError, code_hash, read_metrics
from astromorphic.training import lr_factor, main, train_run

REPO = Path(__file__).resolve().parents[1]

# Sizes of the synthetic data (options of `astromorphic prepare ... synthetic`).
DATA_OPTIONS = {
    "imdb": {"n_train": 256, "n_test": 128, "seq_len": 32, "vocab_size": 200},
    "cifar10": {"n_train": 128, "n_test": 64},
    "wikitext2": {"n_train": 6000, "n_valid": 1500, "n_test": 1500},
}


def tiny_task(task: str, **train) -> dict:
    model = {"d_model": 16, "n_layers": 1, "n_heads": 2, "ffn_mult": 2, "dropout": 0.1, "max_len": 32}
    data = {"source": "synthetic", "seq_len": 32}
    if task == "cifar10":
        model.update(max_len=64, patch=4, stem_channels=8)
        data = {"source": "synthetic"}
    base = {"lr": 3e-3, "batch_size": 16, "epochs": 3, "threads": 1, "max_train_batches": 6, "eval_batch_size": 32}
    if task == "cifar10":
        base["augment"] = {"random_crop_padding": 4, "hflip": True}
    if task == "wikitext2":
        base.update(max_eval_tokens=400, probe_samples=2)
    base.update(train)
    return {"data": data, "model": model, "attention": {"m_scale_factor": 4.0}, "train": base}


def tiny_config(task: str, **train) -> dict:
    return {"label": "test", "synthetic": True, "tasks": {task: tiny_task(task, **train)}}


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    from astromorphic.data import prepare

    root = tmp_path_factory.mktemp("data")
    out = {}
    for task, options in DATA_OPTIONS.items():
        out[task] = root / task
        prepare(task, "synthetic", out[task], **options)
    return out


def strip_time(path: Path) -> str:
    """metrics.csv without its timing columns, as text: the part that must be identical."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    keep = [i for i, name in enumerate(rows[0]) if not name.startswith("time_")]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    return buf.getvalue()


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


# ------------------------------------------------------------------------------------------ pure helpers


def test_lr_schedule_warmup_then_cosine():
    kw = dict(total_steps=10, warmup_steps=2, schedule="cosine", min_ratio=0.0)
    assert [lr_factor(s, **kw) for s in (0, 1)] == [0.5, 1.0]
    assert lr_factor(2, **kw) == pytest.approx(1.0)
    assert lr_factor(6, **kw) == pytest.approx(0.5)
    assert lr_factor(10, **kw) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(7, total_steps=10, warmup_steps=0, schedule="constant", min_ratio=0.0) == 1.0


def test_cifar_augmentation_is_a_crop_and_flip_drawn_from_the_generator():
    cfg = resolve_task_config(
        {"tasks": {"cifar10": {"train": {"augment": {"random_crop_padding": 2, "hflip": True}}}}}, "cifar10"
    )
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    splits = {
        "train": {"images": images, "labels": torch.zeros(6, dtype=torch.long)},
        "test": {"images": images, "labels": torch.zeros(6, dtype=torch.long)},
    }
    data = ImageData(splits, {"mean": [0.5] * 3, "std": [0.25] * 3}, cfg)
    a = data._augment(images, torch.Generator().manual_seed(1))
    b = data._augment(images, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == images.shape and a.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(6):  # every output is one of the 25 crops of the padded image, possibly flipped
        crops = [padded[i, :, y : y + 32, x : x + 32] for y in range(5) for x in range(5)]
        assert any(torch.equal(a[i], c) or torch.equal(a[i], c.flip(-1)) for c in crops)


# ------------------------------------------------------------------------------------------ configuration


def test_defaults_are_the_papers_setup():
    imdb, cifar, lm = (resolve_task_config({}, t) for t in ("imdb", "cifar10", "wikitext2"))
    assert (imdb["model"]["d_model"], imdb["model"]["max_len"], imdb["train"]["lr"], imdb["train"]["batch_size"]) == (
        128,
        400,
        1e-5,
        64,
    )
    assert (cifar["model"]["n_layers"], cifar["model"]["n_heads"], cifar["train"]["epochs"]) == (8, 8, 250)
    assert (lm["model"]["d_model"], lm["data"]["seq_len"], lm["attention"]["m_scale_factor"]) == (768, 512, 100.0)
    assert imdb["train"]["grad_clip"] is None  # divergence stays visible
    assert set(TASK_MODELS) == {"imdb", "cifar10", "wikitext2"}
    assert cifar["train"]["augment"] == {"random_crop_padding": 4, "hflip": True}
    no_aug = resolve_task_config({"tasks": {"cifar10": {"train": {"augment": {}}}}}, "cifar10")
    assert no_aug["train"]["augment"] == {"random_crop_padding": 0, "hflip": False}  # `{}`: augmentation off


@pytest.mark.parametrize(
    ("model", "edit", "message"),
    [
        ("foo", {}, "model 'foo' unknown"),
        ("astro", {"train": {"lr": -0.1}}, "tasks.imdb.train.lr: must be > 0, got -0.1"),
        ("astro", {"data": {"seq_len": 64}}, "tasks.imdb: data.seq_len (64) exceeds model.max_len (32)"),
        ("astro", {"train": {"schedule": "linear"}}, "tasks.imdb.train.schedule"),
        (
            "astro",
            {"model": {"n_heads": 3}},
            "tasks.imdb.model: d_model (16) must be divisible by n_heads (3)",
        ),
        ("astro-leaky", {}, "not defined for task 'imdb'"),
    ],
)
def test_invalid_config_fails_before_training_naming_the_key(tmp_path, model, edit, message):
    task = tiny_task("imdb")
    for section, values in edit.items():
        task[section].update(values)
    config = {"tasks": {"imdb": task}}
    with pytest.raises(ValueError, match=None) as err:
        validate_run(config, "imdb", model)
    assert message in str(err.value)
    # Through the library: the error comes before the (missing) data is looked at, nothing is written.
    out = tmp_path / "run"
    with pytest.raises(ValueError):
        train_run("imdb", model, 0, config, out, tmp_path / "no-data")
    assert not out.exists()


def test_cli_reports_config_errors_with_exit_code_2(tmp_path, capsys):
    cfg = write_config(tmp_path / "bad.yaml", tiny_config("imdb", lr=-0.1))
    rc = main(["--task", "imdb", "--model", "astro", "--seed", "0", "--config", str(cfg), "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "tasks.imdb.train.lr: must be > 0" in capsys.readouterr().err
    good = write_config(tmp_path / "good.yaml", tiny_config("imdb"))
    rc = main(["--task", "imdb", "--model", "nope", "--config", str(good), "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "model 'nope' unknown" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------ runs


@pytest.fixture(scope="module")
def reference_run(data_dirs, tmp_path_factory):
    """An uninterrupted IMDB run (4 epochs), the reference of the determinism and resume tests."""
    out = tmp_path_factory.mktemp("runs") / "reference"
    record = train_run("imdb", "astro", 3, tiny_config("imdb", epochs=4), out, data_dirs["imdb"])
    return out, record


def test_run_record_is_complete(reference_run):
    out, record = reference_run
    assert record["status"] == "finished" and record["epochs_completed"] == 4
    for key in ("config", "seed", "code_version", "packages", "device", "data_manifest_sha256", "final", "probe_init"):
        assert record[key] not in (None, "", {}), key
    assert record["code_hash"] == code_hash("imdb")
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)  # no code in a checkpoint
    assert isinstance(state, dict) and state["epoch"] == 4 and state["fingerprint"] == record["fingerprint"]
    assert record["code_version"].startswith(("git:", "package:"))
    assert record["packages"]["torch"] == torch.__version__.split("+")[0] or record["packages"]["torch"].startswith(
        torch.__version__.split("+")[0]
    )
    rows = read_metrics(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3, 4]
    header = list(rows[0])
    assert header[:5] == ["epoch", "train_loss", "test_acc", "lr", "grad_norm"]
    assert header[-2:] == ["time_epoch_s", "time_throughput"]
    assert "attn_ratio_l0" in header and "sigmoid_arg_mean_l0" in header and "sigmoid_arg_std_l0" in header
    assert rows[0]["train_loss"] is None and rows[0]["test_acc"] is not None
    assert record["probe_init"][0]["attn_ratio"] == pytest.approx(rows[0]["attn_ratio_l0"])
    assert record["final"]["test_acc"] == rows[-1]["test_acc"]
    assert (out / "checkpoint.pt").exists() and (out / "train.log").exists()


def test_same_seed_gives_identical_metrics(reference_run, data_dirs, tmp_path):
    out, _ = reference_run
    again = tmp_path / "again"
    train_run("imdb", "astro", 3, tiny_config("imdb", epochs=4), again, data_dirs["imdb"])
    assert strip_time(again / "metrics.csv") == strip_time(out / "metrics.csv")
    other = tmp_path / "other-seed"
    train_run("imdb", "astro", 4, tiny_config("imdb", epochs=1), other, data_dirs["imdb"])
    assert read_metrics(other / "metrics.csv")[1]["train_loss"] != read_metrics(out / "metrics.csv")[1]["train_loss"]


def test_sigkill_mid_epoch_then_rerun_equals_uninterrupted_run(reference_run, data_dirs, tmp_path):
    ref_out, _ = reference_run
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config("imdb", epochs=4))
    out = tmp_path / "killed"
    argv = [
        "--task",
        "imdb",
        "--model",
        "astro",
        "--seed",
        "3",
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--data",
        str(data_dirs["imdb"]),
    ]
    env = dict(os.environ, ASTROMORPHIC_TEST_STEP_DELAY="0.15", CI="1", PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "astromorphic", "train", *argv], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the end of epoch 1, then kill half-way into epoch 2
            if (out / "metrics.csv").exists() and len(read_metrics(out / "metrics.csv")) >= 2:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("epoch 1 did not finish in time")
        time.sleep(0.4)  # 6 steps x 0.15 s per epoch: this is mid-epoch 2
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        completed = len(read_metrics(out / "metrics.csv")) - 1  # epochs with a checkpoint when killed
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "running"
    assert len(read_metrics(out / "metrics.csv")) < 5
    assert main(argv) == 0  # the same command again
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "finished" and record["resumed_from_epochs"] == [completed]
    assert strip_time(out / "metrics.csv") == strip_time(ref_out / "metrics.csv")
    # A finished run is not retrained.
    stamp = (out / "checkpoint.pt").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_nonfinite_loss_gives_diverged_exit_0_and_the_record_so_far(data_dirs, tmp_path):
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config("imdb", epochs=4))
    out = tmp_path / "div"
    argv = [
        "--task",
        "imdb",
        "--model",
        "linearized",
        "--seed",
        "0",
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--data",
        str(data_dirs["imdb"]),
    ]
    assert main([*argv, "--inject-nonfinite-at", "3:2"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "diverged" and record["diverged_epoch"] == 3
    assert record["divergence"] == {"step": 2, "quantity": "loss", "value": "nan"}
    rows = read_metrics(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert all(math.isfinite(r["train_loss"]) for r in rows[1:])
    assert record["final"]["epoch"] == 2
    json.loads((out / "run.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert main(argv) == 0  # a diverged run is final: not retrained
    assert json.loads((out / "run.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize("task", ["imdb", "cifar10", "wikitext2"])
def test_tiny_run_lowers_the_training_loss(task, data_dirs, tmp_path):
    record = train_run(task, "astro", 0, tiny_config(task, epochs=3), tmp_path / task, data_dirs[task])
    rows = read_metrics(tmp_path / task / "metrics.csv")
    assert record["status"] == "finished"
    assert rows[-1]["train_loss"] < rows[1]["train_loss"]
    if task == "wikitext2":
        for key in ("valid_ppl", "test_ppl", "valid_word_ppl", "test_word_ppl"):
            assert rows[-1][key] < rows[0][key]
        assert rows[-1]["valid_word_ppl"] >= rows[-1]["valid_ppl"]  # at least one token per word
        audit = record["causality_audit"]
        assert audit["passed"] and audit["max_abs_change"] <= audit["tolerance"]
        assert record["causality_audit_init"]["passed"]


@pytest.mark.parametrize("model", ["no-attention", "vanilla"])
def test_other_presets_train(model, data_dirs, tmp_path):
    record = train_run("imdb", model, 0, tiny_config("imdb", epochs=2), tmp_path / model, data_dirs["imdb"])
    rows = read_metrics(tmp_path / model / "metrics.csv")
    assert record["status"] == "finished" and len(rows) == 3
    if model == "no-attention":
        assert all(r["attn_ratio_l0"] == 0.0 for r in rows)


def test_leaky_lm_fails_the_causality_audit_and_says_so(data_dirs, tmp_path):
    record = train_run(
        "wikitext2", "astro-leaky", 0, tiny_config("wikitext2", epochs=1), tmp_path / "leaky", data_dirs["wikitext2"]
    )
    assert record["status"] == "finished"
    assert not record["causality_audit"]["passed"]
    assert record["causality_audit"]["max_abs_change"] > record["causality_audit"]["tolerance"]


def test_changed_config_does_not_reuse_a_finished_run(data_dirs, tmp_path):
    out = tmp_path / "run"
    train_run("imdb", "astro", 0, tiny_config("imdb", epochs=1), out, data_dirs["imdb"])
    record = train_run("imdb", "astro", 0, tiny_config("imdb", epochs=2), out, data_dirs["imdb"], force=True)
    assert record["epochs_completed"] == 2 and not record["resumed_from_epochs"]


def test_overrides_and_throughput_measurement():
    config = apply_overrides(
        tiny_config("imdb"), ["tasks.imdb.attention.alpha=0.3", "tasks.imdb.train.grad_clip=1.0"]
    )
    cfg = validate_run(config, "imdb", "astro")
    assert cfg["attention"]["alpha"] == 0.3 and cfg["train"]["grad_clip"] == 1.0
    result = throughput.measure_throughput("imdb", "astro", config, n_batches=1, warmup=0)
    assert result["train_throughput"] > 0 and result["eval_throughput"] > 0 and result["unit"] == "samples"
    sizes = throughput.run_sizes("imdb", cfg)
    assert sizes == {"train": 6 * 16, "eval": 25_000, "epochs": 3}
    assert throughput.projected_hours(result, sizes) > 0


# ------------------------------------------------------------------------------------------ stale, concurrent, broken


def _argv(cfg: Path, out: Path, data: Path, model: str = "astro") -> list[str]:
    return ["--task", "imdb", "--model", model, "--seed", "0", "--config", str(cfg), "--out", str(out),
            "--data", str(data)]  # fmt: skip


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("astromorphic train: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_a_code_change_retrains_from_scratch_and_replaces_the_stale_record(data_dirs, tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = tiny_config("imdb", epochs=2)
    old = train_run("imdb", "astro", 0, config, out, data_dirs["imdb"])
    assert old["code_hash"] == code_hash("imdb")
    old_metrics = strip_time(out / "metrics.csv")
    monkeypatch.setattr(training, "code_hash", lambda task: "0" * 64)  # the code that computes the run changed
    with pytest.raises(RunError, match="--force"):
        train_run("imdb", "astro", 0, config, out, data_dirs["imdb"])
    assert json.loads((out / "run.json").read_text()) == old

    initial_epoch = training.TrainingRun.initial_epoch

    def stop(self):
        raise KeyboardInterrupt  # the rerun is stopped before its first epoch

    monkeypatch.setattr(training.TrainingRun, "initial_epoch", stop)
    with pytest.raises(KeyboardInterrupt):
        train_run("imdb", "astro", 0, config, out, data_dirs["imdb"], force=True)
    record = json.loads((out / "run.json").read_text())  # nothing of the old code's run is left to be read
    assert record["status"] == "running" and record["code_hash"] == "0" * 64
    assert record["fingerprint"] != old["fingerprint"] and record["epochs_completed"] == 0
    assert not (out / "metrics.csv").exists() and not (out / "checkpoint.pt").exists()

    monkeypatch.setattr(training.TrainingRun, "initial_epoch", initial_epoch)
    new = train_run("imdb", "astro", 0, config, out, data_dirs["imdb"], force=True)
    assert new["status"] == "finished" and new["code_hash"] == "0" * 64 and new["resumed_from_epochs"] == []
    assert strip_time(out / "metrics.csv") == old_metrics  # the same code really: the same numbers


def test_a_second_training_process_on_one_run_fails_at_once(data_dirs, tmp_path, capsys):
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config("imdb", epochs=1))
    out = tmp_path / "run"
    with RunDir(out).lock():  # another writer holds the run (flock: a second open file conflicts, same process or not)
        assert main(_argv(cfg, out, data_dirs["imdb"])) == 1
    line = _one_line_error(capsys)
    assert str(out) in line and f"pid {os.getpid()}" in line
    assert not (out / "run.json").exists() and not (out / "metrics.csv").exists()


def test_a_restart_behind_the_disk_never_publishes_an_earlier_epoch(data_dirs, tmp_path, monkeypatch):
    from astromorphic import io as aio

    out = tmp_path / "run"
    config = tiny_config("imdb", epochs=3)
    train_run("imdb", "astro", 0, config, out, data_dirs["imdb"])
    reference = strip_time(out / "metrics.csv")
    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**record, "status": "running"}))  # killed after epoch 3 was published
    (out / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes()[:64])  # ... and its checkpoint is lost
    stale = out / ".metrics.csv.k1ll3d.tmp"  # a temporary file of an interrupted atomic write
    stale.write_text("epoch,train_loss\n0,")
    written, write_json = [], aio.write_json

    def spy(target, obj):
        if Path(target).name == "run.json":
            written.append(obj["epochs_completed"])
        write_json(target, obj)

    monkeypatch.setattr(aio, "write_json", spy)
    final = train_run("imdb", "astro", 0, config, out, data_dirs["imdb"])
    assert written and min(written) == 3, written
    assert final["status"] == "finished" and strip_time(out / "metrics.csv") == reference
    assert not stale.exists()


def test_a_finished_run_is_replaced_only_with_force(data_dirs, tmp_path, capsys):
    out = tmp_path / "run"
    one = write_config(tmp_path / "one.yaml", tiny_config("imdb", epochs=1))
    two = write_config(tmp_path / "two.yaml", tiny_config("imdb", epochs=2))
    assert main(_argv(one, out, data_dirs["imdb"])) == 0
    capsys.readouterr()
    before = {name: (out / name).read_bytes() for name in ("run.json", "metrics.csv", "checkpoint.pt")}
    assert main(_argv(two, out, data_dirs["imdb"])) == 1
    line = _one_line_error(capsys)
    assert str(out) in line and "--force" in line and "--out" in line
    assert main(_argv(one, out, data_dirs["imdb"], model="vanilla")) == 1
    assert "model astro" in _one_line_error(capsys)
    assert {name: (out / name).read_bytes() for name in before} == before
    assert main([*_argv(two, out, data_dirs["imdb"]), "--force"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["epochs_completed"] == 2 and not record["resumed_from_epochs"]


def test_changing_the_threshold_retrains_nothing(data_dirs, tmp_path):
    out = tmp_path / "run"
    first = train_run("imdb", "astro", 0, tiny_config("imdb", epochs=1), out, data_dirs["imdb"])
    stamps = {name: (out / name).stat().st_mtime_ns for name in ("run.json", "metrics.csv", "checkpoint.pt")}
    again = train_run("imdb", "astro", 0, tiny_config("imdb", epochs=1, threshold=0.5), out, data_dirs["imdb"])
    assert again == first
    assert {name: (out / name).stat().st_mtime_ns for name in stamps} == stamps


def test_swapped_prepared_data_fail_naming_the_file(data_dirs, tmp_path, capsys):
    import shutil

    from astromorphic.data import DataError

    data = tmp_path / "data"
    shutil.copytree(data_dirs["imdb"], data)
    shutil.copy(data / "test.pt", data / "train.pt")  # same tensors and shapes, other samples
    out = tmp_path / "run"
    with pytest.raises(DataError, match="train.pt"):
        train_run("imdb", "astro", 0, tiny_config("imdb", epochs=1), out, data)
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config("imdb", epochs=1))
    assert main(_argv(cfg, out, data)) == 1
    assert str(data / "train.pt") in _one_line_error(capsys)
    assert not (out / "metrics.csv").exists()


@pytest.mark.parametrize("where", ["under a file", "on a read-only file system"])
def test_an_unwritable_out_fails_before_any_work_in_one_line(data_dirs, tmp_path, capsys, monkeypatch, where):
    if where == "under a file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "run"
    else:
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no sysfs here")
        out = Path("/sys/astromorphic-test-run")  # sysfs: nobody, root included, creates a folder there
    monkeypatch.setattr(training, "make_task_data", lambda *a, **k: pytest.fail("data loaded before --out was checked"))
    cfg = write_config(tmp_path / "cfg.yaml", tiny_config("imdb", epochs=1))
    assert main(_argv(cfg, out, data_dirs["imdb"])) == 1
    line = _one_line_error(capsys)
    assert str(out) in line and "cannot write" in line


def test_a_full_disk_is_one_line_naming_the_file(data_dirs, tmp_path, capsys, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    cfg = write_config(tmp_path / "cfg.yaml", tiny_config("imdb", epochs=1))
    out = tmp_path / "run"
    monkeypatch.setattr(os, "fsync", full)
    assert main(_argv(cfg, out, data_dirs["imdb"])) == 1
    line = _one_line_error(capsys)
    assert "No space left on device" in line and str(out) in line


def test_random_states_survive_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    cpu, gen = torch.device("cpu"), torch.Generator().manual_seed(5)
    np.random.seed(3), random.seed(4), torch.manual_seed(6)
    np.random.standard_normal()  # leaves numpy's cached gaussian set
    RunDir(tmp_path).save_checkpoint({"fingerprint": "f", "rng": training.rng_state(gen, cpu)})
    def draw():
        return np.random.standard_normal(3).tolist(), random.random(), torch.rand(2), torch.rand(2, generator=gen)

    expected = draw()
    np.random.seed(0), random.seed(0), torch.manual_seed(0), gen.manual_seed(0)
    state = RunDir(tmp_path).load_checkpoint("f", training.LOG)
    training.set_rng_state(state["rng"], gen, cpu)
    got = draw()
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2]) and torch.equal(got[3], expected[3])


def test_a_run_name_sets_the_keys_it_names(data_dirs, tmp_path):
    """Sweep and ablation runs are trained by name: astro@position_embedding=none@m_scale=32."""
    record = train_run("imdb", "astro@position_embedding=none@m_scale=32", 0, tiny_config("imdb", epochs=1),
                       tmp_path / "run", data_dirs["imdb"])
    assert record["model"] == "astro@position_embedding=none@m_scale=32" and record["preset"] == "astro"
    assert record["config"]["model"]["position_embedding"] == "none"
    assert record["attention_spec"]["m_scale"] == 32


# ------------------------------------------------------------------------------------------ host synchronisation

_READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


@pytest.mark.parametrize("task", ["imdb", "cifar10", "wikitext2"])
def test_the_training_step_reads_from_the_device_once_per_interval(task, data_dirs, tmp_path, monkeypatch):
    """Every way a floating-point tensor's value reaches the host (item, float(), int(), bool(), tolist, cpu,
    numpy), counted over an epoch of 12 steps: with train.sync_every 4, at most one read per interval and one at
    the end of the epoch; with 1 (the CPU's default), a read every step, which shows the count sees them. Integer
    tensors are not counted: the batch indices, crops and token counts are drawn on the host on purpose."""
    from astromorphic.data import load_prepared
    from astromorphic.runs import RunDir

    def reads(sync_every: int) -> int:
        config = tiny_config(task, max_train_batches=12, sync_every=sync_every)
        cfg = validate_run(config, task, "astro")
        splits, manifest = load_prepared(data_dirs[task])
        run = training.TrainingRun(task, "astro", 0, config, cfg, RunDir(tmp_path / str(sync_every)), splits, manifest,
                            torch.device("cpu"))  # fmt: skip
        counts = {"reads": 0}
        originals = {name: getattr(torch.Tensor, name) for name in _READS}

        def counting(name):
            def read(self, *args, **kwargs):
                if self.is_floating_point():
                    counts["reads"] += 1
                return originals[name](self, *args, **kwargs)

            return read

        with monkeypatch.context() as patch:
            for name in _READS:
                patch.setattr(torch.Tensor, name, counting(name))
            out = training.train_epoch(run, 1, None, 0.0, False)
        assert out["diverged"] is None and out["units"] > 0
        return counts["reads"]

    assert reads(4) <= 12 // 4 + 1
    assert reads(1) >= 12
