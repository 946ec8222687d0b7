"""Which source files determine a run or a task's prepared data, and their identity: :func:`code_hash` (a run
trained by other code is out of date) and :func:`data_code_hash` (prepared data made by other code are out of
date), over what the files say as programs (:func:`source_identity`: a Python file's syntax tree without
docstrings, a C++ file without comments), so that reformatting changes nothing.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# Source files (relative to the package) that determine a run's numbers, plus the data module of its task
# (astromorphic.data.TASKS) and the source files of the kernel folders. Tables, figures and aggregation only report runs.
CODE_FILES = (
    "models.py", "presets.py", "training.py", "runs.py", "evaluation.py", "data/batches.py",
    "config.py", "config_tasks.py", "config_types.py", "epoch.py", "run_state.py", "code_identity.py",
)  # fmt: skip
CODE_FOLDERS = ("attention", "kernels")
# The code that prepares a task's data (with the task's module, astromorphic.data.TASKS): the workflow's prepare
# job follows its hash (:func:`data_code_hash`), so that a change prepares the data again.
DATA_CODE_FILES = ("data/__init__.py", "data/common.py", "data/synthetic.py")
SOURCE_SUFFIXES = (".py", ".c", ".cc", ".cpp", ".h", ".hpp", ".cu", ".cuh")


def _data_imports(path: Path, root: Path) -> set[Path]:
    """The modules of the data package that the Python file ``path`` imports (``from astromorphic.data import
    x``, ``from astromorphic.data.x import ...``, at any depth of the file), as files under ``root``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "astromorphic.data":
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("astromorphic.data."):
            names.add(node.module.split(".")[2])
    return {root / "data" / f"{name}.py" for name in names if (root / "data" / f"{name}.py").is_file()}


def data_module_files(task: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The module that prepares ``task``'s data (:data:`astromorphic.data.TASKS`) and the modules of the data
    package it imports, directly or through each other: a module split out of a task's data module still counts
    as that task's code. The data code every task shares (:data:`DATA_CODE_FILES`) is not followed: it counts
    for the data (:func:`data_code_files`), and through them for the runs."""
    from astromorphic.data import TASKS as DATA_MODULES  # task -> the module that prepares its data

    root = Path(root) if root is not None else PACKAGE_DIR
    todo = [root / (DATA_MODULES[task].removeprefix("astromorphic.").replace(".", "/") + ".py")]
    shared = {root / name for name in DATA_CODE_FILES}
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += sorted(_data_imports(path, root) - seen - shared)
    return sorted(seen, key=lambda p: p.as_posix())


def code_files(task: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The source files of the package (or of a copy of it at ``root``) that determine a run of ``task``."""
    root = Path(root) if root is not None else PACKAGE_DIR
    files = [root / name for name in CODE_FILES] + data_module_files(task, root)
    for folder in CODE_FOLDERS:
        if (root / folder).is_dir():
            files += [p for p in (root / folder).rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()]
    return sorted(set(files), key=lambda p: p.relative_to(root).as_posix())


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


def _hash_files(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        data = source_identity(path)
        digest.update(f"{path.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def code_hash(task: str, root: str | os.PathLike | None = None) -> str:
    """sha256 over the names and :func:`source_identity` of :func:`code_files`: a run trained by other code
    is out of date; a reformatted one is not."""
    root = Path(root) if root is not None else PACKAGE_DIR
    return _hash_files(code_files(task, root), root)


def data_code_files(task: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The source files that prepare ``task``'s data: :data:`DATA_CODE_FILES` and the task's data module."""
    root = Path(root) if root is not None else PACKAGE_DIR
    files = {root / name for name in DATA_CODE_FILES} | set(data_module_files(task, root))
    return sorted(files, key=lambda p: p.as_posix())


def data_code_hash(task: str, root: str | os.PathLike | None = None) -> str:
    """Like :func:`code_hash`, over :func:`data_code_files`: prepared data made by other code are out of date."""
    root = Path(root) if root is not None else PACKAGE_DIR
    return _hash_files(data_code_files(task, root), root)
