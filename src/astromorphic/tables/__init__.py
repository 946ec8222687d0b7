"""The paper's tables, regenerated from runs and configuration: ``astromorphic tables``.

Each table is written as CSV (machine-readable numbers), Markdown, LaTeX and HTML (for the report), all three
rendered by the libraries from the one ``Table.display`` frame (Markdown by tabulate through
``DataFrame.to_markdown``, LaTeX by ``Styler.to_latex``, HTML by ``DataFrame.to_html``), with a caption
that says which configuration and which data it comes from, so that a table made from synthetic stand-in data
can never be mistaken for a reproduction of the paper's numbers.

* ``table1``         Table I: test accuracy / perplexity, mean ± sample sd over seeds, next to the paper's values.
* ``learning_speed`` optimiser steps (from the runs' learning curves; epochs for records without one) until
                     accuracy first reaches the threshold, and the speed-ups (slow - fast) / slow as the paper
                     computes them; the LM's steps (epochs) to its best validation perplexity
                     (``astromorphic.tables.speed``).
* ``table2``         Table II: which equations each preset uses, from the model registry.
* ``tableS1..S3``    the hyper-parameters of IMDB, CIFAR-10 and WikiText-2, from the configuration that ran.
* ``controls``       what the attention adds: each preset against the ``no-attention`` control.
* ``sweep``          the sweep of attention constants, when the configuration has one.

Every float is printed with a fixed number of digits, so that the same runs give the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import yaml

from astromorphic import tasks as task_registry
from astromorphic.tables.aggregate import TASK_ORDER, run_name_order
from astromorphic.run_names import format_value, parse_model_name
from astromorphic.tables.context import (
    ABLATION,
    ALL_TABLES,
    CONTROL,
    DASH,
    GATE_CONTROL,
    PROBES,
    S_TABLES,
    DIAGNOSTICS,
    TASK_NAMES,
    Context,
    Table,
    classifier_selection,
    display_name,
    fmt,
    fmt_mean_sd,
    fmt_p,
    fmt_paper,
    mean_sd,
)
from astromorphic.tables.writers import write_table
from astromorphic.tasks import CLASSIFIERS
from astromorphic.config import resolve_task_config, seeds_for
from astromorphic.tables import speed

# ------------------------------------------------------------------------------------------ Table I


def run_metric(row: pd.Series, task: str, metric: str, report: dict) -> float:
    """The one number Table I takes from a run (see the ``report`` section of the configuration)."""
    if metric == "test_acc":
        key = "best_test_acc" if report.get("classifier_metric") == "best" else "final_test_acc"
        return 100.0 * float(row.get(key, math.nan))
    if report.get("lm_metric", "best_valid") == "best_valid":
        key = f"best_{metric}"  # the run's best epoch is the one of lowest validation perplexity
    else:
        key = f"final_{metric}"
    value = float(row.get(key, math.nan))
    if not math.isfinite(value) and row.get("status") == "diverged":
        value = float(row.get(f"best_{metric}", math.nan))
    return value


def _diverged(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "diverged"] if "status" in runs.columns else runs.iloc[:0]


def _ours_cell(values: list[float], runs: pd.DataFrame, digits: int = 2) -> tuple[str, float, float, int, str]:
    """Display text, mean, sd, n and note for one row: diverged seeds are named, not silently dropped."""
    div = _diverged(runs)
    ok = runs["status"] != "diverged"
    kept = [v for v, k in zip(values, ok) if k]
    mean, sd, n = mean_sd(kept)
    note = ""
    if len(div):
        epochs = ", ".join(fmt(e, 0) for e in div["diverged_epoch"])
        note = f"diverged in {len(div)}/{len(runs)} seeds (epoch {epochs})"
        if n == 0:
            before = mean_sd([v for v, k in zip(values, ok) if not k])
            text = f"diverged ({len(div)}/{len(runs)} seeds)"
            if before[2]:
                text += f"; before: {fmt_mean_sd(*before, digits)}"
            return text, math.nan, math.nan, 0, note
        return f"{fmt_mean_sd(mean, sd, n, digits)} ({len(div)}/{len(runs)} diverged)", mean, sd, n, note
    return fmt_mean_sd(mean, sd, n, digits), mean, sd, n, note


def _causality_cell(runs: pd.DataFrame) -> tuple[str, bool | None]:
    """'max Δ …, prefix …: pass|FAIL' over the seeds of one LM row, from the runs' causality audits."""
    if "causality_max_change" not in runs.columns or runs["causality_max_change"].isna().all():
        return "not audited", None
    worst = float(runs["causality_max_change"].max())
    passed = bool(runs["causality_passed"].fillna(False).all()) if "causality_passed" in runs.columns else False
    text = f"max Δ {worst:.1e}"
    if "prefix_max_change" in runs.columns and runs["prefix_max_change"].notna().any():
        text += f", prefix {float(runs['prefix_max_change'].max()):.1e}"
        passed = passed and bool(runs["prefix_passed"].fillna(False).astype(bool).all())
    return f"{text}: {'pass' if passed else 'FAIL'}", passed


def table1(ctx: Context) -> Table:
    report = ctx.config.get("report") or {}
    rows, data = [], []
    for task in ctx.tasks():
        lm = task_registry.get(task).language_model
        tokenizer = ctx.tokenizer(task)
        tokens = "GPT-2 tokens" if tokenizer.lower() == "gpt2" else f"{tokenizer} tokens"
        if lm and ctx.per_word_is_per_token(task):
            metrics = [("test_ppl", f"test perplexity (per token = per word: {tokens})", "ppl")]
        elif lm:
            metrics = [("test_ppl", f"test perplexity per token ({tokens})", "ppl"),
                       ("test_word_ppl", "test perplexity per word", "ppl")]
        else:
            metrics = [("test_acc", "test accuracy (%)", "%")]
        for model in ctx.models(task) + ctx.ablations(task):
            runs = ctx.runs(task, model)
            causal_text, causal = _causality_cell(runs) if lm else (DASH, None)
            for metric, metric_label, unit in metrics:
                values = [run_metric(r, task, metric, report) for _, r in runs.iterrows()]
                text, mean, sd, n, note = _ours_cell(values, runs)
                paper = ctx.paper("table1", task, model, "test_ppl" if metric == "test_ppl" else metric)
                if metric == "test_word_ppl":
                    paper = None  # the paper reports GPT-2-token perplexity only
                p_value = float(paper["value"]) if paper is not None and not pd.isna(paper["value"]) else math.nan
                p_sd = float(paper["sd"]) if paper is not None and not pd.isna(paper["sd"]) else math.nan
                comparable = not (lm and "gpt" not in tokenizer.lower())
                diff = mean - p_value if comparable else math.nan
                diff_text = fmt(diff) if comparable else ("not comparable (tokenization)" if paper is not None else DASH)
                if diff_text != DASH and math.isfinite(diff) and diff > 0:
                    diff_text = "+" + diff_text
                if paper is not None and isinstance(paper.get("note"), str) and paper["note"]:
                    note = "; ".join(x for x in (note, f"paper: {paper['note']}") if x)
                rows.append([TASK_NAMES[task], display_name(model), metric_label, text, str(len(runs)),
                             fmt_paper(p_value, p_sd), diff_text, causal_text, note])
                data.append(dict(task=task, model=model, metric=metric, unit=unit,
                                 tokenization=tokenizer if lm else "", kind="run", n_seeds=len(runs),
                                 n_diverged=len(_diverged(runs)), mean=mean, sd=sd, paper_value=p_value,
                                 paper_sd=p_sd, difference=diff, causal=causal,
                                 diagnostic=model in DIAGNOSTICS, note=note))
        ref = ctx.reference
        for _, cite in ref[(ref["table"] == "table1") & (ref["task"] == task) & (ref["kind"] == "citation")].iterrows():
            label = f"test perplexity per word ({cite['tokenization']})" if lm else "test accuracy (%)"
            rows.append([TASK_NAMES[task], cite["model"], label, DASH, DASH,
                         fmt_paper(cite["value"], cite["sd"]), DASH, DASH, cite["note"]])
            data.append(dict(task=task, model=cite["model"], metric=cite["metric"], unit=cite["unit"],
                             tokenization=cite["tokenization"], kind="citation", n_seeds=0, n_diverged=0,
                             mean=math.nan, sd=math.nan, paper_value=float(cite["value"]),
                             paper_sd=float(cite["sd"]) if not pd.isna(cite["sd"]) else math.nan,
                             difference=math.nan, causal=None, diagnostic=False, note=cite["note"]))
    header = ["Task", "Model", "Metric", "Ours (mean ± sd)", "Seeds", "Paper", "Ours − paper", "Causal (LM audit)",
              "Note"]
    lm = "at the epoch of lowest validation perplexity" if report.get("lm_metric", "best_valid") == "best_valid" else "final epoch"
    classifier_metric = report.get("classifier_metric", "final")
    notes = [
        *[f"{TASK_NAMES[task]}: {classifier_selection(ctx.summary, task, classifier_metric).replace('**', '')}."
          for task in ctx.tasks() if task in CLASSIFIERS],
        *([f"Language model: test perplexity {lm}."] if any(t not in CLASSIFIERS for t in ctx.tasks()) else []),
        *[ctx.data_line(task) for task in ctx.tasks()],
        "Causal (LM audit): largest change of the logits at position t when the tokens after t change (max Δ), "
        "and when the window is cut after t (prefix), over all seeds; 'pass' when both stay within the tolerance. "
        "Rows marked 'diagnostic' are not causal by design and are no result.",
        "Perplexity per token uses the tokenization named in the row; perplexity per word is exp(total NLL / number "
        "of words) and is the only one comparable with word-level literature rows.",
        "Rows marked 'citation, not run' are the paper's literature rows, copied for reference.",
        "Diverged seeds are named in the row; a mean over the remaining seeds is given when there are any.",
    ]
    return Table("table1", "Table I", "Test accuracy and perplexity of every preset, mean ± sample sd over seeds, "
                 "next to the paper's values.", pd.DataFrame(rows, columns=header), pd.DataFrame(data), notes)


# ------------------------------------------------------------------------------------------ Table II


def table2(ctx: Context) -> Table:
    """From the registry (astromorphic.presets.table2_rows): which mechanism each preset computes."""
    # deferred: the preset registry imports torch; only Table II needs it
    from astromorphic.presets import MECHANISMS, table2_rows

    rows, data = [], []
    for row in table2_rows():
        tasks = ", ".join(TASK_NAMES.get(t.strip(), t.strip()) for t in str(row["tasks"]).split(","))
        marks = ["yes" if row[key] else "no" for key, _, _ in MECHANISMS]
        rows.append([row["preset"], *marks, row["equations"] or DASH, tasks, row["description"]])
        data.append({**row, "tasks": tasks})
    header = ["Preset", *[f"{label} ({', '.join(eqs)})" if eqs else label for _, label, eqs in MECHANISMS],
              "Equations", "Tasks", "Description"]
    notes = ["Generated from astromorphic.presets, the registry the models are built from; a mechanism is marked "
             "'yes' when the preset's attention computes it."]
    return Table("table2", "Table II", "Which mechanisms of the astromorphic attention each preset uses, and the "
                 "paper's equations behind them.", pd.DataFrame(rows, columns=header), pd.DataFrame(data), notes)


# ------------------------------------------------------------------------------------------ Tables S1-S3

# Hyper-parameters shown in S1-S3 beyond the paper's: our documented defaults (SPEC section 3).
# What the prepared data were (from the run records): rows of S1-S3 beside the configuration keys.
DATA_KEYS = {t.name: t.data_keys for t in task_registry.REGISTRY}
EXTRA_KEYS = (
    "model.ffn_mult", "model.dropout", "attention.tau", "attention.position", "train.weight_decay",
    "train.schedule", "train.warmup_epochs", "train.grad_clip", "train.augment", "train.max_train_batches",
    "train.device", "train.dtype",
)
KEY_LABELS = {
    "data_used.embedding": "token embedding", "data_used.tokenizer": "tokenizer",
    "model.n_layers": "layers", "model.n_heads": "heads", "model.d_model": "width D", "model.patch": "patch size",
    "model.max_len": "sequence length (patches)", "data.seq_len": "sequence length (tokens)",
    "attention.alpha": "alpha (presynaptic plasticity)", "attention.m_scale_factor": "m scale (× D)",
    "train.lr": "learning rate", "train.batch_size": "batch size", "train.epochs": "epochs",
    "model.ffn_mult": "FFN width (× D)", "model.dropout": "dropout", "attention.tau": "tau of P = exp(-|i-j|/tau)",
    "attention.position": "relative-position form", "train.weight_decay": "AdamW weight decay",
    "train.schedule": "learning-rate schedule", "train.warmup_epochs": "warm-up epochs",
    "train.grad_clip": "gradient clipping", "train.augment": "augmentation",
    "train.max_train_batches": "batches per epoch (cap)", "train.device": "device", "train.dtype": "dtype",
    "data.source": "data source",
}


def _lookup(cfg: dict, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _fmt_config_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):  # a group of switches (augmentation): the ones that are on
        on = sorted((k, v) for k, v in value.items() if v not in (None, False, 0))
        return ", ".join(f"{k}={_fmt_config_value(v)}" for k, v in on) or "none"
    if isinstance(value, list):
        return ", ".join(_fmt_config_value(v) for v in value)
    return str(value)


def _same(ours: Any, paper: str) -> bool:
    try:
        return math.isclose(float(ours), float(paper), rel_tol=1e-9)
    except (TypeError, ValueError):
        return str(ours) == paper


def table_s(ctx: Context, name: str) -> Table:
    task = S_TABLES[name]
    cfg = ctx.task_config(task)
    ref = ctx.reference[(ctx.reference["table"] == name)]
    rows, data = [], []
    keys = list(dict.fromkeys([*ref["metric"], "data.source", *DATA_KEYS.get(task, ()), *EXTRA_KEYS]))
    for key in keys:
        if key == "train.augment" and "augment" not in cfg["train"]:  # a key of the tasks that augment only
            continue
        ours = ctx.data_facts(task).get(key.split(".", 1)[1]) if key.startswith("data_used.") else _lookup(cfg, key)
        if key == "data_used.tokenizer" and ours is not None:
            ours = ctx.tokenizer(task)
        paper_rows = ref[ref["metric"] == key]
        paper = str(paper_rows.iloc[0]["value"]) if len(paper_rows) else None
        same = DASH if paper is None else ("yes" if _same(ours, paper) else "no")
        rows.append([KEY_LABELS.get(key, key), key, _fmt_config_value(ours),
                     paper if paper is not None else "not in the paper", same])
        data.append(dict(task=task, key=key, value=_fmt_config_value(ours), paper_value=paper or "", same=same))

    seeds = seeds_for(ctx.config, task)
    rows.append(["seeds", "seeds", _fmt_config_value(seeds), "not in the paper", DASH])
    data.append(dict(task=task, key="seeds", value=_fmt_config_value(seeds), paper_value="", same=DASH))
    header = ["Hyper-parameter", "Config key", "This configuration", "Paper", "Same"]
    notes = ["Values are the configuration the runs used (after defaults), not typed by hand.",
             "Optimiser AdamW, cross-entropy loss, trained from scratch (paper Sec. IV)."]
    return Table(name, f"Table {name[5:]}", f"Hyper-parameters of {TASK_NAMES[task]}.",
                 pd.DataFrame(rows, columns=header), pd.DataFrame(data), notes)


# ------------------------------------------------------------------------------------------ controls


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided Welch t-test p-value; NaN when either group has fewer than 2 values or both have no spread."""
    a = [x for x in a if math.isfinite(x)]
    b = [x for x in b if math.isfinite(x)]
    if len(a) < 2 or len(b) < 2 or (np.std(a) == 0 and np.std(b) == 0):
        return math.nan
    from scipy import stats

    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _paired(ctx: Context, task: str, model: str, reference: str, metric: str) -> tuple[str, float, float, int, float]:
    """Per-seed difference of ``model``'s Table I metric to ``reference``'s (same seeds): text, mean, sd, n, Welch p."""
    report = ctx.config.get("report") or {}
    ref = {int(r["seed"]): run_metric(r, task, metric, report) for _, r in ctx.runs(task, reference).iterrows()}
    values = {int(r["seed"]): run_metric(r, task, metric, report) for _, r in ctx.runs(task, model).iterrows()}
    if not ref:
        return f"no {reference} run", math.nan, math.nan, 0, math.nan
    paired = [values[s] - ref[s] for s in sorted(values) if s in ref]
    mean, sd, n = mean_sd(paired)
    text = fmt_mean_sd(mean, sd, n)
    if text.startswith(tuple("0123456789")) and mean > 0:
        text = "+" + text
    return text, mean, sd, n, welch_p(list(values.values()), list(ref.values()))


def controls(ctx: Context) -> Table:
    rows, data = [], []
    for task in ctx.tasks():
        metric, unit = task_registry.get(task).metric, task_registry.get(task).metric_unit
        has_gate = len(ctx.runs(task, GATE_CONTROL)) > 0
        for model in ctx.models(task):
            if model == CONTROL:
                continue
            runs = ctx.runs(task, model)
            text, d_mean, d_sd, d_n, p = _paired(ctx, task, model, CONTROL, metric)
            g_text, g_mean, g_sd, g_n, g_p = (_paired(ctx, task, model, GATE_CONTROL, metric)
                                              if has_gate and model != GATE_CONTROL else (DASH,) + (math.nan,) * 4)
            probes = {name: mean_sd(runs.get(name, pd.Series(dtype=float))) for name in PROBES}
            rows.append([TASK_NAMES[task], display_name(model), unit, text, fmt_p(p), g_text,
                         *[fmt_mean_sd(*probes[name], 3 if name.startswith("attn") else 4) for name in PROBES]])
            data.append(dict(task=task, model=model, metric=metric, diff_mean=d_mean, diff_sd=d_sd, n_pairs=d_n,
                             welch_p=p, gate_diff_mean=g_mean, gate_diff_sd=g_sd, gate_n_pairs=g_n, gate_welch_p=g_p,
                             **{f"{name}_{stat}": probes[name][i] for name in PROBES
                                for i, stat in enumerate(("mean", "sd"))}))  # fmt: skip
    header = ["Task", "Model", "Metric", "Difference to no-attention (mean ± sd)", "Welch p",
              "Difference to astro-gate-only", "Attention ratio at init", "Attention ratio at end",
              "Value sensitivity at init", "Value sensitivity at end"]
    notes = [
        "Difference: per seed, the preset's Table I metric minus that of the control with the same seed; accuracy "
        "in percentage points (higher is better), perplexity per token (lower is better).",
        "Welch p: two-sided Welch t-test between the two groups of seeds (n/a with fewer than 2 seeds each).",
        "Attention ratio: ||attention term|| / ||residual input||, averaged over layers, on a fixed probe batch.",
        "Value sensitivity: ||out(V) − out(V = 0)|| / ||out(V)|| of the attention term, averaged over layers: 1 for "
        "attention that reads the values only, 0 for astro-gate-only, near 0 when the sigmoid's argument is near 0 "
        "(the paper's m), where the astromorphic term is a per-token gate that hardly depends on V.",
        "astro-gate-only is the astromorphic block with the value path cut (sigmoid argument 0: H = 0.5; g and the "
        "feedback kept): a difference to it near 0 says that the gate, not attention over values, does the work.",
    ]
    return Table("controls", "What the attention adds",
                 "Each preset against the no-attention control (same block without the attention term) and the "
                 "astro-gate-only control (no value path).",
                 pd.DataFrame(rows, columns=header), pd.DataFrame(data), notes)


# ------------------------------------------------------------------------------------------ sweep


def sweep_default(config: dict, task: str, key: str) -> float | None:
    """The value of attention key ``key`` that the preset's plain run of ``task`` used (m_scale, when unset,
    resolves to m_scale_factor * d_model); None where the task is not configured."""
    if task not in (config.get("tasks") or {}):
        return None
    cfg = resolve_task_config(config, task)
    attention = cfg["attention"]
    if key == "m_scale" and attention.get("m_scale") is None:
        return float(attention["m_scale_factor"] * cfg["model"]["d_model"])
    return attention.get(key)


def sweep(ctx: Context) -> Table:
    report = ctx.config.get("report") or {}
    s = ctx.summary
    swept = s[(s["model"] != s["preset"]) & ~s["model"].str.endswith(ABLATION)] if not s.empty else s
    rows, data = [], []
    for task in [t for t in TASK_ORDER if not swept.empty and t in set(swept["task"])]:
        metric = task_registry.get(task).metric
        sub = swept[swept["task"] == task]
        for model in sorted(set(sub["model"]), key=run_name_order):  # swept values in numeric order
            runs = sub[sub["model"] == model].sort_values("seed")
            preset, overrides = parse_model_name(model)
            ((key, number),) = overrides.items()  # a sweep changes one key
            value = format_value(number)
            base = sweep_default(ctx.config, task, key)
            values = [run_metric(r, task, metric, report) for _, r in runs.iterrows()]
            text, mean, sd, n, note = _ours_cell(values, runs)
            r_mean, r_sd, r_n = mean_sd(runs["attn_ratio_final"]) if "attn_ratio_final" in runs else (math.nan,) * 2 + (0,)
            rows.append([TASK_NAMES[task], preset, key, value, _fmt_config_value(base), text,
                         fmt_mean_sd(r_mean, r_sd, r_n, 3), note])
            data.append(dict(task=task, preset=preset, key=key, value=value, base_value=base,
                             metric=metric, mean=mean, sd=sd, n=n, attn_ratio_final_mean=r_mean,
                             attn_ratio_final_sd=r_sd, note=note))
    header = ["Task", "Preset", "Swept key", "Value", "Default value", "Metric (mean ± sd)", "Attention ratio at end",
              "Note"]
    notes = ["One key of tasks.<task>.attention changed at a time; the other keys keep the configuration's values. "
             "The run with the default value is the preset's row of Table I; m_scale's default, where the "
             "configuration leaves it unset, is m_scale_factor × d_model."]
    return Table("sweep", "Sweep of attention constants", "Test accuracy (%) or test perplexity per token against "
                 "one attention constant at a time.", pd.DataFrame(rows, columns=header), pd.DataFrame(data), notes)


def learning_speed(ctx: Context) -> Table:
    """The learning-speed table (astromorphic.tables.speed, built on this module's Table and Context)."""
    return speed.learning_speed(ctx)


def speedups(ctx: Context) -> Table:
    return speed.speedups(ctx)


BUILDERS: dict[str, Callable[..., Table]] = {
    "table1": table1,
    "learning_speed": learning_speed,
    "speedups": speedups,
    "table2": table2,
    "controls": controls,
    "sweep": sweep,
    **{name: (lambda ctx, _n=name: table_s(ctx, _n)) for name in S_TABLES},
}


def available_tables(config: dict) -> list[str]:
    """The tables a configuration produces (S tables only for the tasks it runs; the sweep only when it has one)."""
    tasks = set((config.get("tasks") or {}).keys())
    known = task_registry.in_order(tasks)
    out = []
    for name in ALL_TABLES:
        if name in S_TABLES and S_TABLES[name] not in tasks:
            continue
        if name in ("learning_speed", "speedups") and not known:
            continue
        if name == "speedups" and not any(task_registry.get(t).speedup_pairs for t in known):
            continue
        if name == "sweep" and not has_sweep(config):
            continue
        out.append(name)
    return out


def has_sweep(config: dict) -> bool:
    sweep = config.get("sweep") or {}
    return bool(sweep.get("tasks")) and bool(sweep.get("grid"))


# ------------------------------------------------------------------------------------------ command line


def load_context(config_path: str | Path, summary: str | Path | None, tidy: str | Path | None,
                 reference: str | Path | None, manifests: Iterable[str | Path] = (),
                 curves: str | Path | None = None) -> Context:
    """The context of one aggregation, read from the given files only. The data provenance comes from the runs'
    records (the summary); ``manifests`` (manifest.json files, each naming its task) are read as given, never
    looked up beside the other files, so that data prepared for another configuration cannot decide it."""
    with open(config_path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    summary_df = pd.read_csv(summary) if summary else pd.DataFrame()
    tidy_df = pd.read_csv(tidy) if tidy else pd.DataFrame()
    ref = pd.read_csv(reference, dtype={"value": str}) if reference else pd.DataFrame(
        columns=["table", "task", "model", "metric", "value", "sd", "unit", "tokenization", "kind", "source", "note"])
    ref["note"] = ref["note"].fillna("")
    by_task = {}
    for path in manifests:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
        by_task[manifest["task"]] = manifest
    curves_df = pd.read_csv(curves) if curves else pd.DataFrame()
    return Context(config, summary_df, tidy_df, ref, by_task, curves_df)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astromorphic tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the configuration the runs used (YAML)")
    parser.add_argument("--summary", help="per-run summary CSV from `astromorphic aggregate`")
    parser.add_argument("--runs", help="tidy per-epoch CSV from `astromorphic aggregate`")
    parser.add_argument("--curves", help="step-resolution learning curves CSV from `astromorphic aggregate`")
    parser.add_argument("--reference", help="the paper's values (results/reference/paper_values.csv)")
    parser.add_argument("--manifests", nargs="*", default=[], metavar="MANIFEST",
                        help="manifest.json of data prepared for these runs (results/data/<task>/manifest.json)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--table", action="append", choices=ALL_TABLES,
                        help="build only this table (repeatable); default: every table the configuration has")
    args = parser.parse_args(argv)

    ctx = load_context(args.config, args.summary, args.runs, args.reference, args.manifests, args.curves)
    names = args.table or available_tables(ctx.config)
    needs_runs = {"table1", "learning_speed", "speedups", "controls", "sweep"}
    if needs_runs & set(names) and (ctx.summary.empty or ctx.tidy.empty):
        parser.error(f"tables {', '.join(sorted(needs_runs & set(names)))} need --summary and --runs")
    for name in names:
        table = BUILDERS[name](ctx)
        write_table(table, args.out_dir, ctx.provenance, ctx.synthetic)
        print(f"tables: {name} ({len(table.display)} rows) -> {Path(args.out_dir) / name}.{{csv,md,tex,html}}")
    return 0
