# Two entry points (see README.md and docs/reproduction.md):
#   make reproduce   set up the environment, then run the default reproduction DAG
#   make test        set up the environment, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= 2
CONFIG ?= config/config.yaml

LOCK   := requirements-lock.txt
UV_VERSION := 0.13.9

.PHONY: setup lock reproduce test test-fast test-slurm report clean lint

setup: $(VENV)/.installed

# Exactly the lock (pip checks every file against its hashes), then the project itself without dependencies,
# built with the locked setuptools. The copy of the lock marks the environment as a locked install
# (tests/test_lock.py then checks that the installed versions are the pins).
$(VENV)/.installed: $(LOCK) pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(None if sys.version_info[:2] == (3, 11) else "$(LOCK) is for Python 3.11, " \
		f"$(PYTHON) is {sys.version.split()[0]}: run make with PYTHON=python3.11 (docs/reproduction.md)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	cp $(LOCK) $(VENV)/installed-lock.txt
	touch $@

# Re-lock after editing pyproject.toml's dependencies or requirements-torch.txt (docs/reproduction.md). Existing
# pins are kept where they still satisfy the requirements; `make lock UPGRADE=--upgrade` moves every pin to the
# newest release. uv runs from a throw-away environment and resolves against PyPI alone, for Python 3.11 on
# Linux x86_64.
lock:
	tool=$$(mktemp -d) && $(PYTHON) -m venv $$tool && $$tool/bin/python -m pip install -q uv==$(UV_VERSION) && \
	$$tool/bin/uv pip compile pyproject.toml --extra workflow --extra test --constraint requirements-torch.txt \
		--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--index-url https://pypi.org/simple --no-config --custom-compile-command "make lock" \
		--output-file $(LOCK) $(UPGRADE); status=$$?; rm -rf $$tool; exit $$status
	PYTHONPATH=src $(PYTHON) -m astromorphic.lock stamp $(LOCK)

reproduce: setup
	$(BIN)/snakemake --profile profiles/default --configfile $(CONFIG) --cores $(CORES)
	$(BIN)/snakemake --profile profiles/default --configfile $(CONFIG) --report results/report.html

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# Installs slurm-wlm and munge if missing and runs the DAG on a throw-away SLURM cluster on this host
# (root on Debian; `make test` runs it too when CI is set). See docs/cluster.md.
test-slurm: setup
	ASTRO_SLURM_TEST=1 $(BIN)/python -m pytest tests/test_slurm.py -v -rs

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

clean:
	rm -rf results/data results/runs results/tables results/simulation results/bench figures/*.png figures/*.pdf .snakemake
