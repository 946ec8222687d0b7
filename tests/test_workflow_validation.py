"""The DAG end to end on validation-selected runs (the protocol of config/real-valid.yaml at the smallest sizes):
a validation split, early stopping on it, the test accuracy of the epoch it selects, learning curves on it, and
tables and a page that say so, read from the runs, not from the configuration alone."""

from __future__ import annotations

import shutil

import pandas as pd
import yaml

from _dag import planned_jobs, snakemake

CONFIG = {
    "label": "tiny validation test",
    "synthetic": True,
    "seeds": [0, 1],
    "models": ["linearized", "astro"],
    "lm_extra_models": [],
    "report": {"classifier_metric": "best"},
    "tasks": {
        "imdb": {
            "data": {"source": "synthetic", "seq_len": 32, "n_train": 192, "n_test": 64, "vocab_size": 100, "seed": 0,
                     "valid_size": 64},
            "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "ffn_mult": 2, "dropout": 0.1, "max_len": 32},
            "train": {"lr": 3.0e-3, "batch_size": 32, "epochs": 6, "early_stopping": 1, "threshold": 0.5,
                      "curve_every_steps": 2, "curve_samples": 32},
        }
    },
    "bench": {"enabled": False},
    "simulation": {"enabled": False},
}


def test_validation_selected_runs_reach_the_tables_and_the_page(dag, tmp_path):
    workdir = tmp_path / "checkout"
    shutil.copytree(dag[0], workdir, symlinks=True)
    (workdir / "valid.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    proc = snakemake(workdir, "results/findings/findings.md", configfile="valid.yaml")
    jobs = planned_jobs(proc.stdout + proc.stderr)
    assert jobs.get("train") == 4 and jobs.get("prepare") == 1, jobs

    summary = pd.read_csv(workdir / "results" / "tables" / "runs_summary.csv")
    assert (summary["selected_by"] == "valid_acc").all() and summary["best_valid_acc"].notna().all()
    assert set(summary["stopped"]) <= {"early_stopping", "max_epochs"} and (summary["data_valid_size"] == 64).all()
    stopped = int((summary["stopped"] == "early_stopping").sum())
    curves = pd.read_csv(workdir / "results" / "tables" / "learning_curves.csv")
    assert set(curves["metric"]) == {"valid_acc"} and (curves["n_examples"] == 32).all()

    table1 = (workdir / "results" / "tables" / "table1.md").read_text()
    assert "IMDB: test accuracy at the epoch of highest validation accuracy" in table1
    assert f"ended {stopped} of 4 runs before their last epoch" in table1
    assert "validation split: 64 training examples held out of training" in table1
    assert "Language model" not in table1
    page = (workdir / "results" / "findings" / "findings.md").read_text()
    assert "the test accuracy at the epoch of **highest validation accuracy**" in page
    assert "the test split chooses nothing" in page and "chosen on the test set" not in page
    assert "the curves were measured on the validation split" in page
