"""The speed reference of the trainer: the same model trained by a minimal PyTorch loop.

``astromorphic bench throughput --reference`` times, for each task model and preset of a configuration,
the project's training step (``astromorphic.training.train_epoch``, the code path of ``train_run``: its
batches, checks, divergence and gradient-norm bookkeeping and schedule at their real frequency) against the
loop a PyTorch user would write in a few lines, on the identical model, interleaved in one process:

* the model: a plain re-statement of the project's architecture (embedding, position embedding, post-LN
  blocks, head) holding the project's attention modules (the attention is the object of study, not an
  overhead) and the same dropout sites and rate; it takes the project model's weights, and its outputs in
  evaluation mode are checked equal to the project model's before any timing (``max_abs_diff`` in the CSV);
* the loop: index a shuffled batch, ``zero_grad``, forward (under the run's autocast precision),
  cross-entropy, ``backward``, ``AdamW.step`` (PyTorch's default implementation, the run's learning rate,
  betas, eps and weight decay), nothing else.

Both train on the same random data of the configuration's shapes (prepared data are not needed).
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from astromorphic import tasks as task_registry
from astromorphic.config import require_device, train_seq_len, validate_run
from astromorphic.training.evaluation import autocast
from astromorphic.runs import RunDir
from astromorphic.training import TrainingRun, resolve_device, torch_settings, train_epoch


class PlainBlock(nn.Module):
    """Post-LN block: LN(x + drop(attn(x))), LN(y + drop(FFN(y)))."""

    def __init__(self, block: nn.Module, dropout: float):
        super().__init__()
        self.attn = copy.deepcopy(block.attn)
        self.ln1, self.ln2 = copy.deepcopy(block.ln1), copy.deepcopy(block.ln2)
        self.ffn = copy.deepcopy(block.ffn)
        self.p = dropout
        self.zero_attention = getattr(block.attn, "kind", None) == "none"

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if not self.zero_attention:
            x = x + F.dropout(self.attn(x, mask), self.p, self.training)
        y = self.ln1(x)
        return self.ln2(y + F.dropout(self.ffn(y), self.p, self.training))


class PlainModel(nn.Module):
    """The task model of ``project`` (TextClassifier, VisionClassifier or DecoderLM), restated plainly."""

    def __init__(self, task: str, project: nn.Module, dropout: float):
        super().__init__()
        self.task, self.p = task, dropout
        record = task_registry.get(task)
        self.images, self.lm = not record.tokenized, record.language_model
        self.blocks = nn.ModuleList(PlainBlock(b, dropout) for b in project.blocks)
        self.pos = None if project.pos is None else nn.Parameter(project.pos.detach().clone())
        for name in ("embed", "embed_proj", "stem", "patchify", "head", "final_ln", "lm_head"):
            if hasattr(project, name):
                setattr(self, name, copy.deepcopy(getattr(project, name)))
        if self.lm and project.tie_weights:
            self.lm_head.weight = self.embed.weight

    def _stack(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.pos is not None:
            x = x + self.pos[: x.shape[1]]
        x = F.dropout(x, self.p, self.training)
        for block in self.blocks:
            x = block(x, mask)
        return x

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if not self.images and not self.lm:  # a text classifier
            h = self._stack(self.embed_proj(self.embed(x)), mask)
            keep = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)
            return self.head(F.dropout(pooled, self.p, self.training))
        if self.images:
            h = self._stack(self.patchify(self.stem(x)).flatten(2).transpose(1, 2))
            return self.head(F.dropout(F.gelu(h).mean(dim=1), self.p, self.training))
        h = self._stack(self.embed(x))
        return self.lm_head(F.dropout(self.final_ln(h), self.p, self.training))


def random_splits(task: str, cfg: dict, n_train: int, vocab_size: int, seed: int = 0) -> tuple[dict, dict]:
    """Prepared-data splits and manifest of the task's shapes filled with random values (a speed test only)."""
    gen = torch.Generator().manual_seed(seed)

    record = task_registry.get(task)
    if not record.tokenized:
        split = {"images": torch.randint(0, 256, (n_train, 3, 32, 32), generator=gen, dtype=torch.uint8),
                 "labels": torch.randint(0, record.n_classes, (n_train,), generator=gen)}  # fmt: skip
        return {"train": split, "test": split}, {"n_classes": record.n_classes}
    length = int(train_seq_len(cfg))
    if not record.language_model:
        lengths = torch.randint(length // 2, length + 1, (n_train,), generator=gen)
        tokens = torch.randint(1, vocab_size, (n_train, length), generator=gen)
        tokens[torch.arange(length)[None, :] >= lengths[:, None]] = 0
        labels = torch.randint(0, record.n_classes, (n_train,), generator=gen)
        split = {"tokens": tokens, "lengths": lengths, "labels": labels}
        manifest = {"vocab_size": vocab_size, "n_classes": record.n_classes, "pad_id": 0, "seq_len": length}
        return {"train": split, "test": split}, manifest
    stream = torch.randint(0, vocab_size, ((n_train + 1) * length + 1,), generator=gen)
    split = {"tokens": stream}
    return {"train": split, "valid": split, "test": split}, {"vocab_size": vocab_size, "tokenizer": "random"}


def _plain_batches(task: str, splits: dict, batch_size: int, seq_len: int, gen: torch.Generator):
    """What a plain loop indexes each step: a shuffled batch of inputs and targets."""
    train = splits["train"]
    if task_registry.get(task).language_model:
        stream = train["tokens"]
        n = (stream.numel() - 1) // seq_len
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            pos = idx[:, None] * seq_len + torch.arange(seq_len)[None, :]
            yield (stream[pos],), stream[pos + 1]
        return
    n = train["labels"].shape[0]
    for idx in torch.randperm(n, generator=gen).split(batch_size):
        if task_registry.get(task).tokenized:
            tokens = train["tokens"][idx]
            mask = torch.arange(tokens.shape[1])[None, :] < train["lengths"][idx][:, None]
            yield (tokens, mask), train["labels"][idx]
        else:
            yield ((train["images"][idx].float() / 255.0 - 0.5) / 0.25,), train["labels"][idx]


def _plain_loss(task: str, logits: Tensor, targets: Tensor) -> Tensor:
    if task_registry.get(task).language_model:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return F.cross_entropy(logits, targets)


def compare(task: str, preset: str, config: dict, *, steps: int = 20, repeats: int = 3,
            vocab_size: int | None = None, batch_size: int | None = None, compile_project: bool = False) -> dict:  # fmt: skip
    """Samples (LM: tokens) per second of the project's training step and of the plain loop, interleaved."""
    cfg = validate_run(config, task, preset)
    require_device(cfg, task)
    cfg["train"]["max_train_batches"] = steps
    if batch_size:
        cfg["train"]["batch_size"] = cfg["train"]["eval_batch_size"] = int(batch_size)
    train = cfg["train"]
    device = resolve_device(train["device"])
    record = task_registry.get(task)
    vocab = int(vocab_size or cfg["data"].get("vocab_size") or record.default_vocab_size or 0)
    bs, seq_len = int(train["batch_size"]), int(train_seq_len(cfg)) if record.tokenized else 0
    splits, manifest = random_splits(task, cfg, steps * bs, vocab)
    with torch_settings(int(train["threads"]), device, train["tf32"], train["fill_uninitialized_memory"]), \
            tempfile.TemporaryDirectory() as tmp:
        run = TrainingRun(task, preset, 0, config, cfg, RunDir(Path(tmp)), splits, manifest, device)
        plain = PlainModel(task, run.net, float(cfg["model"]["dropout"])).to(device)
        if compile_project:  # a measurement only: torch.compile of the project's model (inductor, the machine's compiler)
            run.net = torch.compile(run.net)
        diff = _max_abs_diff(task, run.net, plain, splits, device, bs, seq_len)
        if not diff <= 1e-4:
            raise AssertionError(f"{task}/{preset}: the plain model differs from the project's ({diff:.3g})")
        opt = torch.optim.AdamW(plain.parameters(), lr=train["lr"], betas=tuple(train["betas"]), eps=train["eps"],
                                weight_decay=train["weight_decay"])  # fmt: skip
        gen = torch.Generator().manual_seed(1)

        def plain_epoch() -> tuple[float, int]:
            plain.train()
            t0, units = time.perf_counter(), 0
            for inputs, targets in _plain_batches(task, splits, bs, seq_len, gen):
                inputs, targets = tuple(t.to(device) for t in inputs), targets.to(device)
                opt.zero_grad(set_to_none=True)
                with autocast(device, train["dtype"]):
                    logits = plain(*inputs)
                _plain_loss(task, logits.float(), targets).backward()
                opt.step()
                units += targets.numel()
            _sync(device)
            return time.perf_counter() - t0, units

        def project_epoch() -> tuple[float, int]:
            out = train_epoch(run, 1, None, 0.0, False)
            _sync(device)
            return out["train_s"], out["units"]

        project_epoch(), plain_epoch()  # warm-up
        project_rates, plain_rates = [], []
        for _ in range(repeats):
            seconds, units = project_epoch()
            project_rates.append(units / seconds)
            seconds, units = plain_epoch()
            plain_rates.append(units / seconds)
    project_rate, plain_rate = _median(project_rates), _median(plain_rates)
    return {
        "task": task, "model": preset, "d_model": cfg["model"]["d_model"], "n_layers": cfg["model"]["n_layers"],
        "seq_len": record.fixed_seq_len or seq_len, "batch_size": bs, "device": device.type,
        "dtype": train["dtype"], "threads": int(train["threads"]), "steps": steps, "repeats": repeats,
        "unit": record.cost_unit, "max_abs_diff": diff,
        "project_throughput": project_rate, "plain_throughput": plain_rate,
        "time_ratio": plain_rate / project_rate,  # project step time / plain step time
        "project_compiled": bool(compile_project),
    }  # fmt: skip


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def _max_abs_diff(task, project, plain, splits, device, bs, seq_len) -> float:
    """Largest difference of the two models' outputs in evaluation mode on one batch."""
    inputs, _ = next(_plain_batches(task, splits, bs, seq_len, torch.Generator().manual_seed(2)))
    inputs = tuple(t.to(device) for t in inputs)
    project.eval(), plain.eval()
    try:
        diff = float((project(*inputs).float() - plain(*inputs).float()).abs().max())
    finally:
        project.train(), plain.train()
    return diff if math.isfinite(diff) else float("inf")
