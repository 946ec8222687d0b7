"""The harness of the integration tests: a copy of the workflow in a temporary folder, run by snakemake with
the copied package first on the path, and the tiny DAG (tests/workflow/tiny.yaml) trained once per test session
(the `dag` fixture in conftest.py), shared by tests/test_workflow.py and tests/test_records.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "workflow" / "tiny.yaml"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def _copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "profiles", "src", "requirements-lock.txt"):
        src = REPO / name
        (shutil.copytree(src, dest / name, ignore=IGNORE) if src.is_dir() else shutil.copy2(src, dest / name))
    (dest / "results" / "reference").mkdir(parents=True)
    shutil.copy2(REPO / "results" / "reference" / "paper_values.csv", dest / "results" / "reference")
    shutil.copy2(TINY, dest / "tiny.yaml")
    return dest


def package_env(workdir: Path) -> dict:
    """The environment of a snakemake call: the package copied into ``workdir`` comes first, so that snakemake
    (the code hash of each task) and its jobs read the copy, whatever happens to the repository meanwhile."""
    paths = [str(workdir / "src"), os.environ.get("PYTHONPATH")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def snakemake(workdir: Path, *args: str, env: dict | None = None, check: bool = True,
              configfile: str = "tiny.yaml") -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", f"--configfile={configfile}", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env={**package_env(workdir), **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_jobs(output: str) -> dict[str, int]:
    """rule -> count from the 'Job stats' table of a dry run."""
    jobs, in_table = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats:"):
            in_table = True
            continue
        if in_table:
            match = re.match(r"^(\S+)\s+(\d+)$", line.strip())
            if match and match[1] != "total":
                jobs[match[1]] = int(match[2])
            elif line.strip() == "" and jobs:
                break
    return jobs


