"""The reproduction DAG end to end, at the smallest sizes (tests/workflow/tiny.yaml).

The workflow files are copied into a temporary folder and run there with snakemake, so the repository's own
results/ and figures/ are never touched; the rules call the installed `astromorphic` commands.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

from _dag import IGNORE, REPO, TINY, _copy_workflow, package_env, planned_jobs, snakemake  # noqa: F401 (shared harness)


def test_every_table_and_figure_is_made(dag):
    workdir, _ = dag
    for name in ("table1", "learning_speed", "speedups", "table2", "tableS1", "tableS2", "tableS3", "controls"):
        for ext in ("csv", "md", "tex", "html"):
            path = workdir / "results" / "tables" / f"{name}.{ext}"
            assert path.is_file() and "synthetic stand-in" in path.read_text(), path
    for stem in ("fig4a_imdb", "fig4b_cifar10", "lm_perplexity", "controls_attention", "figS2_attention_cpu",
                 "fig3_calcium", "forest_claims", "speed_thresholds_imdb", "speed_thresholds_cifar10"):
        for ext in ("png", "pdf"):
            assert (workdir / "figures" / f"{stem}.{ext}").stat().st_size > 1000, stem
    for png in ("forest_claims.png", "lm_perplexity.png", "speed_thresholds_imdb.png", "speed_thresholds_cifar10.png"):
        # shown on the findings page, copied beside it
        assert (workdir / "results" / "findings" / png).is_file(), png
        assert f"]({png})" in (workdir / "results" / "findings" / "findings.md").read_text(), png
    for log in ("prepare/imdb.log", "train/imdb/astro/seed1.log", "tables.log", "figures/fig4a_imdb.log"):
        assert (workdir / "results" / "logs" / log).is_file()
    assert (workdir / "results" / "benchmarks" / "train" / "cifar10" / "astro" / "seed0.tsv").is_file()
    run = json.loads((workdir / "results" / "runs" / "imdb" / "astro" / "seed0" / "run.json").read_text())
    assert run["status"] == "finished" and run["probe_init"]


def test_second_run_has_nothing_to_do(dag):
    workdir, _ = dag
    proc = snakemake(workdir, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "module, jobs, outputs",
    [
        ("controls.py", {"module_code_snapshot": 1, "controls_figure": 1, "all": 1},
         ["figures/controls_attention.png", "figures/controls_attention.pdf"]),
        # the LM curves are also shown on the findings page, which is made again with them
        ("lm_curves.py", {"module_code_snapshot": 1, "lm_curves": 1, "findings": 1, "all": 1},
         ["figures/lm_perplexity.png", "figures/lm_perplexity.pdf", "results/findings/findings.md",
          "results/findings/findings.html", "results/findings/forest_claims.png", "results/findings/lm_perplexity.png",
          "results/findings/speed_thresholds_imdb.png", "results/findings/speed_thresholds_cifar10.png"]),
    ],
)
def test_editing_a_plot_reruns_only_that_figure(dag, module, jobs, outputs):
    workdir, _ = dag
    code = workdir / "src" / "astromorphic" / "plotting" / module
    original = code.read_text()
    # A statement, not a comment: the code's identity is its syntax tree (a comment reruns nothing).
    code.write_text(original + "\nPLOT_EDIT = 1\n")
    os.utime(code, (time.time() + 5, time.time() + 5))
    try:
        proc = snakemake(workdir, "-n")
        planned = planned_jobs(proc.stdout + proc.stderr)
        assert planned == jobs, planned
    finally:
        code.write_text(original)
        snakemake(workdir, "--touch", *outputs)
    proc = snakemake(workdir, "-n")  # put back: nothing left to do for the tests after this one
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _planned_train_runs(text: str) -> set[tuple[str, str, str]]:
    return set(re.findall(r"wildcards: task=(\w+), model=([^,\s]+), seed=(\d+)", text))


def _plan_with_edit(workdir: Path, name: str, text: str) -> str:
    """The dry run of the workflow with ``text`` appended to the package file ``name`` (put back afterwards)."""
    code = workdir / "src" / "astromorphic" / name
    original = code.read_text()
    code.write_text(original + text)
    try:
        return (proc := snakemake(workdir, "-n")).stdout + proc.stderr
    finally:
        code.write_text(original)


def test_editing_code_that_computes_runs_retrains_exactly_those_runs(dag):
    workdir, _ = dag
    all_runs = {run.parent.relative_to(workdir / "results" / "runs").parts
                for run in (workdir / "results" / "runs").glob("*/*/seed*/run.json")}
    all_runs = {(task, model, seed.removeprefix("seed")) for task, model, seed in all_runs}
    every = {"imdb", "cifar10", "wikitext2"}
    # (file, tasks whose runs retrain, tasks whose data are prepared again, tasks whose training code changed);
    # a statement, not a comment, is added. The synthetic generators are imported by the configuration
    # (config_tasks.py) and so count as training code too.
    cases = [("data/imdb.py", {"imdb"}, {"imdb"}, {"imdb"}), ("models.py", every, set(), every),
             ("tables/__init__.py", set(), set(), set()), ("data/synthetic.py", every, every, every)]
    for name, tasks, prepared, code in cases:
        text = _plan_with_edit(workdir, name, "\nASTROMORPHIC_EDIT = 1\n")
        jobs = planned_jobs(text)
        assert jobs.get("prepare", 0) == len(prepared), (name, jobs)
        assert set(re.findall(r"rule prepare:.*?wildcards: task=(\w+)", text, re.S)) == prepared, (name, jobs)
        assert _planned_train_runs(text) == {r for r in all_runs if r[0] in tasks}, (name, jobs)
        assert jobs.get("code_snapshot", 0) == len(code), (name, jobs)
        assert jobs.get("data_code_snapshot", 0) == len(prepared), (name, jobs)
        assert (workdir / "results" / "configs" / "code" / "imdb.txt").is_file()
    assert "Nothing to be done" in (proc := snakemake(workdir, "-n")).stdout + proc.stderr  # the edits are undone


def test_formatting_or_comments_retrain_nothing(dag):
    workdir, _ = dag
    for name in ("models.py", "data/synthetic.py"):
        text = _plan_with_edit(workdir, name, "\n\n# a comment, and the layout changed\n\n\n")
        assert "Nothing to be done" in text, (name, planned_jobs(text))


def test_renaming_the_configuration_prepares_and_trains_nothing(dag):
    workdir, _ = dag
    cfg = yaml.safe_load(TINY.read_text())
    cfg["label"] = "a new name"
    (workdir / "renamed.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile=renamed.yaml"], cwd=workdir,
                          capture_output=True, text=True, env=package_env(workdir))
    jobs = planned_jobs(proc.stdout + proc.stderr)
    assert jobs and not {"prepare", "train", "simulate", "aggregate"} & set(jobs), jobs
    assert jobs.get("tables") == 1 and jobs.get("findings") == 1, jobs


def test_a_deleted_run_directory_is_trained_again(dag, tmp_path):
    workdir, _ = dag
    run = workdir / "results" / "runs" / "imdb" / "astro" / "seed0"
    shutil.move(run, tmp_path / "kept")
    try:
        text = (proc := snakemake(workdir, "-n")).stdout + proc.stderr
    finally:
        shutil.move(tmp_path / "kept", run)
    assert _planned_train_runs(text) == {("imdb", "astro", "0")}, planned_jobs(text)


def test_editing_one_task_reruns_only_its_runs(dag, tmp_path):
    workdir, _ = dag
    cfg = yaml.safe_load(TINY.read_text())
    cfg["tasks"]["imdb"]["train"]["lr"] = 1.0e-3
    changed = workdir / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile=changed.yaml"], cwd=workdir,
                          capture_output=True, text=True, env=package_env(workdir))
    text = proc.stdout + proc.stderr
    jobs = planned_jobs(text)
    assert jobs.get("train") == 4 and "prepare" not in jobs, jobs  # imdb: 2 models x 2 seeds
    assert set(re.findall(r"wildcards: task=(\w+), model=", text)) == {"imdb"}


def test_committed_records_render_their_committed_page_beside_another_configurations_data(dag, tmp_path):
    """A rule reads only what it declares: the tiny DAG's synthetic data, still in results/data, are no input of
    a configuration all of whose runs come from committed records, so its page is the committed one, byte for byte
    (not "synthetic stand-in")."""
    workdir = tmp_path / "checkout"
    shutil.copytree(dag[0], workdir, symlinks=True)
    assert json.loads((workdir / "results" / "data" / "imdb" / "manifest.json").read_text())["synthetic"]
    records = Path("results") / "reference" / "real-valid"
    shutil.copytree(REPO / records, workdir / records)
    proc = snakemake(workdir, "results/findings/findings.md", "--config", f"records={records}",
                     configfile="config/real-valid.yaml")
    jobs = planned_jobs(proc.stdout + proc.stderr)
    assert jobs.get("tables") == 1 and "train" not in jobs and "prepare" not in jobs, jobs
    page = (workdir / "results" / "findings" / "findings.md").read_bytes()
    assert page == (REPO / records / "findings.md").read_bytes()


def test_report_holds_every_table_and_figure(dag):
    workdir, _ = dag
    snakemake(workdir, "--report", "results/report.html")
    html = (workdir / "results" / "report.html").read_text()
    for name in ("table1.html", "learning_speed.html", "tableS3.html", "fig4a_imdb.png", "fig3_calcium.png",
                 "figS2_attention_cpu.png"):
        assert name in html, name


@pytest.mark.parametrize(
    "override, key",
    [("models=[vanila]", "models"), ("seeds=3", "seeds"), ("sweep={grid: [{key: alpha, values: [1.5], models: [astro]}]}", "sweep")],
)
def test_invalid_configuration_fails_before_any_job(dag, override, key):
    workdir, _ = dag
    proc = snakemake(workdir, "--config", override, check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "Invalid configuration" in text and key in text
    assert "Select jobs to execute" not in text


def test_a_key_written_twice_in_the_configuration_file_fails_naming_the_line(dag):
    workdir, _ = dag
    (workdir / "twice.yaml").write_text(TINY.read_text() + "seeds: [5]\n")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile=twice.yaml"], cwd=workdir,
                          capture_output=True, text=True, env=package_env(workdir))
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "twice.yaml" in text and "duplicate key 'seeds'" in text, text[-2000:]
    assert "Select jobs to execute" not in text


def test_alpha_outside_range_fails_naming_the_key(dag):
    workdir, _ = dag
    cfg = yaml.safe_load(TINY.read_text())
    cfg["tasks"]["imdb"]["attention"] = {"alpha": 1.5}
    (workdir / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile=bad.yaml"], cwd=workdir,
                          capture_output=True, text=True, env=package_env(workdir))
    assert proc.returncode != 0 and "tasks.imdb.attention.alpha" in proc.stdout + proc.stderr


def _metrics_without_timing(run: Path) -> list[dict]:
    from astromorphic.runs import read_metrics

    return [{k: v for k, v in row.items() if not k.startswith("time_")} for row in read_metrics(run / "metrics.csv")]


def test_interrupted_training_resumes_without_retraining(dag, tmp_path):
    """Stop snakemake in the middle of a training job, run it again: the finished run is kept, the stopped run
    resumes from its checkpoint, and its metrics equal those of the uninterrupted run of the whole DAG."""
    reference, _ = dag
    workdir = _copy_workflow(tmp_path / "dag")
    shutil.rmtree(workdir / "src")  # the reference's code: both runs must come from the same code
    shutil.copytree(reference / "src", workdir / "src", ignore=IGNORE)
    first, second = (f"results/runs/imdb/astro/seed{s}" for s in (0, 1))
    targets = [f"{first}/run.json", f"{second}/run.json"]
    env = {**package_env(workdir), "ASTROMORPHIC_TEST_STEP_DELAY": "0.2"}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile=tiny.yaml", *targets]
    log = open(tmp_path / "interrupted.log", "w")
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    stopped = None
    while time.time() < deadline and stopped is None:
        time.sleep(0.3)
        assert proc.poll() is None, (tmp_path / "interrupted.log").read_text()[-3000:]
        for run in (workdir / first, workdir / second):
            record = run / "run.json"
            state = json.loads(record.read_text()) if record.exists() else {}
            if state.get("status") == "running" and state["epochs_completed"] >= 1:
                stopped = run
    assert stopped is not None, "no run reached the middle of its training in time"
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    log.close()
    assert json.loads((stopped / "run.json").read_text())["status"] == "running"
    assert (stopped / "checkpoint.pt").exists()
    done = workdir / (first if stopped == workdir / second else second)
    kept = (done / "metrics.csv").stat().st_mtime_ns if (done / "metrics.csv").exists() else None

    snakemake(workdir, *targets)
    record = json.loads((stopped / "run.json").read_text())
    assert record["status"] == "finished" and record["resumed_from_epochs"], record.get("resumed_from_epochs")
    if kept is not None:
        assert (done / "metrics.csv").stat().st_mtime_ns == kept, f"{done} was retrained"
    relative = stopped.relative_to(workdir)
    assert _metrics_without_timing(stopped) == _metrics_without_timing(reference / relative)
