"""Command line: ``astromorphic <command> ...`` (also ``python -m astromorphic``).

Each command lives in the module that does the work, as a ``main(argv) -> int`` function; this file only
dispatches, importing lazily so that ``astromorphic --help`` stays fast and one broken optional
dependency does not take every command down.
"""

from __future__ import annotations

import importlib
import sys
from astromorphic import __version__

# command -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "prepare": ("astromorphic.data", "main", "download/read a dataset and write prepared tensors + manifest"),
    "train": ("astromorphic.training", "main", "train one task/model/seed run (resumable)"),
    "simulate": ("astromorphic.neuroglia", "main", "simulate the tripartite synapse (Fig. 3 data)"),
    "bench": ("astromorphic.bench.command", "main",
              "benchmarks: `bench attention` (time, memory against N), `bench throughput`"),
    "aggregate": ("astromorphic.tables.aggregate", "main", "collect run records into one metrics table"),
    "tables": ("astromorphic.tables", "main", "write Table I, learning speed, Table II, S1-S3, controls"),
    "plot": ("astromorphic.plotting", "main", "draw one figure"),
    "records": ("astromorphic.runs.records_command", "main",
                "`records export / table / verify / size / page`: committed run records"),
    "findings": ("astromorphic.findings", "main", "execute the findings notebook into Markdown and HTML"),
}


def _usage() -> str:
    lines = ["usage: astromorphic <command> [options]", "", "commands:"]
    for name, (_, _, text) in COMMANDS.items():
        lines.append(f"  {name:<10} {text}")
    lines.append("")
    lines.append("Run `astromorphic <command> --help` for the options of one command.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"astromorphic: unknown command {name!r}; expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    module = importlib.import_module(module_name)
    result = getattr(module, func_name)(rest)
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
