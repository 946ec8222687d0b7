"""Which source files make a run and a task's prepared data (astromorphic.runs.identity): the package's import
graph, followed from the training and preparation commands and from the task's data module, so that a module
nobody listed counts as soon as the code that computes a run imports it, and reporting code never counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _fake_runs import write_run
from astromorphic.runs import records
from astromorphic.runs.identity import (
    PACKAGE_DIR,
    code_files,
    code_hash,
    data_code_files,
    data_code_hash,
    data_modules,
    import_graph,
    module_file,
    reachable,
)
from astromorphic.config import resolve_task_config, validate_config

TASKS = ("imdb", "cifar10", "wikitext2")
# Modules that only report runs: tables, figures, the findings page, aggregation.
REPORTING = ("astromorphic.tables", "astromorphic.plotting", "astromorphic.findings", "astromorphic.tables.aggregate")


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_import_graph_reads_every_form_of_import(tmp_path):
    root = tmp_path / "astromorphic"
    _write(root, {
        "__init__.py": "",
        "a.py": "import astromorphic.sub.deep\n",  # the packages above a module are imported too
        "b.py": "from astromorphic.sub import deep, NAME\n",  # a submodule, and a name of sub/__init__
        "sub/__init__.py": "NAME = 1\nfrom . import sibling\n",
        "sub/deep.py": "import os\nfrom ..c import f\nfrom .sibling import g\n",
        "sub/sibling.py": "def g():\n    class K:\n        def m(self):\n            import importlib\n"
                          "            return importlib.import_module('astromorphic.lazy')\n",
        "c.py": "from astromorphic import d as _d\n\ndef f():\n    import astromorphic.e\n",
        "d.py": "", "e.py": "", "lazy.py": "", "other/__init__.py": "",
        "unused.py": "import astromorphic.a\nimport numpy\n",
        "sub/kernel.cpp": "int k;\n", "sub/src/part.cpp": "int p;\n", "other/not_compiled.cpp": "int o;\n",
    })  # fmt: skip
    p = "astromorphic"
    assert import_graph(root) == {
        p: set(), f"{p}.a": {p, f"{p}.sub", f"{p}.sub.deep"}, f"{p}.b": {p, f"{p}.sub", f"{p}.sub.deep"},
        f"{p}.sub": {p, f"{p}.sub.sibling"}, f"{p}.sub.deep": {p, f"{p}.c", f"{p}.sub", f"{p}.sub.sibling"},
        f"{p}.sub.sibling": {p, f"{p}.lazy"}, f"{p}.c": {p, f"{p}.d", f"{p}.e"}, f"{p}.d": set(), f"{p}.e": set(),
        f"{p}.lazy": set(), f"{p}.other": set(), f"{p}.unused": {p, f"{p}.a"},
    }  # fmt: skip
    assert reachable([f"{p}.b"], root) == {p, f"{p}.b", f"{p}.sub", f"{p}.sub.deep", f"{p}.sub.sibling", f"{p}.c",
                                           f"{p}.d", f"{p}.e", f"{p}.lazy"}  # fmt: skip
    assert reachable([f"{p}.sub.deep"], root) >= {p, f"{p}.sub"}  # an entry's packages run first
    assert module_file(f"{p}.sub", root) == root / "sub" / "__init__.py"
    assert module_file(f"{p}.sub.deep", root) == root / "sub" / "deep.py"
    assert module_file(f"{p}.nothing", root) is None and module_file("numpy", root) is None
    with pytest.raises(LookupError, match="astromorphic.gone"):
        reachable([f"{p}.b", f"{p}.gone"], root)


def _import_new_module(root: Path, name: str, importer: str, where: str) -> Path:
    """A new module ``name`` of the package (one constant), imported by the module ``importer`` at module level
    or inside a function; returns the new file."""
    path = root / f"{name}.py"
    path.write_text("SCALE = 1\n")
    file = module_file(importer, root)
    line = f"from astromorphic.{name} import SCALE  # noqa: F401"
    text = f"\n{line}\n" if where == "module" else f"\n\ndef _uses_{name}():\n    {line}\n    return SCALE\n"
    file.write_text(file.read_text() + text)
    return path


def _hashes(root: Path) -> dict[str, tuple[str, str]]:
    return {t: (code_hash(t, root), data_code_hash(t, root)) for t in TASKS}


CONFIG = validate_config({"label": "tiny test", "seeds": [0], "models": ["astro"], "lm_extra_models": []})


def _record(folder: Path, task: str, code: str) -> None:
    """A complete record of ``task``/astro/seed0 of CONFIG, stamped as made by the code ``code``."""
    run = write_run(folder / "runs", task, "astro", 0, epochs=2)
    record = json.loads((run / "run.json").read_text())
    record.update(code_hash=code, config=resolve_task_config(CONFIG, task),
                  config_fingerprint=records.expected_config_fingerprint(CONFIG, task, "astro", 0))
    (run / "run.json").write_text(json.dumps(record))


@pytest.mark.parametrize("where", ["module", "function"])
def test_a_new_module_the_attention_imports_makes_every_run_out_of_date(package_copy, tmp_path, where):
    new = _import_new_module(package_copy, "attention_scale", "astromorphic.attention", where)
    before = _hashes(package_copy)
    assert all(new in code_files(t, package_copy) for t in TASKS)
    new.write_text("SCALE = 2\n")
    after = _hashes(package_copy)
    assert all(after[t][0] != before[t][0] for t in TASKS)
    # The workflow's plan (workflow/rules/common.smk): records made before the edit no longer stand for their
    # runs when the configuration asks for the current code, so the runs train.
    _ = [_record(tmp_path / "records", t, before[t][0]) for t in TASKS]
    config = {**CONFIG, "records": str(tmp_path / "records"), "records_strict": True}
    runs = [(t, "astro", 0) for t in TASKS]
    assert all(d.record is not None for d in records.plan_runs(config, runs, {t: before[t][0] for t in TASKS}).values())
    plan = records.plan_runs(config, runs, {t: after[t][0] for t in TASKS})
    assert [d.reason for d in plan.values()] == ["record made by other code (records_strict)"] * len(TASKS)
    assert records.plan_summary(plan, config["records"]).endswith(f"; {len(TASKS)} to train")


def test_a_new_module_only_reporting_imports_changes_nothing(package_copy):
    before = _hashes(package_copy)
    news = [_import_new_module(package_copy, "table_style", "astromorphic.tables", "module"),
            _import_new_module(package_copy, "curve_style", "astromorphic.plotting.lm_curves", "function")]
    assert _hashes(package_copy) == before
    for path in news:
        path.write_text("SCALE = 2\n")
    assert _hashes(package_copy) == before


def test_a_new_module_of_the_data_code_prepares_again_what_it_reaches(package_copy):
    shared = _import_new_module(package_copy, "data_rounding", "astromorphic.data.common", "module")
    _import_new_module(package_copy, "imdb_cleaning", data_modules()["imdb"], "function")
    added = _hashes(package_copy)
    shared.write_text("SCALE = 2\n")  # used by every task's preparation
    edited = _hashes(package_copy)
    assert all(edited[t][1] != added[t][1] and edited[t][0] != added[t][0] for t in TASKS)
    (package_copy / "imdb_cleaning.py").write_text("SCALE = 2\n")  # imported by the IMDB module only
    imdb = _hashes(package_copy)
    assert imdb["imdb"][1] != edited["imdb"][1] and imdb["imdb"][0] != edited["imdb"][0]
    assert {t: imdb[t] for t in ("cifar10", "wikitext2")} == {t: edited[t] for t in ("cifar10", "wikitext2")}


def _modules(files: list[Path], root: Path = PACKAGE_DIR) -> set[str]:
    names = {".".join(("astromorphic",) + p.relative_to(root).with_suffix("").parts) for p in files}
    return {n.removesuffix(".__init__") for n in names}


def test_the_files_of_each_task_today():
    for task in TASKS:
        files, data = code_files(task), data_code_files(task)
        modules = _modules(files)
        assert {"astromorphic.attention", "astromorphic.models", "astromorphic.training", "astromorphic.kernels",
                "astromorphic.data.batches", data_modules()[task]} <= modules, task
        assert PACKAGE_DIR / "kernels" / "causal_sigmoid.cpp" in files
        assert not {m for m in modules if m.startswith(REPORTING + ("astromorphic.cli",))}, task
        assert not {m for m in modules if m in set(data_modules().values()) - {data_modules()[task]}}, task
        assert {data_modules()[task], "astromorphic.data.common"} <= _modules(data) <= modules, task
        assert not {"astromorphic.models", "astromorphic.training", "astromorphic.data.batches"} & _modules(data)
