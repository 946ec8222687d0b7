"""The ``astromorphic records`` command: ``export`` (a finished results/runs tree into a records folder),
``table`` (records.csv: where each aggregated run came from, by which code and packages), ``verify``
(re-derive a sample with the current code, :mod:`astromorphic.runs.verify`), ``size`` (the seeds a campaign
needs, from a pilot's runs: :mod:`astromorphic.findings.sizing`) and ``page`` (a rendered findings page and its
figures into the records folder it was computed from: :mod:`astromorphic.findings.publish`)."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from astromorphic.data import DataError
from astromorphic.findings.publish import PublishError, publish_page
from astromorphic.findings.sizing import default_metric, plan_runs, summary_line
from astromorphic.lock import LOCK_FILE, LockError, read_lock
from astromorphic.runs import RunError
from astromorphic.runs import records
from astromorphic.runs.records import (
    DEFAULT_MAX_MB,
    VERIFICATION_FILE,
    RecordError,
    export_records,
    records_table,
)
from astromorphic.runs.verify import verify_records
from astromorphic.tasks import TASK_NAMES
from astromorphic.tables.aggregate import write_csv



def _export(args: argparse.Namespace) -> int:
    try:
        result = export_records(args.runs, args.out)
    except (OSError, FileNotFoundError) as exc:  # a full or read-only disk, a missing folder: name the file
        return _error(f"{exc.filename}: {exc.strerror}" if getattr(exc, "filename", None) else str(exc))
    for line in result.skipped:
        print(f"skipped {line}")
    size_mb = result.total_bytes / 1e6
    print(f"exported {result.exported} runs to {args.out}/runs; records folder: {size_mb:.2f} MB "
          f"(limit {args.max_mb:g} MB)")
    if result.exported == 0:
        return _error(f"no complete run under {args.runs}")
    if size_mb > args.max_mb:
        return _error(f"{args.out} holds {size_mb:.2f} MB, more than --max-mb {args.max_mb:g}")
    return 0


def _error(message: str) -> int:
    print(f"astromorphic records: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def _table(args: argparse.Namespace) -> int:
    try:
        pins = read_lock(args.lock) if args.lock else None
    except LockError as exc:
        return _error(str(exc))
    table = records_table(args.runs, args.records, args.verification, pins)
    try:
        write_csv(table, args.out)
    except OSError as exc:
        return _error(f"{exc.filename or args.out}: {exc.strerror or exc}")
    n_rec = int((table["source"] == "record").sum())
    n_other = int(((table["source"] == "record") & ~table["code_current"]).sum())
    print(f"records: {n_rec} of {len(table)} runs from records, {n_other} made by other code -> {args.out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    try:
        result = verify_records(args.records, args.sample, seed=args.seed, work=args.work, out=args.out,
                                data_dir=args.data_dir, cover=args.cover, jobs=args.jobs)
    except (RecordError, DataError, RunError, OSError, ValueError) as exc:  # ConfigError is a ValueError
        where = getattr(exc, "filename", None)
        return _error(f"{where}: {exc.strerror}" if where and getattr(exc, "strerror", None) else str(exc))
    for run in result["runs"]:
        outcome = "identical" if run["identical"] else "DIFFERENT: " + "; ".join(run["differences"])
        print(f"{run['task']}/{run['model']}/seed{run['seed']}: {outcome}")
    n_same = sum(r["identical"] for r in result["runs"])
    print(f"{len(result['runs'])} of {result['records']} records re-derived with this code: "
          f"{'identical' if n_same == len(result['runs']) else f'{n_same} identical'} ({result['wall_s']} s) "
          f"-> {result['file']}")
    return 0 if n_same == len(result["runs"]) else 1


def _size(args: argparse.Namespace) -> int:
    tasks = [t for t in args.task.split(",") if t]
    try:
        targets = dict(zip(tasks, map(float, args.half_width.split(","))))
        if len(targets) != len(tasks):
            raise ValueError(f"--half-width gives {len(args.half_width.split(','))} values for {len(tasks)} tasks")
        unknown = [t for t in tasks if t not in TASK_NAMES]
        if unknown:
            raise ValueError(f"--task {','.join(unknown)}: not a task; choose among {', '.join(TASK_NAMES)}")
        frame = plan_runs(args.runs, tasks, targets, args.metric)
    except (ValueError, FileNotFoundError) as exc:
        return _error(str(exc))
    if frame.empty:
        return _error(f"no complete runs of {args.task} under {args.runs}")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3g}".format):
        print(frame.drop(columns=["metric"]).to_string(index=False))
    for task, rows in frame.groupby("task", sort=False):
        print(summary_line(rows, targets[task], args.metric))
    if args.csv:
        write_csv(frame, args.csv)
    return 0


def _page(args: argparse.Namespace) -> int:
    try:
        done = publish_page(args.findings, args.out)
    except (PublishError, OSError) as exc:
        return _error(str(exc))
    print(f"published {', '.join(done.copied)} -> {args.out}"
          + (f"; removed figures the page no longer shows: {', '.join(done.removed)}" if done.removed else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astromorphic records", description=records.__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="copy run.json (with the checksum of metrics.csv) and metrics.csv of "
                                        "finished runs into a records folder")
    exp.add_argument("--runs", default="results/runs", help="a results/runs tree (default: %(default)s)")
    exp.add_argument("--out", required=True, help="the records folder, e.g. results/reference/<label slug>")
    exp.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB, help="fail above this size (%(default)s MB)")
    tab = sub.add_parser("table", help="records.csv: where each aggregated run came from, and by which code")
    tab.add_argument("--runs", nargs="+", required=True, help="the run directories aggregation read")
    tab.add_argument("--records", help="the records folder of the configuration (none: every run was trained)")
    tab.add_argument("--verification", help=f"the records' {VERIFICATION_FILE} (none: no record was re-derived)")
    tab.add_argument("--out", required=True)
    tab.add_argument("--lock", help=f"the lock ({LOCK_FILE}): add `packages_other`, the packages each run was made "
                                    "with at other versions than the lock's")
    ver = sub.add_parser("verify", help="retrain K records chosen by a seed with the current code (same data and "
                                        "configuration) and compare every non-timing number")
    ver.add_argument("--records", required=True, help="the records folder, e.g. results/reference/real-valid")
    ver.add_argument("--sample", type=int, required=True, metavar="K", help="how many records to retrain")
    ver.add_argument("--seed", type=int, default=0, help="chooses the sample (default: %(default)s)")
    ver.add_argument("--work", help="folder for the prepared data and the runs (default: a temporary folder)")
    ver.add_argument("--out", help=f"the result (default: <records>/{VERIFICATION_FILE})")
    ver.add_argument("--cover", action="store_true", help="the sample holds one record of every task, a run "
                                                            "variant (sweep or ablation) and a resumed run first, "
                                                            "then random ones")
    ver.add_argument("--data-dir", help="local copies of the data, one folder per task (the configuration's data_dir)")
    ver.add_argument("--jobs", type=int, default=1, help="runs retrained at a time, each in a process of its own "
                                                         "with its record's threads (default: %(default)s)")
    size = sub.add_parser("size", help="the seeds per preset that make every pair's 95 %% Welch interval no wider "
                                       "than a target, from a pilot's runs (and minutes per run)")
    size.add_argument("--runs", default="results/runs", help="the pilot's runs (default: %(default)s)")
    size.add_argument("--task", required=True, help="tasks, comma-separated, e.g. imdb,cifar10")
    size.add_argument("--half-width", required=True, help="the target half-width per task, comma-separated: "
                                                          "percentage points of accuracy, for a language model "
                                                          "percent of the perplexity ratio, e.g. 1.0,2.5,5")
    size.add_argument("--metric", help="the runs_summary column whose seed spread is used (default: each task's "
                                       "validation metric at its selected epoch, "
                                       f"{', '.join(sorted({default_metric(t) for t in TASK_NAMES}))}: the "
                                       "test split sizes nothing)")
    size.add_argument("--csv", help="also write the plan here")
    page = sub.add_parser("page", help="copy a rendered findings page and exactly the figures it shows into the "
                                       "records folder it was rendered from")
    page.add_argument("--findings", default="results/findings", help="the rendered page's folder "
                                                                      "(default: %(default)s)")
    page.add_argument("--out", required=True, help="the records folder, e.g. results/reference/<label slug>")
    args = parser.parse_args(argv)
    return {"export": _export, "table": _table, "verify": _verify, "size": _size, "page": _page}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
