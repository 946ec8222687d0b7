"""Batches of prepared data, one class per task: what a training run reads, and how each task is scored.

Every task-specific choice of the training loop lives on these classes (no test of the task's name
elsewhere): the batches, the unit of throughput (samples or tokens), the loss, the metrics and how they
are computed, the fixed probe batch, and whether the run is audited for causality (the language model).
All random draws come from an explicit generator, which the run checkpoints.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from astromorphic import tasks as task_registry
from astromorphic.config import train_seq_len

# forward(batch) -> logits, in evaluation mode on the run's device and precision
Forward = Callable[["Batch"], torch.Tensor]


class Batch:
    """One training or evaluation batch: model inputs, targets and its size in samples and predicted tokens."""

    __slots__ = ("inputs", "targets", "samples", "tokens")

    def __init__(self, inputs: tuple, targets: torch.Tensor, samples: int, tokens: int):
        self.inputs, self.targets, self.samples, self.tokens = inputs, targets, samples, tokens

    def to(self, device: torch.device) -> "Batch":
        if device.type == "cpu":
            return self
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return Batch(tuple(move(t) for t in self.inputs), move(self.targets), self.samples, self.tokens)


class TaskData:
    """Batches of one task's prepared splits (``load_prepared``) under a resolved task configuration."""

    unit = "samples"
    metrics: tuple[str, ...] = ()
    audited = False  # the LM: every run records a causality audit

    def __init__(self, splits: dict, manifest: dict, cfg: dict):
        self.splits, self.manifest, self.cfg = splits, manifest, cfg
        self.train_cfg = cfg["train"]
        self.device = torch.device("cpu")

    def _capped(self, n: int) -> int:
        cap = self.train_cfg.get("max_train_batches")
        return min(n, cap) if cap else n

    def n_train_batches(self) -> int:
        raise NotImplementedError

    def train_batches(self, gen: torch.Generator) -> Iterator[Batch]:
        raise NotImplementedError

    def probe_batch(self) -> Batch:
        raise NotImplementedError

    def check_values(self) -> None:
        """The value checks the model would make on every batch (token ids in range), once for all splits."""
        vocab = self.manifest.get("vocab_size")
        for name, split in self.splits.items():
            tokens = split.get("tokens") if isinstance(split, dict) else None
            if tokens is None or vocab is None or tokens.numel() == 0:
                continue
            low, high = int(tokens.min()), int(tokens.max())
            if low < 0 or high >= int(vocab):
                raise ValueError(
                    f"prepared {name} split: token ids in [{low}, {high}], expected [0, vocab_size={vocab}) "
                    "(prepare the data again)"
                )

    def to(self, device: torch.device) -> "TaskData":
        """Keep every split's tensors on ``device`` (batches are then cut there; indices stay on the host)."""
        if device.type != "cpu":
            self.splits = {
                name: {k: v.to(device) if torch.is_tensor(v) else v for k, v in split.items()}
                for name, split in self.splits.items()
            }
        self.device = device
        return self

    curve_metric = ""  # the learning curve's metric (``curve_point``)

    def curve_point(self, forward: "Forward") -> tuple[float, int]:
        """The learning-curve metric on the fixed subset (``train.curve_samples``) and the subset's size."""
        raise NotImplementedError

    def units(self, batch: Batch) -> int:
        return batch.tokens if self.unit == "tokens" else batch.samples

    @staticmethod
    def loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets, reduction=reduction)

    def evaluate(self, forward: Forward) -> dict[str, Any]:
        raise NotImplementedError

    def model_info(self) -> dict[str, Any]:
        """What ``build_model`` needs to know about the data (vocabulary, classes, padding)."""
        return {k: self.manifest[k] for k in ("vocab_size", "n_classes", "pad_id", "seq_len", "tokenizer")
                if k in self.manifest}  # fmt: skip


class ClassificationData(TaskData):
    """A classifier's batches. With a validation split (prepared with ``data.valid_size``) every evaluation
    measures ``valid_acc`` and ``test_acc``, and the learning curve is measured on the validation split: the run
    selects its epoch on ``valid_acc`` (:func:`astromorphic.runs.summarise`) and never on the test split."""

    eval_split = "test"
    valid_split = "valid"
    metrics: tuple[str, ...] = ("test_acc",)

    def __init__(self, splits, manifest, cfg):
        super().__init__(splits, manifest, cfg)
        self.n_train = int(splits["train"]["labels"].shape[0])
        cap = self.train_cfg.get("max_eval_samples")
        self.scored = tuple(s for s in (self.valid_split, self.eval_split) if s in splits)  # the splits evaluated
        self.metrics = tuple(f"{s}_acc" for s in self.scored)
        sizes = {s: int(splits[s]["labels"].shape[0]) for s in self.scored}
        self.n_scored = {s: min(n, cap) if cap else n for s, n in sizes.items()}
        self.n_eval = self.n_scored[self.eval_split]
        self.curve_split = self.valid_split if self.valid_split in splits else self.eval_split
        self.curve_metric = f"{self.curve_split}_acc"

    def n_train_batches(self) -> int:
        return self._capped(math.ceil(self.n_train / self.train_cfg["batch_size"]))

    def train_batches(self, gen):
        order = torch.randperm(self.n_train, generator=gen)
        bs = self.train_cfg["batch_size"]
        for i in range(self.n_train_batches()):
            yield self._batch("train", order[i * bs : (i + 1) * bs], gen)

    def eval_batches(self, split: str | None = None) -> Iterator[Batch]:
        split = split or self.eval_split
        bs, n = self.train_cfg["eval_batch_size"], self.n_scored[split]
        for start in range(0, n, bs):
            yield self._batch(split, torch.arange(start, min(start + bs, n)), None)

    def probe_batch(self):
        n = min(self.train_cfg["probe_samples"], self.n_eval)
        return self._batch(self.eval_split, torch.arange(n), None)

    def evaluate(self, forward):
        """The accuracy on each evaluated split (``valid_acc`` with a validation split, ``test_acc``)."""
        out = {}
        for split in self.scored:
            correct, total = torch.zeros((), dtype=torch.int64, device=self.device), 0
            for batch in self.eval_batches(split):
                logits = forward(batch)
                correct += (logits.argmax(-1) == batch.targets.to(logits.device)).sum()
                total += batch.samples
            out[f"{split}_acc"] = int(correct) / total if total else float("nan")
        return out

    def curve_indices(self) -> torch.Tensor:
        """A fixed subset of the learning curve's split (the validation split when there is one, else the test
        split; the same for every run and seed: a shuffle seeded with 0, so that a split ordered by class gives a
        class-balanced subset)."""
        total = self.n_scored[self.curve_split]
        n = min(int(self.train_cfg["curve_samples"]), total)
        return torch.randperm(total, generator=torch.Generator().manual_seed(0))[:n].sort().values

    def curve_point(self, forward):
        idx, bs = self.curve_indices(), self.train_cfg["eval_batch_size"]
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for start in range(0, len(idx), bs):
            batch = self._batch(self.curve_split, idx[start : start + bs], None)
            correct += (forward(batch).argmax(-1) == batch.targets).sum()
        return (int(correct) / len(idx) if len(idx) else float("nan")), len(idx)

    def _batch(self, split, idx, gen) -> Batch:
        raise NotImplementedError


class TextData(ClassificationData):
    """IMDB: padded token ids with their lengths; the model gets a key-padding mask (True = real token)."""

    def __init__(self, splits, manifest, cfg):
        super().__init__(splits, manifest, cfg)
        max_len, seq_len = cfg["model"]["max_len"], manifest.get("seq_len")
        if seq_len is not None and int(seq_len) > int(max_len):
            raise ValueError(f"tasks.imdb.model.max_len ({max_len}) is shorter than the prepared data's seq_len ({seq_len})")
        self.host_lengths = {name: split["lengths"] for name, split in splits.items()}  # token counts, no sync

    @staticmethod
    def random_batch(cfg: dict, batch_size: int, vocab_size: int, gen: torch.Generator) -> Batch:
        """A batch of the task's shapes filled with random values (a speed test only)."""
        tokens = torch.randint(0, vocab_size, (batch_size, int(train_seq_len(cfg))), generator=gen)
        mask = torch.ones(batch_size, tokens.shape[1], dtype=torch.bool)
        return Batch((tokens, mask), torch.randint(0, 2, (batch_size,), generator=gen), batch_size, tokens.numel())

    def _batch(self, split, idx, gen):
        s = self.splits[split]
        dev_idx = idx.to(self.device, non_blocking=True)
        tokens = s["tokens"][dev_idx]
        lengths = s["lengths"][dev_idx]
        mask = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0) < lengths.unsqueeze(1)
        return Batch((tokens, mask), s["labels"][dev_idx], len(idx), int(self.host_lengths[split][idx].sum()))


class ImageData(ClassificationData):
    """CIFAR-10: uint8 images; random crop (zero padding) and horizontal flip in training; per-channel normalisation."""

    def __init__(self, splits, manifest, cfg):
        super().__init__(splits, manifest, cfg)
        self.mean = torch.tensor(manifest.get("mean", [0.5, 0.5, 0.5]), dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(manifest.get("std", [0.25, 0.25, 0.25]), dtype=torch.float32).view(1, 3, 1, 1)
        aug = self.train_cfg.get("augment") or {}
        self.pad = int(aug.get("random_crop_padding") or 0)
        self.hflip = bool(aug.get("hflip", False))

    @staticmethod
    def random_batch(cfg: dict, batch_size: int, vocab_size: int, gen: torch.Generator) -> Batch:
        """A batch of the task's shapes filled with random values (a speed test only)."""
        x = torch.randn(batch_size, 3, 32, 32, generator=gen)
        return Batch((x,), torch.randint(0, 10, (batch_size,), generator=gen), batch_size, batch_size)

    def model_info(self):
        return {"n_classes": 10, **super().model_info()}

    def to(self, device):
        super().to(device)
        self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    def _batch(self, split, idx, gen):
        s = self.splits[split]
        dev_idx = idx.to(self.device, non_blocking=True)
        images = s["images"][dev_idx]
        if gen is not None:
            images = self._augment(images, gen)
        x = (images.float() / 255.0 - self.mean) / self.std
        return Batch((x,), s["labels"][dev_idx], len(idx), len(idx))

    def _augment(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, _, h, w = images.shape
        if self.pad:
            p = self.pad
            padded = F.pad(images, (p, p, p, p))  # zero (black) border, as torchvision's RandomCrop(padding=p)
            oy = torch.randint(0, 2 * p + 1, (b,), generator=gen)  # drawn on the host: the same on every device
            ox = torch.randint(0, 2 * p + 1, (b,), generator=gen)
            rows = (oy[:, None] + torch.arange(h)[None, :])[:, None, :, None]  # (b, 1, h, 1)
            cols = (ox[:, None] + torch.arange(w)[None, :])[:, None, None, :]  # (b, 1, 1, w)
            bi = torch.arange(b)[:, None, None, None]
            ci = torch.arange(images.shape[1])[None, :, None, None]
            dev = images.device
            images = padded[bi.to(dev), ci.to(dev), rows.to(dev), cols.to(dev)]
        if self.hflip:
            flip = (torch.rand(b, generator=gen) < 0.5).to(images.device)
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return images


class LMData(TaskData):
    """WikiText-2 token streams cut into windows of ``seq_len`` tokens (targets shifted by one).

    Training: non-overlapping windows from a random offset in [0, seq_len) drawn each epoch, in random order.
    Evaluation: non-overlapping windows from the start of the split, the last, shorter one included.
    """

    unit = "tokens"

    @staticmethod
    def random_batch(cfg: dict, batch_size: int, vocab_size: int, gen: torch.Generator) -> Batch:
        """A batch of the task's shapes filled with random values (a speed test only)."""
        length = int(train_seq_len(cfg))
        tokens = torch.randint(0, vocab_size, (batch_size, length), generator=gen)
        targets = torch.randint(0, vocab_size, (batch_size, length), generator=gen)
        return Batch((tokens,), targets, batch_size, tokens.numel())
    metrics = ("valid_ppl", "test_ppl", "valid_word_ppl", "test_word_ppl")
    audited = True

    def __init__(self, splits, manifest, cfg):
        super().__init__(splits, manifest, cfg)
        if manifest.get("vocab_size") is None:
            raise ValueError("the wikitext2 manifest has no vocab_size")
        self.seq_len = int(train_seq_len(cfg))
        t = int(splits["train"]["tokens"].numel())
        self.n_windows = (t - self.seq_len) // self.seq_len
        if self.n_windows < 1:
            raise ValueError(f"the train split has {t} tokens, too few for windows of seq_len {self.seq_len}")

    def n_train_batches(self) -> int:
        return self._capped(math.ceil(self.n_windows / self.train_cfg["batch_size"]))

    def train_batches(self, gen):
        stream = self.splits["train"]["tokens"]
        length = self.seq_len
        offset = int(torch.randint(0, length, (1,), generator=gen))
        order = torch.randperm(self.n_windows, generator=gen)
        bs = self.train_cfg["batch_size"]
        steps = torch.arange(length)
        for i in range(self.n_train_batches()):
            starts = offset + order[i * bs : (i + 1) * bs] * length
            idx = (starts[:, None] + steps[None, :]).to(stream.device, non_blocking=True)
            yield Batch((stream[idx],), stream[idx + 1], len(starts), idx.numel())

    @staticmethod
    def loss(logits, targets, reduction="mean"):
        logits = logits.float()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction=reduction)

    def eval_stream(self, split: str) -> torch.Tensor:
        stream = self.splits[split]["tokens"]
        cap = self.train_cfg.get("max_eval_tokens")
        return stream[:cap] if cap else stream

    def eval_batches(self, split: str) -> Iterator[Batch]:
        stream = self.eval_stream(split)
        length, bs = self.seq_len, self.train_cfg["eval_batch_size"]
        n_pred = stream.numel() - 1
        n_full = n_pred // length
        steps = torch.arange(length)
        for start in range(0, n_full, bs):
            starts = torch.arange(start, min(start + bs, n_full)) * length
            idx = (starts[:, None] + steps[None, :]).to(stream.device, non_blocking=True)
            yield Batch((stream[idx],), stream[idx + 1], len(starts), idx.numel())
        rest = n_pred - n_full * length
        if rest > 0:
            s = n_full * length
            yield Batch((stream[s : s + rest].unsqueeze(0),), stream[s + 1 : s + rest + 1].unsqueeze(0), 1, rest)

    def evaluate(self, forward):
        """Perplexity per token and per word of the valid and test splits (exp of the mean NLL)."""
        out: dict[str, Any] = {}
        for split in ("valid", "test"):
            if split not in self.splits:
                out[f"{split}_ppl"] = out[f"{split}_word_ppl"] = None
                continue
            nll, count = torch.zeros((), dtype=torch.float64, device=self.device), 0
            for batch in self.eval_batches(split):
                logits = forward(batch)
                nll += self.loss(logits, batch.targets.to(logits.device), reduction="sum").double()
                count += batch.tokens
            mean_nll = float(nll) / count if count else float("nan")
            out[f"{split}_ppl"] = safe_exp(mean_nll)
            tpw = self.tokens_per_word(split)
            out[f"{split}_word_ppl"] = safe_exp(mean_nll * tpw) if tpw else None
        return out

    def windows(self, split: str, n: int) -> torch.Tensor:
        stream = self.eval_stream(split)
        n = max(1, min(n, (stream.numel() - 1) // self.seq_len))
        return stream[: n * self.seq_len].view(n, self.seq_len)

    def audit_windows(self) -> torch.Tensor:
        return self.windows("valid" if "valid" in self.splits else "test", self.train_cfg["audit_samples"])

    def probe_batch(self):
        x = self.windows("valid", self.train_cfg["probe_samples"])
        return Batch((x,), x, x.shape[0], x.numel())

    curve_metric = "valid_ppl"

    def curve_point(self, forward):
        """Perplexity per token on the first ``curve_samples`` full windows of the validation split."""
        x = self.windows("valid", self.train_cfg["curve_samples"])
        nll, bs = torch.zeros((), dtype=torch.float64, device=self.device), self.train_cfg["eval_batch_size"]
        for start in range(0, x.shape[0], bs):
            window = x[start : start + bs]
            inputs, targets = window[:, :-1], window[:, 1:]
            nll += self.loss(forward(Batch((inputs,), targets, 0, 0)), targets, reduction="sum").double()
        count = (x.shape[1] - 1) * x.shape[0]
        return (safe_exp(float(nll) / count) if count else float("nan")), int(x.shape[0])

    def tokens_per_word(self, split: str) -> float | None:
        counts = (self.manifest.get("counts") or {}).get(split) or {}
        tokens, words = counts.get("tokens"), counts.get("words")
        if not tokens or not words:
            return None
        return float(tokens) / float(words)


def safe_exp(x: float) -> float:
    if math.isnan(x):
        return float("nan")
    try:
        return math.exp(x)
    except OverflowError:
        return float("inf")


# task -> its TaskData class, named by the registry
TASK_DATA: dict[str, type[TaskData]] = {t.name: globals()[t.task_data] for t in task_registry.REGISTRY}


def make_task_data(task: str, splits: dict, manifest: dict, cfg: dict) -> TaskData:
    return TASK_DATA[task](splits, manifest, cfg)
