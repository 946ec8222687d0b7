"""Inputs refused with one line naming the file or key and the fix, before any work where that can be known:
disks that fill up, damaged metrics and manifests, seeds and sizes out of range, devices that are not there,
configuration shapes that would train nothing new, and the label written into the findings page as text."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from _fake_runs import write_run
from astromorphic import training
from astromorphic.tables import aggregate
from astromorphic.runs import records, records_command
from astromorphic import data as D
from astromorphic import io as aio
from astromorphic.config import MAX_SEED, ConfigError, load_config, validate_config, validate_run
from astromorphic.findings import Findings, provenance

TINY = Path(__file__).resolve().parent / "records" / "tiny-imdb.yaml"


def _one_line_error(err: str, *words: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("INFO")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert all(word in lines[0] for word in words), lines[0]
    return lines[0]


def _disk_full(path):
    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    return fail


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """tiny-imdb.yaml's data, prepared once."""
    out = tmp_path_factory.mktemp("data") / "imdb"
    assert D.main(["imdb", "--config", str(TINY), "--out", str(out)]) == 0
    return out


# ------------------------------------------------------------------------------------------ 5: full disks


def test_prepare_on_a_full_disk_names_the_file(tmp_path, monkeypatch, capsys):
    target = tmp_path / "out" / "test.pt"
    monkeypatch.setattr("astromorphic.data.common.write_prepared", _disk_full(target))
    assert D.main(["imdb", "--config", str(TINY), "--out", str(tmp_path / "out")]) == 1
    _one_line_error(capsys.readouterr().err, "astromorphic prepare: error:", str(target), "No space left")


def test_prepare_into_a_folder_it_cannot_write_stops_before_the_work(tmp_path, monkeypatch, capsys):
    import tempfile

    monkeypatch.setattr(tempfile, "mkstemp", _disk_full(tmp_path))  # as on a read-only disk
    monkeypatch.setattr("astromorphic.data.prepare", lambda *a, **k: pytest.fail("prepared into a read-only folder"))
    assert D.main(["imdb", "--config", str(TINY), "--out", str(tmp_path / "out")]) == 1
    _one_line_error(capsys.readouterr().err, "astromorphic prepare: error:", str(tmp_path))
    assert not (tmp_path / "out").exists()


def test_aggregate_on_a_full_disk_names_the_file(tmp_path, monkeypatch, capsys):
    run = write_run(tmp_path / "runs", "imdb", "astro", 0, epochs=2)
    out = tmp_path / "tables" / "runs.csv"
    monkeypatch.setattr(aggregate, "write_csv", _disk_full(out))
    assert aggregate.main(["--runs", str(run), "--out", str(out)]) == 1
    _one_line_error(capsys.readouterr().err, "astromorphic aggregate: error:", str(out), "No space left")


def test_records_export_on_a_full_disk_names_the_file(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "runs", "imdb", "astro", 0, epochs=2)
    target = tmp_path / "records" / "runs" / "imdb" / "astro" / "seed0" / "metrics.csv"
    monkeypatch.setattr(aio, "write_bytes", _disk_full(target))
    assert records_command.main(["export", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "records")]) == 1
    _one_line_error(capsys.readouterr().err, "astromorphic records: error:", str(target), "No space left")


# ------------------------------------------------------------------------------------------ 5: damaged metrics


@pytest.mark.parametrize("text, says", [("", "empty"), ("epoch,test_acc\n0,0.5\n1,abc\n", "'test_acc' holds text ('abc' at row 2)")])
def test_aggregate_refuses_damaged_metrics_naming_the_run(tmp_path, capsys, text, says):
    good = write_run(tmp_path / "runs", "imdb", "astro", 0, epochs=2)
    bad = write_run(tmp_path / "runs", "imdb", "astro", 1, epochs=2)
    (bad / "metrics.csv").write_text(text)
    assert aggregate.main(["--runs", str(good), str(bad), "--out", str(tmp_path / "runs.csv")]) == 1
    _one_line_error(capsys.readouterr().err, str(bad / "metrics.csv"), says)
    assert not (tmp_path / "runs.csv").exists()


# ------------------------------------------------------------------------------------------ 5: seeds, devices


def test_seeds_are_refused_outside_what_the_generators_take():
    assert validate_config({"seeds": [0, MAX_SEED]})["seeds"] == [0, MAX_SEED]
    for where, config in (("seeds", {"seeds": [2**64]}), ("seeds", {"seeds": [2**63]}),
                          ("tasks.imdb.seeds", {"tasks": {"imdb": {"seeds": [2**64]}}}),
                          ("tasks.imdb.data.seed", {"tasks": {"imdb": {"data": {"seed": 2**64}}}}),
                          ("sweep.seeds", {"sweep": {"seeds": [2**63]}}),
                          ("simulation.seed", {"simulation": {"seed": 2**64}})):  # fmt: skip
        with pytest.raises(ConfigError, match=rf"^{where}\b.*(<=|less than or equal)"):
            validate_config(config)


@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_train_refuses_a_seed_out_of_range_before_any_work(tmp_path, capsys, seed):
    with pytest.raises(SystemExit) as stop:
        training.main(["--task", "imdb", "--model", "astro", "--seed", seed, "--config", str(TINY),
                       "--out", str(tmp_path / "run")])  # fmt: skip
    assert stop.value.code == 2 and not (tmp_path / "run").exists()
    assert "--seed: expected a seed within 0..2**63-1" in capsys.readouterr().err


def test_cuda_without_cuda_is_refused_when_a_run_starts_not_when_it_is_planned(monkeypatch):
    import torch

    from astromorphic.config import require_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = validate_config({"tasks": {"imdb": {"train": {"device": "cuda"}}}})
    cfg = validate_run(config, "imdb", "astro")  # a login node without a GPU plans and costs GPU runs
    with pytest.raises(ConfigError, match=r"^tasks.imdb.train.device: 'cuda' but no CUDA device .*; set it to cpu"):
        require_device(cfg, "imdb")


def test_train_with_cuda_without_cuda_is_one_line(tmp_path, prepared, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = training.main(["--task", "imdb", "--model", "astro", "--config", str(TINY), "--data", str(prepared),
                          "--set", "tasks.imdb.train.device=cuda", "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 2
    _one_line_error(capsys.readouterr().err, "tasks.imdb.train.device")


# ------------------------------------------------------------------------------------------ 5: data


def test_a_synthetic_vocabulary_the_generator_cannot_fill_is_refused(tmp_path, capsys):
    from astromorphic.data.synthetic import IMDB_VOCAB_RANGE, imdb_vocabulary

    low, high = IMDB_VOCAB_RANGE
    assert len(imdb_vocabulary(high)["filler"]) == high - 29 and len(imdb_vocabulary(low)["filler"]) == 10
    with pytest.raises(ConfigError, match=rf"^tasks.imdb.data.vocab_size: .*fills {low}..{high} words, got 5000"):
        validate_config({"tasks": {"imdb": {"data": {"source": "synthetic", "vocab_size": 5000}}}})
    assert D.main(["imdb", "--source", "synthetic", "--vocab-size", "5000", "--out", str(tmp_path / "d")]) == 1
    _one_line_error(capsys.readouterr().err, "tasks.imdb.data.vocab_size", "5000")


def _data_copy(prepared: Path, dest: Path) -> Path:
    shutil.copytree(prepared, dest)
    return dest


def test_a_corrupt_manifest_names_the_file(tmp_path, prepared):
    folder = _data_copy(prepared, tmp_path / "imdb")
    (folder / "manifest.json").write_text('{"task": "imdb", ')
    with pytest.raises(D.DataError, match=rf"^{folder / 'manifest.json'}: not readable as JSON .*; prepare"):
        D.load_prepared(folder)


def test_data_of_another_task_are_refused_naming_the_manifest(tmp_path, prepared, capsys):
    folder = _data_copy(prepared, tmp_path / "imdb")
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "task": "cifar10"}))
    with pytest.raises(D.DataError, match=r"manifest.json: data prepared for the 'cifar10' task, not 'imdb'"):
        D.check_prepared(folder, "imdb")
    code = training.main(["--task", "imdb", "--model", "astro", "--config", str(TINY), "--data", str(folder),
                          "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 1
    _one_line_error(capsys.readouterr().err, str(folder / "manifest.json"), "'cifar10'")
    assert not (tmp_path / "run" / "run.json").exists()


def test_data_prepared_with_other_sizes_are_refused_before_training(tmp_path, prepared, capsys):
    folder = tmp_path / "imdb96"
    assert D.main(["imdb", "--config", str(TINY), "--n-train", "96", "--out", str(folder)]) == 0
    capsys.readouterr()
    code = training.main(["--task", "imdb", "--model", "astro", "--config", str(TINY), "--data", str(folder),
                          "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 1
    line = _one_line_error(capsys.readouterr().err, str(folder / "manifest.json"), "n_train=96",
                           "tasks.imdb.data.n_train is 192")
    assert "prepare the data again" in line and not (tmp_path / "run" / "run.json").exists()


# ------------------------------------------------------------------------------------------ 6: configuration shapes


def test_a_key_written_twice_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("seeds: [0, 1]\nmodels: [astro]\nseeds: [5]\n")
    with pytest.raises(ConfigError, match=rf"^{path}: .*line 3.*duplicate key 'seeds' \(first at line 1\)"):
        load_config(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text("tasks:\n  imdb:\n    train: {lr: 0.1, lr: 0.2}\n")
    with pytest.raises(ConfigError, match="duplicate key 'lr'"):
        load_config(nested)


def test_a_sweep_value_whose_folder_name_is_too_long_is_refused():
    grid = [{"key": "m_scale", "values": [10**300], "models": ["astro"]}]
    with pytest.raises(ConfigError, match=r"^sweep.grid.0: .*longer than 255 bytes"):
        validate_config({"sweep": {"tasks": ["imdb"], "grid": grid}})


def test_a_sweep_on_a_preset_the_key_does_not_change_is_refused():
    for key, model in (("m_scale", "vanilla"), ("alpha", "linearized"), ("tau", "astro-no-relpos"),
                       ("m_scale", "no-attention")):  # fmt: skip
        grid = [{"key": key, "values": [2.0 if key != "alpha" else 0.5], "models": ["astro", model]}]
        with pytest.raises(ConfigError, match=rf"^sweep.grid.0: models \['{model}'\] do not use {key}"):
            validate_config({"sweep": {"tasks": ["imdb"], "grid": grid}})
    for key, model in (("m_scale", "linearized"), ("alpha", "astro-no-relpos"), ("tau", "astro-no-nonlin")):
        grid = [{"key": key, "values": [0.5], "models": [model]}]
        assert validate_config({"sweep": {"tasks": ["imdb"], "grid": grid}})["sweep"]["grid"][0]["models"] == [model]


def test_zero_epochs_are_refused():
    with pytest.raises(ConfigError, match=r"^tasks.imdb.train.epochs: .*(>=|greater than or equal to) 1"):
        validate_config({"tasks": {"imdb": {"train": {"epochs": 0}}}})


def test_every_committed_configuration_still_validates():
    for path in sorted((Path(__file__).resolve().parents[1] / "config").glob("*.yaml")):
        load_config(path)


# ------------------------------------------------------------------------------------------ 7: the findings page


def test_the_label_is_text_on_the_findings_page():
    page = provenance(Findings({"label": "<script>alert(1)</script> & co"}, {"runs_summary": pd.DataFrame()}))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert yaml  # the configuration snapshot is YAML; the label reaches the page only through provenance()
