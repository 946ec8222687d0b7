"""Re-derivation on demand: ``astromorphic records verify --records DIR --sample K [--seed S]``.

K records of a records folder, chosen by a seed among those that hold together
(:func:`astromorphic.runs.records.record_problem`), are trained again with the current code, on the same data
(prepared again from the source and options the record holds, or from ``--data-dir`` as the workflow's
``data_dir`` reads local copies, or read from its ``data_dir`` when the manifest there is the one it trained on;
a record whose data cannot be made again identically is an error naming it) and under the same configuration (its ``config`` section), into a work folder.
Every non-timing column of ``metrics.csv``, the summary of ``run.json`` and the learning curve (its steps and
values, on which the learning-speed verdicts rest) are compared with the record's. ``--cover`` makes the sample
hold at least one record of every task, one run variant (a sweep point or an ablation, ``astro@m_scale=64``) and
one record of a run that was stopped and resumed from its checkpoint (``resumed_from_epochs``), when the folder has
any, chosen by the seed, the rest drawn at random.

Each check is appended to ``<records>/verification.json`` (``checks``: every check with its date, commit, the code
hash of each task it was verified with, and one entry per retrained record: identical or not, and what differed).
``records table`` reads it, and the findings page says "K of N records re-derived with this code: identical"
while the code hash is the same.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import random
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from astromorphic import io as aio
from astromorphic.runs.records import (SUMMARY_KEYS, VERIFICATION_FILE, RecordError, read_checks, record_problem,
                                       same_value)
from astromorphic.runs import TIME_COLUMNS, RunDir, code_hash, git_commit, read_metrics
from astromorphic.data import prepare, source_from_dir

COMPARED_RECORD_KEYS = ("status", "epochs_completed", "n_parameters", *SUMMARY_KEYS, "learning_curve")


def record_folders(records: str | Path) -> list[Path]:
    """The run folders of a records folder (``<records>/runs/<task>/<model>/seed<k>``), in a fixed order."""
    root = Path(records) / "runs"
    if not root.is_dir():
        raise RecordError(f"{root}: no such folder; a records folder holds runs/<task>/<model>/seed<k>/")
    return sorted((p.parent for p in root.glob("*/*/seed*/run.json")), key=lambda p: p.as_posix())


def compare_runs(record_folder: Path, rerun_folder: Path) -> list[str]:
    """What differs between a record and its re-derivation: non-timing metric columns (by epoch) and summary keys
    of run.json. Empty when identical."""
    differences = []
    old, new = read_metrics(record_folder / "metrics.csv"), read_metrics(rerun_folder / "metrics.csv")
    columns = lambda rows: [c for c in (rows[0] if rows else {}) if c not in TIME_COLUMNS and not c.startswith("time_")]  # noqa: E731
    if columns(old) != columns(new):
        differences.append(f"metrics.csv columns {columns(old)} -> {columns(new)}")
    elif len(old) != len(new):
        differences.append(f"metrics.csv rows {len(old)} -> {len(new)}")
    else:
        for column in columns(old):
            epochs = [r["epoch"] for r, s in zip(old, new) if not same_value(r[column], s[column])]
            if epochs:
                differences.append(f"metrics.csv {column} at epochs {epochs[:5]}")
    a, b = RunDir(record_folder).read_record() or {}, RunDir(rerun_folder).read_record() or {}
    differences += [f"run.json {key}" for key in COMPARED_RECORD_KEYS if key in a and not same_value(a[key], b.get(key))]
    return differences


def _data_for(record: dict, work: Path, prepared: dict, data_dir: str | Path | None = None) -> Path:
    """The prepared data the record trained on: its ``data_dir`` when the manifest there has the checksum the
    record holds, else prepared again into ``work`` from the record's data section (once per distinct section),
    reading ``<data_dir>/<task>`` as the workflow's ``data_dir`` does when one is given."""
    task, want = record["task"], record.get("data_manifest_sha256")
    given = Path(str(record.get("data_dir") or ""))
    if want and (given / "manifest.json").is_file() and aio.sha256_file(given / "manifest.json") == want:
        return given
    section = dict(record["config"]["data"])
    if data_dir:  # as workflow/rules/common.smk data_options: the source found there, its split_map unless set
        found = source_from_dir(task, Path(data_dir) / task)
        section.update({k: v for k, v in found.items() if k == "source" or section.get(k) is None})
    key = json.dumps([task, section], sort_keys=True, default=str)
    if key not in prepared:
        folder = work / "data" / f"{task}-{len(prepared)}"
        prepare(task, section.pop("source"), folder, **section)
        prepared[key] = folder
    folder = prepared[key]
    if want and aio.sha256_file(folder / "manifest.json") != want:
        raise RecordError(f"{folder / 'manifest.json'}: data prepared again from the record of "
                          f"{task}/{record['model']}/seed{record['seed']} differ from the data it trained on "
                          "(another source or data code); cannot re-derive it")
    return folder


def resumed(folder: Path) -> bool:
    """Whether the record's run was stopped and resumed from its checkpoint (``resumed_from_epochs`` of its
    run.json); False when there is no readable record."""
    return bool((RunDir(folder).read_record() or {}).get("resumed_from_epochs"))


def choose_sample(folders: list[Path], sample: int, seed: int, cover: bool = False) -> list[Path]:
    """``sample`` of ``folders`` chosen by ``seed``; with ``cover``, first one record of every task, one run
    variant (a run name with ``@``) and one resumed run (:func:`resumed`) when there is one, each drawn by the
    seed, then the rest at random."""
    rng = random.Random(seed)
    chosen: list[Path] = []
    if cover:
        by_task: dict[str, list[Path]] = {}
        for folder in folders:
            by_task.setdefault(folder.parent.parent.name, []).append(folder)
        chosen = [rng.choice(by_task[task]) for task in sorted(by_task)]
        variants = [f for f in folders if "@" in f.parent.name]
        if variants and not any("@" in f.parent.name for f in chosen):
            chosen.append(rng.choice(variants))
        stopped = [f for f in folders if resumed(f)]
        if stopped and not any(f in stopped for f in chosen):
            chosen.append(rng.choice(stopped))
        if sample < len(chosen):
            raise ValueError(f"--sample {sample}: --cover needs at least {len(chosen)} records (one per task, a "
                             "run variant and a resumed run, where the folder has them)")
    rest = [f for f in folders if f not in chosen]
    chosen += rng.sample(rest, sample - len(chosen))
    return sorted(chosen, key=lambda p: p.as_posix())


def _retrain(folder: Path, record: dict, data: Path, rerun: Path) -> dict:
    """Train the run of ``record`` (read from ``folder``) again into ``rerun`` on ``data`` and compare (one entry
    of a check's ``runs``); a function of its own, so that a process of ``--jobs`` can run it."""
    # deferred: training imports torch; reading and checking records does not need it
    from astromorphic.training import train_run

    task, model, rseed = record["task"], record["model"], int(record["seed"])
    config = {"label": record.get("label", ""), "synthetic": bool(record.get("synthetic_config")),
              "tasks": {task: record["config"]}}  # fmt: skip
    train_run(task, model, rseed, config, rerun, data, force=True, progress=False)
    differences = compare_runs(folder, rerun)
    return {"task": task, "model": model, "seed": rseed, "identical": not differences, "differences": differences}


def verify_records(records: str | Path, sample: int, *, seed: int = 0, work: str | Path | None = None,
                   out: str | Path | None = None, data_dir: str | Path | None = None, cover: bool = False,
                   jobs: int = 1) -> dict:
    """Retrain ``sample`` records of ``records`` chosen by ``seed`` (:func:`choose_sample`), ``jobs`` at a time
    (each run uses the threads its record's configuration names), compare, append the check to the verification
    file and return it. The data are prepared first, once per distinct data section."""
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: expected a positive number of runs at a time")
    folders = record_folders(records)
    if sample < 1:
        raise ValueError(f"--sample {sample}: expected a positive number of records")
    sound = [f for f in folders if record_problem(f) is None]
    if sample > len(sound):
        raise ValueError(f"--sample {sample}: {records} holds {len(sound)} records that hold together")
    chosen = choose_sample(sound, sample, seed, cover)
    out = Path(out) if out else Path(records) / VERIFICATION_FILE
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="astromorphic-verify-") as tmp:
        work = Path(work) if work else Path(tmp)
        prepared: dict = {}
        retrains = []  # (folder, record, data, rerun folder) of each sampled record, its data prepared
        for folder in chosen:
            record = RunDir(folder).read_record()
            rerun = work / "runs" / record["task"] / record["model"] / f"seed{int(record['seed'])}"
            retrains.append((folder, record, _data_for(record, work, prepared, data_dir), rerun))
        if jobs == 1:
            runs = [_retrain(*args) for args in retrains]
        else:  # separate processes (spawned: a forked torch is not safe), results in the sample's order
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                runs = list(pool.map(_retrain, *zip(*retrains)))
    tasks = sorted({r["task"] for r in runs})
    check = {"date": started.isoformat(timespec="seconds"),
             "wall_s": round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()),
             "seed": seed, "sample": sample, "cover": cover, "records": len(folders), "git_commit": git_commit(),
             "code_hash": {t: code_hash(t) for t in tasks}, "runs": runs}  # fmt: skip
    aio.write_json(out, {"checks": [*read_checks(out), check]})
    return {**check, "file": str(out)}
