"""What a training run sets up around its model: the learning-rate schedule, every random state (saved in the
checkpoint so that a resumed run draws the same numbers), the device, and the process-wide torch settings
(threads, deterministic algorithms, TF32) restored when the run ends. Used by astromorphic.training."""

from __future__ import annotations

import contextlib
import math
import os
import random
from typing import Iterator

import numpy as np
import torch


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based): linear warm-up, then flat or cosine."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        progress = min(max(step - warmup_steps, 0) / span, 1.0)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def warmup_step_count(train: dict, steps_per_epoch: int) -> int:
    if train.get("warmup_steps") is not None:
        return int(train["warmup_steps"])
    return int(round(float(train.get("warmup_epochs") or 0.0) * steps_per_epoch))


# ================================================================================================ run state


def rng_state(data_gen: torch.Generator, device: torch.device) -> dict:
    """Every random state of the run as tensors and plain values (a checkpoint is read with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},  # fmt: skip
        "python": random.getstate(),
        "data": data_gen.get_state(),
    }


def set_rng_state(state: dict, data_gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    keys = numpy_state["keys"].numpy().astype(np.uint32)
    np.random.set_state((numpy_state["name"], keys, numpy_state["pos"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))  # fmt: skip
    random.setstate(state["python"])
    data_gen.set_state(state["data"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


@contextlib.contextmanager
def torch_settings(threads: int, device: torch.device, tf32: bool = False, fill_memory: bool = True) -> Iterator[None]:
    """Threads and deterministic algorithms for the run; the previous process-wide settings come back afterwards.

    ``fill_memory`` is torch's ``torch.utils.deterministic.fill_uninitialized_memory``: in deterministic mode
    every new uninitialised tensor is filled (NaN for floating point), which makes a read of memory nobody wrote
    show up as NaN. Code that never reads such memory gives the same numbers with the fill off
    (docs/decisions.md; tests/test_training.py checks it run by run)."""
    old_threads = torch.get_num_threads()
    old_fill = torch.utils.deterministic.fill_uninitialized_memory
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_precision = torch.get_float32_matmul_precision()
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if tf32:  # TensorFloat-32 matrix products (CUDA only; the CPU ignores the setting)
            torch.set_float32_matmul_precision("high")
    torch.set_num_threads(threads)
    # CPU: strict, so a nondeterministic kernel fails loudly; CUDA: some kernels have no deterministic variant.
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    torch.utils.deterministic.fill_uninitialized_memory = bool(fill_memory)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.set_float32_matmul_precision(old_precision)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.utils.deterministic.fill_uninitialized_memory = old_fill
