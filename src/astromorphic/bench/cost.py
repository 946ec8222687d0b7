"""Projected device-hours of a configuration's whole plan from measured throughput: ``astromorphic bench cost``.

    astromorphic bench cost --config config/paper.yaml --throughput results/reference/bench/throughput_cpu_paper.csv
        [--out results/tables/cost] [--margin 2] [--dtype bfloat16] [--device cuda]

Reads the CSV that ``astromorphic bench throughput`` writes (one row per task, model, dtype and device: training
and evaluation units per second, samples or LM tokens) and lists every run the workflow trains under the
configuration (:func:`planned_runs`: models x seeds, the LM's extra models, the ablation variants and the sweep).
Each run's wall time is projected from its sizes (``throughput.run_sizes``: the data section's sizes, else the
paper's datasets, and the caps of ``train``) and the throughput of its preset (a run name's overrides, e.g.
``astro@m_scale=32``, change no size, so the preset's row stands for it):

    hours = (epochs x training units / training speed + (epochs + 1) x evaluation units / evaluation speed) / 3600

(the model is evaluated once at initialisation and after every epoch). Per task, the table gives the runs, the
projected hours of one run (mean and longest), the device-hours of running them one at a time, and the
device-hours when ``resources.runs_per_gpu`` (k) runs share a GPU. With ``--sharing`` (the CSV of
``workflow/scripts/gpu_share_check.sh``: k training processes of a task's model at once on one GPU), the measured
speed-up f(k) = (summed throughput of k processes) / (throughput of one alone) gives each group of k runs the
wall time of its longest run x k / f(k) (``sharing_basis`` "measured"); without a measurement for that task and
k, sharing is assumed to slow nothing down (f(k) = k, "assumed": a lower bound).

The SLURM time request of one training job (``slurm_runtime_min``) is the longest run of the task times
``--margin`` plus a fixed allowance for start-up, data loading and checkpoints (:data:`STARTUP_MIN`), rounded
up to 10 minutes; a group job of ``runs_per_gpu`` runs in parallel asks for the same. ``--slurm`` prints them as
the ``tasks.<task>.resources.runtime`` overrides to put in the configuration.

The numbers are a projection from a short measurement on random inputs; the caption of the report names the
throughput file it came from.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from astromorphic import io as aio
from astromorphic.config import (
    ConfigError,
    ablation_models,
    load_config,
    models_for_task,
    resolve_task_config,
    seeds_for,
    validate_run,
    with_run_name_overrides,
)
from astromorphic.run_names import format_model_name, parse_model_name
from astromorphic import tasks as task_registry
from astromorphic.tasks import in_order
from astromorphic.bench.throughput import run_sizes, tokens_per_word

TARGET_H = (24.0, 12.0)  # the reproduction's goal and stretch for the whole plan, in device-hours
STARTUP_MIN = 10  # minutes added to every SLURM time request: start-up, data loading, checkpoints
DEFAULT_MARGIN = 2.0
COLUMNS = [
    "task",
    "runs",
    "device",
    "dtype",
    "run_h_mean",
    "run_h_max",
    "serial_h",
    "runs_per_gpu",
    "sharing_speedup",
    "sharing_basis",
    "shared_h",
    "shared_h_sorted",
    "slurm_runtime_min",
    "basis",
]


# ------------------------------------------------------------------------------------------------ the plan


def sweep_models(config: dict, task: str) -> list[tuple[str, list[int]]]:
    """(run name, seeds) of the sweep on ``task``: one attention key changed at a time."""
    sweep = config.get("sweep") or {}
    if task not in (sweep.get("tasks") or []):
        return []
    seeds = sweep.get("seeds") or seeds_for(config, task)
    return [
        (format_model_name(preset, {entry["key"]: value}), list(seeds))
        for entry in sweep.get("grid") or []
        for preset in entry["models"]
        for value in entry["values"]
    ]


def planned_runs(config: dict, task: str | None = None) -> list[tuple[str, str, int]]:
    """(task, model, seed) of every run the workflow trains under ``config`` (validated), for one task or all."""
    tasks = [task] if task else in_order(config["tasks"])
    keys = []
    for t in tasks:
        plain = models_for_task(config, t) + ablation_models(config, t)
        runs = [(m, seeds_for(config, t)) for m in plain] + sweep_models(config, t)
        for model, seeds in runs:
            keys += [(t, model, int(s)) for s in seeds]
    return keys


def run_config(config: dict, task: str, model: str) -> dict:
    """The resolved task section a run trains with (its name's overrides applied)."""
    preset, overrides = parse_model_name(model)
    return validate_run(with_run_name_overrides(config, task, overrides), task, preset)


# ------------------------------------------------------------------------------------------------ throughput


def read_throughput(path: str | Path, device: str | None = None) -> pd.DataFrame:
    """The throughput CSV, the last row of each (task, model, dtype, device) kept; one device unless ``device``."""
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"--throughput {path}: cannot read it ({exc})") from None
    needed = {"task", "model", "dtype", "device", "train_throughput", "eval_throughput"}
    missing = sorted(needed - set(table.columns))
    if missing:
        raise ConfigError(
            f"--throughput {path}: columns {', '.join(missing)} are missing (write it with `astromorphic bench throughput --csv`)"
        )
    if device:
        table = table[table["device"] == device]
    devices = sorted(table["device"].unique())
    if len(devices) != 1:
        what = f"no rows for device {device!r}" if device else f"rows of several devices ({', '.join(devices)})"
        raise ConfigError(f"--throughput {path}: {what}; choose one with --device")
    return table.drop_duplicates(["task", "model", "dtype", "device"], keep="last").set_index(["task", "model", "dtype"])


def _speed(table: pd.DataFrame, path: str | Path, task: str, preset: str, dtype: str) -> pd.Series:
    try:
        return table.loc[(task, preset, dtype)]
    except KeyError:
        raise ConfigError(
            f"--throughput {path}: no row for task {task}, model {preset}, dtype {dtype}; measure it with "
            f"`astromorphic bench throughput --config CONFIG --task {task} --model {preset} "
            f"--set tasks.{task}.train.dtype={dtype} --csv {path}` (or choose the dtype with --dtype)"
        ) from None


def run_hours(sizes: dict, speed: pd.Series) -> float:
    """Projected wall time of one run: every epoch's training plus an evaluation at initialisation and per epoch."""
    train_s = sizes["epochs"] * sizes["train"] / float(speed["train_throughput"])
    eval_s = (sizes["epochs"] + 1) * sizes["eval"] / float(speed["eval_throughput"])
    return (train_s + eval_s) / 3600.0


def slurm_runtime_min(longest_run_h: float, margin: float = DEFAULT_MARGIN) -> int:
    """Minutes to request for one training job (or one group job of runs in parallel), rounded up to 10."""
    minutes = longest_run_h * 60.0 * margin + STARTUP_MIN
    return int(math.ceil(minutes / 10.0) * 10)


# ------------------------------------------------------------------------------------------------ the table


def read_sharing(path: str | Path | None) -> dict[tuple[str, str, int], float]:
    """Summed training throughput of k processes of one model at once on one GPU, per (task, model, k), from the
    sharing CSV (``gpu_step_bench.py``'s ``share`` stage, or ``gpu_share_check.sh``): an absolute speed, so that
    it is compared with the throughput file's own measurement of the same model (:func:`sharing_factor`)."""
    if not path:
        return {}
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"--sharing {path}: cannot be read ({exc})") from None
    needed = {"task", "model", "concurrency", "train_throughput"}
    if not needed <= set(table.columns):
        raise ConfigError(f"--sharing {path}: expected the columns {sorted(needed)} (gpu_step_bench.py, share stage)")
    total = table.groupby(["task", "model", "concurrency"])["train_throughput"].sum()
    return {(str(t), str(m), int(k)): float(v) for (t, m, k), v in total.items()}


def sharing_factor(totals: dict, table: pd.DataFrame, task: str, preset: str, dtype: str, k: int):
    """(f, model, baseline) of k runs of ``preset`` sharing a GPU: f = their summed throughput / the throughput of
    one run alone, or None without a measurement. The model is the preset itself when the sharing file measured
    it, else the task's first measured model (the preset family's stand-in). One baseline: one run alone is the
    throughput file's row of that model ("throughput file"), the speed every projected run starts from; without
    that row, the sharing file's own k = 1 ("sharing file, k = 1")."""
    measured = [m for (t, m, kk) in totals if t == task and kk == k]
    if not measured:
        return None, None, None
    model = preset if preset in measured else sorted(measured)[0]
    try:
        alone = float(table.loc[(task, model, dtype)]["train_throughput"])
        baseline = "throughput file"
    except KeyError:
        alone, baseline = totals.get((task, model, 1)), "sharing file, k = 1"
    if not alone:
        return None, None, None
    return totals[(task, model, k)] / alone, model, baseline


def expected_group_hours(hours: list[float], k: int) -> float:
    """Expected wall time of ``hours`` run in groups of ``k`` formed in a random order (each group as long as its
    longest run). Snakemake chunks a group's components in the iteration order of a set of jobs hashed by
    identity (``--group-components``), an order that is neither the plan's nor sorted by length; each chunk of a
    uniformly random order is a uniformly random subset, so the expectation is exact: a random s-subset of the
    sorted values x_1 <= ... <= x_n has its maximum at x_i with probability C(i-1, s-1) / C(n, s)."""
    values, n = sorted(hours), len(hours)

    def expected_max(size: int) -> float:
        return sum(x * math.comb(i, size - 1) for i, x in enumerate(values)) / math.comb(n, size)

    full, rest = divmod(n, k)
    return full * expected_max(k) + (expected_max(rest) if rest else 0.0)


def sorted_group_hours(hours: list[float], k: int) -> float:
    """Wall time of ``hours`` in groups of ``k`` formed from the runs sorted by length (the least any order gives)."""
    ordered = sorted(hours, reverse=True)
    return sum(max(ordered[i : i + k]) for i in range(0, len(ordered), k))


def step_basis(row: pd.Series, eval_batch_size: int) -> list[str]:
    """What a throughput row measured, and which of its inputs await a GPU measurement (``basis`` column)."""
    notes = []
    if isinstance(row.get("note"), str) and row.get("note"):
        notes.append(str(row["note"]))
    elif str(row.get("step", "")) != "train_epoch":
        notes.append("step: benchmark loop, not the training step (no TF32, foreach AdamW, one repeat) [awaits GPU]")
    else:
        spread = row.get("train_spread")
        notes.append(f"step: train_epoch, {int(row.get('repeats', 1))} repeats"
                     + (f", spread {float(spread):.0%}" if pd.notna(spread) else ""))  # fmt: skip
    measured_eval = row.get("eval_batch_size")
    if pd.isna(measured_eval) if measured_eval is not None else True:
        notes.append(f"eval: at the training batch, not {eval_batch_size} [awaits GPU]")
    elif int(measured_eval) != int(eval_batch_size):
        notes.append(f"eval: at batch {int(measured_eval)}, not {eval_batch_size} [awaits GPU]")
    return notes


def read_lm_counts(path: str | Path) -> dict:
    """The ``counts`` ({split: {tokens, words}}) of a prepared language-model manifest."""
    try:
        counts = json.loads(Path(path).read_text(encoding="utf-8"))["counts"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"--lm-manifest {path}: no token and word counts ({exc})") from None
    return {split: c for split, c in counts.items() if c.get("tokens") and c.get("words")}


def cost_table(config: dict, throughput: str | Path, *, dtype: str | None = None, device: str | None = None,
               margin: float = DEFAULT_MARGIN, sharing: str | Path | None = None,
               lm_counts: dict | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per task and a total: runs, projected hours per run, device-hours alone and shared, SLURM minutes.

    Runs sharing a GPU: each run takes its hours alone x k / f(k) (its preset's measured factor, else the task's
    measured model's, else f(k) = k, "assumed"); the task's shared hours are the expected wall time of the
    groups Snakemake forms (:func:`expected_group_hours`), ``shared_h_sorted`` what groups sorted by length
    would take. ``basis`` says what each input is and which await a GPU measurement."""
    table = read_throughput(throughput, device)
    totals = read_sharing(sharing)
    measured_device = str(table["device"].iloc[0])
    rows = []
    for task in dict.fromkeys(t for t, _, _ in planned_runs(config)):
        share = int(resolve_task_config(config, task)["resources"]["runs_per_gpu"])
        hours, stretched, dtypes, notes, factors = [], [], set(), {}, {}
        for _, model, _ in planned_runs(config, task):
            cfg = run_config(config, task, model)
            run_dtype = dtype or cfg["train"]["dtype"]
            dtypes.add(run_dtype)
            preset = parse_model_name(model)[0]
            speed = _speed(table, throughput, task, preset, run_dtype)
            hours.append(run_hours(run_sizes(task, cfg, lm_counts), speed))
            for note in step_basis(speed, int(cfg["train"]["eval_batch_size"])):
                notes[note] = None
            if task_registry.get(task).cost_unit == "tokens":
                notes[f"tokens: words x {tokens_per_word(lm_counts):.3f} GPT-2 tokens a word"] = None
            if share > 1:
                f, by, baseline = sharing_factor(totals, table, task, preset, run_dtype, share)
                factors[preset] = (f, by, baseline)
                stretched.append(hours[-1] * (share / f if f else 1.0))
        if share > 1:
            used = {(by, baseline) for f, by, baseline in factors.values() if f}
            if not used:
                notes["sharing: assumed, no slow-down (a lower bound) [awaits GPU]"] = None
            for by, baseline in sorted(used):
                own = [p for p, (f, b, _) in factors.items() if f and b == by]
                scope = "its preset" if own == [by] else f"{len(own)} presets"
                notes[f"sharing: measured on {by} (against the {baseline}), applied to {scope}"
                      + (" [awaits GPU per preset family]" if own != [by] else "")] = None  # fmt: skip
            distinct = {f for f, _, _ in factors.values() if f}
            # one factor for the task when one measurement stands for all its presets; k when none is measured
            speedup = (distinct.pop() if len(distinct) == 1 else None) if used else float(share)
        else:
            stretched, speedup, used = list(hours), None, set()
        rows.append({
            "task": task, "runs": len(hours), "device": measured_device, "dtype": ",".join(sorted(dtypes)),
            "run_h_mean": sum(hours) / len(hours), "run_h_max": max(hours), "serial_h": sum(hours),
            "runs_per_gpu": share, "sharing_speedup": speedup,
            "sharing_basis": ("measured" if used else "assumed") if share > 1 else None,
            "shared_h": expected_group_hours(stretched, share),
            "shared_h_sorted": sorted_group_hours(stretched, share),
            "slurm_runtime_min": slurm_runtime_min(max(stretched), margin),
            "basis": "; ".join(notes),
        })  # fmt: skip
    out = pd.DataFrame(rows, columns=COLUMNS)
    total = {
        "task": "total", "runs": int(out["runs"].sum()), "device": measured_device,
        "dtype": ",".join(sorted(set(",".join(out["dtype"]).split(",")))),
        "run_h_mean": out["serial_h"].sum() / out["runs"].sum(), "run_h_max": out["run_h_max"].max(),
        "serial_h": out["serial_h"].sum(), "runs_per_gpu": None, "sharing_speedup": None, "sharing_basis": None,
        "shared_h": out["shared_h"].sum(), "shared_h_sorted": out["shared_h_sorted"].sum(),
        "slurm_runtime_min": None, "basis": None,
    }  # fmt: skip
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)


def markdown(table: pd.DataFrame, config: dict, throughput: str | Path, sharing: str | Path | None = None,
             card: str | None = None) -> str:  # fmt: skip
    device = table["device"].iloc[0]
    unit = card or ("GPU" if device == "cuda" else "CPU" if device == "cpu" else device)
    measured = f"`{throughput}`" + (f" and the sharing measured in `{sharing}`" if sharing else "")
    head = (
        f"Projected {unit}-hours of the configuration '{config.get('label') or ''}' "
        f"({int(table['runs'].iloc[-1])} training runs), from the throughput measured in {measured}.\n"
        f"run_h: hours of one run (training, and evaluation at initialisation and after every epoch); serial_h: the "
        f"runs one at a time; shared_h: runs_per_gpu runs in parallel on one device, each slowed by k / "
        f"sharing_speedup (measured: the summed throughput of k runs at once against one run alone in the "
        f"throughput file; assumed: no slow-down, a lower bound), in groups formed in Snakemake's order (the "
        f"expectation over random orders); shared_h_sorted: the same with groups of runs of similar length; "
        f"slurm_runtime_min: the time request of one training job (longest run, slowed by sharing, x margin + "
        f"{STARTUP_MIN} min); basis: what each input is, [awaits GPU] marking those a new GPU measurement "
        f"(workflow/scripts/gpu_step_bench.py) replaces.\n\n"
    )
    shown = table.copy()
    for col in ("run_h_mean", "run_h_max", "serial_h", "shared_h", "shared_h_sorted"):
        shown[col] = shown[col].map(lambda h: f"{h:.3g}")
    for col in ("runs_per_gpu", "slurm_runtime_min"):
        shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else str(int(v)))
    shown["sharing_speedup"] = shown["sharing_speedup"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    for col in ("sharing_basis", "basis"):
        shown[col] = shown[col].fillna("")
    return head + shown.to_markdown(index=False) + "\n" + target_lines(table, unit)


def speedup_needed(table: pd.DataFrame, target_h: float) -> tuple[float, str, float | None]:
    """(the step speed-up of every run that brings the plan's shared hours to ``target_h``; the costliest task;
    the speed-up of that task's steps alone that does, None when the other tasks already exceed the target)."""
    tasks = table[table["task"] != "total"].set_index("task")["shared_h"]
    top = str(tasks.idxmax())
    rest = float(tasks.sum() - tasks[top])
    return float(tasks.sum()) / target_h, top, (float(tasks[top]) / (target_h - rest) if target_h > rest else None)


def target_lines(table: pd.DataFrame, unit: str) -> str:
    lines = []
    for target in TARGET_H:
        every, top, alone = speedup_needed(table, target)
        how = f"; or {top}'s alone {alone:.2f}x" if alone else f"; {top}'s alone cannot (the other tasks exceed it)"
        lines.append(f"- {target:g} {unit}-hours (shared_h): every step {every:.2f}x faster{how}")
    return "\nSpeed-up of the training and evaluation steps that the shared hours need to reach:\n" + "\n".join(lines) + "\n"


def write(table: pd.DataFrame, out_stem: str | Path, config: dict, throughput: str | Path,
          sharing: str | Path | None = None, card: str | None = None) -> list[Path]:  # fmt: skip
    out_stem = Path(out_stem)
    csv_path, md_path = out_stem.with_suffix(".csv"), out_stem.with_suffix(".md")
    aio.write_text(csv_path, table.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    aio.write_text(md_path, markdown(table, config, throughput, sharing, card))
    return [csv_path, md_path]


def runtime_overrides(table: pd.DataFrame) -> list[str]:
    """``--set`` assignments of each task's SLURM time request (``tasks.<task>.resources.runtime=MINUTES``)."""
    return [f"tasks.{r.task}.resources.runtime={int(r.slurm_runtime_min)}" for r in table.itertuples() if r.task != "total"]


def group_components(config: dict) -> list[str]:
    """``train_<task>=<runs_per_gpu>`` of the tasks whose runs share a GPU (snakemake --group-components)."""
    out = []
    for task in config["tasks"]:
        share = int(resolve_task_config(config, task)["resources"]["runs_per_gpu"])
        if share > 1:
            out.append(f"train_{task}={share}")
    return out


# ------------------------------------------------------------------------------------------------ the device script

STEP_COLUMNS = ["task", "model", "dtype", "device", "unit", "batch_size", "train_throughput", "eval_throughput",
                "step", "repeats", "train_spread", "eval_batch_size", "eval_spread", "tf32", "compile",
                "fill_uninitialized_memory", "sync_every", "settings", "note"]  # fmt: skip


def step_bench_inputs(folder: str | Path, fallback: str | Path, variant: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cost table's inputs from ``workflow/scripts/gpu_step_bench.py``'s CSVs in ``folder``: (throughput rows,
    sharing rows) of one ``variant``, "eager" (the configuration as it runs: the baseline and lm stages' eager
    rows) or "best" (the fastest run settings: the rows measured with them). A preset the call did not measure
    takes its row of ``fallback`` (an earlier throughput file) scaled by the ratio of the task's astro step,
    measured now, to its row there; its note says so. Sharing: the share stage's rows of the variant."""
    folder = Path(folder)
    steps = pd.read_csv(folder / "steps.csv")
    steps = steps[steps["step"] == "train_epoch"]
    share_file = folder / "share.csv"
    share = pd.read_csv(share_file) if share_file.exists() else pd.DataFrame(columns=["variant"])
    share = share[share["variant"] == variant]
    best = json.loads(share["settings"].iloc[0]) if variant == "best" and len(share) else None
    if variant == "eager":
        chosen = steps[steps["settings"] == "{}"]
    else:
        if best is None:  # without a share stage, the settings of the presets stage are the best
            rows = steps[steps["stage"] == "presets"]
            best = json.loads(rows["settings"].iloc[0]) if len(rows) else {}
        chosen = steps[steps["settings"] == json.dumps(best, sort_keys=True)]
    chosen = chosen.drop_duplicates(["task", "model", "dtype"], keep="last").assign(note="")
    old = pd.read_csv(fallback)
    scaled = []
    for (task, dtype), group in chosen.groupby(["task", "dtype"]):
        anchor = group[group["model"] == "astro"]
        if anchor.empty:
            continue
        ref = old[(old["task"] == task) & (old["model"] == "astro") & (old["dtype"] == dtype)]
        if ref.empty:
            continue
        train_ratio = float(anchor["train_throughput"].iloc[0]) / float(ref["train_throughput"].iloc[-1])
        eval_ratio = float(anchor["eval_throughput"].iloc[0]) / float(ref["eval_throughput"].iloc[-1])
        for _, row in old[(old["task"] == task) & (old["dtype"] == dtype)].iterrows():
            if row["model"] in set(group["model"]):
                continue
            scaled.append({**row.to_dict(), "train_throughput": row["train_throughput"] * train_ratio,
                           "eval_throughput": row["eval_throughput"] * eval_ratio, "step": "scaled",
                           "note": f"step: {row['model']} scaled by astro's measured step ({train_ratio:.2f}x "
                                   f"{Path(fallback).name}) [awaits GPU per preset]"})  # fmt: skip
    out = pd.concat([chosen, pd.DataFrame(scaled)], ignore_index=True)
    rest = old[~old.set_index(["task", "dtype"]).index.isin(out.set_index(["task", "dtype"]).index)]
    out = pd.concat([out, rest], ignore_index=True)  # tasks the call did not measure: the earlier file as it is
    share_rows = share[["task", "model", "concurrency", "process", "train_throughput"]]
    return out.reindex(columns=STEP_COLUMNS), share_rows


def step_bench_cost(folder: str | Path, config_path: str | Path, gpu_dir: str | Path,
                    fallback: str | Path | None = None) -> list[Path]:  # fmt: skip
    """Write ``gpu_dir``/cost_paper.{csv,md} (the configuration as it runs, eager) and cost_paper_best.{csv,md}
    (with the fastest settings the call measured) from the device script's CSVs in ``folder``, with the inputs
    beside them (``folder``/throughput_<variant>.csv, share_<variant>.csv). The card is the one the CSVs name;
    presets the call did not measure come from ``fallback`` (default: the configuration's report.cost_throughput)."""
    folder, gpu_dir = Path(folder), Path(gpu_dir)
    config = load_config(config_path)
    fallback = fallback or config["report"]["cost_throughput"]
    card = pd.read_csv(folder / "steps.csv")["gpu"].iloc[0]
    written = []
    for variant, stem in (("eager", "cost_paper"), ("best", "cost_paper_best")):
        throughput, share = step_bench_inputs(folder, fallback, variant)
        t_path, s_path = folder / f"throughput_{variant}.csv", folder / f"share_{variant}.csv"
        aio.write_text(t_path, throughput.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
        aio.write_text(s_path, share.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
        table = cost_table(config, t_path, sharing=s_path if len(share) else None)
        written += write(table, gpu_dir / stem, config, t_path, s_path if len(share) else None, card=card)
    return written


# ------------------------------------------------------------------------------------------------ command


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, list(args.set))
        counts = read_lm_counts(args.lm_manifest) if args.lm_manifest else None
        table = cost_table(config, args.throughput, dtype=args.dtype, device=args.device, margin=args.margin,
                           sharing=args.sharing, lm_counts=counts)  # fmt: skip
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2
    print(markdown(table, config, args.throughput, args.sharing), end="")
    if args.slurm:
        print("\nSLURM time requests (minutes), as configuration overrides:")
        for item in runtime_overrides(table):
            print(f"  {item}")
        groups = group_components(config)
        if groups:
            print(f"Runs sharing a GPU: add `--group-components {' '.join(groups)}` to the snakemake command")
    if args.out:
        for path in write(table, args.out, config, args.throughput, args.sharing):
            print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    """The ``cost`` sub-command of ``astromorphic bench``."""
    p = sub.add_parser("cost", help="projected device-hours of a configuration's runs from measured throughput")
    p.add_argument("--config", required=True, help="configuration YAML")
    p.add_argument("--throughput", required=True, help="CSV of `astromorphic bench throughput`")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="configuration override")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), help="throughput rows of this dtype (default: train.dtype)")
    p.add_argument("--device", help="throughput rows of this device, when the CSV has several")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="SLURM time request: longest run x margin")
    p.add_argument("--slurm", action="store_true", help="print the SLURM time requests as configuration overrides")
    p.add_argument("--out", help="write OUT.csv and OUT.md")
    p.add_argument("--sharing", help="CSV of K runs at once on one GPU (gpu_step_bench.py's share stage, or "
                   "gpu_share_check.sh): their summed throughput")  # fmt: skip
    p.add_argument("--lm-manifest", help="a prepared WikiText-2 manifest.json: its GPT-2 token and word counts "
                   "convert the language model's sizes (default: the validation and test splits' counts)")  # fmt: skip
