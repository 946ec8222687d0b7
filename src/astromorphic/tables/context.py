"""What every table of ``astromorphic tables`` is built from: the :class:`Table` object, the :class:`Context` of
one aggregation (configuration, run summaries, learning curves, the paper's values, the data manifests), the
task names and the fixed-digit formatting that makes the same runs give the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from astromorphic.tables.aggregate import TASK_ORDER, validation_facts
from astromorphic import tasks as task_registry
from astromorphic.tasks import DISPLAY_NAMES, SUPPLEMENTARY_TABLES
from astromorphic.config import models_for_task
from astromorphic.config import resolve_task_config
from astromorphic.config import threshold
from astromorphic.runs import data_provenance

TASK_NAMES = DISPLAY_NAMES
S_TABLES = SUPPLEMENTARY_TABLES  # table name -> task
ALL_TABLES = ("table1", "learning_speed", "speedups", "table2", *S_TABLES, "controls", "sweep")
CONTROL = "no-attention"
ABLATION = "@position_embedding=none"  # the run-name suffix of the ablation runs (config: ablation)
GATE_CONTROL = "astro-gate-only"
PROBES = ("attn_ratio_init", "attn_ratio_final", "value_sens_init", "value_sens_final")
DASH = "—"


# ------------------------------------------------------------------------------------------ table object


@dataclass
class Table:
    name: str
    title: str
    caption: str
    display: pd.DataFrame  # what a reader sees: strings
    data: pd.DataFrame  # what a program reads: numbers, one row per display row
    notes: list[str] = field(default_factory=list)


@dataclass
class Context:
    """Everything a table is built from."""

    config: dict
    summary: pd.DataFrame
    tidy: pd.DataFrame
    reference: pd.DataFrame
    manifests: dict[str, dict]
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # step-resolution learning curves (aggregate)

    def __post_init__(self) -> None:
        # A run that has not ended (status "running") is no seed of any result: it counts nowhere.
        for name in ("summary", "tidy", "curves"):
            frame = getattr(self, name)
            if "status" in frame.columns:
                setattr(self, name, frame[frame["status"] != "running"].reset_index(drop=True))

    @property
    def label(self) -> str:
        return str(self.config.get("label") or "unnamed configuration")

    @property
    def synthetic(self) -> bool:
        flags = [bool(self.config.get("synthetic"))]
        flags += [bool(m.get("synthetic")) for m in self.manifests.values()]
        if "synthetic" in self.summary.columns:
            flags += [bool(v) for v in self.summary["synthetic"]]
        return any(flags)

    @property
    def provenance(self) -> str:
        if self.synthetic:
            return f"synthetic stand-in data (configuration: {self.label}); not comparable with the paper's numbers"
        return f"real data (configuration: {self.label})"

    def tasks(self) -> list[str]:
        names = list((self.config.get("tasks") or {}).keys())
        return [t for t in TASK_ORDER if t in names]

    def models(self, task: str) -> list[str]:
        """Plain presets run on ``task`` (no sweep variants), in configuration order."""
        order = models_for_task(self.config, task)
        ran = set(self.runs(task)["model"]) if not self.summary.empty else set()
        listed = [m for m in order if m in ran]
        return listed + sorted(ran - set(listed))

    def runs(self, task: str, model: str | None = None) -> pd.DataFrame:
        """Runs of one model name on ``task``, or of every plain preset when ``model`` is None."""
        s = self.summary
        if s.empty:
            return s
        rows = s[s["task"] == task]
        rows = rows[rows["model"] == model] if model is not None else rows[rows["model"] == rows["preset"]]
        return rows.sort_values("seed")

    def ablations(self, task: str) -> list[str]:
        """Ablation runs on ``task`` (``<preset>@position_embedding=none``), in the order of the plain presets."""
        s = self.summary
        if s.empty:
            return []
        names = set(s[(s["task"] == task) & s["model"].str.contains(ABLATION, regex=False)]["model"])
        order = [f"{m}{ABLATION}" for m in self.models(task)]
        return [m for m in order if m in names] + sorted(names - set(order))

    def task_config(self, task: str) -> dict:
        return resolve_task_config(self.config, task)

    def threshold(self, task: str) -> float:
        return threshold(self.config, task)

    def data_facts(self, task: str) -> dict:
        """The data provenance of ``task`` as its run records hold it (astromorphic.runs.data_provenance),
        else from its manifest."""
        s = self.summary
        if not s.empty and "data_embedding" in s.columns:
            rows = s[(s["task"] == task) & s["data_embedding"].notna()]
            if len(rows):
                r = rows.iloc[0]
                held = r.get("data_held_out")
                number = lambda key: float(r[key]) if key in r and pd.notna(r[key]) else None  # noqa: E731
                vocab = {"size": number("data_output_vocab"), "of": number("data_vocab_of"),
                         "unknown_test": number("data_unknown_test")}  # fmt: skip
                return {"tokenizer": r.get("data_tokenizer") if pd.notna(r.get("data_tokenizer")) else None,
                        "embedding": r["data_embedding"], "train_from": r.get("data_train_from"),
                        "held_out": str(held).split(";") if isinstance(held, str) and held else [],
                        "train_fraction": number("data_train_fraction"),
                        "output_vocab": vocab if vocab["size"] is not None else None,
                        "tokens_per_word": r.get("data_tokens_per_word"),
                        "validation": {k: number(f"data_valid_{k}") for k in validation_facts(None)}}  # fmt: skip
        manifest = self.manifests.get(task)
        if manifest:
            facts = data_provenance(manifest)
            facts["tokens_per_word"] = (facts.get("tokens_per_word") or {}).get("test")
            facts["validation"] = validation_facts(facts.get("validation"))
            return facts
        return {}

    def data_line(self, task: str) -> str:
        """One line per task: embedding, tokenizer, training text and which evaluation splits are held out."""
        f = self.data_facts(task)
        if not f:
            return f"{TASK_NAMES[task]}: data provenance unknown (no run records or manifest)."
        parts = [f"embedding: {f['embedding']}"]
        if task_registry.get(task).tokenized:
            parts.append(f"tokenizer: {self.tokenizer(task)}")
        train_from = f.get("train_from") or "train"
        text = ("the training split" if train_from == "train" else
                f"the {train_from} split (no training split available)")
        if train_from != "train" and f.get("train_fraction") is not None:
            text = (f"the first {100 * f['train_fraction']:.0f} % of the {train_from} split's words (no training "
                    f"split available; its last articles are held out as {train_from} for model selection)")
        parts.append(f"trained on {text}")
        vocab = f.get("output_vocab")
        if vocab:
            parts.append(f"output layer over the {vocab['size'] - 1:,.0f} of {vocab['of']:,.0f} tokens that occur in "
                         f"the training text plus one unknown token ({100 * vocab['unknown_test']:.1f} % of the test "
                         "tokens), so perplexities are over this compacted vocabulary, not the tokenizer's")
        valid = f.get("validation") or {}
        if valid.get("size") is not None:
            text = (f"validation split: {valid['size']:,.0f} training examples held out of training (class-balanced, "
                    f"draw {valid['seed'] or 0:.0f}")
            if valid.get("movies") is not None:
                text += (f"; whole movies: {valid['movies']:,.0f}, of which {valid['shared_movies'] or 0:,.0f} "
                         "also in the training reviews")
            parts.append(text + "); it selects the epoch")
        held = f.get("held_out") or []
        evaluated = ", ".join(task_registry.get(task).evaluated_splits)
        not_held = [s for s in evaluated.split(", ") if s not in held]
        parts.append("held out: " + (", ".join(held) or "none"))
        if not_held:
            parts.append(f"NOT held out: {', '.join(not_held)} (seen in training)")
        return f"{TASK_NAMES[task]}: " + "; ".join(parts) + "."

    def per_word_is_per_token(self, task: str) -> bool:
        """True when every token is a word (word tokenizer): per-token and per-word perplexity coincide."""
        value = self.data_facts(task).get("tokens_per_word")
        try:
            return float(value) == 1.0
        except (TypeError, ValueError):
            return False

    def tokenizer(self, task: str) -> str:
        manifest = self.manifests.get(task) or {}
        name = self.data_facts(task).get("tokenizer") or manifest.get("tokenizer")
        name = name or (self.task_config(task).get("data") or {}).get("tokenizer")
        if not name:
            source = (self.task_config(task).get("data") or {}).get("source")
            name = "synthetic tokens" if source == "synthetic" or self.synthetic else "unknown"
        return str(name)

    def paper(self, table: str, task: str, model: str, metric: str) -> pd.Series | None:
        r = self.reference
        rows = r[(r["table"] == table) & (r["task"] == task) & (r["model"] == model) & (r["metric"] == metric)]
        return rows.iloc[0] if len(rows) else None


# ------------------------------------------------------------------------------------------ formatting


DIAGNOSTICS = {"astro-leaky": "diagnostic: sees future tokens"}


def display_name(model: str) -> str:
    """The model as a table shows it: diagnostics and ablation runs say what they are."""
    if model.endswith(ABLATION):
        return f"{model[: -len(ABLATION)]} (no absolute position embedding)"
    return f"{model} ({DIAGNOSTICS[model]})" if model in DIAGNOSTICS else model




def fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    return f"{float(value):.{digits}f}"


def mean_sd(values: Any) -> tuple[float, float, int]:
    """Mean and sample standard deviation (ddof = 1) of the finite values, and how many there were."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(float(v))], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan, 0
    sd = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return float(arr.mean()), sd, int(arr.size)


def fmt_mean_sd(mean: float, sd: float, n: int, digits: int = 2) -> str:
    if n == 0:
        return DASH
    if n == 1:
        return f"{fmt(mean, digits)} (1 seed)"
    return f"{fmt(mean, digits)} ± {fmt(sd, digits)}"


def fmt_paper(value: Any, sd: Any) -> str:
    if value is None or pd.isna(value):
        return DASH
    text = f"{float(value):g}"
    if sd is not None and not pd.isna(sd):
        text += f" ± {sd:g}"
    return text


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 1e-3 else f"{p:.3f}"


def fmt_pct(value: float) -> str:
    return DASH if not math.isfinite(value) else f"{100 * value:.0f} %"


def classifier_selection(summary: pd.DataFrame, task: str, classifier_metric: str) -> str:
    """Which epoch a classifier's reported test accuracy comes from, as its runs say: ``report.classifier_metric``
    and the runs' ``selected_by`` / ``stopped`` / ``early_stopping`` / ``max_epochs`` (runs_summary columns; a
    summary without them: records made before validation splits, whose best epoch was chosen on the test set)."""
    if classifier_metric == "final":
        return "test accuracy at the **last epoch** (final)"
    rows = summary[summary["task"] == task] if not summary.empty and "task" in summary.columns else summary
    chosen = rows["selected_by"].fillna("").astype(str) if "selected_by" in rows.columns else pd.Series(dtype=str)
    n, on_valid = len(rows), int((chosen == "valid_acc").sum())
    if n and on_valid == n:
        text = ("test accuracy at the epoch of **highest validation accuracy** (the earlier epoch on a tie; the "
                "validation split is held out of the training data; the test split chooses nothing)")
        stopped = int((rows["stopped"].fillna("") == "early_stopping").sum()) if "stopped" in rows.columns else 0
        patience = sorted({int(p) for p in rows.get("early_stopping", pd.Series(dtype=float)).dropna()})
        most = sorted({int(e) for e in rows.get("max_epochs", pd.Series(dtype=float)).dropna()})
        if patience:
            text += (f"; early stopping (patience {', '.join(map(str, patience))} epochs on validation accuracy, "
                     f"at most {', '.join(map(str, most))} epochs) ended {stopped} of {n} runs before their last epoch")
        text += selected_at_the_cap(rows)
        return text
    if on_valid:
        return (f"test accuracy at the selected epoch: highest validation accuracy in {on_valid} of {n} runs, "
                f"**highest test accuracy** (chosen on the test set, so optimistic) in {n - on_valid}")
    return "the **highest** test accuracy over the epochs (chosen on the test set, so optimistic)"


def selected_at_the_cap(rows: pd.DataFrame) -> str:
    """The selected epochs, and how many runs the epoch cap (not early stopping) ended with their best validation
    accuracy at the last epoch trained: their accuracy is the budget's, the curve may still have been rising."""
    if not {"best_epoch", "epochs"} <= set(rows.columns) or rows["best_epoch"].isna().all():
        return ""
    low, high = int(rows["best_epoch"].min()), int(rows["best_epoch"].max())
    text = f"; selected epochs {low}-{high}" if low != high else f"; selected epoch {low}"
    capped = rows[rows["stopped"].fillna("") != "early_stopping"] if "stopped" in rows.columns else rows
    at_cap = int((capped["best_epoch"] == capped["epochs"]).sum())
    if at_cap:
        text += (f"; in {at_cap} of the {len(capped)} runs the cap ended, the selected epoch is the last one trained "
                 "(validation accuracy still at its highest: these accuracies are the epoch budget's, "
                 "not a plateau's)")
    return text
