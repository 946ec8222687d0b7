"""Learning speed, the ``learning_speed`` and ``speedups`` tables of ``astromorphic tables``.

At step resolution when the runs carry a learning curve (``learning_curve`` in ``run.json``: the metric on a
fixed held-out subset every k optimiser steps, step 0 = initialisation; ``learning_curves.csv`` of
``astromorphic aggregate``): per run, the first step whose accuracy reaches the threshold (classifiers), or the
step of the lowest validation perplexity (language model). A run that never reaches the threshold is censored
("not reached"), never dropped. Records without a curve (older runs) fall back to epoch resolution, from the
per-epoch metrics, and the table says which resolution each task has: a task is at step resolution only when
every one of its runs has a curve.

Beside them, the measures that need no chosen threshold (the findings page's learning-speed verdicts and the
steps-to-threshold figure): :func:`run_curves` (every run's curve of one task, at the finest resolution all its
runs share), :func:`curve_auc` (the mean of a curve over a fixed budget) and :func:`steps_to_thresholds` (the
first step at each of a range of thresholds).
"""

from __future__ import annotations

import math

import pandas as pd

from astromorphic import tasks as task_registry
from astromorphic.tables.aggregate import epochs_to_threshold
from astromorphic.tables.context import (
    ABLATION,
    DASH,
    TASK_NAMES,
    Context,
    Table,
    display_name,
    fmt_mean_sd,
    fmt_paper,
    fmt_pct,
    mean_sd,
)

BASELINE = "linearized"
PAPER_THRESHOLD = 0.85  # the paper's learning-speed criterion (Sec. IV-C-4): epochs to 85 % test accuracy


def first_reaching(steps, values, threshold: float) -> float:
    """First step (or epoch) whose value reaches ``threshold``; NaN when none does (censored)."""
    return epochs_to_threshold(steps, values, threshold)


def lowest(steps, values) -> float:
    """The step (or epoch) of the lowest finite value, the first one on ties; NaN when there is none."""
    best, where = math.inf, math.nan
    for step, value in zip(steps, values):
        if value is not None and math.isfinite(value) and value < best:
            best, where = value, float(step)
    return where


def curve_auc(steps, values, budget: float) -> float:
    """The mean of a learning curve over steps 0..``budget``: the trapezoid area over the recorded points, the
    curve read by linear interpolation at ``budget``, divided by ``budget``. NaN when the curve does not start at
    step 0, ends before ``budget`` or has a non-finite value on the way."""
    points = sorted((float(x), float(y)) for x, y in zip(steps, values))
    if not points or points[0][0] != 0 or points[-1][0] < budget or budget <= 0:
        return math.nan
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 >= budget:
            break
        if not (math.isfinite(y0) and math.isfinite(y1)):
            return math.nan
        if x1 > budget:  # the segment cut at the budget
            y1, x1 = y0 + (y1 - y0) * (budget - x0) / (x1 - x0), budget
        area += (x1 - x0) * (y0 + y1) / 2
    return area / budget


def curve_split(metric: str) -> str:
    """The split a learning curve was measured on, from its metric's name: 'validation', 'test', or 'held-out'."""
    name = str(metric)
    return "validation" if name.startswith("valid") else "test" if name.startswith("test") else "held-out"


def run_curves(curves_frame: pd.DataFrame, tidy: pd.DataFrame, task: str, metric: str) -> tuple[pd.DataFrame, str,
                                                                                                 str]:
    """Every finished run's learning curve on ``task``: (frame of ``model``, ``seed``, ``x``, ``value``; the unit
    of ``x``, 'steps' or 'epochs'; the curve's metric). At step resolution (``learning_curves.csv``) when every
    finished run of the task has a curve, else the per-epoch ``metric`` of ``runs.csv`` (epoch 0 = initialisation).
    Runs that are still running or diverged are left out, as in Table I."""
    columns = ["model", "seed", "x", "value"]
    runs = tidy[(tidy["task"] == task)] if not tidy.empty and "task" in tidy.columns else pd.DataFrame()
    if "status" in runs.columns:
        runs = runs[runs["status"] == "finished"]
    keys = set(zip(runs["model"], runs["seed"].astype(int))) if not runs.empty else set()
    c = curves_frame
    c = c[c["task"] == task] if not c.empty and "task" in c.columns else pd.DataFrame()
    if not c.empty and keys and keys <= set(zip(c["model"], c["seed"].astype(int))):
        c = c[[k in keys for k in zip(c["model"], c["seed"].astype(int))]]
        frame = c.rename(columns={"step": "x"})[columns]
        return frame.astype({"value": float}).reset_index(drop=True), "steps", str(c["metric"].iloc[0])
    if runs.empty or metric not in runs.columns:
        return pd.DataFrame(columns=columns), "epochs", metric
    frame = runs.rename(columns={"epoch": "x", metric: "value"})[columns]
    return frame.astype({"value": float}).reset_index(drop=True), "epochs", metric


def curve_budget(frame: pd.DataFrame) -> float:
    """The largest step (epoch) every run of ``frame`` (:func:`run_curves`) reached."""
    if frame.empty:
        return math.nan
    return float(frame.groupby(["model", "seed"])["x"].max().min())


def run_aucs(frame: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Per run (``model``, ``seed``): :func:`curve_auc` of its curve over 0..``budget``."""
    rows = [dict(model=model, seed=int(seed), auc=curve_auc(g["x"], g["value"], budget))
            for (model, seed), g in frame.groupby(["model", "seed"], sort=False)]
    return pd.DataFrame(rows, columns=["model", "seed", "auc"])


def threshold_grid(centre: float, span: float, step: float, highest: float | None = None) -> list[float]:
    """Thresholds from ``centre - span`` to ``centre + span`` every ``step``, within (0, 1], rounded to 1e-6;
    with ``highest`` (the highest value any curve reaches), continued upwards to the first threshold above it, so
    the grid runs until no seed reaches it."""
    n = int(round(span / step))
    top = n
    if highest is not None and math.isfinite(highest):
        top = max(n, math.floor(round((highest - centre) / step, 6)) + 1)
    grid = [round(centre + k * step, 6) for k in range(-n, top + 1)]
    return [t for t in grid if 0 < t <= 1]


def steps_to_thresholds(frame: pd.DataFrame, thresholds) -> pd.DataFrame:
    """Per run and threshold: the first step (epoch) whose value reaches it (NaN: never, censored)."""
    rows = []
    for (model, seed), g in frame.groupby(["model", "seed"], sort=False):
        g = g.sort_values("x")
        for t in thresholds:
            rows.append(dict(model=model, seed=int(seed), threshold=float(t),
                             reached_at=first_reaching(g["x"], g["value"], float(t))))
    return pd.DataFrame(rows, columns=["model", "seed", "threshold", "reached_at"])


def curves(ctx: Context, task: str) -> pd.DataFrame:
    c = ctx.curves
    return c[c["task"] == task] if not c.empty and "task" in c.columns else pd.DataFrame()


def has_curves(ctx: Context, task: str, models: list[str]) -> bool:
    """True when every run of ``models`` on ``task`` has a learning curve."""
    c = curves(ctx, task)
    if c.empty:
        return False
    have = set(zip(c["model"], c["seed"].astype(int)))
    runs = [(m, int(s)) for m in models for s in ctx.runs(task, m)["seed"]]
    return bool(runs) and all(r in have for r in runs)


def curve_facts(ctx: Context, task: str) -> tuple[int, int]:
    """(every_steps, n_examples) of the task's curves (the largest, should runs differ)."""
    c = curves(ctx, task)
    return int(c["every_steps"].max()), int(c["n_examples"].max())


def per_seed(ctx: Context, task: str, model: str, threshold: float, steps: bool) -> tuple[list[float], int]:
    """Per seed: the first step (epoch) with accuracy >= threshold (NaN = never), and the last step (epoch) run."""
    if steps:
        rows, x, y = curves(ctx, task), "step", "value"
    else:
        rows, x, y = ctx.tidy[ctx.tidy["task"] == task], "epoch", "test_acc"
    rows = rows[rows["model"] == model]
    out, last = [], 0
    for _, curve in rows.groupby("seed", sort=True):
        curve = curve.sort_values(x)
        out.append(first_reaching(curve[x], curve[y].astype(float), threshold))
        last = max(last, int(curve[x].max()))
    return out, last


def speedup(fast: float, slow: float) -> float:
    """(slow - fast) / slow, as in the paper's Sec. IV-C-4."""
    if not (math.isfinite(fast) and math.isfinite(slow)) or slow <= 0:
        return math.nan
    return (slow - fast) / slow


def _speed_cell(values: list[float], last: int, what: str) -> tuple[str, float, float, int]:
    reached = [v for v in values if math.isfinite(v)]
    mean, sd, n = mean_sd(reached)
    if not values:
        return DASH, math.nan, math.nan, 0
    if n == 0:
        return f"not reached by {what} {last} (0/{len(values)} seeds)", math.nan, math.nan, 0
    text = fmt_mean_sd(mean, sd, n, 1)
    if n < len(values):
        text += f" ({n}/{len(values)} reached; rest not by {what} {last})"
    return text, mean, sd, n  # a censored mean (n < seeds): no speed-up is computed from it


def _paper(ctx: Context, task: str, model: str, metric: str) -> tuple[float, float, str]:
    paper = ctx.paper("learning_speed", task, model, metric)
    pv = float(paper["value"]) if paper is not None and not pd.isna(paper["value"]) else math.nan
    psd = float(paper["sd"]) if paper is not None and not pd.isna(paper["sd"]) else math.nan
    text = fmt_paper(pv, psd) if math.isfinite(pv) else (paper["note"] if paper is not None else DASH)
    return pv, psd, text


def _lm_rows(ctx: Context, task: str, rows: list, data: list) -> str:
    models = ctx.models(task)
    steps = has_curves(ctx, task, models)
    unit = "steps" if steps else "epochs"
    for model in models:
        runs = ctx.runs(task, model)
        ok = runs[runs["status"] != "diverged"] if "status" in runs.columns else runs
        if steps:
            c = curves(ctx, task)
            c = c[c["model"] == model]
            values = [lowest(g.sort_values("step")["step"], g.sort_values("step")["value"].astype(float))
                      for seed, g in c.groupby("seed", sort=True) if seed in set(ok["seed"])]
        else:
            values = [float(v) for v in ok.get("best_epoch", pd.Series(dtype=float))]
        mean, sd, n = mean_sd(values)
        pv, psd, _ = _paper(ctx, task, model, "epochs_to_best")
        text = fmt_mean_sd(mean, sd, n, 1)
        n_div = len(runs) - len(ok)
        if n_div:
            text = f"{text} ({n_div}/{len(runs)} diverged, left out)" if n else f"diverged ({n_div}/{len(runs)})"
        rows.append([TASK_NAMES[task], display_name(model),
                     f"{unit} to the lowest validation perplexity (paper: epochs to its best test perplexity)",
                     text, f"{n}/{len(runs)}", fmt_paper(pv, psd), DASH, DASH])
        data.append(dict(task=task, model=model, criterion=f"{unit}_to_best_valid_ppl", threshold=math.nan,
                         unit=unit, mean=mean, sd=sd, n_reached=n, n_seeds=len(runs), n_diverged=n_div,
                         paper_value=pv, paper_sd=psd, speedup_vs_linearized=math.nan,
                         paper_speedup_vs_linearized=math.nan))
    return resolution_note(ctx, task, steps)


def resolution_note(ctx: Context, task: str, steps: bool) -> str:
    if steps:
        every, n = curve_facts(ctx, task)
        return (f"{TASK_NAMES[task]}: step resolution, from the runs' learning curves (evaluated every {every} "
                f"optimiser steps on a fixed held-out subset of {n} examples; step 0 = initialisation).")
    return (f"{TASK_NAMES[task]}: epoch resolution: not every run records a learning curve (records made before "
            "curves were recorded), so the per-epoch test metrics are used.")


def learning_speed(ctx: Context) -> Table:
    rows, data, resolution = [], [], []
    for task in ctx.tasks():
        if task_registry.get(task).language_model:
            resolution.append(_lm_rows(ctx, task, rows, data))
            continue
        threshold = ctx.threshold(task)
        models = ctx.models(task) + ctx.ablations(task)
        steps = has_curves(ctx, task, models)
        unit = "steps" if steps else "epochs"
        resolution.append(resolution_note(ctx, task, steps))
        criterion = (f"optimiser steps to {100 * threshold:g} % accuracy on the held-out subset" if steps
                     else f"epochs to {100 * threshold:g} % test accuracy")
        stats = {}
        for model in models:
            values, last = per_seed(ctx, task, model, threshold, steps)
            stats[model] = (values, last, *_speed_cell(values, last, unit[:-1]))
        p_base_v = _paper(ctx, task, BASELINE, "epochs_to_threshold")[0]
        for model, (values, last, text, mean, sd, n) in stats.items():
            ablated = model.endswith(ABLATION)
            reference = BASELINE + ABLATION if ablated else BASELINE  # like for like
            base, is_ref = stats.get(reference), model == reference
            base_mean = base[3] if base and base[5] == len(base[0]) else math.nan
            complete = n == len(values) and n > 0
            pv, psd, paper_text = _paper(ctx, task, model, "epochs_to_threshold")
            ours_speed = speedup(mean, base_mean) if complete and not is_ref else math.nan
            paper_speed = speedup(pv, p_base_v) if not is_ref else math.nan
            speed_text = fmt_pct(ours_speed) if not is_ref else "(reference)"
            if not is_ref and not complete:
                speed_text = "n/a (not reached in every seed)"
            elif not is_ref and base is not None and not math.isfinite(base_mean):
                speed_text = f"n/a ({BASELINE} not reached in every seed)"
            rows.append([TASK_NAMES[task], display_name(model), criterion, text, f"{n}/{len(values)}", paper_text,
                         speed_text, fmt_pct(paper_speed) if not is_ref else "(reference)"])
            data.append(dict(task=task, model=model, criterion=f"{unit}_to_threshold", threshold=threshold, unit=unit,
                             mean=mean, sd=sd, n_reached=n, n_seeds=len(values), paper_value=pv, paper_sd=psd,
                             speedup_vs_linearized=ours_speed, paper_speedup_vs_linearized=paper_speed))
    header = ["Task", "Model", "Criterion", "Ours (mean ± sd)", "Seeds reached", "Paper (epochs to 85 %)",
              "Speed-up vs linearized", "Paper speed-up"]
    notes = [
        *resolution,
        "Step (epoch) 0 is the model at initialisation; a seed that never reaches the threshold is counted as "
        "'not reached' (censored), never dropped, and no mean speed-up is computed from a censored row.",
        "Our threshold is `report.threshold` (else `tasks.<task>.train.threshold`); the paper's criterion is 85 % "
        "test accuracy, counted in epochs: the paper's column is in epochs whatever our resolution.",
        "Speed-up = (slow − fast) / slow, with the linearized model [18] as the slow reference (paper Sec. IV-C-4); "
        "rows without the absolute position embedding are compared with linearized without it.",
        "Language model: our criterion is the step (epoch) of the lowest validation perplexity (the model a user "
        "would select), the paper's is the number of epochs to its best test perplexity; a diverged seed has no "
        "such step and is left out, and the row says how many diverged.",
    ]
    return Table("learning_speed", "Learning speed",
                 "Optimiser steps (or epochs, for runs without a learning curve) until accuracy first reaches the "
                 "threshold (classifiers) and to the lowest validation perplexity (language model), mean ± sample sd "
                 "over seeds.", pd.DataFrame(rows, columns=header), pd.DataFrame(data), notes)


def speedups(ctx: Context) -> Table:
    """The pairwise speed-ups of the Fig. 4 variants, ours next to the paper's."""
    speed = learning_speed(ctx).data
    rows, data = [], []
    for task in ctx.tasks():
        for fast, slow in task_registry.get(task).speedup_pairs:
            def pick(model: str, col: str) -> float:
                r = speed[(speed["task"] == task) & (speed["model"] == model)]
                if r.empty or (col == "mean" and r.iloc[0]["n_reached"] < r.iloc[0]["n_seeds"]):
                    return math.nan
                return float(r.iloc[0][col])

            ours = speedup(pick(fast, "mean"), pick(slow, "mean"))
            paper = speedup(pick(fast, "paper_value"), pick(slow, "paper_value"))
            rows.append([TASK_NAMES[task], fast, slow, fmt_pct(ours) if math.isfinite(ours) else "n/a",
                         fmt_pct(paper)])
            data.append(dict(task=task, fast=fast, slow=slow, speedup=ours, paper_speedup=paper))
    header = ["Task", "Faster", "Slower", "Speed-up (ours)", "Speed-up (paper)"]
    notes = ["Speed-up = (slow − fast) / slow of the mean steps (epochs) to the threshold; n/a where a row is "
             "censored or missing."]
    return Table("speedups", "Learning-speed gains", "Pairwise speed-ups of the Fig. 4 variants.",
                 pd.DataFrame(rows, columns=header), pd.DataFrame(data), notes)
