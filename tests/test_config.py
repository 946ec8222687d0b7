"""The typed configuration: one validation path for the API, the CLI, --set overrides and the workflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from astromorphic import config as C
from astromorphic.presets import preset_names
from astromorphic.training import main as train_main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "config").glob("*.yaml")) + [ROOT / "tests/workflow/tiny.yaml", ROOT / "tests/slurm/tiny.yaml"]


def tiny() -> dict:
    return {
        "seeds": [0],
        "models": ["astro"],
        "tasks": {
            "imdb": {
                "data": {"source": "synthetic", "seq_len": 16},
                "model": {"d_model": 8, "n_layers": 1, "n_heads": 2, "max_len": 16},
                "train": {"epochs": 1},
            }
        },
    }


def edited(path: str, value) -> dict:
    cfg = tiny()
    node = cfg
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return cfg


# (configuration, the key the error must name)
BAD = [
    (edited("tasks.imdb.attention.alpha", 1.5), "tasks.imdb.attention.alpha"),  # out of range
    (edited("tasks.imdb.model.ffn_mult", 0), "tasks.imdb.model.ffn_mult"),
    (edited("tasks.imdb.train.epochs", 2.0), "tasks.imdb.train.epochs"),  # an integer written as a float
    (edited("tasks.imdb.train.epochs", "three"), "tasks.imdb.train.epochs"),  # wrong type
    (edited("tasks.imdb.train.lr", "fast"), "tasks.imdb.train.lr"),
    (edited("tasks.imdb.train.epocs", 3), "tasks.imdb.train.epocs"),  # unknown key (typo)
    (edited("tasks.imdb.model.d_modle", 8), "tasks.imdb.model.d_modle"),
    (edited("tasks.imdb.data.seqlen", 8), "tasks.imdb.data.seqlen"),
    (edited("bogus", 1), "bogus"),
    (edited("models", ["astro", "astrx"]), "models.1"),  # unknown model
    (edited("tasks.mnist", {}), "tasks.mnist"),  # unknown task
    (edited("tasks.imdb.train.schedule", "linear"), "tasks.imdb.train.schedule"),
    (edited("tasks.imdb.model.n_heads", 3), "tasks.imdb.model"),  # 8 is not divisible by 3
    (edited("tasks.imdb.train.augment", {"hflip": True}), "tasks.imdb.train.augment"),  # CIFAR-10 only
    (edited("seeds", [0, 0]), "seeds"),
    (edited("sweep", {"tasks": ["imdb"], "grid": [{"key": "alpha", "values": [2.0], "models": ["astro"]}]}),
     "sweep.grid.0"),  # fmt: skip
]


def api_error(cfg: dict) -> str:
    with pytest.raises(C.ConfigError) as err:
        C.validate_run(cfg, "imdb", "astro")
    return str(err.value)


@pytest.mark.parametrize(("cfg", "key"), BAD, ids=[key for _, key in BAD])
def test_api_and_cli_reject_the_same_configurations_naming_the_key(cfg, key, tmp_path, capsys):
    message = api_error(cfg)
    assert message.startswith(key), message
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    rc = train_main(["--task", "imdb", "--model", "astro", "--config", str(path), "--out", str(tmp_path / "run")])
    assert rc == 2
    assert capsys.readouterr().err.strip() == f"astromorphic train: error: {message}"
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_set_overrides_go_through_the_same_validation(tmp_path, capsys):
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(tiny()))
    for override, key in [
        ("tasks.imdb.attention.alpha=1.5", "tasks.imdb.attention.alpha"),
        ("tasks.imdb.train.epocs=3", "tasks.imdb.train.epocs"),
        ("bogus=1", "bogus"),
    ]:
        with pytest.raises(C.ConfigError, match=f"^{key}"):
            C.load_config(path, [override])
        rc = train_main(["--task", "imdb", "--model", "astro", "--config", str(path), "--out", str(tmp_path / "r"),
                         "--set", override])  # fmt: skip
        assert rc == 2 and key in capsys.readouterr().err


def test_numbers_written_as_strings_and_ints_are_read_as_numbers():
    cfg = C.validate_config(edited("tasks.imdb.train.lr", "1e-3"))
    assert cfg["tasks"]["imdb"]["train"]["lr"] == pytest.approx(1e-3)
    cfg = C.validate_config(edited("tasks.imdb.attention.m_scale_factor", 500))
    assert cfg["tasks"]["imdb"]["attention"]["m_scale_factor"] == 500  # kept as written
    with pytest.raises(C.ConfigError, match="alpha"):
        C.validate_config(edited("tasks.imdb.attention.alpha", True))


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("tasks:\n  imdb: {model: [1, 2}\n")
    with pytest.raises(C.ConfigError, match=r"broken.yaml: YAML syntax error at line 2, column \d+"):
        C.load_config(path)


def test_every_shipped_configuration_is_valid_and_matches_the_generated_schema():
    schema = C.json_schema()
    for path in CONFIGS:
        raw = yaml.safe_load(path.read_text())
        jsonschema.validate(raw, schema)
        jsonschema.validate(C.validate_config(raw), schema)


def test_committed_schema_equals_the_generated_one():
    assert C.SCHEMA_FILE.read_text() == C.schema_text(), (
        "the committed schema is out of date: run `python -m astromorphic.config --write-schema`"
    )
    assert json.loads(C.SCHEMA_FILE.read_text())["properties"]["models"]["items"]["enum"] == preset_names()


def test_defaults_are_the_papers_and_empty_sections_fill_them():
    cfg = C.validate_config({})
    assert list(cfg["tasks"]) == ["imdb", "cifar10", "wikitext2"]
    imdb, cifar, lm = (cfg["tasks"][t] for t in ("imdb", "cifar10", "wikitext2"))
    assert (imdb["model"]["d_model"], imdb["data"]["seq_len"], imdb["train"]["lr"]) == (128, 400, 1e-5)
    assert (cifar["model"]["patch"], cifar["train"]["epochs"], cifar["train"]["augment"]) == (
        2, 250, {"random_crop_padding": 4, "hflip": True})  # fmt: skip
    assert (lm["model"]["d_model"], lm["attention"]["m_scale_factor"], lm["train"]["batch_size"]) == (768, 100.0, 24)
    partial = C.resolve_task_config({"tasks": {"imdb": {"train": {"lr": 3e-3}}}}, "imdb")
    assert (partial["train"]["lr"], partial["train"]["epochs"], partial["train"]["eval_batch_size"]) == (3e-3, 120, 64)


def test_derived_rules_live_in_one_place():
    cfg = C.validate_config({"models": ["astro", "astro-leaky", "vanilla"], "lm_extra_models": ["astro-leaky"]})
    assert C.models_for_task(cfg, "imdb") == ["astro", "vanilla"]  # the leaky diagnostic is LM-only
    assert C.models_for_task(cfg, "wikitext2") == ["astro", "astro-leaky", "vanilla"]
    assert C.threshold(cfg, "imdb") == 0.85
    cfg["report"]["threshold"] = 0.7
    assert C.threshold(cfg, "imdb") == 0.7
    task = cfg["tasks"]["imdb"]
    fingerprinted = C.run_section(task, runtime=False)
    assert "resources" not in fingerprinted and "threshold" not in fingerprinted["train"]
    assert "device" not in fingerprinted["train"] and "device" in C.run_section(task)["train"]


def test_options_added_later_stay_out_of_the_run_section_while_unset():
    """A run recorded before an option existed keeps its fingerprint while the option is null; set, it counts."""
    cfg = C.validate_config({})
    lm = C.run_section(cfg["tasks"]["wikitext2"], runtime=False)
    assert not {"held_out", "compact_vocab"} & set(lm["data"]) and "split_map" in lm["data"]
    assert "curve_every_steps" not in lm["train"] and "curve_samples" not in lm["train"]
    cfg = C.validate_config({"tasks": {"wikitext2": {"data": {"held_out": 0.1, "compact_vocab": True},
                                                     "train": {"curve_every_steps": 5}}}})  # fmt: skip
    lm = C.run_section(cfg["tasks"]["wikitext2"], runtime=False)
    assert (lm["data"]["held_out"], lm["data"]["compact_vocab"]) == (0.1, True)
    assert lm["train"]["curve_every_steps"] == 5 and "curve_samples" in lm["train"]


def test_a_task_may_name_its_own_presets_and_they_stay_out_of_its_runs():
    cfg = C.validate_config({"models": ["astro", "vanilla", "no-attention"],
                             "tasks": {"wikitext2": {"models": ["vanilla", "astro-leaky"]}}})  # fmt: skip
    assert C.models_for_task(cfg, "wikitext2") == ["vanilla", "astro-leaky"]
    assert C.models_for_task(cfg, "imdb") == ["astro", "vanilla", "no-attention"]
    plain = C.validate_config({"models": ["astro", "vanilla", "no-attention"]})
    for task in ("imdb", "wikitext2"):  # a scheduling key: no run's fingerprint follows it
        ours, theirs = C.resolve_task_config(cfg, task), C.resolve_task_config(plain, task)
        assert C.run_section(ours, runtime=False) == C.run_section(theirs, runtime=False)
    with pytest.raises(C.ConfigError, match="tasks.imdb.models: 'astro-leaky' is not defined for imdb"):
        C.validate_config({"tasks": {"imdb": {"models": ["astro-leaky"]}}})


def test_config_module_checks_a_file_from_the_command_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(edited("tasks.imdb.train.epocs", 1)))
    out = subprocess.run([sys.executable, "-m", "astromorphic.config", "--check", str(path)],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2 and "tasks.imdb.train.epocs" in out.stdout


def test_ablation_runs_and_run_name_overrides():
    cfg = C.validate_config({"ablation": {"no_position_embedding": True}, "models": ["astro", "vanilla"]})
    assert C.ablation_models(cfg, "imdb") == [f"{m}@position_embedding=none" for m in C.FIG4_VARIANTS]
    assert C.ablation_models(cfg, "wikitext2") == []  # not among ablation.tasks by default
    assert C.ablation_models(C.validate_config({}), "imdb") == []
    over = C.with_run_name_overrides(tiny(), "imdb", {"position_embedding": "none", "m_scale": 32})
    task = C.validate_config(over)["tasks"]["imdb"]
    assert task["model"]["position_embedding"] == "none" and task["attention"]["m_scale"] == 32
    with pytest.raises(C.ConfigError, match="lr"):
        C.with_run_name_overrides(tiny(), "imdb", {"lr": 1.0})
