"""The cost model (astromorphic.bench.cost, `astromorphic bench cost`): the plan of runs, projected hours from a
throughput CSV, runs sharing a GPU, SLURM time requests, and clear errors."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pandas as pd
import pytest

from astromorphic.bench import cost
from astromorphic.bench.command import main as bench_main
from astromorphic.config import ConfigError, load_config, validate_config
from astromorphic.bench.throughput import run_sizes, tokens_per_word

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config" / "paper.yaml"


def _throughput_csv(path: Path, config: dict, *, dtype=None, device="cuda", train=1000.0, evaluation=4000.0):
    """Every planned model at the same speed, in ``dtype`` (default: both float32 and bfloat16)."""
    rows = []
    for task in config["tasks"]:
        for model in dict.fromkeys(cost.parse_model_name(m)[0] for _, m, _ in cost.planned_runs(config, task)):
            for kind in [dtype] if dtype else ["float32", "bfloat16"]:
                rows.append({"task": task, "model": model, "dtype": kind, "device": device,
                             "train_throughput": train, "eval_throughput": evaluation, "unit": "samples"})  # fmt: skip
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_plan_of_the_paper_configuration():
    config = load_config(PAPER)
    runs = cost.planned_runs(config)
    by_task = {t: sum(1 for r in runs if r[0] == t) for t in ("imdb", "cifar10", "wikitext2")}
    # 8 presets + 4 ablation variants on the classifiers, 8 presets + astro-leaky on the LM; 3 seeds each
    assert by_task == {"imdb": 36, "cifar10": 36, "wikitext2": 27}
    assert ("imdb", "astro@position_embedding=none", 2) in runs
    assert len(set(runs)) == len(runs)


def test_sweep_runs_are_planned():
    config = validate_config(
        {"tasks": {"imdb": {}}, "models": ["astro"], "seeds": [0],
         "sweep": {"tasks": ["imdb"], "seeds": [5, 6], "grid": [{"key": "alpha", "values": [0.5, 1], "models": ["astro"]}]}}
    )  # fmt: skip
    assert cost.planned_runs(config) == [
        ("imdb", "astro", 0), ("imdb", "astro@alpha=0.5", 5), ("imdb", "astro@alpha=0.5", 6),
        ("imdb", "astro@alpha=1", 5), ("imdb", "astro@alpha=1", 6),
    ]  # fmt: skip


def test_hours_follow_the_sizes_and_throughput(tmp_path):
    config = load_config(PAPER, ["tasks.imdb.resources.runs_per_gpu=1"])
    table = cost.cost_table(config, _throughput_csv(tmp_path / "t.csv", config))
    imdb = table.set_index("task").loc["imdb"]
    sizes = run_sizes("imdb", cost.run_config(config, "imdb", "astro"))
    expected = (sizes["epochs"] * sizes["train"] / 1000.0 + (sizes["epochs"] + 1) * sizes["eval"] / 4000.0) / 3600
    assert imdb["run_h_mean"] == pytest.approx(expected)
    assert imdb["serial_h"] == pytest.approx(36 * expected)
    assert imdb["shared_h"] == pytest.approx(36 * expected)  # runs_per_gpu 1: nothing shared
    total = table.set_index("task").loc["total"]
    assert total["runs"] == 99
    assert total["serial_h"] == pytest.approx(table["serial_h"][:-1].sum())


def test_runs_sharing_a_gpu_divide_the_hours_and_keep_the_time_request(tmp_path):
    config = load_config(PAPER, ["tasks.imdb.resources.runs_per_gpu=4"])
    throughput = _throughput_csv(tmp_path / "t.csv", config)
    alone = cost.cost_table(load_config(PAPER, ["tasks.imdb.resources.runs_per_gpu=1"]), throughput)
    alone = alone.set_index("task").loc["imdb"]
    shared = cost.cost_table(config, throughput).set_index("task").loc["imdb"]
    assert shared["runs_per_gpu"] == 4 and shared["sharing_basis"] == "assumed"
    assert shared["shared_h"] == pytest.approx(alone["serial_h"] / 4)  # 36 equal runs, 9 groups of 4
    assert shared["slurm_runtime_min"] == alone["slurm_runtime_min"]


def test_measured_sharing_is_taken_against_the_throughput_files_own_run_alone(tmp_path):
    """4 processes at once summing to 2,000 samples/s, one run alone 1,000 in the throughput file: f(4) = 2, each
    group of 4 takes 2x its longest run. The sharing file's own k = 1 (800) is another measurement and is not
    mixed in: f relative to it (2.5) applied to the throughput file's 1,000 would claim 2,500 samples/s."""
    config = load_config(PAPER, ["tasks.imdb.resources.runs_per_gpu=4"])
    throughput = _throughput_csv(tmp_path / "t.csv", config)
    sharing = tmp_path / "share.csv"
    sharing.write_text("task,model,concurrency,process,train_throughput\nimdb,astro,1,1,800\n"
                       + "".join(f"imdb,astro,4,{i},500\n" for i in range(1, 5)))  # fmt: skip
    assert cost.read_sharing(sharing) == {("imdb", "astro", 1): 800.0, ("imdb", "astro", 4): 2000.0}
    assumed = cost.cost_table(config, throughput).set_index("task").loc["imdb"]
    measured = cost.cost_table(config, throughput, sharing=sharing).set_index("task").loc["imdb"]
    assert measured["sharing_basis"] == "measured" and measured["sharing_speedup"] == pytest.approx(2.0)
    assert measured["shared_h"] == pytest.approx(2 * assumed["shared_h"])
    assert measured["slurm_runtime_min"] == cost.slurm_runtime_min(2 * measured["run_h_max"])
    assert "measured on astro (against the throughput file), applied to 8 presets [awaits GPU" in measured["basis"]
    cifar = cost.cost_table(config, throughput, sharing=sharing).set_index("task").loc["cifar10"]
    assert cifar["sharing_basis"] == "assumed" and "assumed" in cifar["basis"]  # no measurement for that task
    # without the model's row in the throughput file, the sharing file's own k = 1 is the baseline
    table = cost.read_throughput(throughput).drop(("imdb", "astro", "float32"))
    totals = cost.read_sharing(sharing)
    assert cost.sharing_factor(totals, table, "imdb", "vanilla", "float32", 4) == (2.5, "astro", "sharing file, k = 1")
    assert cost.sharing_factor(totals, table, "imdb", "vanilla", "float32", 8) == (None, None, None)


def test_a_presets_own_sharing_measurement_is_preferred(tmp_path):
    config = load_config(PAPER, ["tasks.imdb.resources.runs_per_gpu=4"])
    table = cost.read_throughput(_throughput_csv(tmp_path / "t.csv", config))
    totals = {("imdb", "astro", 4): 2000.0, ("imdb", "vanilla", 4): 3000.0}
    assert cost.sharing_factor(totals, table, "imdb", "vanilla", "float32", 4)[:2] == (3.0, "vanilla")
    assert cost.sharing_factor(totals, table, "imdb", "linearized", "float32", 4)[:2] == (2.0, "astro")


def test_groups_in_snakemakes_order_are_the_expectation_over_random_orders():
    hours = [1.0] * 4 + [2.0] * 4
    assert cost.sorted_group_hours(hours, 4) == 3.0  # the short runs together, the long ones together
    # two groups of 4: 3 h only when one group holds the four short runs (2 of the C(8, 4) = 70 subsets), else 4 h
    assert cost.expected_group_hours(hours, 4) == pytest.approx(4 - 2 / 70)
    rng = random.Random(0)
    lengths = [rng.uniform(0.5, 8.0) for _ in range(10)]  # 2 groups of 4 and one of 2
    sampled = []
    for _ in range(20_000):
        order = rng.sample(lengths, len(lengths))
        sampled.append(sum(max(order[i : i + 4]) for i in range(0, len(order), 4)))
    assert cost.expected_group_hours(lengths, 4) == pytest.approx(sum(sampled) / len(sampled), rel=5e-3)
    assert cost.sorted_group_hours(lengths, 4) < cost.expected_group_hours(lengths, 4) < sum(lengths)
    assert cost.expected_group_hours(lengths, 1) == pytest.approx(sum(lengths))


def test_basis_marks_the_inputs_that_await_a_gpu_measurement(tmp_path):
    config = load_config(PAPER)
    old = _throughput_csv(tmp_path / "old.csv", config)
    basis = cost.cost_table(config, old).set_index("task")["basis"]
    assert "benchmark loop, not the training step" in basis["imdb"] and "eval: at the training batch, not 512" in basis["imdb"]
    assert "tokens: words x" in basis["wikitext2"] and "GPT-2 tokens a word" in basis["wikitext2"]
    new = tmp_path / "new.csv"
    frame = pd.read_csv(old).assign(step="train_epoch", repeats=3, train_spread=0.02, eval_batch_size=512)
    frame.loc[frame["task"] == "wikitext2", "eval_batch_size"] = 48
    frame.to_csv(new, index=False)
    basis = cost.cost_table(config, new).set_index("task")["basis"]
    assert basis["cifar10"].startswith("step: train_epoch, 3 repeats, spread 2%")
    assert "eval:" not in basis["cifar10"] and "eval:" not in basis["wikitext2"]


def test_the_language_models_sizes_are_tokens(tmp_path):
    cfg = cost.run_config(load_config(PAPER), "wikitext2", "astro")
    words = run_sizes("wikitext2", cfg, {"a": {"tokens": 10, "words": 10}})  # one token a word: the paper's words
    assert words["train"] == 2_088_628 and words["eval"] == 217_646 + 245_569
    tokens = run_sizes("wikitext2", cfg)
    ratio = tokens_per_word()
    assert 1.1 < ratio < 1.3 and tokens["train"] == round(2_088_628 * ratio)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"counts": {"valid": {"tokens": 300, "words": 200}, "test": {"tokens": 0, "words": 5}}}))
    assert cost.read_lm_counts(manifest) == {"valid": {"tokens": 300, "words": 200}}
    assert run_sizes("wikitext2", cfg, cost.read_lm_counts(manifest))["train"] == round(2_088_628 * 1.5)


def test_slurm_runtime_has_a_margin_and_rounds_up():
    assert cost.slurm_runtime_min(1.0, margin=2.0) == 130  # 120 min + 10 min start-up
    assert cost.slurm_runtime_min(0.01, margin=2.0) == 20  # 1.2 + 10 -> 20
    assert cost.slurm_runtime_min(1.0, margin=1.5) == 100


def test_missing_rows_and_several_devices_are_clear_errors(tmp_path):
    config = load_config(PAPER)
    path = _throughput_csv(tmp_path / "t.csv", config, dtype="float32")
    with pytest.raises(ConfigError, match="no row for task imdb, model vanilla, dtype bfloat16.*bench throughput"):
        cost.cost_table(config, path, dtype="bfloat16")
    both = tmp_path / "both.csv"
    both.write_text(path.read_text() + _throughput_csv(tmp_path / "c.csv", config, device="cpu").read_text().split("\n", 1)[1])
    with pytest.raises(ConfigError, match="several devices .*--device"):
        cost.cost_table(config, both)
    assert cost.cost_table(config, both, device="cpu")["device"].iloc[0] == "cpu"
    bad = tmp_path / "bad.csv"
    bad.write_text("task,model\nimdb,astro\n")
    with pytest.raises(ConfigError, match="columns .*device.*missing"):
        cost.cost_table(config, bad)


def test_command_writes_the_table_and_prints_the_slurm_requests(tmp_path, capsys):
    config = load_config(PAPER)
    throughput = _throughput_csv(tmp_path / "t.csv", config)
    out = tmp_path / "cost"
    code = bench_main(["cost", "--config", str(PAPER), "--throughput", str(throughput), "--out", str(out), "--slurm"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "tasks.cifar10.resources.runtime=" in printed and str(throughput) in printed
    rows = list(csv.DictReader((tmp_path / "cost.csv").open()))
    assert [r["task"] for r in rows] == ["imdb", "cifar10", "wikitext2", "total"]
    assert "GPU-hours" in (tmp_path / "cost.md").read_text()
    assert bench_main(["cost", "--config", str(PAPER), "--throughput", str(tmp_path / "none.csv")]) == 2
    assert "cannot read it" in capsys.readouterr().out


def test_runs_per_gpu_defaults_to_one():
    assert validate_config({"tasks": {"imdb": {}}})["tasks"]["imdb"]["resources"]["runs_per_gpu"] == 1
    with pytest.raises(ConfigError, match="tasks.imdb.resources.runs_per_gpu"):
        validate_config({"tasks": {"imdb": {"resources": {"runs_per_gpu": 0}}}})


def test_speedup_needed_for_a_target():
    table = pd.DataFrame({"task": ["a", "b", "total"], "shared_h": [90.0, 10.0, 100.0]})
    assert cost.speedup_needed(table, 25.0) == (4.0, "a", 6.0)  # 90 / 6 + 10 = 25
    assert cost.speedup_needed(table, 5.0)[2] is None  # b alone exceeds 5 h
    lines = cost.target_lines(table, "GPU")
    assert "- 24 GPU-hours (shared_h): every step 4.17x faster; or a's alone 6.43x" in lines  # 100/24; 90/(24-10)
    assert "- 12 GPU-hours (shared_h): every step 8.33x faster; or a's alone 45.00x" in lines  # 90/(12-10)
