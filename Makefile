# Two entry points (see README.md and docs/reproduction.md):
#   make reproduce   set up the environment, then run the default reproduction DAG
#   make test        set up the environment, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= 2
CONFIG ?= config/config.yaml

.PHONY: setup reproduce test test-fast test-slurm report clean lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements-torch.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements-torch.txt
	$(BIN)/python -m pip install -e '.[workflow,test]'
	touch $@

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
