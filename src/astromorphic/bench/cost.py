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
from astromorphic.tasks import in_order
from astromorphic.bench.throughput import run_sizes

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
    "slurm_runtime_min",
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


def read_sharing(path: str | Path | None) -> dict[tuple[str, int], float]:
    """Measured speed-up f(k) of k runs sharing one GPU, per (task, k), from gpu_share_check.sh's CSV."""
    if not path:
        return {}
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"--sharing {path}: cannot be read ({exc})") from None
    needed = {"task", "concurrency", "train_throughput"}
    if not needed <= set(table.columns):
        raise ConfigError(f"--sharing {path}: expected the columns {sorted(needed)} (gpu_share_check.sh)")
    total = table.groupby(["task", "concurrency"])["train_throughput"].sum()
    out = {}
    for (task, k), value in total.items():
        if (task, 1) in total.index and total[(task, 1)] > 0:
            out[(str(task), int(k))] = float(value / total[(task, 1)])
    return out


def cost_table(config: dict, throughput: str | Path, *, dtype: str | None = None, device: str | None = None,
               margin: float = DEFAULT_MARGIN, sharing: str | Path | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per task and a total: runs, projected hours per run, device-hours alone and shared, SLURM minutes."""
    table = read_throughput(throughput, device)
    speedups = read_sharing(sharing)
    measured_device = str(table["device"].iloc[0])
    rows = []
    for task in dict.fromkeys(t for t, _, _ in planned_runs(config)):
        hours, dtypes = [], set()
        for _, model, _ in planned_runs(config, task):
            cfg = run_config(config, task, model)
            run_dtype = dtype or cfg["train"]["dtype"]
            dtypes.add(run_dtype)
            hours.append(run_hours(run_sizes(task, cfg), _speed(table, throughput, task, parse_model_name(model)[0], run_dtype)))
        share = int(resolve_task_config(config, task)["resources"]["runs_per_gpu"])
        groups = [sorted(hours, reverse=True)[i : i + share] for i in range(0, len(hours), share)]
        measured = speedups.get((task, share)) if share > 1 else None
        speedup = measured if measured else float(share)
        stretch = share / speedup  # how much longer each run of a full group takes than alone
        rows.append({
            "task": task, "runs": len(hours), "device": measured_device, "dtype": ",".join(sorted(dtypes)),
            "run_h_mean": sum(hours) / len(hours), "run_h_max": max(hours), "serial_h": sum(hours),
            "runs_per_gpu": share, "sharing_speedup": speedup if share > 1 else None,
            "sharing_basis": ("measured" if measured else "assumed") if share > 1 else None,
            "shared_h": sum(max(g) * (stretch if len(g) == share else len(g) / speedups.get((task, len(g)), len(g)))
                            for g in groups),
            "slurm_runtime_min": slurm_runtime_min(max(hours) * stretch, margin),
        })  # fmt: skip
    out = pd.DataFrame(rows, columns=COLUMNS)
    total = {
        "task": "total", "runs": int(out["runs"].sum()), "device": measured_device,
        "dtype": ",".join(sorted(set(",".join(out["dtype"]).split(",")))),
        "run_h_mean": out["serial_h"].sum() / out["runs"].sum(), "run_h_max": out["run_h_max"].max(),
        "serial_h": out["serial_h"].sum(), "runs_per_gpu": None, "sharing_speedup": None, "sharing_basis": None,
        "shared_h": out["shared_h"].sum(),
        "slurm_runtime_min": None,
    }  # fmt: skip
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)


def markdown(table: pd.DataFrame, config: dict, throughput: str | Path) -> str:
    device = table["device"].iloc[0]
    unit = "GPU" if device == "cuda" else "CPU" if device == "cpu" else device
    head = (
        f"Projected {unit}-hours of the configuration '{config.get('label') or ''}' "
        f"({int(table['runs'].iloc[-1])} training runs), from the throughput measured in `{throughput}`.\n"
        f"run_h: hours of one run; serial_h: the runs one at a time; shared_h: runs_per_gpu runs in parallel on "
        f"one device, at the speed-up sharing_speedup (measured: the summed throughput of that many runs at once "
        f"against one alone; assumed: no slow-down, a lower bound); slurm_runtime_min: the time request of one "
        f"training job (longest run, slowed by sharing, x margin + {STARTUP_MIN} min).\n\n"
    )
    shown = table.copy()
    for col in ("run_h_mean", "run_h_max", "serial_h", "shared_h"):
        shown[col] = shown[col].map(lambda h: f"{h:.3g}")
    for col in ("runs_per_gpu", "slurm_runtime_min"):
        shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else str(int(v)))
    shown["sharing_speedup"] = shown["sharing_speedup"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    shown["sharing_basis"] = shown["sharing_basis"].fillna("")
    return head + shown.to_markdown(index=False) + "\n"


def write(table: pd.DataFrame, out_stem: str | Path, config: dict, throughput: str | Path) -> list[Path]:
    out_stem = Path(out_stem)
    csv_path, md_path = out_stem.with_suffix(".csv"), out_stem.with_suffix(".md")
    aio.write_text(csv_path, table.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    aio.write_text(md_path, markdown(table, config, throughput))
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


# ------------------------------------------------------------------------------------------------ command


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, list(args.set))
        table = cost_table(config, args.throughput, dtype=args.dtype, device=args.device, margin=args.margin,
                           sharing=args.sharing)  # fmt: skip
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2
    print(markdown(table, config, args.throughput), end="")
    if args.slurm:
        print("\nSLURM time requests (minutes), as configuration overrides:")
        for item in runtime_overrides(table):
            print(f"  {item}")
        groups = group_components(config)
        if groups:
            print(f"Runs sharing a GPU: add `--group-components {' '.join(groups)}` to the snakemake command")
    if args.out:
        for path in write(table, args.out, config, args.throughput):
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
    p.add_argument("--sharing", help="CSV of workflow/scripts/gpu_share_check.sh: measured speed-up of runs sharing a GPU")
