"""Committed run records: matching, export, and the tiny DAG rendered from records without training."""

from __future__ import annotations

import filecmp
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from _fake_runs import write_run
from astromorphic import io as aio
from astromorphic.findings import publish
from astromorphic.runs import records, records_command, verify
from astromorphic.config import resolve_task_config, validate_config
from astromorphic.runs import RunDir, code_hash
from _dag import TINY, _copy_workflow, package_env, planned_jobs, snakemake

CONFIG = validate_config({"label": "tiny test", "seeds": [0, 1], "models": ["astro"], "lm_extra_models": [],
                          "tasks": {"imdb": {"train": {"epochs": 2}}}})


def _record(root: Path, seed: int = 0, status: str = "finished", fingerprint: str | None = None,
            code: str | None = None) -> Path:
    """A fabricated record of imdb/astro/seed<k> in ``root/runs`` (the project's writer), stamped as a run of CONFIG."""
    run = write_run(root / "runs", "imdb", "astro", seed, epochs=2)
    record = RunDir(run).read_record()
    record.update(status=status, code_hash=code or code_hash("imdb"), config=resolve_task_config(CONFIG, "imdb"),
                  config_fingerprint=fingerprint or records.expected_config_fingerprint(CONFIG, "imdb", "astro", seed))
    (run / "run.json").write_text(json.dumps(record))
    return run


def test_slug_names_a_records_folder():
    assert records.slug("real data, small") == "real-data-small" and records.slug("") == "unnamed"


def test_a_matching_complete_record_stands_for_its_run(tmp_path):
    _record(tmp_path, 0)
    _record(tmp_path, 1, status="running")
    config = {**CONFIG, "records": str(tmp_path)}
    plan = records.plan_runs(config, [("imdb", "astro", 0), ("imdb", "astro", 1), ("imdb", "astro", 2)])
    assert plan[("imdb", "astro", 0)].record == tmp_path / "runs" / "imdb" / "astro" / "seed0"
    assert plan[("imdb", "astro", 0)].code_current is True
    assert plan[("imdb", "astro", 1)].record is None and "not complete" in plan[("imdb", "astro", 1)].reason
    assert plan[("imdb", "astro", 2)].record is None and plan[("imdb", "astro", 2)].reason == "no record"
    assert records.plan_summary(plan, str(tmp_path)).endswith("(0 made by other code); 2 to train")
    no_records = records.plan_runs(CONFIG, [("imdb", "astro", 0)])
    assert no_records[("imdb", "astro", 0)].record is None


def test_a_record_of_another_configuration_is_not_used(tmp_path):
    _record(tmp_path, 0)
    changed = validate_config({**CONFIG, "tasks": {"imdb": {"train": {"epochs": 3}}}, "records": str(tmp_path)})
    decision = records.plan_runs(changed, [("imdb", "astro", 0)])[("imdb", "astro", 0)]
    assert decision.record is None and decision.reason == "record of another configuration"
    scheduling = validate_config({**CONFIG, "tasks": {"imdb": {"train": {"epochs": 2, "threshold": 0.5},
                                                               "resources": {"threads": 4}}}, "records": str(tmp_path)})
    assert records.plan_runs(scheduling, [("imdb", "astro", 0)])[("imdb", "astro", 0)].record is not None


def test_records_by_other_code_are_used_unless_strict(tmp_path):
    _record(tmp_path, 0, code="0" * 64)
    config = {**CONFIG, "records": str(tmp_path)}
    used = records.plan_runs(config, [("imdb", "astro", 0)])[("imdb", "astro", 0)]
    assert used.record is not None and used.code_current is False
    strict = records.plan_runs({**config, "records_strict": True}, [("imdb", "astro", 0)])[("imdb", "astro", 0)]
    assert strict.record is None and "records_strict" in strict.reason
    table = records.records_table([used.record, tmp_path.parent / "trained-here"], tmp_path)
    assert list(table["source"]) == ["record", "trained"] and list(table["code_current"]) == [False, False]


def test_a_record_without_a_stored_fingerprint_is_matched_by_its_configuration(tmp_path):
    run = write_run(tmp_path / "runs", "imdb", "astro", 0, epochs=2)
    record = RunDir(run).read_record()
    record["config"] = resolve_task_config(CONFIG, "imdb")
    assert records.record_config_fingerprint(record) == records.expected_config_fingerprint(CONFIG, "imdb", "astro", 0)


TINY_RECORDS = Path(__file__).resolve().parent / "records" / "tiny-imdb"  # 4 records, remade as tiny-imdb.yaml says


@pytest.fixture
def tiny_records(tmp_path):
    dest = tmp_path / "tiny-imdb"
    shutil.copytree(TINY_RECORDS, dest)
    return dest


def test_the_committed_tiny_records_hold_together(tiny_records):
    folders = sorted(tiny_records.glob("runs/*/*/seed*"))
    assert len(folders) == 4 and all(records.record_problem(f) is None for f in folders)


def _edit_json(path: Path, **changes) -> None:
    record = json.loads(path.read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            record[key] = {**record[key], **value}
        else:
            record[key] = value
    path.write_text(json.dumps(record))


def _tamper(folder: Path, how: str) -> None:
    """The attacks of a skeptical reader on one record: an edited accuracy, metrics cut to epochs 0-1, a run.json
    made to say another learning rate and seed, and the same with the checksum made to agree."""
    metrics = folder / "metrics.csv"
    lines = metrics.read_text().splitlines(keepends=True)
    if how == "edited metrics":
        head, last = lines[0].split(","), lines[-1].split(",")
        last[head.index("test_acc")] = "0.99"
        metrics.write_text("".join(lines[:-1]) + ",".join(last))
    elif how == "truncated metrics":
        metrics.write_text("".join(lines[:2]))
    elif how == "edited run.json":
        record = json.loads((folder / "run.json").read_text())
        _edit_json(folder / "run.json", seed=record["seed"] + 5, config={"train": {**record["config"]["train"], "lr": 0.1}})
    elif how == "edited metrics, checksum updated":
        _tamper(folder, "edited metrics")
        _edit_json(folder / "run.json", metrics_sha256=aio.sha256_file(metrics))
    elif how == "no checksum":
        record = json.loads((folder / "run.json").read_text())
        record.pop("metrics_sha256")
        (folder / "run.json").write_text(json.dumps(record))
    elif how == "unfinished":
        _edit_json(folder / "run.json", epochs=4)


@pytest.mark.parametrize("how, says", [
    ("edited metrics", "metrics.csv: its sha256 is not the metrics_sha256 of run.json"),
    ("truncated metrics", "metrics.csv: its sha256 is not the metrics_sha256 of run.json"),
    ("edited run.json", "run.json: config_fingerprint is not the one of its config section"),
    ("edited metrics, checksum updated", "run.json: its summary (final, best) disagrees with metrics.csv"),
    ("no checksum", "run.json: no metrics_sha256"),
    ("unfinished", "run.json: finished after 2 of its 4 epochs"),
])
def test_a_tampered_record_is_refused_naming_the_file(tiny_records, how, says):
    folder = tiny_records / "runs" / "imdb" / "astro" / "seed0"
    _tamper(folder, how)
    problem = records.record_problem(folder)
    assert problem and problem.startswith(str(folder)) and says in problem and "\n" not in problem, problem
    config = {**validate_config(yaml.safe_load((TINY_RECORDS.parent / "tiny-imdb.yaml").read_text())),
              "records": str(tiny_records)}
    plan = records.plan_runs(config, [("imdb", "astro", 0), ("imdb", "astro", 1)])
    assert plan[("imdb", "astro", 0)].record is None and plan[("imdb", "astro", 1)].record is not None
    assert says in records.plan_summary(plan, str(tiny_records)).splitlines()[0]


def test_records_verify_re_derives_a_sample_identically(tiny_records, capsys):
    assert records_command.main(["verify", "--records", str(tiny_records), "--sample", "2", "--seed", "0"]) == 0
    assert "2 of 4 records re-derived with this code: identical" in capsys.readouterr().out
    checks = json.loads((tiny_records / records.VERIFICATION_FILE).read_text())["checks"]
    assert len(checks) == 1 and checks[0]["date"] and checks[0]["git_commit"] is not None
    result = checks[0]
    assert len(result["runs"]) == 2 and all(r["identical"] and not r["differences"] for r in result["runs"])
    runs = sorted(tiny_records.glob("runs/*/*/seed*"))
    table = records.records_table(runs, tiny_records, tiny_records / records.VERIFICATION_FILE)
    assert (table["verified"] == "identical").sum() == 2 and (table["verified"] == "").sum() == 2
    assert records.verification_sentence(table) == "2 of 4 records re-derived with this code: identical"
    # The file beside the records is not read unless given (the workflow declares it when there is one).
    assert records.verification_sentence(records.records_table(runs, tiny_records)) is None
    result["code_hash"]["imdb"] = "0" * 64  # verified with other code: says so, with the commit and the date
    result["git_commit"], result["date"] = "0123456789abcdef", "2026-01-02T03:04:05+00:00"
    (tiny_records / records.VERIFICATION_FILE).write_text(json.dumps({"checks": [result]}))
    table = records.records_table(runs, tiny_records, tiny_records / records.VERIFICATION_FILE)
    assert (table["verified"] == "").all()
    assert records.verification_sentence(table) == ("2 of 4 records re-derived by earlier code "
                                                    "(2 by commit 0123456, 2026-01-02: identical)")


def test_records_verify_keeps_every_check_and_covers_every_task_and_a_variant(tiny_records, tmp_path, capsys):
    folders = verify.record_folders(tiny_records)
    variant = tmp_path / "runs" / "imdb" / "astro@m_scale=64" / "seed0"  # a sweep point, as a folder name
    other_task = tmp_path / "runs" / "cifar10" / "astro" / "seed0"
    pool = [*folders, variant, other_task]
    for seed in range(5):
        chosen = verify.choose_sample(pool, 3, seed, cover=True)
        assert other_task in chosen and variant in chosen and len(chosen) == 3 == len(set(chosen))
        assert verify.choose_sample(pool, 3, seed) == sorted(random.Random(seed).sample(pool, 3), key=lambda p: p.as_posix())
    with pytest.raises(ValueError, match="--cover needs at least 3"):
        verify.choose_sample(pool, 2, 0, cover=True)
    # a run stopped and resumed from its checkpoint is covered too, where the folder has one
    stopped = tmp_path / "runs" / "imdb" / "vanilla" / "seed1"
    stopped.mkdir(parents=True)
    (stopped / "run.json").write_text(json.dumps({"resumed_from_epochs": [2]}))
    assert verify.resumed(stopped) and not verify.resumed(variant) and not any(map(verify.resumed, folders))
    for seed in range(5):
        chosen = verify.choose_sample([*pool, stopped], 4, seed, cover=True)
        assert {other_task, variant, stopped} <= set(chosen) and len(set(chosen)) == 4
    with pytest.raises(ValueError, match="--cover needs at least 4 records .* a resumed run"):
        verify.choose_sample([*pool, stopped], 3, 0, cover=True)
    # An earlier file of one check is kept as the first check; every check is appended.
    path = tiny_records / records.VERIFICATION_FILE
    path.write_text(json.dumps({"code_hash": {"imdb": "0" * 64}, "runs": [
        {"task": "imdb", "model": "astro", "seed": 0, "identical": False, "differences": ["x"]}]}))
    assert records_command.main(["verify", "--records", str(tiny_records), "--sample", "1", "--seed", "3"]) == 0
    assert records_command.main(["verify", "--records", str(tiny_records), "--sample", "1", "--seed", "4"]) == 0
    checks = verify.read_checks(path)
    assert len(checks) == 3 and checks[0]["code_hash"]["imdb"] == "0" * 64
    assert all(c["date"] and c["wall_s"] >= 0 and c["code_hash"]["imdb"] == records.code_hash("imdb") for c in checks[1:])


def test_records_verify_compares_the_learning_curve(tiny_records):
    folder = tiny_records / "runs" / "imdb" / "astro" / "seed0"
    twin = tiny_records.parent / "twin"
    shutil.copytree(folder, twin)
    assert verify.compare_runs(folder, twin) == []
    record = json.loads((twin / "run.json").read_text())
    curve = record.get("learning_curve") or {"metric": "test_acc", "every_steps": 2, "n_examples": 8, "steps": [0, 2],
                                             "values": [0.5, 0.75]}
    record["learning_curve"] = {**curve, "values": [v + 0.125 for v in curve["values"]]}
    (twin / "run.json").write_text(json.dumps(record))
    assert verify.compare_runs(twin, folder) == ["run.json learning_curve"]  # the record's curve, not re-derived


@pytest.mark.parametrize("jobs", [1, 2])
def test_records_verify_reports_a_record_that_differs(tiny_records, capsys, jobs):
    """The same check run by run and with runs retrained in parallel processes (``--jobs``)."""
    folder = tiny_records / "runs" / "imdb" / "astro" / "seed1"
    _tamper(folder, "edited metrics, checksum updated")
    _edit_json(folder / "run.json", final={"test_acc": 0.99}, best={"test_acc": 0.99})  # consistent, but false
    record = json.loads((folder / "run.json").read_text())
    record.update({k: v for k, v in records.summarise("imdb", records.read_metrics(folder / "metrics.csv"),
                                                       record["probe_init"]).items()})
    (folder / "run.json").write_text(json.dumps(records.json_safe(record)))
    assert records.record_problem(folder) is None  # a forgery that holds together: only re-deriving finds it
    assert records_command.main(["verify", "--records", str(tiny_records), "--sample", "4", "--jobs", str(jobs)]) == 1
    out = capsys.readouterr().out
    assert "imdb/astro/seed1: DIFFERENT: metrics.csv test_acc at epochs [2]" in out
    check = verify.read_checks(tiny_records / records.VERIFICATION_FILE)[-1]
    assert [(r["model"], r["seed"], r["identical"]) for r in check["runs"]] == [
        (model, seed, (model, seed) != ("astro", 1)) for model, seed in sorted(
            (f.parent.name, int(f.name[4:])) for f in tiny_records.glob("runs/imdb/*/seed*"))]
    assert records_command.main(["verify", "--records", str(tiny_records), "--sample", "1", "--jobs", "0"]) == 1
    table = records.records_table(sorted(tiny_records.glob("runs/*/*/seed*")), tiny_records,
                                  tiny_records / records.VERIFICATION_FILE)
    assert records.verification_sentence(table) == ("4 of 4 records re-derived with this code: 3 identical, "
                                                    "1 different (imdb/astro/seed1)")


def test_export_copies_only_the_record_and_the_metrics(tmp_path, capsys):
    done = write_run(tmp_path / "results" / "runs", "imdb", "astro", 0)
    (done / "checkpoint.pt").write_bytes(b"x" * 1000)
    (done / "train.log").write_text("log\n")
    going = write_run(tmp_path / "results" / "runs", "imdb", "astro", 1)
    state = RunDir(going).read_record()
    state["status"] = "running"
    (going / "run.json").write_text(json.dumps(state))
    out = tmp_path / "reference" / "fake"
    assert records_command.main(["export", "--runs", str(tmp_path / "results" / "runs"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exported 1 runs" in text and " MB (limit 25 MB)" in text and "skipped" in text
    copied = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert copied == ["runs/imdb/astro/seed0/metrics.csv", "runs/imdb/astro/seed0/run.json"]
    assert (out / "runs/imdb/astro/seed0/metrics.csv").read_bytes() == (done / "metrics.csv").read_bytes()
    sealed = json.loads((out / "runs/imdb/astro/seed0/run.json").read_text())
    assert sealed["metrics_sha256"] == aio.sha256_file(done / "metrics.csv")
    assert records_command.main(["export", "--runs", str(tmp_path / "results" / "runs"), "--out", str(out),
                         "--max-mb", "0.000001"]) == 1


# ------------------------------------------------------------------------------------------ the tiny DAG

COMPARED = ("results/tables", "results/findings", "figures")


def _records_config(dest: Path, folder: str) -> None:
    cfg = yaml.safe_load(TINY.read_text())
    cfg.update(records=folder, bench={"enabled": False})  # Fig. S2 times the machine: left out here
    (dest / "tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.fixture(scope="module")
def trained(dag, tmp_path_factory):
    """The tiny DAG of the test session (conftest.py), its runs exported into a records folder."""
    workdir, _ = dag
    out = tmp_path_factory.mktemp("exported") / "tiny-test"
    proc = subprocess.run([sys.executable, "-m", "astromorphic", "records", "export", "--runs", "results/runs",
                           "--out", str(out)], cwd=workdir, capture_output=True, text=True, env=package_env(workdir))
    assert proc.returncode == 0 and "exported 12 runs" in proc.stdout, proc.stdout + proc.stderr
    return workdir, out


def _fresh_copy(trained_dir: Path, records_dir: Path, dest: Path) -> Path:
    """A checkout holding the committed records and the code that trained them, nothing else of the first run."""
    workdir = _copy_workflow(dest)
    shutil.rmtree(workdir / "src")
    shutil.copytree(trained_dir / "src", workdir / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(records_dir, workdir / "results" / "reference" / "tiny-test")
    _records_config(workdir, "results/reference/tiny-test")
    return workdir


@pytest.mark.slow
def test_records_render_every_output_without_training_and_twice_identically(trained, tmp_path, monkeypatch):
    trained_dir, records_dir = trained
    copies = [_fresh_copy(trained_dir, records_dir, tmp_path / name) for name in ("a", "b")]
    dry = snakemake(copies[0], "-n")
    jobs = planned_jobs(dry.stdout + dry.stderr)
    assert "train" not in jobs and "prepare" not in jobs and jobs.get("findings") == 1, jobs
    assert "records: 12 of 12 runs from results/reference/tiny-test (0 made by other code); 0 to train" in dry.stderr
    for workdir in copies:
        snakemake(workdir)
        assert not (workdir / "results" / "runs").exists() and not (workdir / "results" / "data").exists()
    for name in ("runs.csv", "runs_summary.csv"):  # the records aggregate exactly like the runs they came from
        assert filecmp.cmp(copies[0] / "results" / "tables" / name, trained_dir / "results" / "tables" / name,
                           shallow=False), name
    a, b = copies
    files = sorted(p.relative_to(a) for folder in COMPARED for p in (a / folder).rglob("*") if p.is_file())
    assert any(f.name == "findings.html" for f in files) and any(f.name == "records.csv" for f in files)
    assert files == sorted(p.relative_to(b) for folder in COMPARED for p in (b / folder).rglob("*") if p.is_file())
    different = [str(f) for f in files if not filecmp.cmp(a / f, b / f, shallow=False)]
    assert not different, different
    page = (a / "results" / "findings" / "findings.md").read_text()
    note = "Runs read from committed records (results/reference/tiny-test): 12 of 12; all made by the current code"
    assert note in page
    # published beside its records: the page and exactly the figures it shows
    monkeypatch.chdir(a)
    assert records_command.main(["page", "--out", "results/reference/tiny-test"]) == 0
    published = a / "results" / "reference" / "tiny-test"
    shown = publish.page_figures(page)
    assert len(shown) >= 3 and sorted(p.name for p in published.glob("*.png")) == sorted(shown)
    assert (published / "findings.md").read_text() == page
    snakemake(a, "--report", "results/report.html")
    assert "findings.html" in (a / "results" / "report.html").read_text()


@pytest.mark.slow
def test_changed_code_or_configuration_decides_what_trains(trained, tmp_path):
    trained_dir, records_dir = trained
    workdir = _fresh_copy(trained_dir, records_dir, tmp_path / "c")
    models = workdir / "src" / "astromorphic" / "models.py"
    models.write_text(models.read_text() + "\n# a comment: the same code\n")
    same = snakemake(workdir, "-n")
    assert "(0 made by other code); 0 to train" in same.stderr
    models.write_text(models.read_text() + "\nASTROMORPHIC_EDIT = 1\n")
    used = snakemake(workdir, "-n")
    assert "train" not in planned_jobs(used.stdout + used.stderr)
    assert "(12 made by other code); 0 to train" in used.stderr
    strict = snakemake(workdir, "-n", "--config", "records_strict=True")
    jobs = planned_jobs(strict.stdout + strict.stderr)
    assert jobs.get("train") == 12 and jobs.get("prepare") == 3, jobs
    cfg = yaml.safe_load((workdir / "tiny.yaml").read_text())
    cfg["tasks"]["imdb"]["train"]["lr"] = 1.0e-3
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    changed = snakemake(workdir, "-n")
    jobs = planned_jobs(changed.stdout + changed.stderr)
    assert jobs.get("train") == 4 and jobs.get("prepare") == 1, jobs  # imdb only: 2 models x 2 seeds


@pytest.mark.slow
def test_tampered_committed_records_are_refused_and_retrained(trained, tmp_path):
    trained_dir, records_dir = trained
    workdir = _fresh_copy(trained_dir, records_dir, tmp_path / "t")
    runs = workdir / "results" / "reference" / "tiny-test" / "runs"
    attacked = {"edited metrics": ("imdb", "astro", "0"), "truncated metrics": ("cifar10", "linearized", "1"),
                "edited run.json": ("wikitext2", "astro", "1")}
    for how, (task, model, seed) in attacked.items():
        _tamper(runs / task / model / f"seed{seed}", how)
    dry = snakemake(workdir, "-n")
    text = dry.stdout + dry.stderr
    trains = set(re.findall(r"wildcards: task=(\w+), model=([^,\s]+), seed=(\d+)", text))
    assert trains == set(attacked.values()), trains
    refused = [line for line in dry.stderr.splitlines() if line.startswith("record refused")]
    assert len(refused) == 3 and all("results/reference/tiny-test/runs/" in line for line in refused), refused
    assert "records: 9 of 12 runs from results/reference/tiny-test" in dry.stderr


def test_the_findings_page_reports_a_verification_instead_of_the_other_code_warning():
    from astromorphic.findings import Findings, records_note

    rows = [{"task": "imdb", "model": "astro", "seed": s, "source": "record", "status": "finished",
             "code_current": False, "code_version": "", "verified": v} for s, v in enumerate(["identical", "", ""])]
    note = records_note(Findings({"records": "recs"}, {"records": pd.DataFrame(rows)}))
    assert "3 of them were made by earlier code" in note and "**" not in note
    assert note.endswith("1 of 3 records re-derived with this code: identical.")
    rows[1]["verified"] = "different"
    note = records_note(Findings({"records": "recs"}, {"records": pd.DataFrame(rows)}))
    assert "**3 of them were made by other code" in note and "1 identical, 1 different (imdb/astro/seed1)" in note
    unverified = [{**r, "verified": ""} for r in rows]
    assert "**3 of them" in records_note(Findings({"records": "recs"}, {"records": pd.DataFrame(unverified)}))


def test_the_findings_page_reports_a_verification_of_records_the_current_code_made():
    from astromorphic.findings import Findings, records_note

    rows = [{"task": "imdb", "model": "astro", "seed": s, "source": "record", "status": "finished",
             "code_current": True, "code_version": "", "verified": v} for s, v in enumerate(["identical", "", ""])]
    note = records_note(Findings({"records": "recs"}, {"records": pd.DataFrame(rows)}))
    assert note.endswith("3 of 3; all made by the current code; 1 of 3 records re-derived with this code: identical.")
    for row in rows:
        row["verified"] = ""
    note = records_note(Findings({"records": "recs"}, {"records": pd.DataFrame(rows)}))
    assert note.endswith("all made by the current code; none re-derived yet (`astromorphic records verify`).")


def test_records_csv_names_the_packages_a_record_was_made_with_against_the_lock(tmp_path, capsys):
    from astromorphic.findings import Findings, packages_note, provenance
    from astromorphic.lock import LOCK_FILE, read_lock

    runs = [_record(tmp_path, seed) for seed in range(3)]
    made_with = {"python": "3.11.7", "astromorphic": "0.1.0", "pandas": "2.2.3", "PyYAML": "6.0.2", "torch": "2.14.1"}
    for run, packages in zip(runs, [made_with, {**made_with, "pandas": "2.3.1"}, None]):
        record = json.loads((run / "run.json").read_text())
        record.pop("packages", None)  # the last: made before run.json held its packages
        (run / "run.json").write_text(json.dumps({**record, **({"packages": packages} if packages else {})}))
    lock = tmp_path / LOCK_FILE
    lock.write_text("# inputs-sha256: 0\npandas==2.3.1 \\\n    --hash=sha256:" + "a" * 64 + "\n"
                    "pyyaml==6.0.2 \\\n    --hash=sha256:" + "b" * 64 + "\n", encoding="utf-8")
    out = tmp_path / "records.csv"
    assert records_command.main(["table", "--runs", *map(str, runs), "--records", str(tmp_path), "--lock", str(lock),
                         "--out", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table["packages_other"]) == ["pandas 2.2.3 (locked 2.3.1)", "", records.PACKAGES_NOT_RECORDED]
    assert "packages_other" not in records.records_table(runs, tmp_path).columns  # no lock, no claim about it

    page = Findings({"records": str(tmp_path)}, {"records": table})
    assert packages_note(page) == (f"- Packages: 1 of 3 runs made with the locked versions (`{LOCK_FILE}`); "
                                   "**2 made with other versions**: packages not recorded, "
                                   "pandas 2.2.3 (locked 2.3.1).")
    assert packages_note(page) in provenance(page)
    same = Findings({}, {"records": records.records_table(runs[1:2], tmp_path, pins=read_lock(lock))})
    assert packages_note(same) == f"- Packages: 1 of 1 runs made with the locked versions (`{LOCK_FILE}`)."
    assert packages_note(Findings({}, {"records": table.drop(columns="packages_other")})) == ""

    capsys.readouterr()
    assert records_command.main(["table", "--runs", str(runs[0]), "--lock", str(tmp_path / "none.txt"), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "none.txt" in error and "`make lock` writes it" in error


COMMITTED = sorted((Path(__file__).resolve().parents[1] / "results" / "reference").glob("*/verification.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_every_committed_verification_covers_each_task_a_sweep_point_and_a_resumed_run(path):
    """What the committed verdicts rest on was re-derived: together, the checks of a committed ``verification.json``
    retrained at least one record of every task its folder holds, a sweep point (a run name with ``@``) and a run
    that was stopped and resumed from its checkpoint, where the folder has them; every record named is one of the
    folder's, and every check found its records identical."""
    def key(folder: Path) -> tuple[str, str, int]:
        return folder.parent.parent.name, folder.parent.name, int(folder.name.removeprefix("seed"))

    folders = verify.record_folders(path.parent)
    assert folders, f"{path}: no records beside it"
    held = {key(f) for f in folders}
    checks = verify.read_checks(path)
    assert checks, f"{path}: no check"
    named = [(r["task"], r["model"], int(r["seed"])) for check in checks for r in check["runs"]]
    assert set(named) <= held, f"{path} names records the folder lacks: {sorted(set(named) - held)}"
    assert all(r["identical"] for check in checks for r in check["runs"]), path
    assert {task for task, _, _ in named} == {task for task, _, _ in held}, path
    if any("@" in model for _, model, _ in held):
        assert any("@" in model for _, model, _ in named), f"{path}: no sweep point re-derived"
    resumed = {key(f) for f in folders if verify.resumed(f)}
    if resumed:
        assert resumed & set(named), f"{path}: no resumed run re-derived"
