"""Training: one task/model/seed run, resumable, traceable, deterministic on CPU.

``astromorphic train --task T --model M --seed S --config CFG.yaml --out RUN_DIR [--data DATA_DIR]``
(library: ``train_run``). A run directory holds

* ``metrics.csv``: one row per epoch (epoch 0 = the model at initialisation), rewritten atomically after every
  epoch. Columns: ``epoch``, ``train_loss``, the task metrics (``test_acc``; or ``valid_ppl``, ``test_ppl``,
  ``valid_word_ppl``, ``test_word_ppl``), ``lr``, ``grad_norm``, the attention probe columns, then the timing
  columns (prefix ``time_``), which are the only ones that differ between two runs with the same seed on CPU.
* ``run.json``: provenance and status (``running``, ``finished``, ``diverged``), written atomically at the
  start, after every epoch and at the end.
* ``checkpoint.pt``: model, optimiser, scheduler, every random-number state and the metric rows, written
  atomically after every epoch. Running the same command again resumes from it; a killed epoch is rerun
  from its start and gives the same numbers as an uninterrupted run. A run whose ``run.json`` says
  ``finished`` or ``diverged`` (for the same configuration and data) is not retrained.
* ``train.log``.

Definitions the tables rely on:

* ``train_loss``: mean cross-entropy over the epoch's training samples (LM: over its predicted tokens),
  measured in training mode (dropout on) as the epoch goes.
* ``test_acc``: accuracy on the whole test split, or its first ``train.max_eval_samples`` samples.
* LM perplexities are evaluated on non-overlapping windows of ``seq_len`` tokens that tile the split
  (the last, shorter window included), each token predicted from the tokens before it in its window.
  ``*_ppl`` = exp(mean NLL per token); ``*_word_ppl`` = exp(total NLL / number of words), computed as
  exp(mean NLL per token x tokens per word of the split, from the manifest counts), which is the same when
  the whole split is evaluated and scales honestly when ``train.max_eval_tokens`` caps it.
* ``lr``: the learning rate of the epoch's last optimiser step (epoch 0: the first step's).
* ``grad_norm``: mean over the epoch's steps of the global L2 norm of the gradient, before any clipping.
* Probe (``attn_ratio_l{i}``, layer i counted from 0): ||attention term|| / ||residual input|| per layer, and
  for astromorphic attention the mean and standard deviation of the sigmoid's argument, on a fixed batch
  (the first ``train.probe_samples`` test samples; LM: validation windows), in evaluation mode.
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
import csv
import hashlib
import io as _stdio
import logging
import math
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from astromorphic import __version__
from astromorphic import io as aio
from astromorphic.config import (
    CLASSIFICATION_TASKS,
    TASKS,
    load_config,
    resolve_task_config,
    train_seq_len,
    validate_run,
)

LOG = logging.getLogger("astromorphic.training")

CHECKPOINT_FORMAT = 1
TIME_COLUMNS = ("time_epoch_s", "time_throughput")
TASK_METRICS = {
    "imdb": ("test_acc",),
    "cifar10": ("test_acc",),
    "wikitext2": ("valid_ppl", "test_ppl", "valid_word_ppl", "test_word_ppl"),
}
FINAL_STATUSES = ("finished", "diverged")
INJECT_ENV = "ASTROMORPHIC_INJECT_NONFINITE"
DELAY_ENV = "ASTROMORPHIC_TEST_STEP_DELAY"
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pandas", "pyyaml", "tqdm", "tokenizers", "jsonschema")
# Keys that change neither the numbers nor the meaning of a run: a checkpoint stays valid when they change.
RUNTIME_ONLY_TRAIN_KEYS = ("threads", "device")

# Paper-scale dataset sizes, for the projected time of a full training run (SPEC.md section 6).
# WikiText-2 counts are those of the word-level release; GPT-2 tokens of the raw text are about 15 % more.
PAPER_DATA_SIZES = {
    "imdb": {"train": 25_000, "eval": 25_000},
    "cifar10": {"train": 50_000, "eval": 10_000},
    "wikitext2": {"train": 2_088_628, "eval": 217_646 + 245_569},
}


# ================================================================================================ records


def _fmt(value: Any) -> str:
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


def _json_float(value: Any) -> Any:
    """JSON has no NaN/inf: non-finite floats become strings, so run.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_float(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_float(v) for v in value]
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
        writer.writerow([_fmt(row.get(c)) for c in columns])
    return buf.getvalue()


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """metrics.csv back as a list of dicts of numbers (None for empty cells)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _code_version() -> str:
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        try:
            sha = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            return f"git:{sha}{'-dirty' if dirty else ''}"
        except (OSError, subprocess.SubprocessError):
            pass
    return f"package:{__version__}"


def _package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version(), "astromorphic": __version__}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _device_info(device: torch.device, threads: int) -> dict:
    info: dict[str, Any] = {"type": device.type, "threads": threads, "platform": platform.platform()}
    if device.type == "cuda":
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


def _fingerprint(task: str, model: str, seed: int, cfg: dict, manifest_sha: str) -> str:
    """Hash of everything that determines a run's numbers; a checkpoint or result is reused only if it matches."""
    semantic = {k: v for k, v in cfg.items() if k != "resources"}
    semantic["train"] = {k: v for k, v in cfg["train"].items() if k not in RUNTIME_ONLY_TRAIN_KEYS}
    blob = aio.dumps_json({"task": task, "model": model, "seed": seed, "config": semantic, "data": manifest_sha})
    return hashlib.sha256(blob.encode()).hexdigest()


# ================================================================================================ data


class _Batch:
    """One training or evaluation batch: model inputs, targets and its size in samples and predicted tokens."""

    __slots__ = ("inputs", "targets", "samples", "tokens")

    def __init__(self, inputs: tuple, targets: torch.Tensor, samples: int, tokens: int):
        self.inputs, self.targets, self.samples, self.tokens = inputs, targets, samples, tokens

    def to(self, device: torch.device) -> "_Batch":
        if device.type == "cpu":
            return self
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return _Batch(tuple(move(t) for t in self.inputs), move(self.targets), self.samples, self.tokens)


class TaskData:
    """Batches of one task's prepared splits, drawn from an explicit generator (checkpointed with the run)."""

    unit = "samples"

    def __init__(self, splits: dict, manifest: dict, cfg: dict):
        self.splits, self.manifest, self.cfg = splits, manifest, cfg
        self.train_cfg = cfg["train"]

    def n_train_batches(self) -> int:
        raise NotImplementedError

    def train_batches(self, gen: torch.Generator) -> Iterator[_Batch]:
        raise NotImplementedError

    def probe_batch(self) -> _Batch:
        raise NotImplementedError


class ClassificationData(TaskData):
    eval_split = "test"

    def __init__(self, splits, manifest, cfg):
        super().__init__(splits, manifest, cfg)
        self.n_train = int(splits["train"]["labels"].shape[0])
        cap = self.train_cfg.get("max_eval_samples")
        n_test = int(splits[self.eval_split]["labels"].shape[0])
        self.n_eval = min(n_test, cap) if cap else n_test

    def n_train_batches(self) -> int:
        n = math.ceil(self.n_train / self.train_cfg["batch_size"])
        cap = self.train_cfg.get("max_train_batches")
        return min(n, cap) if cap else n

    def train_batches(self, gen):
        order = torch.randperm(self.n_train, generator=gen)
        bs = self.train_cfg["batch_size"]
        for i in range(self.n_train_batches()):
            yield self._batch("train", order[i * bs : (i + 1) * bs], gen)

    def eval_batches(self) -> Iterator[_Batch]:
        bs = self.train_cfg["eval_batch_size"]
        for start in range(0, self.n_eval, bs):
            yield self._batch(self.eval_split, torch.arange(start, min(start + bs, self.n_eval)), None)

    def probe_batch(self):
        n = min(self.train_cfg["probe_samples"], self.n_eval)
        return self._batch(self.eval_split, torch.arange(n), None)

    def _batch(self, split, idx, gen) -> _Batch:
        raise NotImplementedError


class TextData(ClassificationData):
    """IMDB: padded token ids with their lengths; the model gets a key-padding mask (True = real token)."""

    def _batch(self, split, idx, gen):
        s = self.splits[split]
        tokens = s["tokens"][idx]
        lengths = s["lengths"][idx]
        mask = torch.arange(tokens.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
        return _Batch((tokens, mask), s["labels"][idx], len(idx), int(lengths.sum()))


class ImageData(ClassificationData):
    """CIFAR-10: uint8 images; random crop (zero padding) and horizontal flip in training; per-channel normalisation."""

    def __init__(self, splits, manifest, cfg):
        super().__init__(splits, manifest, cfg)
        self.mean = torch.tensor(manifest.get("mean", [0.5, 0.5, 0.5]), dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(manifest.get("std", [0.25, 0.25, 0.25]), dtype=torch.float32).view(1, 3, 1, 1)
        aug = self.train_cfg.get("augment") or {}
        self.pad = int(aug.get("random_crop_padding") or 0)
        self.hflip = bool(aug.get("hflip", False))

    def _batch(self, split, idx, gen):
        s = self.splits[split]
        images = s["images"][idx]
        if gen is not None:
            images = self._augment(images, gen)
        x = (images.float() / 255.0 - self.mean) / self.std
        return _Batch((x,), s["labels"][idx], len(idx), len(idx))

    def _augment(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, _, h, w = images.shape
        if self.pad:
            p = self.pad
            padded = F.pad(images, (p, p, p, p))  # zero (black) border, as torchvision's RandomCrop(padding=p)
            oy = torch.randint(0, 2 * p + 1, (b,), generator=gen)
            ox = torch.randint(0, 2 * p + 1, (b,), generator=gen)
            rows = (oy[:, None] + torch.arange(h)[None, :])[:, None, :, None]  # (b, 1, h, 1)
            cols = (ox[:, None] + torch.arange(w)[None, :])[:, None, None, :]  # (b, 1, 1, w)
            bi = torch.arange(b)[:, None, None, None]
            ci = torch.arange(images.shape[1])[None, :, None, None]
            images = padded[bi, ci, rows, cols]
        if self.hflip:
            flip = torch.rand(b, generator=gen) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return images


class LMData(TaskData):
    """WikiText-2 token streams cut into windows of ``seq_len`` tokens (targets shifted by one).

    Training: non-overlapping windows from a random offset in [0, seq_len) drawn each epoch, in random order.
    Evaluation: non-overlapping windows from the start of the split, the last, shorter one included.
    """

    unit = "tokens"

    def __init__(self, splits, manifest, cfg):
        super().__init__(splits, manifest, cfg)
        self.seq_len = int(train_seq_len(cfg))
        t = int(splits["train"]["tokens"].numel())
        self.n_windows = (t - self.seq_len) // self.seq_len
        if self.n_windows < 1:
            raise ValueError(f"the train split has {t} tokens, too few for windows of seq_len {self.seq_len}")

    def n_train_batches(self) -> int:
        n = math.ceil(self.n_windows / self.train_cfg["batch_size"])
        cap = self.train_cfg.get("max_train_batches")
        return min(n, cap) if cap else n

    def train_batches(self, gen):
        stream = self.splits["train"]["tokens"]
        length = self.seq_len
        offset = int(torch.randint(0, length, (1,), generator=gen))
        order = torch.randperm(self.n_windows, generator=gen)
        bs = self.train_cfg["batch_size"]
        steps = torch.arange(length)
        for i in range(self.n_train_batches()):
            starts = offset + order[i * bs : (i + 1) * bs] * length
            idx = starts[:, None] + steps[None, :]
            yield _Batch((stream[idx],), stream[idx + 1], len(starts), idx.numel())

    def eval_stream(self, split: str) -> torch.Tensor:
        stream = self.splits[split]["tokens"]
        cap = self.train_cfg.get("max_eval_tokens")
        return stream[:cap] if cap else stream

    def eval_batches(self, split: str) -> Iterator[_Batch]:
        stream = self.eval_stream(split)
        length, bs = self.seq_len, self.train_cfg["eval_batch_size"]
        n_pred = stream.numel() - 1
        n_full = n_pred // length
        steps = torch.arange(length)
        for start in range(0, n_full, bs):
            starts = torch.arange(start, min(start + bs, n_full)) * length
            idx = starts[:, None] + steps[None, :]
            yield _Batch((stream[idx],), stream[idx + 1], len(starts), idx.numel())
        rest = n_pred - n_full * length
        if rest > 0:
            s = n_full * length
            yield _Batch((stream[s : s + rest].unsqueeze(0),), stream[s + 1 : s + rest + 1].unsqueeze(0), 1, rest)

    def windows(self, split: str, n: int) -> torch.Tensor:
        stream = self.eval_stream(split)
        n = max(1, min(n, (stream.numel() - 1) // self.seq_len))
        return stream[: n * self.seq_len].view(n, self.seq_len)

    def probe_batch(self):
        x = self.windows("valid", self.train_cfg["probe_samples"])
        return _Batch((x,), x, x.shape[0], x.numel())

    def tokens_per_word(self, split: str) -> float | None:
        counts = (self.manifest.get("counts") or {}).get(split) or {}
        tokens, words = counts.get("tokens"), counts.get("words")
        if not tokens or not words:
            return None
        return float(tokens) / float(words)


def make_task_data(task: str, splits: dict, manifest: dict, cfg: dict) -> TaskData:
    if task == "imdb":
        return TextData(splits, manifest, cfg)
    if task == "cifar10":
        return ImageData(splits, manifest, cfg)
    return LMData(splits, manifest, cfg)


def data_info_from(task: str, manifest: dict, data_dir: Path | None) -> dict:
    """The ``data_info`` that ``build_model`` takes, from the manifest (GloVe vectors when the data provide them)."""
    info: dict[str, Any] = {}
    for key in ("vocab_size", "n_classes", "pad_id", "seq_len", "tokenizer"):
        if key in manifest:
            info[key] = manifest[key]
    if task == "cifar10":
        info.setdefault("n_classes", 10)
    if manifest.get("embedding_file") and data_dir is not None:
        from astromorphic.data import load_embedding

        info["embedding"] = load_embedding(data_dir, manifest)
    return info


# ================================================================================================ model helpers


def _attention_spec(model_name: str, cfg: dict):
    from astromorphic import presets

    return presets.spec_for(model_name, cfg["attention"], cfg["model"]["d_model"])


def build_run_model(task: str, model_name: str, cfg: dict, data_info: dict) -> tuple[torch.nn.Module, Any]:
    from astromorphic.models import build_model

    spec = _attention_spec(model_name, cfg)
    return build_model(task, spec, dict(cfg["model"]), data_info), spec


def _loss(task: str, logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    logits = logits.float()
    if task == "wikitext2":
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction=reduction)
    return F.cross_entropy(logits, targets, reduction=reduction)


def _autocast(device: torch.device, dtype: str):
    if dtype == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(task: str, model: torch.nn.Module, data: TaskData, device: torch.device, dtype: str) -> dict:
    """Task metrics of the model in evaluation mode (see the module docstring for their definitions)."""
    was_training = model.training
    model.eval()
    try:
        if task in CLASSIFICATION_TASKS:
            correct = total = 0
            for batch in data.eval_batches():
                batch = batch.to(device)
                with _autocast(device, dtype):
                    logits = model(*batch.inputs)
                correct += int((logits.argmax(-1) == batch.targets).sum())
                total += batch.samples
            return {"test_acc": correct / total if total else float("nan")}
        out = {}
        for split in ("valid", "test"):
            if split not in data.splits:
                out[f"{split}_ppl"] = out[f"{split}_word_ppl"] = None
                continue
            nll, count = 0.0, 0
            for batch in data.eval_batches(split):
                batch = batch.to(device)
                with _autocast(device, dtype):
                    logits = model(*batch.inputs)
                nll += float(_loss(task, logits, batch.targets, reduction="sum"))
                count += batch.tokens
            mean_nll = nll / count if count else float("nan")
            out[f"{split}_ppl"] = _safe_exp(mean_nll)
            tpw = data.tokens_per_word(split)
            out[f"{split}_word_ppl"] = _safe_exp(mean_nll * tpw) if tpw else None
        return out
    finally:
        model.train(was_training)


def _safe_exp(x: float) -> float:
    if math.isnan(x):
        return float("nan")
    try:
        return math.exp(x)
    except OverflowError:
        return float("inf")


@torch.no_grad()
def attention_probe(model: torch.nn.Module, batch: _Batch, device: torch.device, dtype: str) -> list[dict]:
    """Per-layer probe values (``model.attention_probe()``) from one forward pass in evaluation mode."""
    if not hasattr(model, "set_probe") or not hasattr(model, "attention_probe"):
        LOG.warning("the model has no attention probe; probe columns stay empty")
        return []
    was_training = model.training
    model.eval()
    model.set_probe(True)
    try:
        batch = batch.to(device)
        with _autocast(device, dtype):
            model(*batch.inputs)
        layers = model.attention_probe() or []
        return [
            {k: float(v) for k, v in layer.items() if isinstance(v, (int, float)) or torch.is_tensor(v)}
            for layer in layers
        ]
    finally:
        model.set_probe(False)
        model.train(was_training)


PROBE_KEY_ORDER = ("attn_ratio", "sigmoid_arg_mean", "sigmoid_arg_std")


def probe_columns(probe: list[dict]) -> list[str]:
    """``attn_ratio_l{i}`` for every layer, then the other probe values layer by layer."""
    cols = [f"attn_ratio_l{i}" for i, layer in enumerate(probe) if "attn_ratio" in layer]
    extra = sorted({k for layer in probe for k in layer} - set(PROBE_KEY_ORDER))
    for i, layer in enumerate(probe):
        for key in (*PROBE_KEY_ORDER[1:], *extra):
            if key in layer:
                cols.append(f"{key}_l{i}")
    return cols


def probe_flat(probe: list[dict]) -> dict:
    return {f"{k}_l{i}": v for i, layer in enumerate(probe) for k, v in layer.items()}


@torch.no_grad()
def causality_audit(
    model: torch.nn.Module,
    windows: torch.Tensor,
    vocab_size: int,
    device: torch.device,
    dtype: str,
    *,
    tol: float,
    seed: int = 0,
) -> dict:
    """Largest change of the logits at positions <= t when every token after t is replaced (several t).

    A causal LM gives 0 (up to ``tol``); the leaky diagnostic does not, and the record says so.
    """
    was_training = model.training
    model.eval()
    try:
        gen = torch.Generator().manual_seed(1_000_003 + seed)
        length = windows.shape[1]
        positions = sorted(
            {0, length // 4, length // 2, (3 * length) // 4, length - 2} & set(range(max(length - 1, 0)))
        )
        x = windows.to(device)
        with _autocast(device, dtype):
            base = model(x).float()
        per_position = []
        for t in positions:
            noise = torch.randint(0, vocab_size, windows[:, t + 1 :].shape, generator=gen)
            same = noise == windows[:, t + 1 :]
            noise = torch.where(same, (noise + 1) % vocab_size, noise)  # every later token really changes
            changed = windows.clone()
            changed[:, t + 1 :] = noise
            with _autocast(device, dtype):
                out = model(changed.to(device)).float()
            per_position.append(float((out[:, : t + 1] - base[:, : t + 1]).abs().max()))
        worst = max(per_position) if per_position else 0.0
        return {
            "max_abs_change": worst,
            "positions": positions,
            "per_position": per_position,
            "samples": int(windows.shape[0]),
            "seq_len": int(length),
            "tolerance": tol,
            "passed": bool(math.isfinite(worst) and worst <= tol),
        }
    finally:
        model.train(was_training)


# ================================================================================================ schedule


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based): linear warm-up, then flat or cosine."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        progress = min(max(step - warmup_steps, 0) / span, 1.0)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def _warmup_steps(train: dict, steps_per_epoch: int) -> int:
    if train.get("warmup_steps") is not None:
        return int(train["warmup_steps"])
    return int(round(float(train.get("warmup_epochs") or 0.0) * steps_per_epoch))


# ================================================================================================ run state


def _rng_state(data_gen: torch.Generator, device: torch.device) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "data": data_gen.get_state(),
    }


def _set_rng_state(state: dict, data_gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    data_gen.set_state(state["data"])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


@contextlib.contextmanager
def _torch_settings(threads: int, device: torch.device) -> Iterator[None]:
    """Threads and deterministic algorithms for the run; the previous process-wide settings come back afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    # CPU: strict, so a nondeterministic kernel fails loudly; CUDA: some kernels have no deterministic variant.
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


@contextlib.contextmanager
def _run_log(out_dir: Path) -> Iterator[None]:
    handler = logging.FileHandler(out_dir / "train.log", encoding="utf-8")
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


def default_data_dir(config: dict, task: str) -> Path:
    return Path(config.get("results_dir") or "results") / "data" / task


def _load_record(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _spec_dict(spec: Any) -> Any:
    if is_dataclass(spec):
        return asdict(spec)
    return spec if isinstance(spec, dict) else repr(spec)


def _summary(task: str, rows: list[dict]) -> tuple[dict, dict]:
    """``final`` (the last completed epoch) and ``best`` (best epoch by the task's selection metric)."""
    if not rows:
        return {}, {}
    keep = lambda r: {k: v for k, v in r.items() if not k.startswith("time_")}  # noqa: E731
    final = keep(rows[-1])
    trained = [r for r in rows if r["epoch"] >= 1] or rows
    if task in CLASSIFICATION_TASKS:
        scored = [r for r in trained if r.get("test_acc") is not None and math.isfinite(r["test_acc"])]
        best_row = max(scored, key=lambda r: (r["test_acc"], -r["epoch"])) if scored else None
        key = "test_acc"
    else:
        scored = [r for r in trained if r.get("valid_ppl") is not None and math.isfinite(r["valid_ppl"])]
        best_row = min(scored, key=lambda r: (r["valid_ppl"], r["epoch"])) if scored else None
        key = "valid_ppl"
    best = {"selected_by": key, **keep(best_row)} if best_row else {}
    return final, best


# ================================================================================================ the run


def train_run(
    task: str,
    model: str,
    seed: int,
    config: dict,
    out_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    inject_nonfinite_at: tuple[int, int] | str | None = None,
    progress: bool | None = None,
) -> dict:
    """Train (or resume, or return) one run; returns the run record that is also in ``run.json``.

    Raises ``ValueError`` for an invalid configuration before reading any data. A run that diverges returns
    normally with ``status == "diverged"``.
    """
    seed = int(seed)
    cfg = validate_run(config, task, model)
    out = Path(out_dir)
    data_path = Path(data_dir) if data_dir is not None else default_data_dir(config, task)
    manifest_file = data_path / "manifest.json"
    if not manifest_file.exists():
        raise FileNotFoundError(f"no prepared data: {manifest_file} is missing (run `astromorphic prepare` first)")
    manifest_sha = aio.sha256_file(manifest_file)
    fingerprint = _fingerprint(task, model, seed, cfg, manifest_sha)
    inject = _parse_inject(inject_nonfinite_at if inject_nonfinite_at is not None else os.environ.get(INJECT_ENV))
    step_delay = float(os.environ.get(DELAY_ENV) or 0.0)

    record_path, metrics_path, ckpt_path = out / "run.json", out / "metrics.csv", out / "checkpoint.pt"
    previous = _load_record(record_path) if record_path.exists() else None
    if (
        previous is not None
        and previous.get("status") in FINAL_STATUSES
        and previous.get("fingerprint") == fingerprint
        and metrics_path.exists()
    ):
        return previous
    out.mkdir(parents=True, exist_ok=True)

    train = cfg["train"]
    device = _resolve_device(train["device"])
    dtype = train["dtype"]
    threads = int(train["threads"])
    show_progress = _progress_enabled() if progress is None else progress

    with _run_log(out), _torch_settings(threads, device):
        LOG.info("run %s/%s/seed%d -> %s (data %s)", task, model, seed, out, data_path)
        from astromorphic.data import load_prepared

        splits, manifest = load_prepared(data_path)
        _check_manifest(task, cfg, manifest)
        data = make_task_data(task, splits, manifest, cfg)
        info = data_info_from(task, manifest, data_path)

        _seed_everything(seed)
        net, spec = build_run_model(task, model, cfg, info)
        net.to(device)
        data_gen = torch.Generator().manual_seed(seed + 7_919)  # shuffling and augmentation

        optimizer = torch.optim.AdamW(
            net.parameters(),
            lr=train["lr"],
            betas=tuple(train["betas"]),
            eps=train["eps"],
            weight_decay=train["weight_decay"],
        )
        steps_per_epoch = data.n_train_batches()
        total_steps = steps_per_epoch * int(train["epochs"])
        warmup = _warmup_steps(train, steps_per_epoch)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: lr_factor(
                s,
                total_steps=total_steps,
                warmup_steps=warmup,
                schedule=train["schedule"],
                min_ratio=train["min_lr_ratio"],
            ),
        )

        record: dict[str, Any] = {
            "task": task,
            "model": model,
            "seed": seed,
            "status": "running",
            "label": config.get("label", ""),
            "synthetic_config": bool(config.get("synthetic", False)),
            "config": cfg,
            "attention_spec": _spec_dict(spec),
            "n_parameters": sum(p.numel() for p in net.parameters()),
            "steps_per_epoch": steps_per_epoch,
            "warmup_steps": warmup,
            "epochs": int(train["epochs"]),
            "epochs_completed": 0,
            "diverged_epoch": None,
            "divergence": None,
            "final": {},
            "best": {},
            "code_version": _code_version(),
            "packages": _package_versions(),
            "device": _device_info(device, threads),
            "data_dir": str(data_path),
            "data_manifest_sha256": manifest_sha,
            "data_synthetic": bool(manifest.get("synthetic", False)),
            "data_source": manifest.get("source"),
            "fingerprint": fingerprint,
            "probe_init": [],
            "resumed_from_epochs": [],
        }

        rows: list[dict] = []
        columns: list[str] = []
        start_epoch = 0
        state = _load_checkpoint(ckpt_path, fingerprint)
        if state is not None:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            _set_rng_state(state["rng"], data_gen, device)
            rows, columns = state["rows"], state["columns"]
            start_epoch = int(state["epoch"])
            record["probe_init"] = state["probe_init"]
            for key in ("causality_audit_init", "resumed_from_epochs"):
                if key in state["record"]:
                    record[key] = state["record"][key]
            record["resumed_from_epochs"] = [*record["resumed_from_epochs"], start_epoch]
            LOG.info("resuming after epoch %d from %s", start_epoch, ckpt_path)
        elif ckpt_path.exists():
            LOG.warning("checkpoint %s belongs to another configuration or data; starting afresh", ckpt_path)

        def save_state(epoch: int) -> None:
            aio.torch_save_atomic(
                {
                    "format": CHECKPOINT_FORMAT,
                    "fingerprint": fingerprint,
                    "epoch": epoch,
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(data_gen, device),
                    "rows": rows,
                    "columns": columns,
                    "probe_init": record["probe_init"],
                    "record": {k: record[k] for k in ("causality_audit_init", "resumed_from_epochs") if k in record},
                },
                ckpt_path,
            )

        def publish() -> None:
            record["final"], record["best"] = _summary(task, rows)
            record["epochs_completed"] = rows[-1]["epoch"] if rows else 0
            aio.write_text(metrics_path, metrics_csv_text(columns, rows))
            aio.write_json(record_path, _json_float(record))

        if state is None:
            # Epoch 0: the model at initialisation.
            t0 = time.perf_counter()
            metrics = evaluate(task, net, data, device, dtype)
            probe = attention_probe(net, data.probe_batch(), device, dtype)
            record["probe_init"] = probe
            if task == "wikitext2":
                record["causality_audit_init"] = _audit(net, data, info, device, dtype, train, seed)
            columns = [
                "epoch",
                "train_loss",
                *TASK_METRICS[task],
                "lr",
                "grad_norm",
                *probe_columns(probe),
                *TIME_COLUMNS,
            ]
            rows.append(
                {
                    "epoch": 0,
                    "train_loss": None,
                    **metrics,
                    "lr": optimizer.param_groups[0]["lr"],
                    "grad_norm": None,
                    **probe_flat(probe),
                    "time_epoch_s": time.perf_counter() - t0,
                    "time_throughput": None,
                }
            )
            save_state(0)
        publish()  # on resume this also drops a row half-written before a kill
        LOG.info("epoch 0 (%s): %s", "restored" if state is not None else "initialisation", _brief(rows[-1], task))

        for epoch in range(start_epoch + 1, int(train["epochs"]) + 1):
            outcome = _train_epoch(
                task,
                net,
                data,
                optimizer,
                scheduler,
                data_gen,
                device,
                dtype,
                train,
                epoch,
                inject,
                step_delay,
                show_progress,
            )
            if outcome["diverged"] is not None:
                div = outcome["diverged"]
                record["status"] = "diverged"
                record["diverged_epoch"] = epoch
                record["divergence"] = div
                LOG.warning("diverged at epoch %d step %d: %s = %s", epoch, div["step"], div["quantity"], div["value"])
                break
            t_eval = time.perf_counter()
            metrics = evaluate(task, net, data, device, dtype)
            probe = attention_probe(net, data.probe_batch(), device, dtype)
            eval_s = time.perf_counter() - t_eval
            rows.append(
                {
                    "epoch": epoch,
                    "train_loss": outcome["loss"],
                    **metrics,
                    "lr": outcome["lr"],
                    "grad_norm": outcome["grad_norm"],
                    **probe_flat(probe),
                    "time_epoch_s": outcome["train_s"] + eval_s,
                    "time_throughput": outcome["units"] / outcome["train_s"] if outcome["train_s"] > 0 else None,
                }
            )
            save_state(epoch)
            publish()
            LOG.info("epoch %d: %s", epoch, _brief(rows[-1], task))

        if record["status"] == "running":
            record["status"] = "finished"
        if task == "wikitext2":
            record["causality_audit"] = _audit(net, data, info, device, dtype, train, seed)
        publish()
        LOG.info("run %s after %d epochs", record["status"], record["epochs_completed"])
        return _load_record(record_path) or record


def _brief(row: dict, task: str) -> str:
    keys = ["train_loss", *TASK_METRICS[task], "lr", "grad_norm"]
    return ", ".join(f"{k}={_fmt(row.get(k))}" for k in keys if row.get(k) is not None)


def _audit(net, data: LMData, info: dict, device, dtype, train: dict, seed: int) -> dict:
    windows = data.windows("valid" if "valid" in data.splits else "test", train["audit_samples"])
    vocab = int(info.get("vocab_size") or int(data.splits["train"]["tokens"].max()) + 1)
    return causality_audit(net, windows, vocab, device, dtype, tol=float(train["audit_tol"]), seed=seed)


def _check_manifest(task: str, cfg: dict, manifest: dict) -> None:
    """The prepared data must fit the model (checked after reading the manifest, before any training)."""
    max_len = cfg["model"]["max_len"]
    seq_len = manifest.get("seq_len")
    if task == "imdb" and seq_len is not None and int(seq_len) > int(max_len):
        raise ValueError(
            f"tasks.{task}.model.max_len ({max_len}) is shorter than the prepared data's seq_len ({seq_len})"
        )
    if task == "wikitext2" and manifest.get("vocab_size") is None:
        raise ValueError("the wikitext2 manifest has no vocab_size")


def _load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)  # our own file, written by save_state
    except Exception as exc:  # a corrupt file cannot come from an atomic write, but do not let it stop the run
        LOG.warning("cannot read checkpoint %s (%s); starting afresh", path, exc)
        return None
    if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
        return None
    return state


def _train_epoch(
    task, net, data, optimizer, scheduler, data_gen, device, dtype, train, epoch, inject, step_delay, show_progress
):
    """One pass over the training batches; stops at the first non-finite loss or gradient norm."""
    from tqdm import tqdm

    net.train()
    clip = train.get("grad_clip")
    params = [p for p in net.parameters() if p.requires_grad]
    loss_sum, units, samples, norm_sum, steps = 0.0, 0, 0, 0.0, 0
    lr = optimizer.param_groups[0]["lr"]
    n_batches = data.n_train_batches()
    bar = tqdm(
        total=n_batches, desc=f"epoch {epoch}", unit="batch", disable=not show_progress, leave=False, dynamic_ncols=True
    )
    t0 = time.perf_counter()
    diverged = None
    try:
        for step, batch in enumerate(data.train_batches(data_gen)):
            batch = batch.to(device)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, dtype):
                logits = net(*batch.inputs)
            loss = _loss(task, logits, batch.targets)
            if inject is not None and inject == (epoch, step):
                loss = loss * float("nan")  # testing hook: a non-finite loss on demand
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                diverged = {"step": step, "quantity": "loss", "value": _fmt(loss_value)}
                break
            loss.backward()
            max_norm = float(clip) if clip else float("inf")
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
            if not math.isfinite(grad_norm):
                diverged = {"step": step, "quantity": "grad_norm", "value": _fmt(grad_norm)}
                break
            optimizer.step()
            scheduler.step()
            n = batch.tokens if data.unit == "tokens" else batch.samples
            loss_sum += loss_value * n
            units += n
            samples += batch.samples
            norm_sum += grad_norm
            steps += 1
            if show_progress:
                elapsed = time.perf_counter() - t0
                bar.set_postfix(
                    loss=f"{loss_sum / units:.4f}",
                    rate=f"{units / max(elapsed, 1e-9):.0f} {data.unit}/s",
                    refresh=False,
                )
                bar.update(1)
            if step_delay:
                time.sleep(step_delay)
    finally:
        bar.close()
    train_s = time.perf_counter() - t0
    return {
        "diverged": diverged,
        "loss": loss_sum / units if units else None,
        "grad_norm": norm_sum / steps if steps else None,
        "lr": lr,
        "units": units,
        "train_s": train_s,
    }


# ================================================================================================ throughput


def _synthetic_batch(task: str, cfg: dict, batch_size: int, vocab_size: int, gen: torch.Generator) -> _Batch:
    if task == "cifar10":
        x = torch.randn(batch_size, 3, 32, 32, generator=gen)
        return _Batch((x,), torch.randint(0, 10, (batch_size,), generator=gen), batch_size, batch_size)
    length = int(train_seq_len(cfg))
    tokens = torch.randint(0, vocab_size, (batch_size, length), generator=gen)
    if task == "imdb":
        mask = torch.ones(batch_size, length, dtype=torch.bool)
        return _Batch((tokens, mask), torch.randint(0, 2, (batch_size,), generator=gen), batch_size, tokens.numel())
    return _Batch(
        (tokens,), torch.randint(0, vocab_size, (batch_size, length), generator=gen), batch_size, tokens.numel()
    )


def measure_throughput(
    task: str,
    preset: str,
    config: dict,
    n_batches: int = 3,
    *,
    warmup: int = 1,
    batch_size: int | None = None,
    vocab_size: int | None = None,
) -> dict:
    """Training and evaluation speed of one task/preset at the configuration's sizes, on random inputs.

    Times ``n_batches`` optimiser steps (forward, backward, AdamW) after ``warmup`` untimed ones, then as
    many forward passes without gradients. Vocabulary sizes, unless given in ``data.vocab_size``: IMDB 20,000
    word types (the projection of 300-d vectors to D is the model's), WikiText-2 50,257 (GPT-2).
    """
    cfg = validate_run(config, task, preset)
    train = cfg["train"]
    bs = int(batch_size or train["batch_size"])
    device = _resolve_device(train["device"])
    dtype = train["dtype"]
    threads = int(train["threads"])
    vocab = int(vocab_size or cfg["data"].get("vocab_size") or (50_257 if task == "wikitext2" else 20_000))
    info = {"vocab_size": vocab, "n_classes": 10 if task == "cifar10" else 2, "pad_id": 0}
    with _torch_settings(threads, device):
        _seed_everything(0)
        net, _ = build_run_model(task, preset, cfg, info)
        net.to(device).train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=train["lr"], weight_decay=train["weight_decay"])
        gen = torch.Generator().manual_seed(0)
        batch = _synthetic_batch(task, cfg, bs, vocab, gen).to(device)

        def sync():
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        def train_step():
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, dtype):
                logits = net(*batch.inputs)
            _loss(task, logits, batch.targets).backward()
            optimizer.step()

        for _ in range(warmup):
            train_step()
        sync()
        t0 = time.perf_counter()
        for _ in range(n_batches):
            train_step()
        sync()
        step_s = (time.perf_counter() - t0) / n_batches
        net.eval()
        with torch.no_grad():
            with _autocast(device, dtype):
                net(*batch.inputs)
            sync()
            t0 = time.perf_counter()
            for _ in range(n_batches):
                with _autocast(device, dtype):
                    net(*batch.inputs)
            sync()
            eval_s = (time.perf_counter() - t0) / n_batches
    unit_per_batch = batch.tokens if task == "wikitext2" else batch.samples
    return {
        "task": task,
        "model": preset,
        "d_model": cfg["model"]["d_model"],
        "n_layers": cfg["model"]["n_layers"],
        "n_heads": cfg["model"]["n_heads"],
        "seq_len": 256 if task == "cifar10" else int(train_seq_len(cfg)),
        "batch_size": bs,
        "vocab_size": vocab if task != "cifar10" else None,
        "n_parameters": sum(p.numel() for p in net.parameters()),
        "device": device.type,
        "dtype": dtype,
        "threads": threads,
        "n_batches": n_batches,
        "unit": "tokens" if task == "wikitext2" else "samples",
        "train_step_s": step_s,
        "train_throughput": unit_per_batch / step_s,
        "eval_throughput": unit_per_batch / eval_s,
        "epochs": int(train["epochs"]),
    }


def run_sizes(task: str, cfg: dict) -> dict:
    """Training and evaluation units per epoch of a run under ``cfg`` (samples; LM: tokens).

    The data section's ``n_train``/``n_test`` (LM: ``n_valid`` + ``n_test``, words, about one token each for
    the word-level synthetic data) when given, else the paper's dataset sizes; then the caps of ``train``.
    """
    d, t = cfg["data"], cfg["train"]
    n_train = d.get("n_train") or PAPER_DATA_SIZES[task]["train"]
    if task == "wikitext2":
        n_eval = (
            (d.get("n_valid") or 0) + (d.get("n_test") or 0) if d.get("n_train") else PAPER_DATA_SIZES[task]["eval"]
        )
        if t.get("max_eval_tokens"):
            n_eval = min(n_eval, 2 * t["max_eval_tokens"])
        per_batch = t["batch_size"] * int(train_seq_len(cfg))
    else:
        n_eval = d.get("n_test") or PAPER_DATA_SIZES[task]["eval"]
        if t.get("max_eval_samples"):
            n_eval = min(n_eval, t["max_eval_samples"])
        per_batch = t["batch_size"]
    if t.get("max_train_batches"):
        n_train = min(n_train, t["max_train_batches"] * per_batch)
    return {"train": int(n_train), "eval": int(n_eval), "epochs": int(t["epochs"])}


def projected_hours(result: dict, sizes: dict) -> float:
    """Projected wall time of a whole run: epochs x (training units / training speed + evaluation units / eval speed)."""
    per_epoch = sizes["train"] / result["train_throughput"] + sizes["eval"] / result["eval_throughput"]
    return sizes["epochs"] * per_epoch / 3600.0


def _throughput_cli(args) -> int:
    config = apply_overrides(load_config(args.config) if args.config else {}, args.set)
    sizes = args.sizes or (Path(args.config).stem if args.config else "paper")
    tasks = args.task.split(",") if args.task else list(TASKS)
    rows = []
    for task in tasks:
        task_cfg = resolve_task_config(config, task)
        models = (
            args.model.split(",")
            if args.model
            else [m for m in (config.get("models") or _default_models()) if m != "astro-leaky" or task == "wikitext2"]
        )
        if task == "wikitext2" and not args.model:
            models += [m for m in config.get("lm_extra_models", ["astro-leaky"]) if m not in models]
        for model in models:
            cfg = {"tasks": {task: task_cfg}}
            if args.device:
                cfg["tasks"][task]["train"]["device"] = args.device
            if args.threads:
                cfg["tasks"][task]["train"]["threads"] = args.threads
            res = measure_throughput(
                task, model, cfg, args.n_batches, batch_size=args.batch_size, vocab_size=args.vocab_size
            )
            res["sizes"] = sizes
            run = run_sizes(task, validate_run(cfg, task, model))
            res.update({"run_train_units": run["train"], "run_eval_units": run["eval"]})
            res["projected_run_h"] = projected_hours(res, run)
            rows.append(res)
            print(
                f"{sizes:>8} {task:>9} {model:>18}  bs={res['batch_size']:<3} "
                f"train {res['train_throughput']:10.1f} {res['unit']}/s  eval {res['eval_throughput']:10.1f} {res['unit']}/s  "
                f"run ({run['epochs']} epochs) ~ {_duration(res['projected_run_h'])}",
                flush=True,
            )
    if args.csv:
        path = Path(args.csv)
        cols = list(rows[0]) if rows else []
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
        buf = _stdio.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        if not existing:
            writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(v) if isinstance(v, float) else v for k, v in row.items()})
        aio.write_text(path, existing + buf.getvalue())
    return 0


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def _default_models() -> list[str]:
    from astromorphic.config import DEFAULTS

    return list(DEFAULTS["models"])


# ================================================================================================ command line


def apply_overrides(config: dict, assignments: list[str]) -> dict:
    """``["tasks.imdb.train.lr=1e-4", ...]`` laid over ``config`` (a copy); values are parsed as YAML."""
    import copy

    import yaml

    out = copy.deepcopy(config)
    for item in assignments or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"--set {item!r}: {part} is not a mapping")
            node = child
        node[parts[-1]] = yaml.safe_load(text)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astromorphic train",
        description="Train one task/model/seed run (resumes from its checkpoint; a finished run returns at once). "
        "With --throughput: measure training speed instead.",
    )
    parser.add_argument("--task", help=f"one of {', '.join(TASKS)} (--throughput: comma-separated, default all)")
    parser.add_argument("--model", help="model preset, e.g. vanilla, linearized, astro (--throughput: comma-separated)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", help="configuration YAML (--throughput: default = the paper's sizes)")
    parser.add_argument("--out", help="run directory")
    parser.add_argument("--data", help="prepared data directory (default: <results_dir>/data/<task>)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one configuration value, e.g. tasks.imdb.attention.alpha=0.3 (VALUE is read as YAML; repeatable)",
    )
    parser.add_argument("--inject-nonfinite-at", help=argparse.SUPPRESS)  # testing hook, see the module docstring
    parser.add_argument("--throughput", action="store_true", help="measure throughput instead of training")
    parser.add_argument("--n-batches", type=int, default=3, help="--throughput: timed batches")
    parser.add_argument("--batch-size", type=int, help="--throughput: override the configured batch size")
    parser.add_argument("--device", help="--throughput: override train.device")
    parser.add_argument("--threads", type=int, help="--throughput: override train.threads")
    parser.add_argument(
        "--vocab-size", type=int, help="--throughput: vocabulary size (default: data.vocab_size, else 20000 / 50257)"
    )
    parser.add_argument("--sizes", help="--throughput: label of the size set in the output")
    parser.add_argument("--csv", help="--throughput: append the results to this CSV")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        if args.throughput:
            return _throughput_cli(args)
        missing = [f"--{k}" for k in ("task", "model", "config", "out") if getattr(args, k) is None]
        if missing:
            print(f"astromorphic train: error: missing {', '.join(missing)}", file=sys.stderr)
            return 2
        config = apply_overrides(load_config(args.config), args.set)
        record = train_run(
            args.task,
            args.model,
            args.seed,
            config,
            args.out,
            args.data,
            inject_nonfinite_at=args.inject_nonfinite_at,
        )
    except ValueError as exc:
        LOG.debug("invalid run", exc_info=True)
        print(f"astromorphic train: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"astromorphic train: error: {exc}", file=sys.stderr)
        return 1
    LOG.info("%s: status %s", args.out, record.get("status"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
