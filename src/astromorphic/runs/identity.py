"""Which source files determine a run or a task's prepared data, and their identity: :func:`code_hash` (a run
trained by other code is out of date) and :func:`data_code_hash` (prepared data made by other code are out of
date), over what the files say as programs (:func:`source_identity`: a Python file's syntax tree without
docstrings, a C++ file without comments), so that reformatting changes nothing.

Which files count is read from the sources, not kept by hand: the modules the command's entry module and the
task's data module import, directly or through each other (:func:`import_graph`, :func:`reachable`), so that
a new module the training code imports counts from its first line.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Iterable
from astromorphic.tasks import REGISTRY

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the package: this file is in its runs/ folder
PACKAGE = "astromorphic"  # the name the sources import the package by, wherever a copy of it lies
# Source files: a Python module counts when it is imported, the others (the kernels' C++, compiled on first use)
# with the package whose folder holds them.
SOURCE_SUFFIXES = (".py", ".c", ".cc", ".cpp", ".h", ".hpp", ".cu", ".cuh")


# ------------------------------------------------------------------------------------------ the import graph


def module_file(name: str, root: str | os.PathLike | None = None) -> Path | None:
    """The file of the package module ``name`` (``astromorphic.data.imdb``) under ``root`` (default the
    installed package): ``a/b.py`` or ``a/b/__init__.py``; None when the package holds no such module."""
    root = Path(root) if root is not None else PACKAGE_DIR
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    path = root.joinpath(*name.split(".")[1:])
    for candidate in (path.with_name(path.name + ".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join((PACKAGE,) + (parts[:-1] if parts[-1] == "__init__" else parts))


def _with_parents(name: str, root: Path) -> set[str]:
    """``name`` and the packages above it, those that are modules of the package: importing ``a.b.c`` runs
    ``a/__init__`` and ``a/b/__init__`` first."""
    parts = name.split(".")
    return {m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if module_file(m, root)}


@functools.lru_cache(maxsize=1024)
def _import_statements(source: bytes, package: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The imports a Python source makes, at any depth (functions and classes too), as (module, names):
    ``import a.b`` is ("a.b", ()), ``from a import b, c`` ("a", ("b", "c")) with relative imports resolved from
    ``package``, ``importlib.import_module("a.b")`` with a constant name ("a.b", ()). Cached by the source's
    text: every workflow start reads the graph several times."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()  # counted by its bytes (source_identity); it cannot run, so it imports nothing
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                above = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(above + ([node.module] if node.module else []))
            found.append((base, tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) \
                and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module":  # fmt: skip
            found.append((node.args[0].value, ()))
    return tuple(found)


def _package_of(path: Path, root: Path) -> tuple[str, str]:
    name = _module_name(path, root)
    return name, name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imports(path: Path, root: Path) -> set[str]:
    """The package modules under ``root`` that run when the Python file ``path`` runs its imports
    (:func:`_import_statements`): each module named, with the packages above it (``from a import b`` runs
    ``a`` and, when b is a module, ``a.b``). A name built at run time (cli.py's dispatch, a task's data module)
    cannot be followed: :func:`code_files` names those entries itself."""
    name, package = _package_of(path, root)
    found = set()
    for module, names in _import_statements(path.read_bytes(), package):
        for imported in [module, *(f"{module}.{n}" for n in names)]:
            found |= _with_parents(imported, root)
    return found - {name}


def _named_imports(path: Path, root: Path) -> set[str]:
    """The package modules the Python file ``path`` names in its imports, as written: ``from a import b`` is
    ``a.b`` when that is a module, else ``a``; ``import a.b`` is ``a.b``; the packages Python runs first are
    not added."""
    name, package = _package_of(path, root)
    found = set()
    for module, names in _import_statements(path.read_bytes(), package):
        for imported in [f"{module}.{n}" for n in names] or [module]:
            found.add(imported if module_file(imported, root) else module)
    return {m for m in found if module_file(m, root)} - {name}


def import_graph(root: str | os.PathLike | None = None, *, parents: bool = True) -> dict[str, set[str]]:
    """Every module of the package under ``root`` (default the installed package) -> the package modules it
    imports (:func:`_imports`), read from the sources without running them. ``parents=False``: the modules as
    its imports name them (:func:`_named_imports`), without the packages Python runs first: the graph in which
    an import circle is a design fault (a package's ``__init__`` importing its own modules is none)."""
    root = Path(root) if root is not None else PACKAGE_DIR
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    edges = _imports if parents else _named_imports
    return {_module_name(p, root): edges(p, root) for p in files if module_file(_module_name(p, root), root) == p}


def reachable(entries: Iterable[str], root: str | os.PathLike | None = None) -> set[str]:
    """The modules ``entries`` (module names) import, directly or through each other, with the entries and
    the packages above them: every module of the package that can run when they are imported."""
    root = Path(root) if root is not None else PACKAGE_DIR
    entries = list(entries)
    missing = [e for e in entries if module_file(e, root) is None]
    if missing:  # a renamed entry would otherwise leave its code out of every hash
        raise LookupError(f"no module {', '.join(missing)} under {root}")
    todo = [m for e in entries for m in sorted(_with_parents(e, root))]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)  # only the modules reached are parsed: the hash is computed at every workflow start
            todo += sorted(_imports(module_file(name, root), root) - seen)
    return seen


def _package_sources(packages: set[str], root: Path) -> set[Path]:
    """The non-Python sources (:data:`SOURCE_SUFFIXES`) of the folders of ``packages``, sub-folders that are
    no package of their own included: what those packages compile or load (the kernels' C++)."""
    files = set()
    for package in packages:
        folder = module_file(package, root).parent
        for path in folder.rglob("*"):
            if path.suffix in SOURCE_SUFFIXES and path.suffix != ".py" and path.is_file():
                owner = next(p for p in path.parents if (p / "__init__.py").is_file() or p == root)
                if owner == folder:
                    files.add(path)
    return files


# ------------------------------------------------------------------------------------------ the code of a run


def data_modules() -> dict[str, str]:
    """task -> the module that prepares its data: imported by name at run time, so no import names it."""
    return {task.name: task.data_module for task in REGISTRY}


def _entry(command: str, root: Path) -> str:
    """The module that ``astromorphic <command>`` runs: cli.py's dispatch table, read without importing it
    (an import would make the dispatcher part of every run's code)."""
    for node in ast.parse(module_file(f"{PACKAGE}.cli", root).read_bytes()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(getattr(t, "id", None) == "COMMANDS" for t in targets):
            return ast.literal_eval(node.value)[command][0]
    raise LookupError(f"no COMMANDS table in {PACKAGE}.cli under {root}")


def module_files(entries: Iterable[str], root: str | os.PathLike | None = None) -> list[Path]:
    """The source files that run when the modules ``entries`` are imported (:func:`reachable`), with the
    non-Python sources of the packages among them, in a fixed order: a run's code (:func:`code_files`), and
    the code inputs of the workflow's rules."""
    root = Path(root) if root is not None else PACKAGE_DIR
    modules = reachable(entries, root)
    packages = {m for m in modules if module_file(m, root).name == "__init__.py"}
    files = {module_file(m, root) for m in modules} | _package_sources(packages, root)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def code_files(task: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The source files of the package (or of a copy of it at ``root``) that determine a run of ``task``:
    what the training command imports, directly or through each other, and what the task's data module
    imports, with the non-Python sources of the packages among them."""
    root = Path(root) if root is not None else PACKAGE_DIR
    return module_files([_entry("train", root), data_modules()[task]], root)


_C_TOKENS = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/', re.S)


def source_identity(path: Path) -> bytes:
    """What counts of one source file: a Python file's syntax tree without docstrings (comments and layout are
    not in it), a C/C++/CUDA file's text without comments, with whitespace only where it separates two words;
    other files by their bytes. A file Python cannot parse counts by its bytes."""
    data = path.read_bytes()
    if path.suffix == ".py":
        try:
            tree = ast.parse(data, filename=str(path))
        except (SyntaxError, ValueError):
            return data
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                        and isinstance(body[0].value.value, str):  # fmt: skip
                    node.body = body[1:] or [ast.Pass()]
        return ast.dump(tree, annotate_fields=True, include_attributes=False).encode()
    if path.suffix in SOURCE_SUFFIXES:
        text = data.decode("utf-8", "replace")
        text = _C_TOKENS.sub(lambda m: " " if m[0].startswith("/") else m[0], text)  # comments out, strings kept
        text = re.sub(r"\s+", " ", text)
        text = re.sub(r" ?([^\w ]) ?", r"\1", text).strip()  # no space beside punctuation
        return text.encode()
    return data


@functools.lru_cache(maxsize=1024)
def _cached_identity(path: Path, data: bytes) -> bytes:
    return source_identity(path)  # keyed by the file's bytes as well: an edited file is read afresh


def _hash_files(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        data = _cached_identity(path, path.read_bytes())
        digest.update(f"{path.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def code_hash(task: str, root: str | os.PathLike | None = None) -> str:
    """sha256 over the names and :func:`source_identity` of :func:`code_files`: a run trained by other code
    is out of date; a reformatted one is not."""
    root = Path(root) if root is not None else PACKAGE_DIR
    return _hash_files(code_files(task, root), root)


def modules_hash(entries: Iterable[str], root: str | os.PathLike | None = None) -> str:
    """Like :func:`code_hash`, over :func:`module_files` of ``entries``: the identity of the code a command runs
    (the workflow's reporting rules follow it, so that a comment or a reformatting reruns nothing)."""
    root = Path(root) if root is not None else PACKAGE_DIR
    return _hash_files(module_files(entries, root), root)


def data_code_files(task: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The source files that prepare ``task``'s data: what the prepare command and the task's data module
    import, directly or through each other."""
    root = Path(root) if root is not None else PACKAGE_DIR
    return module_files([_entry("prepare", root), data_modules()[task]], root)


def data_code_hash(task: str, root: str | os.PathLike | None = None) -> str:
    """Like :func:`code_hash`, over :func:`data_code_files`: prepared data made by other code are out of date."""
    root = Path(root) if root is not None else PACKAGE_DIR
    return _hash_files(data_code_files(task, root), root)
