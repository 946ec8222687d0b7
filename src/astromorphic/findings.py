"""The findings page: which of the paper's claims reproduce, computed from the tables, ``astromorphic findings``.

Everything the page states is read from ``results/tables/*.csv`` (and the configuration snapshot for the
label): Table I (``table1.csv``: mean, sd and seeds of each model), the learning speed (``learning_speed.csv``,
``speedups.csv``), the controls (``controls.csv``, ``sweep.csv``), the per-epoch probe columns (``runs.csv``),
the causality audit (``runs_summary.csv``) and, when runs came from committed records, ``records.csv``.

A verdict compares two groups of seeds by the difference of their means with a 95 % Welch interval
(:func:`welch_interval`): "better"/"worse" when the interval excludes 0, "not distinguishable" when it contains
0, "undetermined" with fewer than 2 seeds in a group. A claim of the paper "reproduces" when our interval
excludes 0 on the paper's side, is "contradicted" when it excludes 0 on the other side. The wording is
templated; no number or verdict is typed by hand.

``workflow/notebooks/findings.py`` (a jupytext percent notebook) calls the section functions below;
:func:`render` executes it (nbclient) and exports Markdown and HTML (nbconvert) without the code cells.
"""

from __future__ import annotations

import argparse
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

LEVEL = 0.95
CLASSIFIERS = ("imdb", "cifar10")
LM = "wikitext2"
TASK_NAMES = {"imdb": "IMDB", "cifar10": "CIFAR-10", "wikitext2": "WikiText-2"}
TABLE1_MODELS = ("vanilla", "linearized", "astro")
CONTROL = "no-attention"
GATE = "astro-gate-only"
LEAKY = "astro-leaky"
# The paper's learning-speed statements (fast, slow), Sec. IV-C-4.
SPEED_PAIRS = (("astro", "linearized"), ("astro", "astro-no-relpos"), ("astro-no-relpos", "linearized"))
TABLE_FILES = ("table1", "learning_speed", "speedups", "controls", "sweep", "runs", "runs_summary", "records")


# ------------------------------------------------------------------------------------------ statistics


@dataclass(frozen=True)
class Group:
    """One model's seeds of one metric: mean, sample sd and the number of seeds behind them."""

    label: str
    mean: float
    sd: float
    n: int


@dataclass(frozen=True)
class Interval:
    diff: float
    low: float
    high: float


def welch_interval(a: Group, b: Group, level: float = LEVEL) -> Interval | None:
    """Interval for mean(a) - mean(b) by Welch's t (unequal variances); None with fewer than 2 seeds in a group.
    Two groups without spread give the point difference as a zero-width interval."""
    from scipy import stats

    values = (a.mean, a.sd, b.mean, b.sd)
    if a.n < 2 or b.n < 2 or not all(math.isfinite(v) for v in values):
        return None
    va, vb = a.sd**2 / a.n, b.sd**2 / b.n
    diff = a.mean - b.mean
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(diff, diff, diff)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return Interval(diff, diff - half, diff + half)


def better_sign(interval: Interval | None, higher_is_better: bool) -> int | None:
    """+1: a better than b, -1: worse, 0: the interval contains 0, None: no interval."""
    if interval is None:
        return None
    if interval.low <= 0 <= interval.high:
        return 0
    return (1 if interval.diff > 0 else -1) * (1 if higher_is_better else -1)


VERDICT = {1: "better", -1: "worse", 0: "not distinguishable", None: "undetermined (fewer than 2 seeds)"}


def claim_verdict(ours: int | None, paper: int | None) -> str:
    """Our direction (:func:`better_sign`) against the paper's (+1/-1)."""
    if not paper:
        return "no direction in the paper"
    if ours is None:
        return "undetermined (fewer than 2 seeds)"
    if ours == 0:
        return "not distinguishable"
    return "reproduces" if ours == paper else "contradicted"


def num(value: Any, digits: int = 2, sign: bool = False) -> str:
    """Fixed-digit text of a number; 'n/a' when missing."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Comparison:
    a: Group
    b: Group
    higher_is_better: bool
    unit: str = ""
    interval: Interval | None = field(default=None)

    @property
    def sign(self) -> int | None:
        return better_sign(self.interval, self.higher_is_better)

    @property
    def verdict(self) -> str:
        return VERDICT[self.sign]

    def text(self, digits: int = 2) -> str:
        """'astro - vanilla = +1.23 pp [-0.50, +2.96]' (95 % Welch interval)."""
        if not (math.isfinite(self.a.mean) and math.isfinite(self.b.mean)):
            return f"{self.a.label} - {self.b.label}: n/a"
        diff = self.a.mean - self.b.mean
        out = f"{self.a.label} - {self.b.label} = {num(diff, digits, True)}{self.unit}"
        if self.interval is not None:
            out += f" [{num(self.interval.low, digits, True)}, {num(self.interval.high, digits, True)}]"
        return out


def compare(a: Group, b: Group, higher_is_better: bool, unit: str = "") -> Comparison:
    return Comparison(a, b, higher_is_better, unit, welch_interval(a, b))


# ------------------------------------------------------------------------------------------ the tables


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


def load(tables_dir: str | Path, config_path: str | Path | None = None) -> Findings:
    """Read the tables (those present) and the configuration snapshot."""
    tables_dir = Path(tables_dir)
    tables = {}
    for name in TABLE_FILES:
        path = tables_dir / f"{name}.csv"
        if path.is_file():
            tables[name] = pd.read_csv(path)
    config = {}
    if config_path is not None and Path(config_path).is_file():
        config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    return Findings(config, tables)


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
    lines.append(f"- Verdicts: difference of seed means with a {LEVEL:.0%} Welch interval; an interval that "
                 "contains 0 is *not distinguishable*.")
    return "\n".join(line for line in lines if line) + "\n"


def records_note(f: Findings) -> str:
    """How many runs were read from committed records, and how many of those other code made."""
    rec = f.table("records")
    if rec.empty or "source" not in rec.columns:
        return "- Every run was trained by this workflow with the current code."
    used = rec[rec["source"] == "record"]
    other = used[~used["code_current"].astype(bool)]
    folder = f.config.get("records") or "the records folder"
    text = f"- Runs read from committed records ({folder}): {len(used)} of {len(rec)}"
    if len(other):
        from astromorphic.records import verification_sentence  # set when `records verify` ran with this code

        verified = verification_sentence(rec)
        if verified and verified.endswith(": identical"):
            return text + f". {len(other)} of them were made by earlier code (their `code_hash` differs); {verified}."
        return text + (f". **{len(other)} of them were made by other code than the current one** (their "
                       "`code_hash` differs): their numbers may differ from what this code gives "
                       "(`records_strict: true` retrains them).") + (f" {verified}." if verified else "")
    return text + "; all made by the current code."


# ------------------------------------------------------------------------------------------ the paper's claims


@dataclass(frozen=True)
class Claim:
    claim: str
    paper: str
    ours: str
    verdict: str


def overall(verdicts: list[str]) -> str:
    """One verdict for a claim made of several comparisons."""
    if not verdicts:
        return "not run"
    if all(v == "reproduces" for v in verdicts):
        return "reproduces"
    bad = sum(v == "contradicted" for v in verdicts)
    if bad:
        return f"contradicted ({bad} of {len(verdicts)} pairs)"
    good = sum(v == "reproduces" for v in verdicts)
    if good:
        return f"partly ({good} of {len(verdicts)} pairs reproduce)"
    return "not distinguishable" if "not distinguishable" in verdicts else verdicts[0]


def ordering_pairs(f: Findings, task: str) -> list[tuple[Comparison, str]]:
    """Every pair of the Table I models, the paper's better one first, with the paper's values as text."""
    higher = task != LM
    ranked = []
    for model in TABLE1_MODELS:
        r = f.row(task, model)
        if r is not None and pd.notna(r.get("paper_value")) and f.group(task, model) is not None:
            ranked.append((model, float(r["paper_value"])))
    ranked.sort(key=lambda mv: -mv[1] if higher else mv[1])
    pairs = []
    for i, (a, pa) in enumerate(ranked):
        for b, pb in ranked[i + 1 :]:
            if pa != pb:
                pairs.append((compare_runs(f, task, a, b), f"{a} {num(pa, 1)} vs {b} {num(pb, 1)}"))
    return pairs


def all_diverged(f: Findings, task: str, model: str) -> bool:
    r = f.row(task, model)
    return r is not None and int(r["n_seeds"]) > 0 and int(r.get("n_diverged", 0) or 0) == int(r["n_seeds"])


@dataclass(frozen=True)
class DivergedComparison(Comparison):
    """A comparison in which one side diverged in every seed: that side has no result, so it is the worse one."""

    diverged: str = ""

    @property
    def sign(self) -> int | None:
        if self.diverged == self.a.label:
            return -1
        return 1 if self.diverged == self.b.label else None

    def text(self, digits: int = 2) -> str:
        return f"{self.a.label} vs {self.b.label}: {self.diverged} diverged in every seed"


def compare_runs(f: Findings, task: str, a: str, b: str) -> Comparison:
    """Table I groups of ``a`` and ``b`` compared; a model that diverged in every seed loses to one that did not."""
    ga, gb = f.group(task, a), f.group(task, b)
    da, db = all_diverged(f, task, a), all_diverged(f, task, b)
    if da != db:
        return DivergedComparison(ga, gb, task != LM, unit(task), None, a if da else b)
    return compare(ga, gb, task != LM, unit(task))


def order_text(f: Findings, task: str, models: list[str], paper: bool) -> str:
    """'vanilla > astro > linearized' by the paper's values or by our means (perplexity: '<')."""
    higher = task != LM
    key = "paper_value" if paper else "mean"
    values = [(m, float(f.row(task, m)[key])) for m in models if f.row(task, m) is not None]
    values = [(m, v) for m, v in values if math.isfinite(v)]
    values.sort(key=lambda mv: -mv[1] if higher else mv[1])
    texts = [f"{m} ({num(v, 1)})" for m, v in values]
    if not paper:  # a model without a result in any seed ranks last
        texts += [f"{m} (diverged)" for m in models if all_diverged(f, task, m)]
    return (" > " if higher else " < ").join(texts) or "n/a"


def ordering_claims(f: Findings) -> list[Claim]:
    out = []
    for task in f.tasks():
        pairs = ordering_pairs(f, task)
        if not pairs:
            continue
        models = [m for m in TABLE1_MODELS if f.group(task, m) is not None]
        what = "test perplexity" if task == LM else "test accuracy (%)"
        out.append(Claim(f"Table I order on {TASK_NAMES[task]} ({what})", order_text(f, task, models, True),
                         order_text(f, task, models, False), overall([claim_verdict(c.sign, 1) for c, _ in pairs])))
    return out


def ordering_section(f: Findings) -> str:
    rows = []
    for task in f.tasks():
        for cmp, paper in ordering_pairs(f, task):
            rows.append([TASK_NAMES[task], paper, cmp.text(), cmp.verdict, claim_verdict(cmp.sign, 1)])
    header = ["Task", "Paper", f"Ours: difference of means [{LEVEL:.0%} Welch interval]", "Ours", "Claim"]
    return markdown_table(rows, header)


def speed_comparison(f: Findings, task: str, fast: str, slow: str) -> tuple[str, str, int | None, str] | None:
    """(paper text, our text, our direction, why undetermined) for 'fast reaches the threshold in fewer epochs'."""
    ls = f.table("learning_speed")
    if ls.empty:
        return None
    rows = ls[(ls["task"] == task) & (ls["criterion"] == "epochs_to_threshold")].set_index("model")
    if fast not in rows.index or slow not in rows.index:
        return None
    a, b = rows.loc[fast], rows.loc[slow]
    paper = f"{fast} {num(a['paper_value'], 0)} vs {slow} {num(b['paper_value'], 0)} epochs"
    na, nb, sa, sb = int(a["n_reached"]), int(b["n_reached"]), int(a["n_seeds"]), int(b["n_seeds"])
    thr = f"{num(100 * float(a['threshold']), 0)} %"
    if na == sa > 0 and nb == sb > 0:
        cmp = compare(Group(fast, a["mean"], a["sd"], na), Group(slow, b["mean"], b["sd"], nb), False, " epochs")
        return paper, cmp.text(1), cmp.sign, "fewer than 2 seeds"
    if na == sa > 0 and nb == 0:
        return paper, f"{fast} reached {thr} in every seed ({num(a['mean'], 1)} epochs), {slow} in none", 1, ""
    if nb == sb > 0 and na == 0:
        return paper, f"{slow} reached {thr} in every seed ({num(b['mean'], 1)} epochs), {fast} in none", -1, ""
    ours = f"{fast} reached {thr} in {na}/{sa} seeds, {slow} in {nb}/{sb}"
    return paper, ours, None, "censored: the threshold was not reached in every seed"


def _paper_speed_sign(f: Findings, task: str, fast: str, slow: str) -> int | None:
    ls = f.table("learning_speed")
    rows = ls[(ls["task"] == task) & (ls["criterion"] == "epochs_to_threshold")].set_index("model")
    pa, pb = float(rows.loc[fast, "paper_value"]), float(rows.loc[slow, "paper_value"])
    if not (math.isfinite(pa) and math.isfinite(pb)) or pa == pb:
        return None
    return 1 if pa < pb else -1


def speed_claims(f: Findings) -> list[Claim]:
    out = []
    for task in [t for t in f.tasks() if t in CLASSIFIERS]:
        for fast, slow in SPEED_PAIRS:
            found = speed_comparison(f, task, fast, slow)
            if found is None:
                continue
            paper, ours, sign, why = found
            psign = _paper_speed_sign(f, task, fast, slow)
            verdict = claim_verdict(sign, psign) if sign is not None or not psign else f"undetermined ({why})"
            out.append(Claim(f"{TASK_NAMES[task]}: {fast} learns faster than {slow}", paper, ours, verdict))
    return out


def speedup_section(f: Findings) -> str:
    sp = f.table("speedups")
    rows = [[TASK_NAMES.get(r["task"], r["task"]), r["fast"], r["slow"], pct(r["speedup"]), pct(r["paper_speedup"])]
            for _, r in sp.iterrows()] if not sp.empty else []
    return markdown_table(rows, ["Task", "Fast", "Slow", "Ours: (slow - fast) / slow", "Paper"])


def p_text(p: Any) -> str:
    text = num(p, 3)
    return "< 0.001" if text == "0.000" else text


def pct(value: Any) -> str:
    text = num(value, 3)
    return text if text == "n/a" else f"{100 * float(value):.0f} %"


def lm_gap_claim(f: Findings) -> Claim | None:
    astro, vanilla = f.group(LM, "astro"), f.group(LM, "vanilla")
    ra, rv = f.row(LM, "astro"), f.row(LM, "vanilla")
    if astro is None or vanilla is None:
        return None
    pa, pv = float(ra["paper_value"]), float(rv["paper_value"])
    cmp = compare(astro, vanilla, False)
    ratio = astro.mean / vanilla.mean if vanilla.mean else math.nan
    paper = f"astro {num(pa, 1)} vs vanilla {num(pv, 1)} (ratio {num(pa / pv, 2)})"
    ours = f"{cmp.text()} (ratio {num(ratio, 2)})"
    psign = (1 if pa < pv else -1) if math.isfinite(pa) and math.isfinite(pv) and pa != pv else None
    return Claim("WikiText-2: astro's perplexity below vanilla's", paper, ours, claim_verdict(cmp.sign, psign))


def divergence_claim(f: Findings) -> Claim | None:
    r = f.row(LM, "linearized")
    if r is None:
        return None
    n, k = int(r["n_seeds"]), int(r.get("n_diverged", 0) or 0)
    note = str(r.get("note") or "")
    paper = "diverges" if "diverge" in note.lower() else "no divergence stated"
    epochs = diverged_epochs(f, LM, "linearized")
    ours = f"diverged in {k} of {n} seeds" + (f" (epochs {epochs})" if epochs else "")
    if paper != "diverges":
        verdict = "no direction in the paper"
    else:
        verdict = "reproduces" if k == n > 0 else (f"partly ({k} of {n} seeds)" if k else "not reproduced")
    return Claim("WikiText-2: Linearized [18] diverges", paper, ours, verdict)


def diverged_epochs(f: Findings, task: str, model: str) -> str:
    s = f.table("runs_summary")
    if s.empty or "diverged_epoch" not in s.columns:
        return ""
    rows = s[(s["task"] == task) & (s["model"] == model) & (s["status"] == "diverged")]
    return ", ".join(num(e, 0) for e in rows.sort_values("seed")["diverged_epoch"])


def claims(f: Findings) -> list[Claim]:
    out = ordering_claims(f) + speed_claims(f)
    out += [c for c in (lm_gap_claim(f), divergence_claim(f)) if c is not None]
    return out


def claims_section(f: Findings) -> str:
    rows = [[c.claim, c.paper, c.ours, f"**{c.verdict}**"] for c in claims(f)]
    return markdown_table(rows, ["Claim", "Paper", "Ours", "Verdict"])


def divergence_section(f: Findings) -> str:
    """Diverged seeds of every model on the language model."""
    rows = []
    for model in f.models(LM):
        r = f.row(LM, model)
        epochs = diverged_epochs(f, LM, model)
        rows.append([model, f"{int(r.get('n_diverged', 0) or 0)} of {int(r['n_seeds'])}", epochs or "-"])
    return markdown_table(rows, ["Model", "Diverged seeds", "At epoch"])


# ------------------------------------------------------------------------------------------ controls


def control_comparisons(f: Findings, task: str, reference: str = CONTROL) -> list[Comparison]:
    """Each model of ``task`` against ``reference`` (Table I means; the reference itself left out)."""
    if f.group(task, reference) is None:
        return []
    return [compare_runs(f, task, m, reference) for m in f.models(task) if m != reference]


def controls_section(f: Findings) -> str:
    """Each preset against no-attention: Welch interval on Table I, and the paired difference of controls.csv."""
    ctl = f.table("controls")
    rows = []
    for task in f.tasks():
        for cmp in control_comparisons(f, task):
            paired, p = "n/a", "n/a"
            if not ctl.empty:
                match = ctl[(ctl["task"] == task) & (ctl["model"] == cmp.a.label)]
                if len(match):
                    m = match.iloc[0]
                    paired = f"{num(m['diff_mean'], 2, True)} ± {num(m['diff_sd'])} (n={int(m['n_pairs'])})"
                    p = p_text(m["welch_p"])
            rows.append([TASK_NAMES[task], cmp.a.label, mean_sd_text(cmp.a), cmp.text(), cmp.verdict, paired, p])
    header = ["Task", "Model", "Ours (mean ± sd)", f"vs {CONTROL} [{LEVEL:.0%} Welch interval]", "Verdict",
              "Paired difference (controls table)", "Welch p (controls table)"]
    return markdown_table(rows, header)


def controls_summary(f: Findings) -> str:
    """One templated sentence per task: which presets are distinguishable from no-attention, and how."""
    lines = []
    for task in f.tasks():
        cmps = control_comparisons(f, task)
        if not cmps:
            lines.append(f"- {TASK_NAMES[task]}: no `{CONTROL}` run, so no control comparison.")
            continue
        groups = {v: [c.a.label for c in cmps if c.verdict == v] for v in dict.fromkeys(c.verdict for c in cmps)}
        parts = [f"{v}: {', '.join(ms)}" for v, ms in groups.items()]
        control = mean_sd_text(f.group(task, CONTROL))
        lines.append(f"- {TASK_NAMES[task]}, against `{CONTROL}` ({control}): " + "; ".join(parts) + ".")
    return "\n".join(lines) + "\n"


def gate_section(f: Findings) -> str:
    """astro against astro-gate-only (the value path cut), where that control ran."""
    lines = []
    for task in f.tasks():
        gate, astro = f.group(task, GATE), f.group(task, "astro")
        if gate is None or astro is None:
            continue
        cmp = compare(astro, gate, task != LM, unit(task))
        meaning = {
            0: "the value path adds nothing measurable to the gate at this scale",
            1: "the value path adds to what the gate alone achieves",
            -1: "the gate alone does better than the full astromorphic attention",
        }.get(cmp.sign, "too few seeds to tell")
        lines.append(f"- {TASK_NAMES[task]}: {cmp.text()}: **{cmp.verdict}**; {meaning}.")
    if not lines:
        return f"_`{GATE}` did not run in this configuration._\n"
    return "\n".join(lines) + "\n"


def value_sensitivity(f: Findings) -> pd.DataFrame:
    """Per task and preset: the value-sensitivity probe (layer mean of ``value_sens_l{i}``) at epoch 0 and at the
    last epoch, mean and sd over seeds; empty when runs.csv has no such column."""
    runs = f.table("runs")
    cols = [c for c in runs.columns if c.startswith("value_sens_l") and c[len("value_sens_l"):].isdigit()]
    if runs.empty or not cols:
        return pd.DataFrame()
    runs = runs[(runs["model"] == runs["preset"]) & (runs.get("status", "finished") != "running")]
    out = []
    for task in f.tasks():
        for model in f.models(task):
            per_run = runs[(runs["task"] == task) & (runs["model"] == model)].sort_values(["seed", "epoch"])
            if per_run.empty:
                continue
            layer_mean = per_run[cols].mean(axis=1)
            init = layer_mean[per_run["epoch"] == 0]
            final = layer_mean.groupby(per_run["seed"]).last()
            out.append(dict(task=task, model=model, init_mean=init.mean(), init_sd=init.std(ddof=1),
                            final_mean=final.mean(), final_sd=final.std(ddof=1), n=len(final)))
    return pd.DataFrame(out)


def value_sensitivity_section(f: Findings) -> str:
    vs = value_sensitivity(f)
    if vs.empty:
        return "_The runs have no value-sensitivity probe (`value_sens_l{i}` columns in runs.csv)._\n"
    rows = [[TASK_NAMES[r["task"]], r["model"], f"{num(r['init_mean'], 4)} ± {num(r['init_sd'], 4)}",
             f"{num(r['final_mean'], 4)} ± {num(r['final_sd'], 4)}", int(r["n"])] for _, r in vs.iterrows()]
    return markdown_table(rows, ["Task", "Model", "At initialisation", "At the last epoch", "Seeds"])


def sweep_section(f: Findings) -> str:
    """Each swept value against the preset at its default value and against no-attention."""
    sw = f.table("sweep")
    if sw.empty:
        return "_No sweep in this configuration._\n"
    rows = []
    for _, r in sw.iterrows():
        task, preset = r["task"], r["preset"]
        higher = task != LM
        group = Group(f"{r['key']}={r['value']}", float(r["mean"]), float(r["sd"]), int(r["n"]))
        cells = [TASK_NAMES.get(task, task), preset, group.label, mean_sd_text(group)]
        for ref_model in (preset, CONTROL):
            ref = f.group(task, ref_model)
            if ref is None:
                cells += ["n/a", "n/a"]
                continue
            cmp = compare(group, Group("default" if ref_model == preset else CONTROL, ref.mean, ref.sd, ref.n),
                          higher, unit(task))
            cells += [cmp.text(), cmp.verdict]
        rows.append(cells)
    header = ["Task", "Preset", "Value", "Ours (mean ± sd)", "vs the default value", "Verdict",
              f"vs {CONTROL}", "Verdict"]
    return markdown_table(rows, header)


# ------------------------------------------------------------------------------------------ causality


def audit_tolerance(f: Findings) -> float:
    from astromorphic.config import resolve_task_config

    try:
        return float(resolve_task_config(f.config, LM)["train"]["audit_tol"])
    except Exception:  # a configuration snapshot of an older schema: the tables' own pass/fail column decides
        return math.nan


def causality_section(f: Findings) -> str:
    """The LM causality audit per model: largest logit change at t when tokens after t change."""
    s = f.table("runs_summary")
    if s.empty or "causality_max_change" not in s.columns or LM not in f.tasks():
        return "_No language-model runs with a causality audit._\n"
    tol = audit_tolerance(f)
    rows = []
    for model in f.models(LM):
        runs = s[(s["task"] == LM) & (s["model"] == model)]
        audited = runs["causality_max_change"].dropna()
        if audited.empty:
            rows.append([model, "not audited", "-", "-"])
            continue
        worst = float(audited.max())
        passed = (bool(runs["causality_passed"].fillna(False).astype(bool).all()) if "causality_passed" in runs
                  else worst <= tol)
        prefix = "-"
        if "prefix_max_change" in runs and runs["prefix_max_change"].notna().any():
            prefix = f"{float(runs['prefix_max_change'].max()):.1e}"
        rows.append([model, f"{worst:.1e} ({len(audited)} seeds)", prefix, "causal" if passed else "**NOT causal**"])
    text = markdown_table(rows, ["Model", "Largest logit change (max over seeds)", "Prefix consistency",
                                 "Verdict"])
    if math.isfinite(tol):
        text += f"\nTolerance of the audit: {tol:.0e} (`tasks.wikitext2.train.audit_tol`).\n"
    leaky, astro = f.group(LM, LEAKY), f.group(LM, "astro")
    if leaky is not None and astro is not None:
        cmp = compare(leaky, astro, False)
        relation = {1: "lower than", -1: "higher than", 0: "not distinguishable from"}.get(cmp.sign, "undetermined:")
        text += (f"\nLeakage diagnostic: `{LEAKY}` writes the whole window before reading; {cmp.text()} "
                 f"perplexity: **{relation}** that of the causal model.\n")
    return text


# ------------------------------------------------------------------------------------------ rendering


def _inject_parameters(nb: Any, params: dict[str, str]) -> None:
    """Insert a cell setting ``params`` after the cell tagged ``parameters`` (or first)."""
    import nbformat

    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    where = tagged[0] + 1 if tagged else 0
    source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    nb.cells.insert(where, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))


def render(notebook: str | Path, tables_dir: str | Path, config_path: str | Path, out_dir: str | Path,
           timeout: int = 600) -> list[Path]:
    """Execute the findings notebook on ``tables_dir`` and write findings.md and findings.html (no code cells)."""
    import jupytext
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter, MarkdownExporter

    from astromorphic.io import write_text

    nb = jupytext.read(str(notebook))
    _inject_parameters(nb, {"TABLES": str(tables_dir), "CONFIG": str(config_path)})
    for i, cell in enumerate(nb.cells):  # fixed cell ids: the exported HTML does not change between runs
        cell["id"] = f"cell-{i}"
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
    resources = {"metadata": {"name": "findings"}}
    out_dir = Path(out_dir)
    paths = []
    for exporter, ext in ((MarkdownExporter, "md"), (HTMLExporter, "html")):
        body, _ = exporter(exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(nb, resources=dict(resources))
        write_text(out_dir / f"findings.{ext}", body)
        paths.append(out_dir / f"findings.{ext}")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astromorphic findings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", default="workflow/notebooks/findings.py", help="jupytext percent notebook")
    parser.add_argument("--tables", default="results/tables", help="folder of the tables' CSV files")
    parser.add_argument("--config", default="results/configs/all.yaml", help="the configuration snapshot")
    parser.add_argument("--out-dir", default="results/findings")
    args = parser.parse_args(argv)
    for path in render(args.notebook, args.tables, args.config, args.out_dir):
        print(f"findings: wrote {path}")
    return 0
