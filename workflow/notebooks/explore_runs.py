# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exploring the runs
#
# Not part of the workflow: a notebook to look at the results of a finished run of it
# (`jupytext --to notebook workflow/notebooks/explore_runs.py`, then open it in Jupyter from the repository
# root). The figures of the paper are drawn by `astromorphic plot` (src/astromorphic/plotting/).

# %%
from pathlib import Path

import pandas as pd

RESULTS = Path("results")
tidy = pd.read_csv(RESULTS / "tables" / "runs.csv")
summary = pd.read_csv(RESULTS / "tables" / "runs_summary.csv")
summary[["task", "model", "seed", "status", "epochs"]].head()

# %% [markdown]
# Final metrics per task and preset, mean and sample sd over seeds.

# %%
metrics = [c for c in ("final_test_acc", "test_ppl_at_best_valid", "attn_ratio_final") if c in summary]
summary[summary["model"] == summary["preset"]].groupby(["task", "model"])[metrics].agg(["mean", "std"])

# %% [markdown]
# One learning curve per seed (the figures show mean ± sd bands).

# %%
import matplotlib.pyplot as plt

task = "imdb"
fig, ax = plt.subplots()
for (model, seed), curve in tidy[tidy["task"] == task].groupby(["model", "seed"]):
    ax.plot(curve["epoch"], curve["test_acc"], label=f"{model} s{seed}", lw=0.8)
ax.set_xlabel("epoch")
ax.set_ylabel("test accuracy")
ax.legend(fontsize=6, ncol=2)

# %% [markdown]
# Where each epoch's time went (wall-clock; differs between runs).

# %%
timing = pd.read_csv(RESULTS / "timing" / "epochs.csv")
timing.groupby(["task", "model"])["time_epoch_s"].median().unstack(0)
