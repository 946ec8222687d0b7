"""Fixtures shared by several test files."""

from __future__ import annotations

import shutil

import pytest

from _dag import IGNORE, _copy_workflow, snakemake
from astromorphic.runs.identity import PACKAGE_DIR


@pytest.fixture(scope="session")
def dag(tmp_path_factory):
    """The tiny DAG (tests/workflow/tiny.yaml) run once, end to end, in a copy of the workflow; tests that change
    its files put them back."""
    workdir = _copy_workflow(tmp_path_factory.mktemp("dag"))
    proc = snakemake(workdir)
    return workdir, proc


@pytest.fixture
def package_copy(tmp_path):
    """A copy of the package's sources (the ``root`` of astromorphic.runs.identity), to be edited by a test."""
    dest = tmp_path / "astromorphic"
    shutil.copytree(PACKAGE_DIR, dest, ignore=IGNORE)
    return dest
