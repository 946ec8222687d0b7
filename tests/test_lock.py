"""The lock (requirements-lock.txt) agrees with pyproject.toml, and a locked install holds exactly its pins."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from astromorphic import lock

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / lock.LOCK_FILE
RELOCK = "run `make lock` and commit requirements-lock.txt"


@pytest.fixture(scope="module")
def pins() -> dict[str, lock.Pin]:
    return lock.read_lock(LOCK)


def locked_requirements() -> list[Requirement]:
    inputs = lock.lock_inputs(REPO)
    texts = inputs["dependencies"] + [r for extra in inputs["extras"].values() for r in extra] + inputs["constraints"]
    return [Requirement(text) for text in texts]


def test_the_lock_was_compiled_from_the_current_dependencies():
    recorded = lock.recorded_digest(LOCK)
    assert recorded is not None, f"{LOCK.name} has no `{lock.DIGEST_LINE.strip()}` line: {RELOCK}"
    assert recorded == lock.inputs_digest(REPO), (
        f"pyproject.toml's dependencies (or its {'/'.join(lock.LOCKED_EXTRAS)} extras, or {lock.TORCH_PINS}) "
        f"changed since {LOCK.name} was compiled: {RELOCK}")


def test_every_requirement_is_pinned_at_a_version_it_allows(pins):
    problems = []
    for req in locked_requirements():
        pin = pins.get(lock.canonical(req.name))
        if pin is None:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{req} but the lock pins {pin.version}")
    assert not problems, f"{'; '.join(problems)}: {RELOCK}"


def test_every_pin_has_a_sha256_hash(pins):
    unhashed = sorted(name for name, pin in pins.items() if not pin.hashes)
    assert not unhashed, f"pinned without a hash: {', '.join(unhashed)}: {RELOCK}"
    assert all(len(h) == 64 for pin in pins.values() for h in pin.hashes)


def test_the_setups_install_the_lock_and_nothing_else():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "pip install --require-hashes -r $(LOCK)" in makefile
    assert f"LOCK   := {lock.LOCK_FILE}" in makefile
    assert "pip install --no-deps --no-build-isolation -e ." in makefile
    assert all(f"--extra {extra} " in makefile for extra in lock.LOCKED_EXTRAS), "make lock compiles other extras"
    conda = (REPO / "environment.yml").read_text(encoding="utf-8")
    pip_section = [line.strip()[2:] for line in conda.split("- pip:")[1].splitlines() if line.strip().startswith("- ")]
    assert pip_section == ["--require-hashes", f"-r {lock.LOCK_FILE}"], pip_section


def test_a_dependency_edited_without_relocking_is_caught(tmp_path):
    for name in ("pyproject.toml", lock.TORCH_PINS):
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    before = lock.inputs_digest(tmp_path)
    project = tmp_path / "pyproject.toml"
    project.write_text(project.read_text().replace('"pandas>=2.1"', '"pandas>=2.2"'), encoding="utf-8")
    assert lock.inputs_digest(tmp_path) != before
    torch = tmp_path / lock.TORCH_PINS
    project.write_bytes((REPO / "pyproject.toml").read_bytes())
    torch.write_text(torch.read_text().replace("torch==", "torch>="), encoding="utf-8")
    assert lock.inputs_digest(tmp_path) != before


def test_a_broken_lock_is_refused_naming_the_file_and_the_fix(tmp_path):
    path = tmp_path / lock.LOCK_FILE
    with pytest.raises(lock.LockError, match=f"{lock.LOCK_FILE}.*make lock"):
        lock.read_lock(path)
    path.write_text("# nothing pinned\n", encoding="utf-8")
    with pytest.raises(lock.LockError, match="no `name==version` pins.*make lock"):
        lock.read_lock(path)


def test_a_run_made_with_other_versions_is_named_against_the_lock():
    pins = {"pandas": lock.Pin("2.3.1", ("0" * 64,)), "pyyaml": lock.Pin("6.0.2", ("0" * 64,))}
    packages = {"python": "3.11.7", "astromorphic": "0.1.0", "pandas": "2.2.3", "PyYAML": "6.0.2"}
    assert lock.version_differences(packages, pins) == ["pandas 2.2.3 (locked 2.3.1)"]
    assert lock.version_differences({**packages, "pandas": "2.3.1"}, pins) == []


# `make setup` copies the lock into the environment it installs; elsewhere (an environment set up by hand) there
# is no promise to check. CI's `make test` installs from the lock in a fresh clone, so there the check runs.
INSTALLED_LOCK = Path(sys.prefix) / "installed-lock.txt"


@pytest.mark.skipif(not INSTALLED_LOCK.is_file(),
                    reason=f"not a locked install ({INSTALLED_LOCK} missing): `make setup` creates one")
def test_the_installed_environment_holds_exactly_the_locked_versions(pins):
    different = []
    for name, pin in sorted(pins.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pin.version:
            different.append(f"{name} {installed} (locked {pin.version})")
    assert not different, f"{sys.prefix} differs from {LOCK.name}: {', '.join(different)}; run `make setup`"

