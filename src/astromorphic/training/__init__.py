"""Training: one task/model/seed run, resumable, traceable, deterministic on CPU.

``astromorphic train --task T --model M --seed S --config CFG.yaml --out RUN_DIR [--data DATA_DIR]``
(library: ``train_run``). The step loop of an epoch: astromorphic.training.epoch; the schedule, random states and torch
settings: astromorphic.training.state. What a run directory holds and how its summary is computed: astromorphic.runs;
the metrics, probe and causality audit: astromorphic.training.evaluation; batches and per-task behaviour:
astromorphic.data.batches. Running the same command again resumes from the checkpoint; a killed epoch is
rerun from its start and gives the same numbers as an uninterrupted run. A run whose ``run.json`` says
``finished`` or ``diverged`` for the same fingerprint (configuration, data, seed, code) is not retrained.

Epochs: ``train.epochs`` of them, or fewer with early stopping (``train.early_stopping``, a patience in epochs on
the validation metric, :func:`astromorphic.runs.early_stop_epoch`); the learning-rate schedule spans
``train.epochs`` either way, and ``run.json`` says why a finished run stopped (``stopped``).

One process trains a run directory at a time (a lock in the directory; a second one fails at once naming
the first). A finished run of another fingerprint (other configuration, model, data or code) is replaced
only with ``--force`` (``force=True``); the workflow passes it, as snakemake has decided to rerun the job.
The prepared data are checked against their manifest's checksums when a run starts.

Definitions the tables rely on:

* ``train_loss``: mean cross-entropy over the epoch's training samples (LM: over its predicted tokens),
  measured in training mode (dropout on) as the epoch goes.
* ``lr``: the learning rate of the epoch's last optimiser step (epoch 0: the first step's).
* ``grad_norm``: mean over the epoch's steps of the global L2 norm of the gradient, before any clipping.
* Divergence: a non-finite training loss or gradient norm stops the run before the optimiser step; the
  status becomes ``diverged`` with the epoch and step, the rows of the completed epochs stay, and the
  command exits 0 so that a workflow carries on.

Testing hooks (not for production use): ``--inject-nonfinite-at EPOCH:STEP`` (or the environment variable
``ASTROMORPHIC_INJECT_NONFINITE``) replaces the training loss of that step (epoch counted from 1, step from 0)
by NaN; ``ASTROMORPHIC_TEST_STEP_DELAY`` (seconds) sleeps after every training step so that a test can
kill a run in the middle of an epoch.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from astromorphic.config import (
    ConfigError,
    load_config,
    require_device,
    seed_arg,
    validate_run,
    with_run_name_overrides,
)
from astromorphic.data.batches import TaskData, make_task_data
from astromorphic.training.evaluation import (
    attention_probe,
    audit_run,
    curve_point,
    evaluate,
    probe_columns,
    probe_flat,
)
from astromorphic.data import DataError, check_prepared
from astromorphic.runs import (
    TIME_COLUMNS,
    RunDir,
    RunError,
    code_hash,
    code_version,
    config_fingerprint,
    data_provenance,
    device_info,
    early_stop_epoch,
    selection_metric,
    git_commit,
    fingerprint,
    fmt_cell,
    package_versions,
)
from astromorphic.run_names import parse_model_name

from astromorphic.training.epoch import DEFAULT_SYNC_EVERY_CUDA, train_epoch  # noqa: F401 (the step loop; tests and bench use it)
from astromorphic.training.state import (  # noqa: F401 (part of this module's interface)
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
    torch_settings,
    warmup_step_count,
    lr_factor,
)
from astromorphic.tasks import LM_TASKS
from astromorphic import presets
from astromorphic.models import build_model
from astromorphic.io import sha256_file
from astromorphic.data import load_embedding, load_prepared
from astromorphic.attention import causal_read_kernel

LOG = logging.getLogger("astromorphic.training")
INJECT_ENV = "ASTROMORPHIC_INJECT_NONFINITE"
DELAY_ENV = "ASTROMORPHIC_TEST_STEP_DELAY"


@contextlib.contextmanager
def _run_log(log_file: Path) -> Iterator[None]:
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    LOG.addHandler(handler)
    old_level = LOG.level
    if LOG.getEffectiveLevel() > logging.INFO:
        LOG.setLevel(logging.INFO)
    try:
        yield
    finally:
        LOG.removeHandler(handler)
        handler.close()
        LOG.setLevel(old_level)


def _progress_enabled() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def _parse_inject(value: str | tuple | None) -> tuple[int, int] | None:
    if value is None or value == "":
        return None
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    epoch, _, step = str(value).partition(":")
    return int(epoch), int(step or 0)


# ================================================================================================ the run


def default_data_dir(config: dict, task: str) -> Path:
    return Path(config.get("results_dir") or "results") / "data" / task


def build_run_model(task: str, model_name: str, cfg: dict, data_info: dict) -> tuple[torch.nn.Module, Any]:
    """The model of ``task`` with the attention of preset ``model_name`` under the resolved task section."""
    spec = presets.spec_for(model_name, cfg["attention"], cfg["model"]["d_model"])
    return build_model(task, spec, dict(cfg["model"]), data_info), spec


def _spec_dict(spec: Any) -> Any:
    if is_dataclass(spec):
        return asdict(spec)
    return spec if isinstance(spec, dict) else repr(spec)


def train_run(
    task: str,
    model: str,
    seed: int,
    config: dict,
    out_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    force: bool = False,
    inject_nonfinite_at: tuple[int, int] | str | None = None,
    progress: bool | None = None,
) -> dict:
    """Train (or resume, or return) one run; returns the run record that is also in ``run.json``.

    Raises ``ValueError`` for an invalid configuration before reading any data, :class:`RunError` when the
    directory cannot be written, another process trains it, or it holds a finished run of another fingerprint
    and ``force`` is false, and ``DataError`` when the prepared data differ from their manifest. A run that
    diverges returns normally with ``status == "diverged"``.
    """
    seed = int(seed)
    preset, overrides = parse_model_name(model)
    if overrides:  # a sweep or ablation variant (astro@m_scale=32): the keys of its name over the config
        config = with_run_name_overrides(config, task, overrides)
    cfg = validate_run(config, task, preset)
    require_device(cfg, task)
    data_path = Path(data_dir) if data_dir is not None else default_data_dir(config, task)
    manifest_file = data_path / "manifest.json"
    if not manifest_file.exists():
        raise FileNotFoundError(f"no prepared data: {manifest_file} is missing (run `astromorphic prepare` first)")
    check_prepared(data_path, task, cfg["data"])  # the task's data, prepared as the configuration says

    identity = {"data_manifest_sha256": sha256_file(manifest_file), "code_hash": code_hash(task)}
    fp = fingerprint(task, model, seed, cfg, identity["data_manifest_sha256"], identity["code_hash"])
    run_dir = RunDir(Path(out_dir))
    run_dir.ensure_writable()
    with run_dir.lock():
        done = run_dir.completed(fp)
        if done is not None:
            return done
        run_dir.check_replace(fp, model, force)
        removed = run_dir.remove_temporaries()
        inject = _parse_inject(inject_nonfinite_at if inject_nonfinite_at is not None else os.environ.get(INJECT_ENV))
        device = resolve_device(cfg["train"]["device"])
        with _run_log(run_dir.log_file), torch_settings(int(cfg["train"]["threads"]), device, cfg["train"]["tf32"],
                                                         cfg["train"]["fill_uninitialized_memory"]):
            LOG.info("run %s/%s/seed%d -> %s (data %s)", task, model, seed, run_dir.path, data_path)
            for path in removed:
                LOG.info("removed %s, left by an interrupted write", path.name)
            run = TrainingRun.from_prepared(task, model, seed, config, cfg, run_dir, data_path, device)
            config_fp = config_fingerprint(task, model, seed, cfg)
            run.record.update({"preset": preset, "fingerprint": fp, "config_fingerprint": config_fp, **identity})
            show = _progress_enabled() if progress is None else progress
            run.execute(inject, float(os.environ.get(DELAY_ENV) or 0.0), show)
            return run_dir.read_record() or run.record


class TrainingRun:
    """The state of one training run: data, model, optimiser, schedule, record and metric rows."""

    @classmethod
    def from_prepared(cls, task, model, seed, config, cfg, run_dir: RunDir, data_path: Path, device) -> "TrainingRun":
        """The run on the prepared data in ``data_path`` (checked against its manifest)."""
        splits, manifest = load_prepared(data_path, verify=True)
        embedding = load_embedding(data_path, manifest) if manifest.get("embedding_file") else None
        return cls(task, model, seed, config, cfg, run_dir, splits, manifest, device, data_path, embedding)

    def __init__(self, task, model, seed, config, cfg, run_dir: RunDir, splits: dict, manifest: dict, device,
                 data_path: Path | None = None, embedding: torch.Tensor | None = None):  # fmt: skip
        self.task, self.seed, self.cfg, self.dir, self.device = task, seed, cfg, run_dir, device
        self.train = cfg["train"]
        self.dtype = self.train["dtype"]
        self.data: TaskData = make_task_data(task, splits, manifest, cfg)
        self.data.check_values()  # once here instead of on every forward (the model's value checks are off)
        self.data.to(device)  # every dataset of this project fits in the device's memory
        info = self.data.model_info()
        if embedding is not None:
            info["embedding"] = embedding
        seed_everything(seed)
        self.net, spec = build_run_model(task, parse_model_name(model)[0], cfg, info)
        self.net.to(device)
        self.net.check_values = False
        # The module the training steps call: the model itself, or its compiled form (train.compile; evaluation,
        # the probe and checkpoints use the model, whose parameters the compiled form shares).
        self.step_net = compiled_model(self.net, self.train.get("compile"))
        self.data_gen = torch.Generator().manual_seed(seed + 7_919)  # shuffling and augmentation
        self._optimiser()
        self.rows: list[dict] = []
        self.columns: list[str] = []
        self.record = _new_record(task, model, seed, config, cfg, spec, self, manifest, data_path)
        self.curve_every = self.train.get("curve_every_steps")
        if self.curve_every:
            self.record["learning_curve"] = {"metric": self.data.curve_metric, "every_steps": int(self.curve_every),
                                             "n_examples": None, "steps": [], "values": []}  # fmt: skip

    def add_curve_point(self, step: int) -> float:
        """Evaluate the learning curve after ``step`` optimiser steps; the seconds it took."""
        t0 = time.perf_counter()
        value, n = curve_point(self.net, self.data, self.device, self.dtype)
        curve = self.record["learning_curve"]
        curve["n_examples"] = n
        curve["steps"].append(int(step))
        curve["values"].append(value)
        return time.perf_counter() - t0

    def _optimiser(self) -> None:
        t = self.train
        # The fused implementation: one kernel for all parameters (CPU and CUDA), instead of a loop over them.
        self.optimizer = torch.optim.AdamW(
            self.net.parameters(), lr=t["lr"], betas=tuple(t["betas"]), eps=t["eps"], weight_decay=t["weight_decay"],
            fused=True,
        )
        self.steps_per_epoch = self.data.n_train_batches()
        total = self.steps_per_epoch * int(t["epochs"])
        self.warmup = warmup_step_count(t, self.steps_per_epoch)
        factor = lambda s: lr_factor(  # noqa: E731
            s, total_steps=total, warmup_steps=self.warmup, schedule=t["schedule"], min_ratio=t["min_lr_ratio"]
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    # ------------------------------------------------------------------ checkpoint

    # record keys that travel with the checkpoint
    CARRIED = ("causality_audit_init", "resumed_from_epochs", "learning_curve")

    def save(self, epoch: int) -> None:
        self.dir.save_checkpoint({
            "fingerprint": self.record["fingerprint"],
            "epoch": epoch,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(self.data_gen, self.device),
            "rows": self.rows,
            "columns": self.columns,
            "probe_init": self.record["probe_init"],
            "record": {k: self.record[k] for k in self.CARRIED if k in self.record},
        })  # fmt: skip

    def resume(self) -> int | None:
        """Restore the last finished epoch from the checkpoint; its number, or None for a fresh start."""
        state = self.dir.load_checkpoint(self.record["fingerprint"], LOG)
        if state is None:
            return None
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], self.data_gen, self.device)
        self.rows, self.columns = state["rows"], state["columns"]
        self.record["probe_init"] = state["probe_init"]
        self.record.update({k: v for k, v in state["record"].items() if k in self.CARRIED})
        epoch = int(state["epoch"])
        self.record["resumed_from_epochs"] = [*self.record["resumed_from_epochs"], epoch]
        LOG.info("resuming after epoch %d from %s", epoch, self.dir.checkpoint_file)
        return epoch

    def publish(self) -> None:
        self.dir.publish(self.task, self.record, self.columns, self.rows)

    # ------------------------------------------------------------------ epochs

    def measure(self) -> tuple[dict, list[dict]]:
        metrics = evaluate(self.net, self.data, self.device, self.dtype)
        return metrics, attention_probe(self.net, self.data.probe_batch(), self.device, self.dtype)

    def initial_epoch(self) -> None:
        """Epoch 0: the model at initialisation."""
        t0 = time.perf_counter()
        metrics, probe = self.measure()
        self.record["probe_init"] = probe
        if self.curve_every:
            self.add_curve_point(0)
        if self.data.audited:
            self.record["causality_audit_init"] = audit_run(self.net, self.data, self.device, self.dtype, self.seed)
        self.columns = ["epoch", "train_loss", *self.data.metrics, "lr", "grad_norm", *probe_columns(probe),
                        *TIME_COLUMNS]  # fmt: skip
        lr = self.optimizer.param_groups[0]["lr"]
        self.rows.append({"epoch": 0, "train_loss": None, **metrics, "lr": lr, "grad_norm": None, **probe_flat(probe),
                          "time_epoch_s": time.perf_counter() - t0, "time_throughput": None})  # fmt: skip
        self.save(0)

    def epoch(self, epoch: int, inject, step_delay: float, show_progress: bool) -> bool:
        """Train and evaluate one epoch; False when it diverged (the record says where)."""
        outcome = train_epoch(self, epoch, inject, step_delay, show_progress)
        if outcome["diverged"] is not None:
            div = outcome["diverged"]
            self.record.update(status="diverged", diverged_epoch=epoch, divergence=div)
            LOG.warning("diverged at epoch %d step %d: %s = %s", epoch, div["step"], div["quantity"], div["value"])
            return False
        t_eval = time.perf_counter()
        metrics, probe = self.measure()
        eval_s = time.perf_counter() - t_eval
        train_s = outcome["train_s"]
        self.rows.append({
            "epoch": epoch, "train_loss": outcome["loss"], **metrics, "lr": outcome["lr"],
            "grad_norm": outcome["grad_norm"], **probe_flat(probe), "time_epoch_s": train_s + eval_s,
            "time_throughput": outcome["units"] / train_s if train_s > 0 else None,
        })  # fmt: skip
        self.save(epoch)
        self.publish()
        LOG.info("epoch %d: %s", epoch, self.brief())
        return True

    def execute(self, inject, step_delay: float, show_progress: bool) -> None:
        resumed = self.resume()
        if resumed is None:
            self.dir.start_fresh(self.record)  # nothing of a run by other code or configuration stays
            self.initial_epoch()
        start = resumed or 0
        self.publish()  # on resume this also drops a row half-written before a kill
        LOG.info("epoch %d (%s): %s", start, "restored" if resumed is not None else "initialisation", self.brief())
        patience = self.train.get("early_stopping")
        for epoch in range(start + 1, int(self.train["epochs"]) + 1):
            if early_stop_epoch(self.task, self.rows, patience) is not None:
                break
            if not self.epoch(epoch, inject, step_delay, show_progress):
                break
        if self.record["status"] == "running":
            self.record["status"] = "finished"
            self.record["stopped"] = self.stop_reason(patience)
        if self.data.audited:
            self.record["causality_audit"] = audit_run(self.net, self.data, self.device, self.dtype, self.seed)
        self.publish()
        stopped = (self.record.get("stopped") or {}).get("reason")
        LOG.info("run %s after %d epochs%s", self.record["status"], self.record["epochs_completed"],
                 f" ({stopped})" if stopped else "")

    def stop_reason(self, patience: int | None) -> dict:
        """Why a finished run stopped: ``{"reason": "early_stopping", "epoch", "patience", "metric"}`` or
        ``{"reason": "max_epochs", "epoch"}``."""
        last = int(self.rows[-1]["epoch"])
        if early_stop_epoch(self.task, self.rows, patience) == last and last < int(self.train["epochs"]):
            return {"reason": "early_stopping", "epoch": last, "patience": int(patience),
                    "metric": selection_metric(self.task, self.rows)[0]}  # fmt: skip
        return {"reason": "max_epochs", "epoch": last}

    def brief(self) -> str:
        row = self.rows[-1]
        keys = ["train_loss", *self.data.metrics, "lr", "grad_norm"]
        return ", ".join(f"{k}={fmt_cell(row.get(k))}" for k in keys if row.get(k) is not None)


def _new_record(task, model, seed, config, cfg, spec, run: TrainingRun, manifest: dict, data_path: Path) -> dict:
    threads = int(cfg["train"]["threads"])
    return {
        "task": task,
        "model": model,
        "seed": seed,
        "status": "running",
        "label": config.get("label", ""),
        "synthetic_config": bool(config.get("synthetic", False)),
        "config": cfg,
        "attention_spec": _spec_dict(spec),
        "n_parameters": sum(p.numel() for p in run.net.parameters()),
        "steps_per_epoch": run.steps_per_epoch,
        "warmup_steps": run.warmup,
        "epochs": int(cfg["train"]["epochs"]),
        "epochs_completed": 0,
        "diverged_epoch": None,
        "divergence": None,
        "code_version": code_version(),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "device": device_info(run.device, threads),
        "precision": _precision(cfg["train"], run.device),
        "causal_kernel": _causal_kernel(task, spec, run.device),
        "data_dir": str(data_path),
        "data_synthetic": bool(manifest.get("synthetic", False)),
        "data_source": manifest.get("source"),
        "data": data_provenance(manifest),
        "probe_init": [],
        "resumed_from_epochs": [],
    }


def compiled_model(net: torch.nn.Module, mode: str | None) -> torch.nn.Module:
    """``net`` compiled with ``torch.compile(mode=mode)`` (shapes static, as every batch but an epoch's last has
    them), or ``net`` itself when ``mode`` is None. Random operations draw from the eager generator
    (inductor's ``fallback_random``), so that a compiled run draws the same dropout masks as an eager one."""
    if mode is None:
        return net
    import torch._inductor.config as inductor_config  # deferred: loads the compiler stack only when compiling

    inductor_config.fallback_random = True
    return torch.compile(net, mode=mode, dynamic=False)


def _precision(train: dict, device: torch.device) -> dict:
    """What arithmetic the run used: autocast dtype, TF32, and the astromorphic core (always float32)."""
    return {
        "dtype": train["dtype"],
        "tf32": bool(train["tf32"]) and device.type == "cuda",
        "compile": train.get("compile"),
        "fill_uninitialized_memory": bool(train["fill_uninitialized_memory"]),
        "astromorphic_core": "float32",  # astromorphic.attention: the sigmoid state needs it (docs/decisions.md)
    }


def _causal_kernel(task: str, spec: Any, device: torch.device) -> str | None:
    """The causal sigmoid read that runs (astromorphic.kernels), or None where the run has none (classifiers,
    softmax, no attention, the leaky diagnostic, the gate-only control; without the sigmoid the read is
    PyTorch's: "torch")."""
    return causal_read_kernel(spec, device) if task in LM_TASKS else None


# ================================================================================================ command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astromorphic train",
        description="Train one task/model/seed run (resumes from its checkpoint; a finished run returns at once). "
        "Training speed: `astromorphic bench throughput`.",
    )
    parser.add_argument("--task", required=True, help="imdb, cifar10 or wikitext2")
    parser.add_argument("--model", required=True, help="model preset, e.g. vanilla, linearized, astro")
    parser.add_argument("--seed", type=seed_arg, default=0, help="0..2**63-1 (default: %(default)s)")
    parser.add_argument("--config", required=True, help="configuration YAML")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--data", help="prepared data directory (default: <results_dir>/data/<task>)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one configuration value, e.g. tasks.imdb.attention.alpha=0.3 (VALUE is read as YAML; repeatable)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a finished run of another configuration, model, data or code in --out (otherwise an error)",
    )
    parser.add_argument("--inject-nonfinite-at", help=argparse.SUPPRESS)  # testing hook, see the module docstring
    return parser


def main(argv: list[str] | None = None) -> int:
    """``astromorphic train``: every error is one line on stderr and a non-zero exit (2: configuration)."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        config = load_config(args.config, args.set)
        record = train_run(args.task, args.model, args.seed, config, args.out, args.data, force=args.force,
                           inject_nonfinite_at=args.inject_nonfinite_at)  # fmt: skip
    except (ConfigError, ValueError) as exc:
        LOG.debug("invalid run", exc_info=True)
        return _error(str(exc), 2)
    except (RunError, DataError) as exc:
        return _error(str(exc), 1)
    except OSError as exc:  # a full disk, a vanished folder: say which file
        LOG.debug("I/O error", exc_info=True)
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}" if where else str(exc), 1)
    LOG.info("%s: status %s", args.out, record.get("status"))
    return 0


def _error(message: str, code: int) -> int:
    print(f"astromorphic train: error: {' '.join(message.split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
