"""Committed run records: results rendered without training, ``astromorphic records``.

A records folder (e.g. ``results/reference/real-valid/``, named by the configuration's ``records`` key) holds,
for the runs of one configuration, only what aggregation reads:

    <records>/runs/<task>/<model>/seed<k>/run.json
    <records>/runs/<task>/<model>/seed<k>/metrics.csv

(no checkpoints, logs or data). ``astromorphic records export`` writes it from a finished ``results/runs`` tree.

The workflow asks :func:`plan_runs` which run of the configuration a record stands for. A record is used,
instead of training the run, when it is complete (status ``finished`` or ``diverged``, metrics present) and its
configuration fingerprint (:func:`astromorphic.runs.config_fingerprint`: task, model, seed and the run section of
the configuration; the data and the code are not part of it) equals the one the configuration gives.

A record is tamper-evident (:func:`record_problem`): its ``run.json`` holds the sha256 of its ``metrics.csv``
(``metrics_sha256``, written by the run and by ``records export``), the summary it publishes (``final``, ``best``,
the probe means, ``epochs_completed``) must be what :func:`astromorphic.runs.summarise` computes from those
metrics, a finished run must have completed the epochs it was configured for (or stopped where its early stopping
ends it, derived from its metrics), and the stored
``config_fingerprint`` must be the one its own ``config`` section gives. A record failing any of these is
refused with one line naming the file, and the workflow trains its run instead; it is never aggregated.

A record made by other code (its ``code_hash`` differs from the current code's) is still used, and counted as
such in ``records.csv`` (:func:`records_table`), which the findings page reports; with ``records_strict: true``
the workflow retrains those runs instead. ``astromorphic records verify --sample K`` retrains K records chosen by
a seed with the current code (:mod:`astromorphic.runs.verify`) and writes ``<records>/verification.json``; the page then
says how many re-derived identically instead of warning about other code.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from astromorphic import io as aio
from astromorphic.config import resolve_task_config, with_run_name_overrides
from astromorphic.lock import Pin, version_differences
from astromorphic.runs import (
    FINAL_STATUSES,
    RunDir,
    code_hash,
    config_fingerprint,
    early_stop_epoch,
    json_safe,
    read_metrics,
    summarise,
)
from astromorphic.run_names import parse_model_name
from astromorphic.tables.aggregate import find_run_dirs

RECORD_FILES = ("run.json", "metrics.csv")
DEFAULT_MAX_MB = 25.0  # a records folder is committed: it must stay small
VERIFICATION_FILE = "verification.json"  # written by `astromorphic records verify` into the records folder
PACKAGES_NOT_RECORDED = "packages not recorded"  # records.csv `packages_other` of a run.json without `packages`
SUMMARY_KEYS = ("final", "best", "attn_ratio_init", "attn_ratio_final", "value_sens_init", "value_sens_final")


class RecordError(ValueError):
    """A record that cannot be trusted or written; the message is one line naming the file."""


def slug(label: str) -> str:
    """A folder name for a configuration label: ``"real data, small"`` -> ``"real-data-small"``."""
    text = re.sub(r"[^a-z0-9]+", "-", str(label).lower()).strip("-")
    return text or "unnamed"


def record_dir(records: str | Path, task: str, model: str, seed: int) -> Path:
    """Where the record of one run lives in a records folder."""
    return Path(records) / "runs" / task / model / f"seed{int(seed)}"


# ------------------------------------------------------------------------------------------ matching


def expected_config_fingerprint(config: dict, task: str, model: str, seed: int) -> str:
    """The configuration fingerprint a run of ``config`` gets when trained: the keys a run name overrides
    (``astro@m_scale=32``, ``astro@position_embedding=none``) laid over ``tasks.<task>``, as ``astromorphic train``
    does."""
    _, overrides = parse_model_name(model)
    if overrides:
        config = with_run_name_overrides(config, task, overrides)
    return config_fingerprint(task, model, seed, resolve_task_config(config, task))


def record_config_fingerprint(record: dict) -> str | None:
    """The configuration fingerprint of a record: the stored one, else computed from the section it holds."""
    stored = record.get("config_fingerprint")
    if stored:
        return str(stored)
    try:
        return config_fingerprint(record["task"], record["model"], int(record["seed"]), record["config"])
    except (KeyError, TypeError, ValueError):
        return None


def metrics_problem(metrics: Path, rows: list[dict] | None = None) -> str | None:
    """Why ``metrics.csv`` is not a table of epochs (empty, a cell that is not a number, epochs not 0, 1, 2, ...)."""
    try:
        rows = read_metrics(metrics) if rows is None else rows
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"{metrics}: not a table of numbers ({' '.join(str(exc).split())})"
    if not rows:
        return f"{metrics}: no epoch rows"
    epochs = [row.get("epoch") for row in rows]
    if epochs != list(range(len(rows))):
        return f"{metrics}: the epoch column is not 0, 1, 2, ... ({epochs[:6]})"
    return None


def record_problem(folder: str | Path, record: dict | None = None) -> str | None:
    """Why the record in ``folder`` cannot be trusted, as one line naming the file; None when it holds together.

    Checked: status final, ``metrics.csv`` present with the sha256 that ``run.json`` holds (``metrics_sha256``),
    epochs 0..n with n the ``epochs_completed`` of the record (and, finished, the configured ``epochs`` or the epoch
    its early stopping ends it), the
    published summary equal to the one computed from the metrics, the stored ``config_fingerprint`` equal to the
    one of its ``config`` section, and task, model and seed those of the folder it sits in."""
    folder = Path(folder)
    run_json, metrics = folder / "run.json", folder / "metrics.csv"
    record = RunDir(folder).read_record() if record is None else record
    if record is None:
        return f"{run_json}: missing or not JSON"
    if record.get("status") not in FINAL_STATUSES:
        return f"{run_json}: status {record.get('status')!r}, not one of {', '.join(FINAL_STATUSES)}"
    if not metrics.is_file():
        return f"{metrics}: missing"
    stored = record.get("metrics_sha256")
    if not stored:
        return f"{run_json}: no metrics_sha256 (the checksum of metrics.csv); write it with `astromorphic records export`"
    if aio.sha256_file(metrics) != stored:
        return f"{metrics}: its sha256 is not the metrics_sha256 of run.json (edited or damaged)"
    try:
        rows = read_metrics(metrics)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"{metrics}: not a table of numbers ({' '.join(str(exc).split())})"
    problem = metrics_problem(metrics, rows)
    if problem:
        return problem
    last = rows[-1]["epoch"]
    if record.get("epochs_completed") != last:
        return f"{run_json}: epochs_completed {record.get('epochs_completed')} but metrics.csv ends at epoch {last}"
    if record["status"] == "finished" and "epochs" in record:
        patience = ((record.get("config") or {}).get("train") or {}).get("early_stopping")
        try:
            stop = early_stop_epoch(record["task"], rows, patience)
        except (KeyError, ValueError) as exc:
            return f"{run_json}: cannot apply its early stopping to its metrics ({exc})"
        if (stop if stop is not None else record["epochs"]) != last:
            return f"{run_json}: finished after {last} of its {record['epochs']} epochs" + (
                f", but early stopping ends it after epoch {stop}" if stop is not None else "")
    try:
        summary = json_safe(summarise(record["task"], rows, record.get("probe_init") or []))
    except (KeyError, TypeError, ValueError) as exc:
        return f"{run_json}: cannot summarise its metrics ({exc})"
    wrong = [key for key in SUMMARY_KEYS if key in summary and not same_value(summary[key], record.get(key))]
    if wrong:
        return f"{run_json}: its summary ({', '.join(wrong)}) disagrees with metrics.csv"
    if "config_fingerprint" in record:  # without one, the workflow matches the fingerprint of the section itself
        try:
            own = config_fingerprint(record["task"], record["model"], int(record["seed"]), record["config"])
        except (KeyError, TypeError, ValueError):
            own = None
        if own is None or own != record.get("config_fingerprint"):
            return f"{run_json}: config_fingerprint is not the one of its config section (edited)"
    where = (folder.parent.parent.name, folder.parent.name, folder.name)
    if where != (record.get("task"), record.get("model"), f"seed{record.get('seed')}"):
        return f"{run_json}: a record of {record.get('task')}/{record.get('model')}/seed{record.get('seed')} in {folder}"
    return None


def same_value(a, b) -> bool:
    """Equal as JSON values, NaN equal to NaN ("nan" in run.json)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@dataclass(frozen=True)
class Decision:
    """Whether a run of the configuration comes from a record (``record`` set) or is trained (``record`` None)."""

    task: str
    model: str
    seed: int
    record: Path | None
    reason: str
    code_current: bool | None = None


def match_record(records: str | Path, config: dict, run: tuple[str, str, int], code: str,
                 strict: bool = False) -> Decision:
    """The decision for one run (task, model, seed) given the records folder and the current code hash."""
    task, model, seed = run
    folder = record_dir(records, task, model, seed)
    record = RunDir(folder).read_record()
    if record is None or not (folder / "metrics.csv").is_file():
        return Decision(task, model, seed, None, "no record")
    if record.get("status") not in FINAL_STATUSES:
        return Decision(task, model, seed, None, f"record not complete (status {record.get('status')})")
    problem = record_problem(folder, record)
    if problem:
        return Decision(task, model, seed, None, f"record refused: {problem}")
    if record_config_fingerprint(record) != expected_config_fingerprint(config, task, model, seed):
        return Decision(task, model, seed, None, "record of another configuration")
    current = record.get("code_hash") == code
    if strict and not current:
        return Decision(task, model, seed, None, "record made by other code (records_strict)", False)
    return Decision(task, model, seed, folder, "record" if current else "record made by other code", current)


def plan_runs(config: dict, runs: Iterable[tuple[str, str, int]], codes: dict[str, str] | None = None
              ) -> dict[tuple[str, str, int], Decision]:
    """One :class:`Decision` per run; without ``records`` in the configuration every run is trained."""
    records = config.get("records")
    codes = dict(codes or {})
    out = {}
    for task, model, seed in runs:
        key = (task, model, int(seed))
        if not records:
            out[key] = Decision(task, model, int(seed), None, "no records folder configured")
            continue
        if task not in codes:
            codes[task] = code_hash(task)
        out[key] = match_record(records, config, key, codes[task], bool(config.get("records_strict")))
    return out


def plan_summary(plan: dict[tuple[str, str, int], Decision], records: str | None) -> str:
    """One line: how many runs come from records (how many of those by other code), how many train."""
    used = [d for d in plan.values() if d.record is not None]
    other = sum(1 for d in used if d.code_current is False)
    refused = [f"{d.reason}; its run trains" for d in plan.values() if d.reason.startswith("record refused")]
    return "\n".join([*refused, f"records: {len(used)} of {len(plan)} runs from {records} ({other} made by other "
                                 f"code); {len(plan) - len(used)} to train"])


# ------------------------------------------------------------------------------------------ provenance table


def records_table(run_dirs: Iterable[str | Path], records: str | Path | None,
                  verification: str | Path | None = None, pins: dict[str, Pin] | None = None) -> pd.DataFrame:
    """One row per aggregated run: where it came from (``record`` or ``trained``), its status, whether the
    code that made it is the current code (``code_current``) and, for a record that ``records verify`` retrained
    with the current code, the outcome (``verified``: ``identical`` or ``different``; empty otherwise; a record
    re-derived by earlier code only: ``verified_earlier``, the outcome with the commit and date) as the
    given ``verification`` file (``<records>/verification.json``) says; none given, no record is verified. Given
    the lock's ``pins``, also ``packages_other``: the packages of its ``run.json`` at other versions than the
    lock's (``"pandas 2.2.3 (locked 2.3.1); ..."``, empty when all match, ``packages not recorded`` when it has
    none)."""
    root = Path(records).resolve() if records else None
    codes: dict[str, str] = {}
    verified = verification_outcomes(verification) if verification else {}
    rows = []
    for path in map(Path, run_dirs):
        record = RunDir(path).read_record() or {}
        task = record.get("task", "")
        from_record = root is not None and path.resolve().is_relative_to(root)
        if task and task not in codes:
            codes[task] = code_hash(task)
        key = (task, record.get("model", ""), record.get("seed"))
        outcome = verified.get(key)
        rows.append({
            "task": task, "model": record.get("model", ""), "seed": record.get("seed"),
            "source": "record" if from_record else "trained", "status": record.get("status", "unknown"),
            "code_current": bool(task) and record.get("code_hash") == codes[task],
            "code_version": record.get("code_version", ""),
            "verified": outcome[0] if from_record and outcome and outcome[1] == codes.get(task) else "",
            "verified_earlier": f"{outcome[0]} ({outcome[2]})" if from_record and outcome
            and outcome[1] != codes.get(task) else "",
        })  # fmt: skip
        if pins is not None:
            packages = record.get("packages")
            rows[-1]["packages_other"] = ("; ".join(version_differences(packages, pins)) if isinstance(packages, dict)
                                          else PACKAGES_NOT_RECORDED)
    columns = ["task", "model", "seed", "source", "status", "code_current", "code_version", "verified",
               "verified_earlier"]
    return pd.DataFrame(rows, columns=columns + (["packages_other"] if pins is not None else []))


def read_checks(path: str | Path) -> list[dict]:
    """The checks of a verification file, oldest first (a file of one check, as written before checks were kept,
    is that check); empty when there is none."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return list(data["checks"]) if isinstance(data, dict) and "checks" in data else [data]


def verification_outcomes(path: str | Path) -> dict[tuple[str, str, int], tuple[str, str, str]]:
    """(task, model, seed) -> (``identical`` or ``different``, the code hash that re-derived it, when and by which
    commit: ``"commit abc1234, 2026-12-06"``), from the checks of a verification file
    (``<records>/verification.json``), the latest check of a record winning; empty when the file is not readable."""
    try:
        return {(r["task"], r["model"], int(r["seed"])): ("identical" if r["identical"] else "different",
                                                          check["code_hash"][r["task"]], _check_name(check))
                for check in read_checks(path) for r in check["runs"]}  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return {}


def _check_name(check: dict) -> str:
    commit = str(check.get("git_commit") or "unknown commit")
    when = str(check.get("date") or "")[:10]
    return ", ".join(part for part in (f"commit {commit[:7]}" + ("-dirty" if commit.endswith("-dirty") else ""),
                                       when) if part)


def verification_sentence(table: pd.DataFrame) -> str | None:
    """``"K of N records re-derived with this code: identical"`` (or how many differ) from a records table; for
    records re-derived by earlier code only, when and by which commit (``"K of N records re-derived by earlier
    code (commit abc1234, 2026-12-06): identical"``); None when no record was re-derived."""
    if "verified" not in table.columns:
        return None
    used = table[table["source"] == "record"]
    done = used[used["verified"].fillna("").astype(str) != ""]
    if done.empty:
        earlier = used.get("verified_earlier", pd.Series(dtype=str)).fillna("").astype(str)
        earlier = earlier[earlier != ""]
        if earlier.empty:
            return None
        groups = earlier.str.extract(r"^(\w+) \((.*)\)$").groupby(1)[0]
        parts = [f"{len(outcomes)} by {name}: " + ("identical" if (outcomes == "identical").all()
                                                     else f"{(outcomes == 'identical').sum()} identical")
                 for name, outcomes in groups]
        return f"{len(earlier)} of {len(used)} records re-derived by earlier code ({'; '.join(parts)})"
    different = done[done["verified"] != "identical"]
    head = f"{len(done)} of {len(used)} records re-derived with this code"
    if different.empty:
        return f"{head}: identical"
    names = ", ".join(f"{r.task}/{r.model}/seed{r.seed}" for r in different.itertuples())
    return f"{head}: {len(done) - len(different)} identical, {len(different)} different ({names})"


# ------------------------------------------------------------------------------------------ export


@dataclass(frozen=True)
class ExportResult:
    exported: int
    skipped: list[str]
    total_bytes: int


def sealed_record(run: Path) -> dict:
    """The record of a finished run with the sha256 of its metrics.csv (``metrics_sha256``) added, after checking
    that it holds together (:func:`record_problem`); :class:`RecordError` naming the file otherwise. A record that
    already holds a checksum keeps it, so an edited metrics.csv is not sealed."""
    record = RunDir(run).read_record()
    if record is None:
        raise RecordError(f"{run / 'run.json'}: missing or not JSON")
    if record.get("status") in FINAL_STATUSES and (run / "metrics.csv").is_file() and not record.get("metrics_sha256"):
        record["metrics_sha256"] = aio.sha256_file(run / "metrics.csv")
    problem = record_problem(run, record)
    if problem:
        raise RecordError(problem)
    return record


def export_records(runs_root: str | Path, out: str | Path) -> ExportResult:
    """Copy run.json and metrics.csv of every complete run under ``runs_root`` to ``<out>/runs/...`` (atomically),
    run.json with the checksum of metrics.csv (:func:`sealed_record`); runs still going, and runs whose record does
    not hold together, are skipped with the reason. Returns the counts and the size of the records folder."""
    exported, skipped = 0, []
    for run in find_run_dirs([runs_root]):
        record = RunDir(run).read_record() or {}
        if record.get("status") not in FINAL_STATUSES or not (run / "metrics.csv").is_file():
            skipped.append(f"{run} (status {record.get('status')})")
            continue
        try:
            record = sealed_record(run)
        except RecordError as exc:
            skipped.append(f"{run} ({exc})")
            continue
        dest = record_dir(out, record["task"], record["model"], int(record["seed"]))
        aio.write_bytes(dest / "metrics.csv", (run / "metrics.csv").read_bytes())
        aio.write_json(dest / "run.json", record)
        exported += 1
    return ExportResult(exported, skipped, folder_size(out))


def folder_size(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
