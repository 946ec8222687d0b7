"""What a run measures besides its loss: task metrics, the attention probe and the causality audit.

* Task metrics (``TaskData.evaluate``, see astromorphic.data.batches): ``test_acc`` on the whole test split
  or its first ``train.max_eval_samples`` samples (and ``valid_acc`` likewise on a validation split); LM perplexities on non-overlapping windows of ``seq_len``
  tokens that tile the split (the last, shorter window included), each token predicted from the tokens
  before it in its window. ``*_ppl`` = exp(mean NLL per token); ``*_word_ppl`` = exp(total NLL / number of
  words), computed as exp(mean NLL per token x tokens per word of the split, from the manifest counts).
* Probe (``attn_ratio_l{i}``, layer i counted from 0): ||attention term|| / ||residual input|| per layer,
  ``value_sens_l{i}`` = ||out(V) - out(V = 0)|| / ||out(V)|| of the attention term before the output
  projection (every attention kind but none; SPEC decision 9), and for astromorphic attention the mean
  and standard deviation of the sigmoid's argument, on a fixed batch (the first ``train.probe_samples``
  test samples; LM: validation windows), in evaluation mode.
* Causality audit (LM): the largest change of the logits at positions <= t when every token after t is
  replaced, at several t; a causal model gives 0 up to ``train.audit_tol``. Prefix consistency (SPEC
  decision 7), in the same record: the largest change of the logits at positions <= t when the model
  sees tokens 0..t alone instead of the whole window (``prefix_*`` keys, same positions and tolerance).
  The leaky diagnostic fails both.
"""

from __future__ import annotations

import contextlib
import logging
import math

import torch

from astromorphic.data.batches import Batch, TaskData

LOG = logging.getLogger("astromorphic.training")
PROBE_KEY_ORDER = ("attn_ratio", "value_sens", "sigmoid_arg_mean", "sigmoid_arg_std")


def autocast(device: torch.device, dtype: str):
    if dtype == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _forward(model: torch.nn.Module, device: torch.device, dtype: str):
    def forward(batch: Batch) -> torch.Tensor:
        batch = batch.to(device)
        with autocast(device, dtype):
            return model(*batch.inputs)

    return forward


@torch.inference_mode()
def evaluate(model: torch.nn.Module, data: TaskData, device: torch.device, dtype: str) -> dict:
    """The task's metrics for the model in evaluation mode."""
    with eval_mode(model):
        return data.evaluate(_forward(model, device, dtype))


@torch.inference_mode()
def curve_point(model: torch.nn.Module, data: TaskData, device: torch.device, dtype: str) -> tuple[float, int]:
    """The learning-curve metric (``data.curve_metric``) on its fixed subset, in evaluation mode, and the
    subset's size. Evaluation mode draws no random numbers, so the training that follows is unchanged."""
    with eval_mode(model):
        return data.curve_point(_forward(model, device, dtype))


@torch.no_grad()
def attention_probe(model: torch.nn.Module, batch: Batch, device: torch.device, dtype: str) -> list[dict]:
    """Per-layer probe values (``model.attention_probe()``) from one forward pass in evaluation mode."""
    if not hasattr(model, "set_probe") or not hasattr(model, "attention_probe"):
        LOG.warning("the model has no attention probe; probe columns stay empty")
        return []
    model.set_probe(True)
    try:
        with eval_mode(model):
            batch = batch.to(device)
            with autocast(device, dtype):
                model(*batch.inputs)
            layers = model.attention_probe() or []
    finally:
        model.set_probe(False)
    return [
        {k: float(v) for k, v in layer.items() if isinstance(v, (int, float)) or torch.is_tensor(v)}
        for layer in layers
    ]


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
    """Largest change of the logits at positions <= t when every token after t is replaced (several t),
    and when the model is given tokens 0..t alone (prefix consistency).

    A causal, prefix-consistent LM gives 0 for both (up to ``tol``); the leaky diagnostic does not, and the
    record says so (``passed``: causality, ``prefix_passed``: prefix consistency).
    """
    gen = torch.Generator().manual_seed(1_000_003 + seed)
    length = windows.shape[1]
    positions = sorted({0, length // 4, length // 2, (3 * length) // 4, length - 2} & set(range(max(length - 1, 0))))

    def logits(tokens: torch.Tensor) -> torch.Tensor:
        with autocast(device, dtype):
            return model(tokens.to(device)).float()

    with eval_mode(model):
        base = logits(windows)
        per_position, prefix = [], []
        for t in positions:
            # drawn on the host (the same numbers on every device), compared where the windows are
            noise = torch.randint(0, vocab_size, windows[:, t + 1 :].shape, generator=gen).to(windows.device)
            same = noise == windows[:, t + 1 :]
            noise = torch.where(same, (noise + 1) % vocab_size, noise)  # every later token really changes
            changed = windows.clone()
            changed[:, t + 1 :] = noise
            per_position.append(float((logits(changed)[:, : t + 1] - base[:, : t + 1]).abs().max()))
            prefix.append(float((logits(windows[:, : t + 1]) - base[:, : t + 1]).abs().max()))
    worst = max(per_position) if per_position else 0.0
    prefix_worst = max(prefix) if prefix else 0.0
    return {
        "max_abs_change": worst,
        "positions": positions,
        "per_position": per_position,
        "samples": int(windows.shape[0]),
        "seq_len": int(length),
        "tolerance": tol,
        "passed": bool(math.isfinite(worst) and worst <= tol),
        "prefix_max_abs_change": prefix_worst,
        "prefix_per_position": prefix,
        "prefix_passed": bool(math.isfinite(prefix_worst) and prefix_worst <= tol),
    }


def audit_run(model: torch.nn.Module, data, device: torch.device, dtype: str, seed: int) -> dict:
    """The causality audit of an LM run on its audit windows (``train.audit_samples``)."""
    train = data.train_cfg
    return causality_audit(
        model, data.audit_windows(), int(data.manifest["vocab_size"]), device, dtype,
        tol=float(train["audit_tol"]), seed=seed,
    )  # fmt: skip
