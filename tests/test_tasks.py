"""The task registry (astromorphic.tasks): every name it holds resolves, and no other module spells a task."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

from astromorphic import tasks
from astromorphic.config import SCHEMA_FILE, TASK_MODELS, Tasks
from astromorphic.data.batches import TASK_DATA

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "astromorphic"
# Where a task may be spelled: the registry, each task's own data module, and a notebook's example parameter.
ALLOWED = {PACKAGE / "tasks.py", ROOT / "workflow" / "notebooks" / "explore_runs.py"} | {
    PACKAGE / (t.data_module.removeprefix("astromorphic.").replace(".", "/") + ".py") for t in tasks.REGISTRY
}


def test_names_are_unique_and_in_canonical_order():
    assert len(set(tasks.TASK_NAMES)) == len(tasks.TASK_NAMES) == len(tasks.REGISTRY)
    assert tasks.TASK_NAMES == ("imdb", "cifar10", "wikitext2")  # the order of every table and figure
    assert tasks.in_order(["wikitext2", "unknown", "imdb"]) == ["imdb", "wikitext2"]
    assert len({t.display_name for t in tasks.REGISTRY}) == len(tasks.REGISTRY)
    assert len(set(tasks.SUPPLEMENTARY_TABLES)) == len(tasks.REGISTRY)
    assert len(set(tasks.FIG4_PANELS.values())) == len(tasks.FIG4_PANELS)


@pytest.mark.parametrize("task", tasks.TASK_NAMES)
def test_every_named_module_and_class_resolves(task):
    record = tasks.get(task)
    assert callable(importlib.import_module(record.data_module).prepare)
    models = importlib.import_module("astromorphic.models")
    assert callable(getattr(models, record.model_class).from_data)
    assert TASK_DATA[task].__name__ == record.task_data
    assert TASK_DATA[task].unit == record.cost_unit  # what a run counts is what its cost counts
    assert TASK_MODELS[task].__name__ == record.config_section
    assert record.metric in ("test_acc", "test_ppl") and record.selection_metric
    assert record.language_model == (task in tasks.LM_TASKS) != (task in tasks.CLASSIFIERS)


def test_every_task_has_a_config_section_and_a_schema_entry():
    assert tuple(Tasks.model_fields) == tasks.TASK_NAMES
    schema = json.loads(Path(SCHEMA_FILE).read_text())
    sections = schema["$defs"]["Tasks"]["properties"]
    assert set(sections) == set(tasks.TASK_NAMES)


def test_an_unknown_task_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="imdb, cifar10, wikitext2"):
        tasks.get("mnist")


def test_the_registry_imports_nothing_from_the_package():
    tree = ast.parse((PACKAGE / "tasks.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m.startswith("astromorphic") for m in imported)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def task_literals(path: Path) -> list[str]:
    """``file:line: 'name'`` for each string constant equal to a task name (docstrings left out)."""
    names = set(tasks.TASK_NAMES)
    if path.suffix == ".smk" or path.name == "Snakefile":  # Snakemake's grammar is not Python's: its quoted strings outside comments
        quoted = re.compile(r"""["'](%s)["']""" % "|".join(map(re.escape, names)))
        return [f"{path}:{i}: {m.group(1)!r}" for i, line in enumerate(path.read_text().splitlines(), 1)
                for m in quoted.finditer(line.split("#", 1)[0])]
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _docstrings(tree)
    return [f"{path}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in skip]


def test_task_literals_are_flagged():
    sample = ROOT / "tests" / "test_tasks.py"  # this file spells them, in code
    assert task_literals(sample)


def test_no_module_spells_a_task_name_outside_the_registry():
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "workflow").rglob("*.py"), *(ROOT / "workflow").rglob("*.smk"),
             ROOT / "Snakefile"]
    found = [hit for path in sorted(files) if path not in ALLOWED for hit in task_literals(path)]
    assert not found, "task names spelled outside astromorphic.tasks:\n" + "\n".join(found)
