"""The project's DAG through Snakemake's SLURM executor, on a real single-node SLURM cluster.

It runs only as root on Debian with ``CI`` set (or ``ASTRO_SLURM_TEST=1``), because it installs
slurm-wlm and munge when they are missing and starts munged, slurmctld and slurmd
(``tests/slurm/start_cluster.sh``); it stops exactly those daemons again, by the process ids it
recorded (``tests/slurm/stop_cluster.sh``). Elsewhere it is skipped with a message saying what it needs.

On a small DAG (``tests/slurm/tiny.yaml``: prepare, two training runs, aggregate, one figure) run with
``profiles/slurm`` as a user runs it (only the status checks come faster), it checks that

* every job went through sbatch: Snakemake logged a SLURM job id for it, SLURM wrote that job's log,
  and SLURM reports the job COMPLETED;
* a training job cancelled with ``scancel`` while it runs is resubmitted by the profile's retries,
  resumes from its checkpoint, and the run still completes;
* a second invocation finds nothing left to do;
* the outputs equal those of a local run of the same DAG: tables and metrics apart from the timing
  columns (``time_*``), figures and prepared data byte for byte.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HELPERS = REPO / "tests" / "slurm"
TINY_CONFIG = HELPERS / "tiny.yaml"

# What the tiny DAG must produce (relative to its working directory): two training runs, their
# aggregate and one figure; Snakemake adds the jobs these need (configuration snapshots, prepare).
RUNS = ("results/runs/imdb/vanilla/seed0", "results/runs/imdb/astro/seed0")
TARGETS = ("results/tables/runs.csv", "figures/fig4a_imdb.png")
TRAIN_RULE = "train"
# The rules that must have run as SLURM jobs, and the only ones allowed to run on the submitting host:
# `all`; config_snapshot, code_snapshot, data_code_snapshot and module_code_snapshot, which only write the resolved
# configuration and the hashes of the code out of Snakemake's memory; and prepare, which downloads (compute nodes
# are often offline).
SLURM_RULES = {"train", "aggregate", "fig4"}
LOCAL_RULES = {"all", "config_snapshot", "code_snapshot", "data_code_snapshot", "module_code_snapshot", "prepare"}
# What a run of the workflow needs from the repository; each DAG runs in a copy of it.
CHECKOUT = ("Snakefile", "workflow", "config", "profiles", "src", "results/reference")

# Settings only this test adds to the profile: a fast status-check cadence (a real cluster keeps the
# profile's), and SLURM's logs of successful jobs, to check them.
TEST_ONLY_ARGS = (
    "--slurm-init-seconds-before-status-checks=2",
    "--seconds-between-status-checks=2",
    "--slurm-keep-successful-logs",
)
# Slows every training step a little, so that the test can cancel a job in the middle of its run
# (see astromorphic.training); it changes only the time_* columns.
STEP_DELAY = "0.25"

DAG_TIMEOUT_S = 420
# Keys of run.json allowed to differ between the two runs: the cancelled run records where it resumed.
# metrics_sha256: the checksum of the whole metrics.csv, whose timing columns differ between any two runs (the
# metrics themselves are compared without them).
DIFFERING_JSON_KEYS = {"resumed_from_epochs", "metrics_sha256"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in {"", "0", "false", "no"}


def _missing_requirements() -> list[str]:
    missing = []
    if not (_flag("CI") or _flag("ASTRO_SLURM_TEST")):
        missing.append("CI or ASTRO_SLURM_TEST=1 set (it installs packages and starts daemons)")
    if os.geteuid() != 0:
        missing.append("root")
    if not Path("/etc/debian_version").exists():
        missing.append("Debian (slurm-wlm and munge come from apt-get)")
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and not conf.is_symlink():
        missing.append("a host that is not already part of a SLURM cluster (/etc/slurm/slurm.conf exists)")
    return missing


requires_cluster = pytest.mark.skipif(
    bool(_missing_requirements()), reason="the SLURM test needs " + "; ".join(_missing_requirements())
)


# ----------------------------------------------------------------------------------------------------
# The profile (no cluster needed)
# ----------------------------------------------------------------------------------------------------


def _profile(name: str) -> dict:
    path = REPO / "profiles" / name / "config.yaml"
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def test_workflow_profile_leaves_the_cluster_settings_alone():
    """Snakemake applies profiles/default on top of any --profile, key by key (it is the workflow profile),
    so it must not change what profiles/slurm sets, nor cap the threads of cluster jobs."""
    default, slurm = _profile("default"), _profile("slurm")
    assert slurm.get("executor") == "slurm"
    overridden = {k: (default[k], slurm[k]) for k in default.keys() & slurm.keys() if default[k] != slurm[k]}
    assert not overridden, f"profiles/default overrides profiles/slurm (default, slurm): {overridden}"
    assert (
        "cores" not in default
    ), f"profiles/default sets cores: {default.get('cores')}, which caps every SLURM job's --cpus-per-task"


# ----------------------------------------------------------------------------------------------------
# The cluster
# ----------------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    env: dict[str, str]  # the environment to run SLURM commands and Snakemake in
    timings: dict[str, float]  # seconds, reported when the cluster stops

    def slurm(self, *args: str) -> str:
        return subprocess.run(args, env=self.env, check=True, capture_output=True, text=True).stdout


def _report(config: pytest.Config, line: str) -> None:
    """Write a line to the terminal, past pytest's output capture (fixture teardown is captured)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request):
    # One test cluster per host at a time: runs on the same host wait for each other.
    lock = open(Path(tempfile.gettempdir()) / "astromorphic-slurm-test.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    state = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ)
    # Jobs run `python -m snakemake` and `astromorphic` from this interpreter's environment.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SLURM_CONF"] = str(state / "slurm.conf")
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["bash", str(HELPERS / "start_cluster.sh"), str(state)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        timings["install_and_start_s"] = time.monotonic() - started
        if result.returncode != 0:
            pytest.fail(f"could not start the SLURM cluster:\n{result.stdout}\n{result.stderr}")
        yield Cluster(env=env, timings=timings)
    finally:
        stop = subprocess.run(
            ["bash", str(HELPERS / "stop_cluster.sh"), str(state)], capture_output=True, text=True, timeout=120
        )
        parts = ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
        _report(request.config, f"\nSLURM test timings (seconds): {parts}")
        stopped = "; ".join(line for line in (stop.stdout + stop.stderr).splitlines() if line)
        _report(request.config, f"SLURM test cluster: {stopped}")
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


# ----------------------------------------------------------------------------------------------------
# Snakemake's log
# ----------------------------------------------------------------------------------------------------


@dataclass
class LoggedJob:
    rule: str
    jobid: int
    local: bool
    outputs: list[str]
    slurm_ids: list[str] = field(default_factory=list)


_JOB_HEADER = re.compile(r"^(local)?rule (\S+):$")
_SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.")


_RULER = "=" * 80


def _without_embedded_logs(text: str) -> list[str]:
    """Snakemake's own lines: the logs of failed jobs it prints (show-failed-logs), between a
    `Logfile PATH:` line and two rulers, hold the job-step Snakemake's lines, which look alike."""
    lines, kept, inside = text.splitlines(), [], False
    for i, line in enumerate(lines):
        if not inside and line.startswith("Logfile ") and i + 1 < len(lines) and lines[i + 1] == _RULER:
            inside, rulers = True, 0
        if inside:
            rulers += line == _RULER
            inside = rulers < 2
            continue
        kept.append(line)
    return kept


def parse_log(text: str) -> dict[int, LoggedJob]:
    """Jobs Snakemake announced (by its job id), with the SLURM job ids it submitted each one as."""
    jobs: dict[int, LoggedJob] = {}
    lines = _without_embedded_logs(text)
    for i, line in enumerate(lines):
        header = _JOB_HEADER.match(line.strip())
        if not header:
            continue
        outputs, jobid = [], None
        for detail in lines[i + 1 :]:
            if not detail.startswith("    "):
                break
            key, _, value = detail.strip().partition(": ")
            if key == "output":
                outputs = [v.strip() for v in value.split(",")]
            elif key == "jobid":
                jobid = int(value)
        if jobid is not None:
            jobs.setdefault(jobid, LoggedJob(header.group(2), jobid, bool(header.group(1)), outputs))
    for match in _SUBMITTED.finditer("\n".join(lines)):
        job = jobs.get(int(match.group(1)))
        if job is not None and match.group(2) not in job.slurm_ids:
            job.slurm_ids.append(match.group(2))
    return jobs


# ----------------------------------------------------------------------------------------------------
# Running the DAG
# ----------------------------------------------------------------------------------------------------


def make_checkout(root: Path) -> Path:
    """A copy of what the workflow needs from the repository, to run the DAG in (its outputs land there)."""
    for rel in CHECKOUT:
        source, target = REPO / rel, root / rel
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return root


def snakemake_command(*args: str) -> list[str]:
    """The README's command, run in a checkout, for the tiny DAG's targets."""
    return [sys.executable, "-m", "snakemake", "--configfile", str(TINY_CONFIG), *args, *TARGETS]


def slurm_command() -> list[str]:
    return snakemake_command("--profile", "profiles/slurm", *TEST_ONLY_ARGS)


@dataclass
class SlurmRun:
    workdir: Path
    returncode: int | None  # None: still running after DAG_TIMEOUT_S
    log: str
    jobs: dict[int, LoggedJob]
    cancelled: dict  # the training job cancelled mid-run: slurm id, run directory, epochs done before


def _cancel_one_training_job(cluster: Cluster, proc: subprocess.Popen, log_path: Path, workdir: Path) -> dict:
    """Wait until a training job runs and has finished an epoch (its checkpoint exists), then scancel it."""
    deadline = time.monotonic() + DAG_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        running = set(cluster.slurm("squeue", "-h", "-t", "RUNNING", "-o", "%i").split())
        for job in parse_log(log_path.read_text(errors="replace")).values():
            if job.rule != TRAIN_RULE or not job.slurm_ids or job.slurm_ids[-1] not in running:
                continue
            run_dir = workdir / Path(job.outputs[0]).parent
            metrics = run_dir / "metrics.csv"
            if (run_dir / "checkpoint.pt").exists() and metrics.exists():
                epochs_done = len(_read_csv(metrics)) - 1  # row 0 is the model at initialisation
                if epochs_done >= 1:
                    cluster.slurm("scancel", job.slurm_ids[-1])
                    return {
                        "slurm_id": job.slurm_ids[-1],
                        "jobid": job.jobid,
                        "run_dir": run_dir,
                        "epochs_done": epochs_done,
                    }
        time.sleep(0.3)
    return {}


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory) -> SlurmRun:
    workdir = make_checkout(tmp_path_factory.mktemp("dag-slurm"))
    log_path = workdir / "snakemake.out"
    env = dict(cluster.env, ASTROMORPHIC_TEST_STEP_DELAY=STEP_DELAY)
    started = time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(slurm_command(), cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            cancelled = _cancel_one_training_job(cluster, proc, log_path, workdir)
            returncode = proc.wait(timeout=max(1.0, DAG_TIMEOUT_S - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            returncode = None  # test_dag_completes_through_slurm reports it, with the log
        finally:
            if proc.poll() is None:
                proc.terminate()  # Snakemake cancels its SLURM jobs on SIGTERM ...
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()  # ... unless it hangs; stop_cluster.sh cancels what is left
                    proc.wait()
    cluster.timings["slurm_dag_s"] = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    return SlurmRun(workdir, returncode, text, parse_log(text), cancelled)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, cluster) -> Path:
    workdir = make_checkout(tmp_path_factory.mktemp("dag-local"))
    env = {k: v for k, v in cluster.env.items() if not k.startswith("SLURM")}
    started = time.monotonic()
    result = subprocess.run(
        snakemake_command("--cores", "2"), cwd=workdir, env=env, capture_output=True, text=True, timeout=DAG_TIMEOUT_S
    )
    cluster.timings["local_dag_s"] = time.monotonic() - started
    assert result.returncode == 0, f"local run failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return workdir


# ----------------------------------------------------------------------------------------------------
# Output comparison
# ----------------------------------------------------------------------------------------------------


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _without_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if not k.startswith("time_")} for row in rows]


def _comparable_json(value):
    if isinstance(value, dict):
        return {
            k: _comparable_json(v)
            for k, v in value.items()
            if not k.startswith("time_") and k not in DIFFERING_JSON_KEYS
        }
    if isinstance(value, list):
        return [_comparable_json(v) for v in value]
    return value


def _outputs(workdir: Path) -> dict[str, Path]:
    """Every output file of the DAG by its path relative to the working directory, except what measures the
    run rather than its results: logs, Snakemake's benchmark files, timing files, and checkpoints (whose
    stored metric rows include the timing columns)."""
    found = {}
    for top in ("results", "figures"):
        for path in sorted((workdir / top).rglob("*")):
            rel = path.relative_to(workdir)
            if (
                not path.is_file()
                or rel.parts[:2] == ("results", "reference")
                or {"logs", "benchmarks"} & set(rel.parts)
                or path.suffix == ".log"
                or path.name == "checkpoint.pt"
                or path.name.endswith("_timing.json")
            ):
                continue
            found[rel.as_posix()] = path
    return found


def _differences(a: Path, b: Path) -> list[str]:
    left, right = _outputs(a), _outputs(b)
    problems = [f"only in the SLURM run: {p}" for p in sorted(left.keys() - right.keys())]
    problems += [f"only in the local run: {p}" for p in sorted(right.keys() - left.keys())]
    for rel in sorted(left.keys() & right.keys()):
        x, y = left[rel], right[rel]
        if x.suffix == ".csv":
            same = _without_timing(_read_csv(x)) == _without_timing(_read_csv(y))
        elif x.suffix == ".json":
            same = _comparable_json(json.loads(x.read_text())) == _comparable_json(json.loads(y.read_text()))
        else:
            same = x.read_bytes() == y.read_bytes()
        if not same:
            problems.append(f"differs: {rel}")
    return problems


# ----------------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1200)
@requires_cluster
class TestDagOnSlurm:
    def test_dag_completes_through_slurm(self, slurm_run):
        assert slurm_run.returncode == 0, f"Snakemake failed on the cluster:\n{slurm_run.log[-8000:]}"
        for target in TARGETS:
            assert (slurm_run.workdir / target).is_file(), f"{target} was not made"
        for run in RUNS:
            record = json.loads((slurm_run.workdir / run / "run.json").read_text())
            assert record["status"] == "finished", f"{run}: status {record['status']}"

    def test_every_job_went_through_sbatch(self, slurm_run, cluster):
        jobs = slurm_run.jobs
        assert jobs, "no jobs in Snakemake's log"
        local = sorted({job.rule for job in jobs.values() if job.local} - LOCAL_RULES)
        assert not local, f"jobs run on the submitting host instead of through sbatch: {local}"
        remote = [job for job in jobs.values() if not job.local]
        unsubmitted = sorted(job.rule for job in remote if not job.slurm_ids)
        assert not unsubmitted, f"jobs without a SLURM job id in the log: {unsubmitted}"
        rules = {job.rule for job in remote}
        assert SLURM_RULES <= rules, f"expected SLURM jobs of {sorted(SLURM_RULES)}, got {sorted(rules)}"
        assert len([job for job in remote if job.rule == TRAIN_RULE]) == len(RUNS)

        slurm_ids = [sid for job in remote for sid in job.slurm_ids]
        states = dict(
            line.split("|", 1)
            for line in cluster.slurm("squeue", "-h", "--states=all", "-o", "%i|%T", "-j", ",".join(slurm_ids)).split()
        )
        cancelled = slurm_run.cancelled.get("slurm_id")
        for sid in slurm_ids:
            expected = "CANCELLED" if sid == cancelled else "COMPLETED"
            assert states.get(sid) == expected, f"SLURM job {sid}: state {states.get(sid)}, expected {expected}"
            logs = list((slurm_run.workdir / ".snakemake" / "slurm_logs").rglob(f"{sid}.log"))
            assert logs, f"no SLURM log for job {sid}"

    def test_cancelled_training_job_is_resubmitted_and_resumes(self, slurm_run):
        cancelled = slurm_run.cancelled
        assert cancelled, "no training job was caught running with a checkpoint, so none was cancelled"
        job = slurm_run.jobs[cancelled["jobid"]]
        assert (
            job.slurm_ids[0] == cancelled["slurm_id"] and len(job.slurm_ids) == 2
        ), f"expected the cancelled job to be submitted once more, got SLURM ids {job.slurm_ids}"
        record = json.loads((cancelled["run_dir"] / "run.json").read_text())
        assert record["status"] == "finished"
        assert record.get(
            "resumed_from_epochs"
        ), f"the resubmitted job started afresh instead of resuming after epoch {cancelled['epochs_done']}"
        assert record["resumed_from_epochs"][0] >= cancelled["epochs_done"]

    def test_second_invocation_has_nothing_to_do(self, slurm_run, cluster):
        result = subprocess.run(
            slurm_command(), cwd=slurm_run.workdir, env=cluster.env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr[-4000:]
        assert "Nothing to be done" in result.stdout + result.stderr, (result.stdout + result.stderr)[-4000:]

    def test_outputs_equal_a_local_run(self, slurm_run, local_run):
        assert slurm_run.returncode == 0
        problems = _differences(slurm_run.workdir, local_run)
        assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------------------
# Runs sharing a device: resources.runs_per_gpu groups training jobs into one allocation
# ----------------------------------------------------------------------------------------------------

_GROUP_SUBMITTED = re.compile(r"Job \S+ has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.")


@pytest.fixture(scope="module")
def grouped_run(cluster, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The two training runs of the tiny DAG with runs_per_gpu: 2 (CPU only: gpu 0), through profiles/slurm."""
    workdir = make_checkout(tmp_path_factory.mktemp("dag-grouped"))
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["tasks"]["imdb"]["resources"]["runs_per_gpu"] = len(RUNS)
    (workdir / "grouped.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--configfile", "grouped.yaml", "--profile", "profiles/slurm",
               "--group-components", f"train_imdb={len(RUNS)}", *TEST_ONLY_ARGS,
               *(f"{run}/run.json" for run in RUNS)]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(command, cwd=workdir, env=cluster.env, capture_output=True, text=True, timeout=DAG_TIMEOUT_S)
    cluster.timings["grouped_dag_s"] = time.monotonic() - started
    return workdir, proc


@pytest.mark.slow
@pytest.mark.timeout(1200)
@requires_cluster
def test_grouped_training_jobs_run_in_one_allocation(grouped_run, cluster):
    workdir, proc = grouped_run
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    submitted = {sid: path for sid, path in _GROUP_SUBMITTED.findall(log)}
    group_ids = [sid for sid, path in submitted.items() if "train_imdb" in path]
    assert len(group_ids) == 1, f"expected one SLURM job for the group train_imdb, got {submitted}"
    state = cluster.slurm("squeue", "-h", "--states=all", "-o", "%T", "-j", group_ids[0]).split()
    assert state == ["COMPLETED"], state
    for run in RUNS:
        record = json.loads((workdir / run / "run.json").read_text())
        assert record["status"] == "finished", f"{run}: status {record['status']}"
    # The allocation holds the CPUs of both runs (threads summed: Snakemake runs a group's parallel jobs side by side).
    cpus = cluster.slurm("squeue", "-h", "--states=all", "-o", "%C", "-j", group_ids[0]).split()
    assert cpus == [str(len(RUNS))], cpus
