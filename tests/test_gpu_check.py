"""The GPU check (workflow/scripts/gpu_check.sh) as a dry run on the CPU: tiny sizes, the Triton interpreter,
the real data copies, and the packages the GPU machine lacks made unimportable."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "workflow" / "scripts" / "gpu_check.sh"
SHARED_DATA = ROOT.parent / "shared" / "data"
STAGES = [
    "environment",
    "cuda_tests",
    "throughput_bfloat16",
    "throughput_float32",
    "prepare_imdb",
    "train_imdb",
    "prepare_wikitext2",
    "train_wikitext2",
    "reference",
    "kernel_bench",
]
# Not on the GPU machine; nothing the check runs may need them.
ABSENT = ("datasets", "snakemake", "jsonschema", "jupytext", "torchvision")

needs_data = pytest.mark.skipif(
    not all((SHARED_DATA / sub).is_dir() for sub in ("imdb", "wikitext2", "gpt2")),
    reason=f"needs the real data copies in {SHARED_DATA} (imdb, wikitext2, gpt2)",
)


def _blocker(folder: Path) -> str:
    """A sitecustomize that makes the packages of ABSENT unimportable in every Python the script starts."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        f"ABSENT = {ABSENT!r}\n"
        "class _Absent(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ABSENT:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (not on the GPU machine)')\n"
        "sys.meta_path.insert(0, _Absent())\n"
    )
    return str(folder)


def _run(tmp_path: Path, data: Path, **env) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHON": sys.executable,
        "DEVICE": "cpu",
        "TINY": "1",
        "WORK": str(tmp_path / "work"),
        "PYTHONPATH": _blocker(tmp_path / "blocker"),
        **env,
    }
    full_env.pop("WHEELS", None)
    return subprocess.run(
        ["bash", str(SCRIPT), str(data), str(tmp_path / "bench")],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@needs_data
@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.timeout(900)
def test_gpu_check_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "out"
    proc = _run(tmp_path, SHARED_DATA, OUT=str(out))
    bench = tmp_path / "bench"
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:] + (bench / "gpu_check.log").read_text()
    status = {row["stage"]: row for row in _rows(bench / "status.csv")}
    assert list(status) == STAGES + ["total"]
    assert all(row["status"] == "ok" for row in status.values()), status

    files = sorted(p.name for p in bench.iterdir())
    assert len(files) <= 8, files  # what comes back from the GPU machine
    assert sorted(p.name for p in out.iterdir()) == files

    throughput = _rows(bench / "throughput_cpu.csv")
    assert {(r["task"], r["model"], r["dtype"]) for r in throughput} == {
        (t, m, d) for t in ("imdb", "cifar10", "wikitext2") for m in ("vanilla", "astro") for d in ("float32", "bfloat16")
    }
    runs = _rows(bench / "paper_runs.csv")
    assert {(r["task"], r["epoch"]) for r in runs} == {(t, e) for t in ("imdb", "wikitext2") for e in ("0", "1")}
    assert all(r["run_status"] == "finished" for r in runs)
    reference = _rows(bench / "reference_cpu.csv")
    assert {(r["task"], r["model"]) for r in reference} == {(t, m) for t in ("imdb", "wikitext2") for m in ("vanilla", "astro")}
    assert all(float(r["max_abs_diff"]) <= 1e-4 and float(r["time_ratio"]) > 0 for r in reference)
    assert {r["kind"] for r in _rows(bench / "attention_causal_cpu.csv")} >= {"softmax", "astromorphic_triton"}
    tests = _rows(bench / "cuda_tests.csv")
    assert any("paper_lm" in r["test"] for r in tests) and all(r["outcome"] in ("passed", "skipped") for r in tests)
    environment = {r["key"]: r["value"] for r in _rows(bench / "environment.csv")}
    assert environment["causal_kernel_cpu_bfloat16"] == "torch"


def test_gpu_check_goes_on_after_a_failed_stage_and_reports_it(tmp_path):
    """A data folder whose copies are unreadable: the prepare and train stages fail, the others still run (and
    are skipped once the small time budget is spent), every stage has a status row, and the exit code is 1."""
    data = tmp_path / "data"
    for sub in ("imdb", "wikitext2", "gpt2"):
        (data / sub).mkdir(parents=True)
    proc = _run(tmp_path, data, TOTAL_S="40")  # room for the first stage on a loaded machine; the rest runs out
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-4000:]
    status = {row["stage"]: row["status"] for row in _rows(tmp_path / "bench" / "status.csv")}
    assert list(status) == STAGES + ["total"]
    assert status["environment"] == "ok"
    assert status["total"] == "failed"
    assert set(status.values()) <= {"ok", "failed", "skipped", "timeout"}
    assert "skipped" in status.values() or "failed" in status.values()
