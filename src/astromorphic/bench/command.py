"""The ``astromorphic bench`` command: ``attention``, ``throughput`` and ``cost`` (one module each)."""

from __future__ import annotations

import argparse
from typing import Optional

from astromorphic.bench import attention, cost, throughput

SUBCOMMANDS = {"attention": attention, "throughput": throughput, "cost": cost}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="astromorphic bench", description="benchmarks")
    sub = parser.add_subparsers(dest="what", required=True)
    for module in SUBCOMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return SUBCOMMANDS[args.what].run(args)


if __name__ == "__main__":
    raise SystemExit(main())
