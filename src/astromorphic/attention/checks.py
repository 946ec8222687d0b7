"""Input checks of the attention functions and modules: one ValueError naming the argument, what was
expected and what was given."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def fail(name: str, expected: str, got) -> ValueError:
    return ValueError(f"{name}: expected {expected}, got {got}")


def check_tensor(name: str, t, ndim: int, layout: str) -> None:
    if not isinstance(t, Tensor):
        raise fail(name, f"a torch.Tensor of shape {layout}", type(t).__name__)
    if t.dim() != ndim:
        raise fail(name, f"a {ndim}-d tensor of shape {layout}", f"shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise fail(name, "a floating-point tensor", t.dtype)


def check_finite_tensor(name: str, t: Tensor) -> None:
    if not bool(torch.isfinite(t).all()):
        raise fail(name, "finite values", "NaN or infinite entries")


def check_positive_number(name: str, x) -> float:
    try:
        value = float(x)
    except (TypeError, ValueError):
        raise fail(name, "a finite number > 0", repr(x)) from None
    if not math.isfinite(value) or value <= 0:
        raise fail(name, "a finite number > 0", repr(x))
    return value


def check_chunk(chunk_size):
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise fail("chunk_size", "a positive integer or None (automatic)", repr(chunk_size))
    return chunk_size


def check_mask(mask, batch: int, n: int) -> None:
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise fail("key_padding_mask", "a bool tensor of shape (B, N), True = real token", got)
    if tuple(mask.shape) != (batch, n):
        raise fail("key_padding_mask", f"shape (B, N) = {(batch, n)}", f"shape {tuple(mask.shape)}")
