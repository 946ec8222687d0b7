"""workflow/scripts/gpu_step_bench.py, the device script of the cost table, as a dry run on the CPU at tiny sizes:
each stage in its own process under its cap, rows appended as they finish (a stage cut off by its cap keeps the
rows written before), CUDA-only stages skipped with a row saying so, and the CSVs turned into the cost table."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from astromorphic.bench import cost
from astromorphic.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "workflow" / "scripts" / "gpu_step_bench.py"
PAPER = ROOT / "config" / "paper.yaml"


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


@pytest.mark.slow  # about 35 s: five processes, and a stage held until its cap
def test_stages_append_their_rows_and_a_cut_off_stage_keeps_them(tmp_path):
    out = tmp_path / "bench"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GPU_STEP_BENCH_STALL_AFTER_ROWS": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--device", "cpu", "--tiny", "--cap-s", "20",
         "--stages", "baseline,no_tf32,compile_reduce,cuda_graph,share,presets", "--share-ks", "1"],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    status = {r["stage"]: r for r in _rows(out / "status.csv")}
    assert list(status) == ["baseline", "no_tf32", "compile_reduce", "cuda_graph", "share", "presets"]
    assert status["baseline"]["status"] == "ok" and status["share"]["status"] == "ok"
    for name in ("no_tf32", "compile_reduce", "cuda_graph"):
        assert status[name]["status"] == "skipped" and status[name]["detail"].startswith("CUDA only")
    # the presets stage stalls after its first row (the testing hook): its cap cuts it, the row stays
    assert status["presets"]["status"] == "timeout"
    steps = _rows(out / "steps.csv")
    assert [(r["stage"], r["task"], r["model"]) for r in steps] == [
        ("baseline", "cifar10", "astro"), ("presets", "cifar10", "vanilla")]  # fmt: skip
    base = steps[0]
    assert base["step"] == "train_epoch" and base["eval_batch_size"] == "8" and base["settings"] == "{}"
    assert base["fill_uninitialized_memory"] == "True" and base["compile"] == "eager" and base["augment"] == "True"
    assert float(base["train_throughput"]) > 0 and float(base["train_spread"]) >= 0 and base["repeats"] == "2"
    share = _rows(out / "share.csv")
    assert [(r["variant"], r["concurrency"], r["process"]) for r in share] == [("eager", "1", "1")]
    assert not (out / "graph.csv").exists()


def test_the_csvs_become_the_cost_tables_inputs(tmp_path):
    """Measured rows stand for themselves, a preset not measured is the earlier file's row scaled by astro's
    measured step, a task not measured keeps the earlier file's rows, and sharing is the variant's own."""
    folder = tmp_path / "bench"
    folder.mkdir()
    base = {"gpu": "Card X", "device": "cuda", "unit": "samples", "batch_size": 32, "step": "train_epoch",
            "repeats": 3, "train_spread": 0.01, "eval_spread": 0.02, "tf32": True, "sync_every": 50}  # fmt: skip
    steps = [
        {**base, "stage": "baseline", "settings": "{}", "task": "cifar10", "model": "astro", "dtype": "float32",
         "train_throughput": 600.0, "eval_throughput": 2000.0, "eval_batch_size": 512},
        {**base, "stage": "presets", "settings": json.dumps({"compile": "default"}), "task": "cifar10",
         "model": "astro", "dtype": "float32", "train_throughput": 900.0, "eval_throughput": 2500.0,
         "eval_batch_size": 512},
    ]  # fmt: skip
    pd.DataFrame(steps).to_csv(folder / "steps.csv", index=False)
    share = [{"variant": "eager", "settings": "{}", "concurrency": k, "process": i, "task": "cifar10",
              "model": "astro", "train_throughput": 600.0 if k == 1 else 450.0} for k in (1, 4) for i in range(1, k + 1)]  # fmt: skip
    pd.DataFrame(share).to_csv(folder / "share.csv", index=False)
    config = load_config(PAPER)
    fallback = tmp_path / "old.csv"
    rows = []
    for task in config["tasks"]:
        for model in dict.fromkeys(cost.parse_model_name(m)[0] for _, m, _ in cost.planned_runs(config, task)):
            for dtype in ("float32", "bfloat16"):
                rows.append({"task": task, "model": model, "dtype": dtype, "device": "cuda",
                             "train_throughput": 300.0, "eval_throughput": 1000.0})  # fmt: skip
    pd.DataFrame(rows).to_csv(fallback, index=False)
    eager, eager_share = cost.step_bench_inputs(folder, fallback, "eager")
    row = eager.set_index(["task", "model", "dtype"])
    assert row.loc[("cifar10", "astro", "float32"), "train_throughput"] == 600.0
    vanilla = row.loc[("cifar10", "vanilla", "float32")]
    assert vanilla["train_throughput"] == 600.0 and vanilla["eval_throughput"] == 2000.0  # 300 x 600 / 300
    assert "scaled by astro's measured step" in vanilla["note"]
    assert row.loc[("imdb", "astro", "float32"), "train_throughput"] == 300.0  # not measured: as it was
    assert sorted(eager_share["concurrency"]) == [1, 4, 4, 4, 4]
    best, best_share = cost.step_bench_inputs(folder, fallback, "best")
    assert best.set_index(["task", "model", "dtype"]).loc[("cifar10", "astro", "float32"), "train_throughput"] == 900.0
    assert best_share.empty
    gpu = tmp_path / "card-x"
    written = cost.step_bench_cost(folder, PAPER, gpu, fallback)
    assert sorted(p.name for p in written) == ["cost_paper.csv", "cost_paper.md", "cost_paper_best.csv",
                                               "cost_paper_best.md"]  # fmt: skip
    table = pd.read_csv(gpu / "cost_paper.csv").set_index("task")
    assert table.loc["cifar10", "sharing_speedup"] == 3.0  # 4 x 450 against 600 alone
    assert "Projected Card X-hours" in (gpu / "cost_paper.md").read_text()
    assert "[awaits GPU" in table.loc["imdb", "basis"] and "spread 1%" in table.loc["cifar10", "basis"]
