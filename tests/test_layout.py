"""The shape of the house: no import circles (imports inside functions counted), every module importable on its
own, an import inside a function only where it defers a heavy or optional dependency (and says so), no private
name imported from another module, and no source file over 600 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from astromorphic.runs.identity import PACKAGE_DIR, import_graph

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 600
DEFERRED = "# deferred:"  # the comment, on the line above, of an import inside a function


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_finds_circles():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_among_the_package_modules():
    graph = import_graph(parents=False)  # imports inside functions included
    assert len(graph) > 50 and graph["astromorphic.training"]
    assert _circles(graph) == []


def test_every_module_imports_on_its_own():
    """In one fresh interpreter, each module imported with no other module of the package loaded before it: an
    import that only works after some other import (a circle through a package's __init__) fails here."""
    names = sorted(m for m in import_graph() if not m.endswith("__main__"))
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'astromorphic' or m.startswith('astromorphic.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        print(f'{name}: {type(exc).__name__}: {exc}')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr[-2000:]


def _python_sources() -> list[Path]:
    files = list(PACKAGE_DIR.rglob("*.py")) + list((REPO / "workflow").rglob("*.py"))
    return sorted(p for p in files if "__pycache__" not in p.parts)


def _imports_in_functions(tree: ast.Module):
    def walk(node, inside):
        for child in ast.iter_child_nodes(node):
            if inside and isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            yield from walk(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    yield from walk(tree, False)


def test_an_import_inside_a_function_says_what_it_defers():
    """Imports of the package's own modules sit at the top of a module, unless they defer a heavy or optional
    dependency (torch, Triton, ...) or an import order, which the comment above them names."""
    unexplained = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in _imports_in_functions(ast.parse("\n".join(lines))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if not any(n.startswith("astromorphic") for n in names) and not getattr(node, "level", 0):
                continue
            row = node.lineno - 2  # the line above, past the imports of the same block
            while lines[row].strip().startswith(("from ", "import ")):
                row -= 1
            if not lines[row].strip().startswith(DEFERRED):
                unexplained.append(f"{path.relative_to(PACKAGE_DIR)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert unexplained == []


def test_no_private_name_is_imported_from_another_module():
    found = []
    for path in _python_sources():
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.ImportFrom) and ((node.module or "").startswith("astromorphic") or node.level):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {', '.join(private)}")
    assert found == []


def test_no_source_file_is_over_600_lines():
    roots = [PACKAGE_DIR, REPO / "tests", REPO / "workflow"]
    files = [p for root in roots for p in root.rglob("*") if p.suffix in (".py", ".smk", ".cpp")]
    files.append(REPO / "Snakefile")
    long = {str(p.relative_to(REPO)): n for p in files if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
