"""What the controls show (each preset against no-attention, astro and astro-no-relpos against astro-gate-only, the
value-sensitivity probe, the sweep) and the causality audit of the language model."""

from __future__ import annotations

import math

import pandas as pd

from astromorphic.findings.base import (
    CONTROL,
    DIAGNOSTICS,
    GATE,
    LEAKY,
    LM,
    TASK_NAMES,
    Findings,
    equivalence_margin,
    markdown_table,
    mean_sd_text,
    unit,
)
from astromorphic.findings.claims import compare_runs
from astromorphic.findings.stats import (
    LEVEL,
    NO_CLAIM,
    Comparison,
    Group,
    adjust,
    compare,
    num,
    p_text,
    resolution_text,
)
from astromorphic.config import resolve_task_config
from astromorphic.tables.aggregate import run_name_order

DIAGNOSTIC_VERDICT = "diagnostic: not a result"


def control_comparisons(f: Findings, task: str, reference: str = CONTROL) -> list[Comparison]:
    """Each model of ``task`` against ``reference`` (Table I means; the reference itself left out), Holm-adjusted
    within the task; diagnostic presets are not in the family (and come last, unadjusted)."""
    if f.group(task, reference) is None:
        return []
    models = [m for m in f.models(task) if m != reference]
    family = adjust([compare_runs(f, task, m, reference) for m in models if m not in DIAGNOSTICS])
    return family + [compare_runs(f, task, m, reference) for m in models if m in DIAGNOSTICS]


def control_verdict(f: Findings, cmp: Comparison) -> str:
    if cmp.a.label in DIAGNOSTICS:
        return DIAGNOSTIC_VERDICT
    return NO_CLAIM if f.synthetic else cmp.verdict


def controls_section(f: Findings) -> str:
    """Each preset against no-attention: Welch interval on Table I, its p-values, and the paired difference of
    controls.csv."""
    ctl = f.table("controls")
    rows = []
    for task in f.tasks():
        for cmp in control_comparisons(f, task):
            paired = "n/a"
            if not ctl.empty:
                match = ctl[(ctl["task"] == task) & (ctl["model"] == cmp.a.label)]
                if len(match):
                    m = match.iloc[0]
                    paired = f"{num(m['diff_mean'], 2, True)} ± {num(m['diff_sd'])} (n={int(m['n_pairs'])})"
            ours = mean_sd_text(f.group(task, cmp.a.label))  # Table I's numbers (the LM's comparison: ratios)
            rows.append([TASK_NAMES[task], cmp.a.label, ours, cmp.text(), resolution_text(cmp),
                         p_text(cmp.p), p_text(cmp.p_adjusted), control_verdict(f, cmp), paired])
    header = ["Task", "Model", "Ours (mean ± sd)", f"vs {CONTROL} [{LEVEL:.0%} Welch interval]",
              "Half-width; MDE (80 % power)", "Welch p", "Holm p (task family)", "Verdict",
              "Paired difference (controls table)"]
    return markdown_table(rows, header)


def controls_summary(f: Findings) -> str:
    """One templated sentence per task: which presets are distinguishable from no-attention, and how."""
    lines = []
    for task in f.tasks():
        cmps = [c for c in control_comparisons(f, task) if c.a.label not in DIAGNOSTICS]
        if not cmps:
            lines.append(f"- {TASK_NAMES[task]}: no `{CONTROL}` run, so no control comparison.")
            continue
        if f.synthetic:
            lines.append(f"- {TASK_NAMES[task]}, against `{CONTROL}` ({mean_sd_text(f.group(task, CONTROL))}): "
                         f"{NO_CLAIM}; the comparisons below exercise the pipeline only.")
            continue
        groups = {v: [c.a.label for c in cmps if c.verdict == v] for v in dict.fromkeys(c.verdict for c in cmps)}
        parts = [f"{v}: {', '.join(ms)}" for v, ms in groups.items()]
        control = mean_sd_text(f.group(task, CONTROL))
        lines.append(f"- {TASK_NAMES[task]}, against `{CONTROL}` ({control}), after Holm correction over "
                     f"{len(cmps)} presets: " + "; ".join(parts) + ".")
    return "\n".join(lines) + "\n"


# The presets compared with the gate alone, and what their difference from it measures: the relative-position
# term acts only through the value path (the gate control has no relative position because it has nothing to act
# on), so astro's difference is its value path with that term, astro-no-relpos's the value path without it.
GATE_PAIRS = {
    "astro": "the value path (with the relative-position term, which acts only through it)",
    "astro-no-relpos": "the value path without relative position",
}


def gate_section(f: Findings) -> str:
    """astro and astro-no-relpos against astro-gate-only (the value path cut), where that control ran: one family
    per task, Holm-adjusted."""
    lines = []
    for task in f.tasks():
        gate = f.group(task, GATE)
        models = [m for m in GATE_PAIRS if f.group(task, m) is not None]
        if gate is None or not models:
            continue
        family = adjust([compare_runs(f, task, m, GATE) for m in models])  # the LM's perplexities as a ratio
        for model, cmp in zip(models, family):
            what, n = GATE_PAIRS[model], min(f.group(task, model).n, gate.n)
            meaning = {
                0: f"a contribution of {what} is not resolved at n = {n} (half-width "
                   f"{resolution_text(cmp, unit(task))})",
                1: f"{what} adds to what the gate alone achieves",
                -1: f"the gate alone does better than `{model}`",
            }.get(cmp.sign, f"undetermined ({cmp.why})")
            if cmp.sign == 0 and cmp.equivalent:
                meaning = f"{what} adds no more than the margin ({cmp.margin_text}) at n = {n}"
            if f.synthetic:
                lines.append(f"- {TASK_NAMES[task]}: {cmp.text()}: {NO_CLAIM}.")
            else:
                lines.append(f"- {TASK_NAMES[task]}: {cmp.text()} (Holm p {p_text(cmp.p_adjusted)}, Holm TOST p "
                             f"{p_text(cmp.p_tost_adjusted)}): **{cmp.verdict}**; {meaning}.")
    if not lines:
        return f"_`{GATE}` did not run in this configuration._\n"
    return "\n".join(lines) + "\n"


def value_sensitivity(f: Findings) -> pd.DataFrame:
    """Per task and run name (presets first, then the sweep and ablation runs): the value-sensitivity probe (layer
    mean of ``value_sens_l{i}``) at epoch 0 and at the last epoch, mean and sd over seeds; empty when runs.csv has
    no such column."""
    runs = f.table("runs")
    cols = [c for c in runs.columns if c.startswith("value_sens_l") and c[len("value_sens_l"):].isdigit()]
    if runs.empty or not cols:
        return pd.DataFrame()
    runs = runs[runs.get("status", "finished") != "running"]
    out = []
    for task in f.tasks():
        presets = f.models(task)
        others = sorted(set(runs[runs["task"] == task]["model"]) - set(presets), key=run_name_order)
        for model in presets + others:
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
    def cell(mean, sd) -> str:  # 'n/a' alone where the preset has no attention term to probe
        return "n/a" if num(mean) == "n/a" else f"{num(mean, 4)} ± {num(sd, 4)}"

    rows = [[TASK_NAMES[r["task"]], r["model"], cell(r["init_mean"], r["init_sd"]),
             cell(r["final_mean"], r["final_sd"]), int(r["n"])] for _, r in vs.iterrows()]
    return markdown_table(rows, ["Task", "Model", "At initialisation", "At the last epoch", "Seeds"])


def sweep_section(f: Findings) -> str:
    """Each swept value against the preset at its default value and against no-attention; each of the two is a
    family of its task, Holm-adjusted."""
    sw = f.table("sweep")
    if sw.empty:
        return "_No sweep in this configuration._\n"
    entries = []
    for _, r in sw.iterrows():
        task, preset = r["task"], r["preset"]
        group = Group(f"{r['key']}={r['value']}", float(r["mean"]), float(r["sd"]), int(r["n"]))
        cmps = []
        for ref_model in (preset, CONTROL):
            ref = f.group(task, ref_model)
            name = "default" if ref_model == preset else CONTROL
            margin = math.nan if task == LM else equivalence_margin(f, task)
            cmps.append(None if ref is None else compare(group, Group(name, ref.mean, ref.sd, ref.n), task != LM,
                                                         unit(task), margin=margin))
        entries.append((task, preset, group, cmps))
    # (a language model's sweep compares perplexities, not their logs: no margin in those units, no equivalence)
    for which in (0, 1):  # Holm within each task, separately against the default value and against the control
        for task in dict.fromkeys(e[0] for e in entries):
            idx = [i for i, e in enumerate(entries) if e[0] == task and e[3][which] is not None]
            for i, c in zip(idx, adjust([entries[i][3][which] for i in idx])):
                entries[i][3][which] = c
    rows = []
    for task, preset, group, cmps in entries:
        cells = [TASK_NAMES.get(task, task), preset, group.label, mean_sd_text(group)]
        for cmp in cmps:
            cells += (["n/a"] * 3 if cmp is None else
                      [cmp.text(), p_text(cmp.p_adjusted), NO_CLAIM if f.synthetic else cmp.verdict])
        rows.append(cells)
    header = ["Task", "Preset", "Value", "Ours (mean ± sd)", "vs the default value", "Holm p", "Verdict",
              f"vs {CONTROL}", "Holm p", "Verdict"]
    return "\n".join(sweep_defaults(f)) + "\n\n" + markdown_table(rows, header)


def sweep_defaults(f: Findings) -> list[str]:
    """One line per swept preset and key: the default value its swept values are compared with, and the seeds of
    the two reference groups (the preset's and no-attention's rows of Table I)."""
    lines = []
    sw = f.table("sweep")
    for (task, preset, key), rows in sw.groupby(["task", "preset", "key"], sort=False):
        base = rows["base_value"].iloc[0] if "base_value" in rows else math.nan
        default = f"{float(base):g}" if num(base) != "n/a" else "the configuration's"
        refs = [(name, f.group(task, name)) for name in (preset, CONTROL)]
        seeds = ", ".join(f"{name} n = {ref.n}" for name, ref in refs if ref is not None)
        lines.append(f"- {TASK_NAMES.get(task, task)}: {preset} at {key} = {default} (its row of Table I) is "
                     f"\"default\"; the reference groups' seeds: {seeds or 'none'}; the swept values' seeds are "
                     f"in the table (Welch's test allows unequal seeds).")
    return lines


# ------------------------------------------------------------------------------------------ causality


def audit_tolerance(f: Findings) -> float:
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
        relation = {1: "lower than", -1: "higher than", 0: "not resolved against"}.get(cmp.sign, "undetermined:")
        text += (f"\nLeakage diagnostic: `{LEAKY}` writes the whole window before reading; {cmp.text()} "
                 f"perplexity: **{relation}** that of the causal model.\n")
    return text

