"""The tables a findings page reads, and what the page says about where they came from."""

from __future__ import annotations

import html
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from astromorphic.findings.stats import ALPHA, LEVEL, POWER, Group, num
from astromorphic.tasks import CLASSIFIERS, DISPLAY_NAMES, LM_TASKS
from astromorphic import tasks as task_registry
from astromorphic.lock import LOCK_FILE
from astromorphic.tables import run_metric
from astromorphic.tables.speed import PAPER_THRESHOLD
from astromorphic.tables.context import classifier_selection
from astromorphic.config import ReportConfig
from astromorphic.runs.records import verification_sentence

LM = LM_TASKS[0]  # the paper's one language-modelling task, which its claims name
TASK_NAMES = DISPLAY_NAMES
TABLE1_MODELS = ("vanilla", "linearized", "astro")
CONTROL = "no-attention"
GATE = "astro-gate-only"
LEAKY = "astro-leaky"
# Diagnostic presets: run to check the pipeline (astro-leaky sees future tokens), never counted as results.
DIAGNOSTICS = (LEAKY,)
TABLE_FILES = ("table1", "learning_speed", "speedups", "controls", "sweep", "runs", "runs_summary", "records",
               "learning_curves")



@dataclass
class Findings:
    """The tables of one configuration, and the configuration snapshot."""

    config: dict
    tables: dict[str, pd.DataFrame]

    def table(self, name: str) -> pd.DataFrame:
        return self.tables.get(name, pd.DataFrame())

    @property
    def label(self) -> str:
        return str(self.config.get("label") or "unnamed configuration")

    @property
    def data_source(self) -> str:
        """'real' or 'synthetic stand-in', from the tables' own provenance column."""
        t1 = self.table("table1")
        sources = set(t1["data_source"].dropna()) if "data_source" in t1.columns else set()
        if not sources:
            return "synthetic stand-in" if self.config.get("synthetic") else "unknown"
        return "synthetic stand-in" if "synthetic stand-in" in sources else sorted(sources)[0]

    @property
    def synthetic(self) -> bool:
        """No verdict on the paper unless the data are real."""
        return self.data_source != "real"

    def tasks(self) -> list[str]:
        t1 = self.table("table1")
        present = set(t1["task"]) if "task" in t1.columns else set()
        return [t for t in TASK_NAMES if t in present]

    def row(self, task: str, model: str, metric: str | None = None) -> pd.Series | None:
        """The Table I row of a model run on ``task`` (the task's headline metric by default)."""
        t1 = self.table("table1")
        if t1.empty:
            return None
        metric = metric or headline_metric(task)
        rows = t1[(t1["task"] == task) & (t1["model"] == model) & (t1["metric"] == metric) & (t1["kind"] == "run")]
        return rows.iloc[0] if len(rows) else None

    def group(self, task: str, model: str, metric: str | None = None) -> Group | None:
        """Mean, sd and seeds of Table I (diverged seeds are not in the mean, so not in n)."""
        r = self.row(task, model, metric)
        if r is None:
            return None
        mean = float(r["mean"])
        n = int(r["n_seeds"]) - int(r.get("n_diverged", 0) or 0) if math.isfinite(mean) else 0
        return Group(model, mean, float(r["sd"]) if pd.notna(r["sd"]) else math.nan, n)

    def log_group(self, task: str, model: str, metric: str | None = None) -> Group | None:
        """Mean, sd and seeds of the natural log of the number Table I takes from each finished run
        (runs_summary; diverged seeds left out, as there): the language model's perplexities are compared as
        ratios, so that a ratio of the paper's can be set against ours at another perplexity scale. None when the
        table has no run of ``model``; NaN mean and n = 0 when none of its runs has a finite number."""
        s = self.table("runs_summary")
        if s.empty:
            return None
        rows = s[(s["task"] == task) & (s["model"] == model)]
        if rows.empty:
            return None
        report = self.config.get("report") or {}
        values = [run_metric(r, task, metric or headline_metric(task), report)
                  for _, r in rows[rows["status"] == "finished"].iterrows()]
        logs = [math.log(v) for v in values if math.isfinite(v) and v > 0]
        if not logs:
            return Group(model, math.nan, math.nan, 0)
        return Group(model, statistics.fmean(logs), statistics.stdev(logs) if len(logs) > 1 else math.nan, len(logs))

    def models(self, task: str) -> list[str]:
        t1 = self.table("table1")
        if t1.empty:
            return []
        rows = t1[(t1["task"] == task) & (t1["kind"] == "run") & (t1["metric"] == headline_metric(task))]
        return list(dict.fromkeys(rows["model"]))


def headline_metric(task: str) -> str:
    return "test_ppl" if task == LM else "test_acc"


def unit(task: str) -> str:
    return "" if task == LM else " pp"


def load(tables: str | Path | Iterable[str | Path], config_path: str | Path | None = None) -> Findings:
    """Read the tables and the configuration snapshot. ``tables``: the tables' CSV files (each named by its stem;
    only those of TABLE_FILES are read), or one folder, whose tables present are read (a person opening the
    notebook). The workflow passes the files it declares, so that a table left by another configuration is not read.
    """
    paths = [Path(tables)] if isinstance(tables, (str, Path)) else [Path(p) for p in tables]
    if len(paths) == 1 and paths[0].is_dir():
        paths = [path for path in (paths[0] / f"{name}.csv" for name in TABLE_FILES) if path.is_file()]
    given = {path.stem: path for path in paths}
    tables = {name: read_table(given[name]) for name in TABLE_FILES if name in given}
    config = {}
    if config_path is not None and Path(config_path).is_file():
        config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    return Findings(config, tables)


def read_table(path: Path) -> pd.DataFrame:
    """A table's CSV; an empty file (no run recorded a learning curve, say) is an empty table."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        if not path.is_file():
            raise
        return pd.DataFrame()


def markdown_table(rows: list[list[Any]], header: list[str]) -> str:
    if not rows:
        return "_(nothing to show)_\n"
    frame = pd.DataFrame([[str(c).replace("|", r"\|") for c in r] for r in rows], columns=header)
    return frame.to_markdown(index=False, tablefmt="pipe", disable_numparse=True) + "\n"


def mean_sd_text(g: Group | None, digits: int = 2) -> str:
    if g is None or not math.isfinite(g.mean):
        return "n/a"
    sd = f" ± {num(g.sd, digits)}" if math.isfinite(g.sd) else ""
    return f"{num(g.mean, digits)}{sd} (n={g.n})"


# ------------------------------------------------------------------------------------------ provenance


def provenance(f: Findings) -> str:
    """Which configuration and data produced the page, and where its runs came from."""
    source = f.data_source
    lines = [f"- Configuration: **{html.escape(f.label)}**.",  # the label is text, never markup
             f"- Data: **{source}** (the `data_source` column of the tables)."]
    if source != "real":
        lines.append("- Synthetic stand-in data exercise the pipeline; their numbers say nothing about the paper.")
    summary = f.table("runs_summary")
    if not summary.empty:
        per_task = ", ".join(f"{TASK_NAMES.get(t, t)} {int((summary['task'] == t).sum())}" for t in f.tasks())
        lines.append(f"- Runs aggregated: {len(summary)} ({per_task}).")
    lines.append(records_note(f))
    lines.append(packages_note(f))
    return "\n".join(line for line in lines if line) + "\n"


def equivalence_margin(f: Findings, task: str) -> float:
    """The task's equivalence margin in the units its comparisons are made in: ``report.equivalence_margin`` of
    the configuration snapshot (a task it leaves out: the registry's default), percentage points for a classifier,
    and for the language model (compared as log ratios) ln(1 + margin)."""
    given = ((f.config.get("report") or {}).get("equivalence_margin") or {}).get(task)
    value = float(given if given is not None else task_registry.get(task).equivalence_margin)
    return math.log1p(value) if task == LM else value


def report_choice(f: Findings, key: str) -> str:
    """``report.<key>`` of the configuration snapshot, else its default (astromorphic.config.ReportConfig)."""
    value = (f.config.get("report") or {}).get(key)
    return str(value if value is not None else ReportConfig.model_fields[key].default)


def validation_is_held_out(f: Findings) -> bool | None:
    """Whether the LM's validation split was held out from training (runs_summary ``data_held_out``)."""
    s = f.table("runs_summary")
    if s.empty or "data_held_out" not in s.columns:
        return None
    held = s[s["task"] == LM]["data_held_out"].dropna().astype(str)
    return None if held.empty else all("valid" in h.split(";") for h in held)


def basis_section(f: Findings) -> str:
    """Which epoch each number comes from, and each threshold next to the paper's."""
    lines = []
    classifiers = [t for t in f.tasks() if t in CLASSIFIERS]
    metric = report_choice(f, "classifier_metric")
    texts = {t: classifier_selection(f.table("runs_summary"), t, metric) for t in classifiers}
    if classifiers and len(set(texts.values())) == 1:
        names = ", ".join(TASK_NAMES[t] for t in classifiers)
        lines.append(f"- Classifiers ({names}): the {texts[classifiers[0]]} (`report.classifier_metric`).")
    else:
        lines += [f"- {TASK_NAMES[t]}: the {texts[t]} (`report.classifier_metric`)." for t in classifiers]
    if LM in f.tasks():
        held = validation_is_held_out(f)
        if report_choice(f, "lm_metric") == "best_valid":
            text = ("the test perplexity at the epoch of the **lowest validation perplexity** (best validation, "
                    "`report.lm_metric`)")
            if held is False:
                text += "; the validation text was **not held out** here (it is part of the training text)"
        else:
            text = "the test perplexity at the **last epoch** (final, `report.lm_metric`)"
        lines.append(f"- Language model (WikiText-2): {text}; per token of the tokenizer.")
    for task, threshold in thresholds(f).items():
        same = math.isclose(threshold, PAPER_THRESHOLD)
        lines.append(f"- Learning-speed threshold, {TASK_NAMES[task]}: **{100 * threshold:.0f} %** accuracy (ours, "
                     f"`report.threshold` or `tasks.{task}.train.threshold`) next to the paper's "
                     f"**{100 * PAPER_THRESHOLD:.0f} %** test accuracy" +
                     (" (the same criterion)." if same else
                      ": a different criterion, so our counts are not comparable with the paper's epochs."))
    return "\n".join(lines) + "\n" if lines else ""


def thresholds(f: Findings) -> dict[str, float]:
    """The learning-speed threshold of each classifier task, from learning_speed.csv."""
    ls = f.table("learning_speed")
    if ls.empty or "threshold" not in ls.columns:
        return {}
    rows = ls[ls["threshold"].notna() & ls["task"].isin(CLASSIFIERS)]
    return {t: float(rows[rows["task"] == t]["threshold"].iloc[0]) for t in f.tasks() if t in set(rows["task"])}


def margins_text(f: Findings) -> str:
    """'IMDB ± 1 pp, CIFAR-10 ± 2 pp, WikiText-2 ± 5 % in perplexity ratio' for the tasks on the page."""
    parts = []
    for task in f.tasks():
        m = equivalence_margin(f, task)
        parts.append(f"{TASK_NAMES[task]} ± {100 * math.expm1(m):.3g} % in perplexity ratio (± {m:.4f} in ln)"
                     if task == LM else f"{TASK_NAMES[task]} ± {m:g} pp")
    return ", ".join(parts) or "none"


def method_section(f: Findings) -> str:
    """How a verdict is reached, stated on the page: one set of rules for every family."""
    if f.synthetic:
        return ("- Data are a **synthetic stand-in**: the page shows the numbers but gives no verdict on the "
                "paper (\"synthetic stand-in: no claim\").\n")
    alpha = f"{ALPHA:.2g}"
    return "\n".join([
        f"- Each comparison: difference of the seed means with a {LEVEL:.0%} Welch interval (unequal variances), "
        "its two-sided Welch p-value, and two one-sided Welch tests (TOST) against the task's **equivalence "
        f"margin** (`report.equivalence_margin`: {margins_text(f)}). For a single test, TOST at {alpha} is the "
        f"{1 - 2 * ALPHA:.0%} interval lying within the margin, so the {LEVEL:.0%} interval shown may reach past "
        "the margin of an \"equivalent\" verdict.",
        f"- Multiple comparisons: **Holm** correction within each family, of the two-sided p-values and, "
        "separately, of the TOST p-values. Families: the Table I pairs of one task; the learning-speed "
        "comparisons of one task (the paper's pairs and, beside them, the comparisons with `vanilla` and "
        "`no-attention`); the presets against `no-attention` on one task (diagnostics left out); the sweep values "
        "of one task against the default value, and against `no-attention` (two families). The gate comparisons "
        "(astro and astro-no-relpos against astro-gate-only) are a family of their task.",
        f"- **One verdict rule** for every comparison: with Holm-adjusted p below {alpha}, the direction decides: "
        "**reproduces** when it is the paper's, **contradicted** when it is the opposite (without a claim of the "
        "paper: **better** or **worse**; learning speed: **faster** or **slower**); otherwise, with the "
        f"Holm-adjusted TOST p below {alpha}, **equivalent within ± margin**: no difference larger than the margin "
        "(where the paper claims a difference, its difference is not seen at this margin; a paper difference "
        "smaller than the margin is not tested by it); otherwise **not resolved**. A direction and an equivalence "
        "together read \"reproduces (within ± margin)\". A claim of several pairs (the Table I order) reproduces "
        "when every pair does, within the margin or not (\"reproduces (1 of 3 pairs within ± margin)\"); "
        "otherwise the page counts its pairs' verdicts (\"mixed: ...\").",
        "- **Size** beside the verdict, never a verdict: where our interval excludes the paper's difference, "
        "\"larger\" or \"smaller than the paper's difference, at this scale\". The paper's differences are "
        "between models at the paper's scale (epochs, sizes, data), ours at this configuration's, so their sizes "
        "need not agree; the direction is what is tested.",
        f"- **Half-width** = half the {LEVEL:.0%} interval (before correction). **MDE** = the smallest true "
        f"difference a two-sided Welch test at {alpha} detects with {POWER:.0%} power, approximated as "
        f"(t(1 - {alpha}/2, df) + t({POWER:.2g}, df)) x SE on the comparison's own SE and df; a true difference "
        "equal to the half-width is detected only about half the time.",
        "- The language model's perplexities are compared as **ratios**: the difference of the seeds' mean log "
        "perplexity (the test cross-entropy per token, in nats) with its Welch interval, shown as the ratio of "
        "geometric means; its margin is on the same log scale.",
        "- **Learning speed** is judged without a chosen threshold: per run, the area under its learning curve "
        "(the mean accuracy over steps 0 to a fixed budget, `report.speed_budget_steps`, else the largest step "
        "every run of the task reached), compared like any other number (a higher area learns faster). Steps to a "
        "threshold are shown over a range of thresholds (the figure), and the paper's 85 % as how many seeds' "
        "learning curves reach it (on the split the curves were measured on; the paper's 85 % is test accuracy, "
        "per epoch).",
        "- The divergence of the Linearized model is reported as an **observation** (how many seeds diverged), "
        "outside the verdicts: a handful of seeds cannot estimate a divergence rate.",
        "- Two groups of seeds without any spread have no interval, so no verdict (\"undetermined\").",
        f"- Diagnostic presets ({', '.join(f'`{d}`' for d in DIAGNOSTICS)}: it sees future tokens) are shown, never "
        "counted as results.",
    ]) + "\n"


def packages_note(f: Findings) -> str:
    """Whether the runs were made with the locked package versions (records.csv ``packages_other``, from each
    run.json's ``packages`` against requirements-lock.txt); empty when records.csv does not say."""
    rec = f.table("records")
    if rec.empty or "packages_other" not in rec.columns:
        return ""
    other = rec["packages_other"].fillna("").astype(str)
    text = f"- Packages: {int((other == '').sum())} of {len(rec)} runs made with the locked versions (`{LOCK_FILE}`)"
    if (other == "").all():
        return text + "."
    items = sorted({item for cell in other[other != ""] for item in cell.split("; ")})
    return text + f"; **{int((other != '').sum())} made with other versions**: {', '.join(items)}."


def records_note(f: Findings) -> str:
    """How many runs were read from committed records, and how many of those other code made."""
    rec = f.table("records")
    if rec.empty or "source" not in rec.columns:
        return "- Every run was trained by this workflow with the current code."
    used = rec[rec["source"] == "record"]
    other = used[~used["code_current"].astype(bool)]
    folder = f.config.get("records") or "the records folder"
    text = f"- Runs read from committed records ({folder}): {len(used)} of {len(rec)}"
    verified = verification_sentence(rec)
    if len(other):
        if verified and verified.endswith(": identical"):
            return text + f". {len(other)} of them were made by earlier code (their `code_hash` differs); {verified}."
        return text + (f". **{len(other)} of them were made by other code than the current one** (their "
                       "`code_hash` differs): their numbers may differ from what this code gives "
                       "(`records_strict: true` retrains them).") + (f" {verified}." if verified else "")
    return text + "; all made by the current code" + (
        f"; {verified}." if verified else "; none re-derived yet (`astromorphic records verify`).")

