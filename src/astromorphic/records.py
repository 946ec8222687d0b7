"""Committed run records: results rendered without training, ``astromorphic records``.

A records folder (e.g. ``results/reference/real-small/``, named by the configuration's ``records`` key) holds,
for the runs of one configuration, only what aggregation reads:

    <records>/runs/<task>/<model>/seed<k>/run.json
    <records>/runs/<task>/<model>/seed<k>/metrics.csv

(no checkpoints, logs or data). ``astromorphic records export`` writes it from a finished ``results/runs`` tree.

The workflow asks :func:`plan_runs` which run of the configuration a record stands for. A record is used,
instead of training the run, when it is complete (status ``finished`` or ``diverged``, metrics present) and its
configuration fingerprint (:func:`astromorphic.runs.config_fingerprint`: task, model, seed and the run section of
the configuration; the data and the code are not part of it) equals the one the configuration gives. A record
made by other code (its ``code_hash`` differs from the current code's) is still used, and counted as such in
``records.csv`` (:func:`records_table`), which the findings page reports; with ``records_strict: true`` the
workflow retrains those runs instead.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from astromorphic.config import resolve_task_config, with_run_name_overrides
from astromorphic.runs import FINAL_STATUSES, RunDir, code_hash, config_fingerprint, parse_model_name

RECORD_FILES = ("run.json", "metrics.csv")
DEFAULT_MAX_MB = 25.0  # a records folder is committed: it must stay small


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
    return (f"records: {len(used)} of {len(plan)} runs from {records} ({other} made by other code); "
            f"{len(plan) - len(used)} to train")


# ------------------------------------------------------------------------------------------ provenance table


def records_table(run_dirs: Iterable[str | Path], records: str | Path | None) -> pd.DataFrame:
    """One row per aggregated run: where it came from (``record`` or ``trained``), its status and whether the
    code that made it is the current code (``code_current``)."""
    root = Path(records).resolve() if records else None
    codes: dict[str, str] = {}
    rows = []
    for path in map(Path, run_dirs):
        record = RunDir(path).read_record() or {}
        task = record.get("task", "")
        from_record = root is not None and path.resolve().is_relative_to(root)
        if task and task not in codes:
            codes[task] = code_hash(task)
        rows.append({
            "task": task, "model": record.get("model", ""), "seed": record.get("seed"),
            "source": "record" if from_record else "trained", "status": record.get("status", "unknown"),
            "code_current": bool(task) and record.get("code_hash") == codes[task],
            "code_version": record.get("code_version", ""),
        })  # fmt: skip
    columns = ["task", "model", "seed", "source", "status", "code_current", "code_version"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------------ export


@dataclass(frozen=True)
class ExportResult:
    exported: int
    skipped: list[str]
    total_bytes: int


def export_records(runs_root: str | Path, out: str | Path) -> ExportResult:
    """Copy run.json and metrics.csv of every complete run under ``runs_root`` to ``<out>/runs/...``; runs
    still going are skipped. Returns the counts and the size of the whole records folder afterwards."""
    from astromorphic.aggregate import find_run_dirs

    exported, skipped = 0, []
    for run in find_run_dirs([runs_root]):
        record = RunDir(run).read_record() or {}
        if record.get("status") not in FINAL_STATUSES or not (run / "metrics.csv").is_file():
            skipped.append(f"{run} (status {record.get('status')})")
            continue
        dest = record_dir(out, record["task"], record["model"], int(record["seed"]))
        dest.mkdir(parents=True, exist_ok=True)
        for name in RECORD_FILES:
            shutil.copyfile(run / name, dest / name)
        exported += 1
    return ExportResult(exported, skipped, folder_size(out))


def folder_size(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------ command line


def _export(args: argparse.Namespace) -> int:
    result = export_records(args.runs, args.out)
    for line in result.skipped:
        print(f"skipped {line}")
    size_mb = result.total_bytes / 1e6
    print(f"exported {result.exported} runs to {args.out}/runs; records folder: {size_mb:.2f} MB "
          f"(limit {args.max_mb:g} MB)")
    if result.exported == 0:
        print(f"error: no complete run under {args.runs}", file=sys.stderr)
        return 1
    if size_mb > args.max_mb:
        print(f"error: {args.out} holds {size_mb:.2f} MB, more than --max-mb {args.max_mb:g}", file=sys.stderr)
        return 1
    return 0


def _table(args: argparse.Namespace) -> int:
    from astromorphic.aggregate import write_csv

    table = records_table(args.runs, args.records)
    write_csv(table, args.out)
    n_rec = int((table["source"] == "record").sum())
    n_other = int(((table["source"] == "record") & ~table["code_current"]).sum())
    print(f"records: {n_rec} of {len(table)} runs from records, {n_other} made by other code -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astromorphic records", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="copy run.json and metrics.csv of finished runs into a records folder")
    exp.add_argument("--runs", default="results/runs", help="a results/runs tree (default: %(default)s)")
    exp.add_argument("--out", required=True, help="the records folder, e.g. results/reference/<label slug>")
    exp.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB, help="fail above this size (%(default)s MB)")
    tab = sub.add_parser("table", help="records.csv: where each aggregated run came from, and by which code")
    tab.add_argument("--runs", nargs="+", required=True, help="the run directories aggregation read")
    tab.add_argument("--records", help="the records folder of the configuration (none: every run was trained)")
    tab.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return _export(args) if args.command == "export" else _table(args)


if __name__ == "__main__":
    raise SystemExit(main())
