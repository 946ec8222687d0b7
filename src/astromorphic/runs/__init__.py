"""The run record: the only writer and reader of a run directory.

A run directory (``results/runs/<task>/<model>/seed<k>/``) holds

* ``metrics.csv``: one row per epoch (epoch 0 = the model at initialisation), rewritten atomically after
  every epoch. Columns: ``epoch``, ``train_loss``, the task metrics (``test_acc``; or ``valid_ppl``,
  ``test_ppl``, ``valid_word_ppl``, ``test_word_ppl``), ``lr``, ``grad_norm``, the probe columns, then the
  timing columns (prefix ``time_``), the only ones that differ between two runs with the same seed on CPU;
* ``run.json``: provenance, status (``running``, ``finished``, ``diverged``) and the run summary, written
  atomically at the start, after every epoch and at the end;
* ``checkpoint.pt``: everything needed to resume after the last finished epoch, written atomically;
* ``train.log``;
* ``run.lock``: the lock a training process holds for the whole run (:meth:`RunDir.lock`); it names the
  process (pid and host) while one holds it.

The run summary is computed here once (:func:`summarise`) and stored in ``run.json``; aggregation and
tables read it. ``final`` is the last completed epoch; ``best`` is the epoch chosen by the task's selection
metric (classifiers with a validation split: highest validation accuracy; without one, as in records made before
validation splits: highest test accuracy; LM: lowest validation perplexity), counted from epoch 1, so the
untrained model is never reported as a result. Early stopping (``train.early_stopping``) ends a run at the epoch
:func:`early_stop_epoch` derives from the metric rows; ``run.json`` says why a run stopped (``stopped``).

The run fingerprint (:func:`fingerprint`) hashes everything that determines a run's numbers: the task,
model and seed, the run section of the configuration, the prepared data (manifest checksum) and the code
(:func:`code_hash`: the source files that compute a run, not those that only report it). A record or a
checkpoint is reused only under the same fingerprint.

The code identity is that of the program, not of its text (:func:`source_identity`): a Python file counts by its
syntax tree without docstrings (comments are not in the tree), a C/C++ file by its text without comments and
layout, so that reformatting (black, clang-format) or rewording a comment leaves every run current while a changed
constant or statement does not. ``run.json`` also records the git commit of the checkout (``git_commit``, null
outside one) and the sha256 of its ``metrics.csv`` (``metrics_sha256``), which makes a record tamper-evident.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io as _stdio
import json
import math
import os
import platform
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from astromorphic import __version__
from astromorphic import io as aio
from astromorphic.runs.identity import (  # noqa: F401 (the names runs has always offered)
    PACKAGE_DIR,
    code_files,
    code_hash,
    data_code_files,
    data_code_hash,
    source_identity,
)
from astromorphic.config import run_section
from astromorphic.tasks import REGISTRY

CHECKPOINT_FORMAT = 2  # 2: tensors and plain containers only, read with torch.load(weights_only=True)
TIME_COLUMNS = ("time_epoch_s", "time_throughput")
# The metric that picks a run's ``best`` epoch, and whether higher is better; with a validation split, the metric
# that picks it instead (:func:`selection_metric`).
SELECTION = {t.name: (t.selection_metric, t.selection_higher_is_better) for t in REGISTRY}
VALID_SELECTION = {t.name: t.valid_selection_metric for t in REGISTRY}
FINAL_STATUSES = ("finished", "diverged")
LOCK_NAME = "run.lock"
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pandas", "pyyaml", "tqdm", "tokenizers", "pydantic")


class RunError(RuntimeError):
    """A run directory that cannot be trained now (locked, unwritable, holding another finished run)."""


# ================================================================================================ cells


def fmt_cell(value: Any) -> str:
    """Deterministic text for one CSV cell: shortest round-trip float repr, '' for missing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: non-finite floats become strings, so run.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _parse_cell(text: str) -> float | int | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def metrics_csv_text(columns: list[str], rows: list[dict]) -> str:
    buf = _stdio.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([fmt_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """metrics.csv back as a list of dicts of numbers (None for empty cells)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


# ================================================================================================ provenance


def git_commit() -> str | None:
    """The commit checked out where the package runs from (or, for a copy outside git, the working folder's),
    ``-dirty`` appended when tracked files differ from it; None without git."""
    root = Path(__file__).resolve().parents[3]
    for folder in (root, Path.cwd()):
        if not (folder / ".git").exists():
            continue
        try:
            git = ["git", "-C", str(folder)]
            sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
            dirty = subprocess.run(
                [*git, "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, timeout=10, check=True,
            )  # fmt: skip
            return f"{sha.stdout.strip()}{'-dirty' if dirty.stdout.strip() else ''}"
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def code_version() -> str:
    """``git:<sha>[-dirty]`` of the checkout the package runs from, else ``package:<version>``."""
    commit = git_commit()
    return f"git:{commit}" if commit else f"package:{__version__}"


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version(), "astromorphic": __version__}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def device_info(device, threads: int) -> dict:
    info: dict[str, Any] = {"type": device.type, "threads": threads, "platform": platform.platform()}
    if device.type == "cuda":
        import torch

        info["name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["name"] = _cpu_name()
    return info


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def fingerprint(task: str, model: str, seed: int, task_cfg: dict, manifest_sha: str, code: str | None = None) -> str:
    """Hash of everything that determines a run's numbers: the run section of the configuration
    (:func:`astromorphic.config.run_section`), the prepared data and the code (``code``, default
    :func:`code_hash` of ``task``). A checkpoint or a finished record is reused only when it matches."""
    semantic = run_section(task_cfg, runtime=False)
    code = code if code is not None else code_hash(task)
    blob = aio.dumps_json(
        {"task": task, "model": model, "seed": seed, "config": semantic, "data": manifest_sha, "code": code}
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def config_fingerprint(task: str, model: str, seed: int, task_cfg: dict) -> str:
    """Hash of what the configuration alone says about a run: task, model, seed and the run section (as in
    :func:`fingerprint`, without the data and the code). The workflow compares it with a committed record's
    ``config_fingerprint`` to decide whether that record stands for a run of the configuration."""
    semantic = run_section(task_cfg, runtime=False)
    blob = aio.dumps_json({"task": task, "model": model, "seed": int(seed), "config": semantic})
    return hashlib.sha256(blob.encode()).hexdigest()


def data_provenance(manifest: dict) -> dict:
    """What the tables say about a run's data, from the manifest of its prepared data: source, whether it is
    a synthetic stand-in, the tokenizer, the embedding, which text the model trained on and which
    evaluation splits are held out (not seen in training), and the validation split's entry when the data have one
    (size, seed, the rule of its draw, class counts; IMDB: movies per split and how many each pair shares)."""
    split_map = manifest.get("split_map") or {}
    splits = list(manifest.get("splits") or [])
    train_from = split_map.get("train", "train")
    evaluated = [s for s in splits if s != "train"]
    ends = manifest.get("held_out") or {}  # a copied split whose end the copy left out (wikitext2 held_out)
    counts = manifest.get("counts") or {}
    vocab = manifest.get("output_vocab")
    if manifest.get("embedding_file"):
        embedding = f"pretrained vectors ({manifest.get('embedding') or manifest['embedding_file']})"
    elif manifest.get("image_shape"):
        embedding = "pixels (convolutional stem)"
    else:
        embedding = "learned token embedding"
    valid = {"validation": manifest["validation"]} if manifest.get("validation") else {}
    return {
        "source": manifest.get("source"),
        "synthetic": bool(manifest.get("synthetic", False)),
        "tokenizer": manifest.get("tokenizer"),
        "embedding": embedding,
        "train_from": train_from,
        "held_out": [s for s in evaluated if s != train_from or s in ends],
        "train_fraction": (counts.get("train", {}).get("words", 0) / ends[train_from]["of_words"]
                           if train_from in ends else None),  # fmt: skip
        "tokens_per_word": manifest.get("tokens_per_word"),
        "output_vocab": None if not vocab else {
            "size": vocab["size"], "of": vocab["of"],
            "unknown_test": vocab["unknown_tokens"].get("test", 0) / max(counts.get("test", {}).get("tokens", 0), 1),
        },
        **valid,
    }


# ================================================================================================ summary


def _mean(values: list) -> float:
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def selection_metric(task: str, rows: list[dict]) -> tuple[str, bool]:
    """The metrics.csv column that picks a run's ``best`` epoch, and whether higher is better: the task's validation
    metric when the rows have it (a classifier trained with a validation split: ``valid_acc``), else the task's
    selection metric (a classifier without one: ``test_acc``, as records made before validation splits were; the
    LM: ``valid_ppl``)."""
    key, higher = SELECTION[task]
    valid = VALID_SELECTION[task]
    if valid is not None and any(valid in r for r in rows):
        return valid, higher
    return key, higher


def _scored(rows: list[dict], key: str) -> list[dict]:
    """Rows of epochs >= 1 with a finite value of ``key``."""
    return [r for r in rows if r["epoch"] >= 1 and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]


def _best(rows: list[dict], key: str, higher: bool) -> dict | None:
    """The row of the best value of ``key`` among epochs >= 1 (ties: the earlier epoch), or None."""
    if higher:
        return max(_scored(rows, key), key=lambda r: (r[key], -r["epoch"]), default=None)
    return min(_scored(rows, key), key=lambda r: (r[key], r["epoch"]), default=None)


def early_stop_epoch(task: str, rows: list[dict], patience: int | None) -> int | None:
    """The epoch after which early stopping ends a run with these metric rows: the first epoch that comes
    ``patience`` epochs after the best epoch so far (the selection metric of :func:`selection_metric`, from epoch 1,
    ties: the earlier); None while the run goes on, or when ``patience`` is None. Derived from the rows alone, so a
    resumed run stops where an uninterrupted one does. The metric must be a validation metric (``valid_*``): the
    test split never decides anything."""
    if patience is None:
        return None
    key, higher = selection_metric(task, rows)
    if not key.startswith("valid_"):
        raise ValueError(f"early stopping watches a validation metric, and these {task} rows have none (only {key}); "
                         "prepare the data with a validation split (data.valid_size) or set train.early_stopping null")
    best_value, best_epoch = None, None
    for row in _scored(rows, key):  # a strict improvement moves the best epoch (ties: the earlier), as in summarise
        value = row[key]
        if best_value is None or (value > best_value if higher else value < best_value):
            best_value, best_epoch = value, row["epoch"]
        if row["epoch"] - best_epoch >= int(patience):
            return int(row["epoch"])
    return None


def summarise(task: str, rows: list[dict], probe_init: list[dict]) -> dict:
    """The run summary stored in run.json: ``final`` and ``best`` rows (timing left out) and probe means.

    ``best`` is chosen among epochs >= 1 by the selection metric (:func:`selection_metric`; ties: the earlier
    epoch), named in ``best.selected_by``.
    """
    keep = lambda r: {k: v for k, v in r.items() if not k.startswith("time_")}  # noqa: E731
    key, higher = selection_metric(task, rows)
    best_row = _best(rows, key, higher)
    last = rows[-1] if rows else {}
    out = {"final": keep(last), "best": {"selected_by": key, **keep(best_row)} if best_row else {}}
    for probe in ("attn_ratio", "value_sens"):  # layer means of the probe at initialisation and at the end
        out[f"{probe}_init"] = _mean([layer.get(probe) for layer in probe_init or []])
        out[f"{probe}_final"] = _mean([last.get(c) for c in last if c.startswith(f"{probe}_l")])
    return out


# ================================================================================================ the directory


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory and the only code that reads or writes them."""

    path: Path

    @property
    def record_file(self) -> Path:
        return self.path / "run.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def checkpoint_file(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def log_file(self) -> Path:
        return self.path / "train.log"

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_NAME

    # ------------------------------------------------------------------ before a run

    def ensure_writable(self) -> None:
        """Create the directory and a probe file in it; :class:`RunError` naming it when that fails."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=f"{aio.TEMP_PREFIX}write-probe.", suffix=aio.TEMP_SUFFIX, dir=self.path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise RunError(f"{self.path}: cannot write the run directory ({exc.strerror or exc})") from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock (``flock`` on run.lock, non-blocking) for the block; one writer per run.

        A second process fails at once with :class:`RunError` naming the holder (pid and host, which the
        holder writes into the lock file). The lock goes with the process, so a killed run leaves none.
        """
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    raise
                holder = os.pread(fd, 256, 0).decode("utf-8", "replace").strip() or "a process that has not said"
                raise RunError(f"{self.path}: another training process holds the run ({holder})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # releases the lock

    def remove_temporaries(self) -> list[Path]:
        """Delete temporary files of atomic writes that a killed writer left (call it holding the lock)."""
        removed = []
        for path in aio.temporary_files(self.path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        return removed

    def check_replace(self, fp: str, model: str, force: bool) -> None:
        """:class:`RunError` when the directory holds a finished (or diverged) run of another fingerprint and
        ``force`` is false: a finished result is replaced only on request."""
        record = self.read_record()
        if force or not record or record.get("status") not in FINAL_STATUSES or record.get("fingerprint") == fp:
            return
        other = record.get("model")
        what = f"model {other}" if other != model else "configuration, data or code"
        raise RunError(
            f"{self.path}: holds a {record['status']} run of another {what}; "
            "pass --force to replace it or choose another --out"
        )

    def start_fresh(self, record: dict) -> None:
        """Before epoch 0: drop what a run of another fingerprint left (record, metrics, checkpoint) and write
        ``record``, so that nothing stale is read as this run's. A record of the same fingerprint stays
        (:meth:`publish` never goes back to an earlier epoch)."""
        on_disk = self.read_record()
        if on_disk is not None and on_disk.get("fingerprint") == record.get("fingerprint"):
            return
        for path in (self.metrics_file, self.checkpoint_file):
            path.unlink(missing_ok=True)
        aio.write_json(self.record_file, json_safe(record))

    def read_record(self) -> dict | None:
        try:
            return json.loads(self.record_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def completed(self, fp: str) -> dict | None:
        """The record of a finished (or diverged) run with this fingerprint, else None."""
        record = self.read_record()
        if record and record.get("status") in FINAL_STATUSES and record.get("fingerprint") == fp:
            return record if self.metrics_file.exists() else None
        return None

    def publish(self, task: str, record: dict, columns: list[str], rows: list[dict]) -> bool:
        """Write metrics.csv, then run.json with the summary of ``rows`` (both atomically).

        Nothing is written (False) while the directory holds a later epoch than ``rows`` end with: a run
        restarted from an earlier checkpoint catches up before it publishes."""
        record.update(summarise(task, rows, record.get("probe_init") or []))
        record["epochs_completed"] = rows[-1]["epoch"] if rows else 0
        on_disk = self.read_record() or {}
        if int(on_disk.get("epochs_completed") or 0) > record["epochs_completed"]:
            return False
        text = metrics_csv_text(columns, rows)
        record["metrics_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        aio.write_text(self.metrics_file, text)
        aio.write_json(self.record_file, json_safe(record))
        return True

    def save_checkpoint(self, state: dict) -> None:
        aio.torch_save_atomic({"format": CHECKPOINT_FORMAT, **state}, self.checkpoint_file)

    def load_checkpoint(self, fp: str, log) -> dict | None:
        """The checkpoint when it belongs to this fingerprint; None (and a log line saying why) otherwise."""
        path = self.checkpoint_file
        if not path.exists():
            return None
        import torch

        try:  # tensors and plain containers only: a checkpoint never runs code when it is read
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, corrupt, or holding other objects: never let it stop the run
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            log.warning("cannot read checkpoint %s (%s); starting afresh", path, reason)
            return None
        if not isinstance(state, dict):
            log.warning("checkpoint %s holds a %s, not a checkpoint; starting afresh", path, type(state).__name__)
            return None
        if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fp:
            log.warning("checkpoint %s belongs to another configuration or data; starting afresh", path)
            return None
        return state


def read_run(run_dir: str | Path):
    """(run.json as a dict, metrics.csv as a DataFrame) of a run directory."""
    import pandas as pd

    run = RunDir(Path(run_dir))
    record = run.read_record()
    if record is None:
        raise FileNotFoundError(f"{run.record_file}: missing or not JSON")
    if not run.metrics_file.exists() and record.get("status") == "running":  # started, no epoch yet
        return record, pd.DataFrame({"epoch": pd.Series(dtype="int64")})
    try:
        metrics = pd.read_csv(run.metrics_file)
    except pd.errors.EmptyDataError:
        raise RunError(f"{run.metrics_file}: empty; train the run again or remove it") from None
    except pd.errors.ParserError as exc:
        raise RunError(f"{run.metrics_file}: not a CSV table ({' '.join(str(exc).split())})") from None
    words = [c for c in metrics.columns if not pd.api.types.is_numeric_dtype(metrics[c])]
    if "epoch" not in metrics.columns or words:
        if words:
            column = metrics[words[0]]
            bad = column[pd.to_numeric(column, errors="coerce").isna() & column.notna()]
            what = f"column {words[0]!r} holds text ({bad.iloc[0]!r} at row {int(bad.index[0]) + 1})"
        else:
            what = "no epoch column"
        raise RunError(f"{run.metrics_file}: {what}; every cell of metrics.csv is a number")
    return record, metrics
