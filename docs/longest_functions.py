"""Print the longest functions (and methods) under a source folder, longest first.

    python docs/longest_functions.py [src] [--top 10] [--over 80]

A size check of the library for reviewers, not a test: a function over about 80 lines says in its
docstring why it is not split.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def functions(root: Path) -> list[tuple[int, str]]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((node.end_lineno - node.lineno + 1, f"{path}:{node.lineno} {node.name}"))
    return sorted(out, key=lambda item: (-item[0], item[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="src")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--over", type=int, default=80, help="also count the functions longer than this")
    args = parser.parse_args()
    found = functions(Path(args.root))
    for lines, where in found[: args.top]:
        print(f"{lines:5d}  {where}")
    print(f"{sum(1 for n, _ in found if n > args.over)} of {len(found)} functions are over {args.over} lines")


if __name__ == "__main__":
    main()
