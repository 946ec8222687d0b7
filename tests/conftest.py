"""Fixtures shared by several test files."""

from __future__ import annotations

import pytest

from _dag import _copy_workflow, snakemake


@pytest.fixture(scope="session")
def dag(tmp_path_factory):
    """The tiny DAG (tests/workflow/tiny.yaml) run once, end to end, in a copy of the workflow; tests that change
    its files put them back."""
    workdir = _copy_workflow(tmp_path_factory.mktemp("dag"))
    proc = snakemake(workdir)
    return workdir, proc
