"""The functional core: astromorphic (and linearized) attention, softmax attention, the value-sensitivity probe.

``astromorphic_attention(q, k, v, ...)`` computes, per head, the attention term of the paper's Eq. 17
without the residual (SPEC.md section 2)::

    phi(x)  = elu(x) + 1                                   (applied to q and k inside)
    S       = phi(K)^T V + W_astro V                        (Eq. 9 + Eq. 10, before the 1/m)
    H       = sigmoid(S / m)   or   S / m  without sigmoid   (Eq. 11)
    g       = (sum_t phi(k_t)) ** alpha, elementwise        (Eq. 13-14; the W_astro term is not in g)
    C_i     = phi(q_i) . g ;  P_i = 1 / C_i                 (Eq. 15-16)
    out_i   = P_i * phi(q_i) H                              (Eq. 17, row-wise scaling, SPEC decision 4)

Without feedback (SPEC decision 8), P_i = 1 / (sum_j phi(q_i)_j * n_i ** alpha), n_i = number of tokens
written: what C_i would be if every entry of phi(k) were 1 (phi(k) = elu(k) + 1 has mean about 1 at
initialisation). It does not depend on the keys and keeps the output's magnitude (docs/decisions.md).
Without the value path (``value_path=False``, the gate-only control, SPEC decision 9) the sigmoid's
argument is set to 0: H = 1/2 in every entry, so num_i = 1/2 * sum_j phi(q_i)_j in every value column; g
and P as above. When ``causal``, every sum runs over the positions up to and including i, and the sigmoid
acts on every prefix state S_i (SPEC decision 6).

Decisions documented here
-------------------------
* Division guard. phi > 0, so C_i > 0 for every finite input; C_i can only be exactly zero when nothing has
  been written (a fully padded prefix) or when phi underflows. Following the paper's "reciprocal of the
  non-zero entries" (Eq. 16), P_i = 0 where C_i == 0 (likewise where the token count is zero), and
  ``g = 0 ** alpha`` is taken as 0 with a zero gradient. No epsilon is added anywhere, so the maths is
  unchanged for every C_i > 0.
* Bidirectional: one autograd Function with a hand-written backward (``attention.fused``), equal to the
  elementary-operator ``_core`` (the causal path, and its reference) within float rounding.
* Causal reads: chunk-wise, memory O(N d + N d^2 / chunk_size) per head (``attention.causal``).
* Half precision. float16/bfloat16 inputs are computed in float32 (long prefix sums of positive terms
  stall in 8-bit mantissas) and the result is cast back.
* Padding. ``key_padding_mask`` (B, N) bool, True = real token: padded tokens add nothing to S or g and are
  not counted in n_i of the no-feedback normaliser; rows of padded queries are still computed (and ignored
  downstream).
"""

from __future__ import annotations

import contextlib
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from astromorphic.attention.causal import DEFAULT_CHUNK, causal_linear_read, causal_sigmoid_read, resolve_chunk
from astromorphic.attention.checks import (
    check_chunk,
    check_finite_tensor,
    check_mask,
    check_positive_number,
    check_tensor,
    fail,
)
from astromorphic.attention.fused import CoreSwitches, bidirectional_core


def feature_map(x: Tensor) -> Tensor:
    """phi(x) = elu(x) + 1 (strictly positive)."""
    return F.elu(x) + 1.0


def _safe_pow(x: Tensor, alpha: float) -> Tensor:
    """x ** alpha for x >= 0, with 0 ** alpha = 0 and a zero (not infinite) gradient at 0."""
    if alpha == 1.0:
        return x
    positive = x > 0
    base = torch.where(positive, x, torch.ones_like(x))
    if alpha == 0.5:  # square roots are exact to rounding and much faster than pow
        powered = base.sqrt()
    elif alpha == 0.25:
        powered = base.sqrt().sqrt()
    else:
        powered = base.pow(alpha)
    return torch.where(positive, powered, torch.zeros_like(x))


def _safe_reciprocal(x: Tensor) -> Tensor:
    """1 / x where x != 0, else 0 (Eq. 16: reciprocal of the non-zero entries)."""
    nonzero = x != 0
    base = torch.where(nonzero, x, torch.ones_like(x))
    return torch.where(nonzero, base.reciprocal(), torch.zeros_like(x))


def astromorphic_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    w_astro: Optional[Tensor] = None,
    alpha: float = 0.25,
    sigmoid: bool = True,
    feedback: bool = True,
    causal: bool = False,
    m_scale: float = 1.0,
    key_padding_mask: Optional[Tensor] = None,
    chunk_size: Optional[int] = DEFAULT_CHUNK,
    validate: bool = True,
    value_path: bool = True,
) -> Tensor:
    """Attention term phi(Q)(H (.) P) of Eq. 17 (no residual); see the module docstring.

    q, k: (B, H, N, d_k); v: (B, H, N, d_v); w_astro: (H, d_k, N) or None; key_padding_mask: (B, N) bool,
    True = real token, or None. Returns (B, H, N, d_v). Shapes and numbers are always checked;
    ``validate=False`` skips the NaN/inf check of the tensors (it synchronises a GPU).
    ``value_path=False`` sets the sigmoid's argument to 0 (the gate-only control): H = 1/2 everywhere,
    g and P unchanged, and the output does not depend on v (nor on w_astro).
    """
    alpha = check_positive_number("alpha", alpha)
    m_scale = check_positive_number("m_scale", m_scale)
    chunk_size = check_chunk(chunk_size)
    check_tensor("q", q, 4, "(B, H, N, d_k)")
    check_tensor("k", k, 4, "(B, H, N, d_k)")
    check_tensor("v", v, 4, "(B, H, N, d_v)")
    b, h, n, dk = q.shape
    if tuple(k.shape) != tuple(q.shape):
        raise fail("k", f"shape (B, H, N, d_k) = {tuple(q.shape)} like q", f"shape {tuple(k.shape)}")
    if tuple(v.shape[:3]) != (b, h, n):
        raise fail("v", f"shape (B, H, N, d_v) with (B, H, N) = {(b, h, n)} like q", f"shape {tuple(v.shape)}")
    if n < 1:
        raise fail("q", "at least one position (N >= 1)", f"shape {tuple(q.shape)}")
    if w_astro is not None:
        check_tensor("w_astro", w_astro, 3, "(H, d_k, N)")
        if tuple(w_astro.shape) != (h, dk, n):
            raise fail("w_astro", f"shape (H, d_k, N) = {(h, dk, n)}", f"shape {tuple(w_astro.shape)}")
    if key_padding_mask is not None:
        check_mask(key_padding_mask, b, n)
    if validate:
        for name, t in (("q", q), ("k", k), ("v", v), ("w_astro", w_astro)):
            if t is not None:
                check_finite_tensor(name, t)

    out_dtype = q.dtype
    compute = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    q, k, v = as_dtype(q, compute), as_dtype(k, compute), as_dtype(v, compute)
    w_astro = None if w_astro is None else as_dtype(w_astro, compute)
    with autocast_off(q.device.type):
        if causal:
            out = _core(
                q,
                k,
                v,
                w_astro,
                alpha,
                sigmoid,
                feedback,
                True,
                m_scale,
                key_padding_mask,
                chunk_size,
                bool(value_path),
            )
        else:
            real = None if key_padding_mask is None else key_padding_mask[:, None, :, None].to(compute)
            rows = None if w_astro is None else w_astro.transpose(-1, -2) * (1.0 / m_scale)  # (H, N, d_k) / m
            switches = CoreSwitches("bhn", m_scale, alpha, bool(sigmoid), bool(feedback), bool(value_path))
            out = bidirectional_core(q, k, v, rows, real, switches)
    return as_dtype(out, out_dtype)


def as_dtype(t: Tensor, dtype: torch.dtype) -> Tensor:
    """t in ``dtype``; t itself when it has it (a no-op cast still costs an operator call)."""
    return t if t.dtype == dtype else t.to(dtype)


def autocast_off(device_type: str):
    """Disable autocast (the core computes in the input precision, float32 for half inputs)."""
    if device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def _core(
    q, k, v, w_astro, alpha, sigmoid, feedback, causal, m_scale, key_padding_mask, chunk_size, value_path=True
) -> Tensor:
    """The core from elementary operators, differentiated by autograd: the causal path, and for the
    bidirectional one the reference that ``BidirectionalCore`` (``attention.fused``) is tested against."""
    phi_q = feature_map(q)
    phi_k = feature_map(k)
    real = None
    if key_padding_mask is not None:
        real = key_padding_mask.to(q.dtype)[:, None, :, None]  # (B, 1, N, 1)
        phi_k = phi_k * real
        v = v * real
    if value_path:
        num = _hebbian_read(phi_q, phi_k, v, w_astro, real, sigmoid, causal, m_scale, chunk_size)
    else:
        # the sigmoid's argument set to 0: H = sigmoid(0) = 1/2 (or 0 without the sigmoid) in every entry
        gate = phi_q.sum(dim=-1, keepdim=True) * (0.5 if sigmoid else 0.0)
        num = gate.expand(*gate.shape[:-1], v.shape[-1])
    return num * row_scale(phi_q, phi_k, key_padding_mask, alpha, feedback, causal).unsqueeze(-1)


def _hebbian_read(phi_q, phi_k, v, w_astro, real, sigmoid, causal, m_scale, chunk_size) -> Tensor:
    """The numerator phi(q_i) H_i, H = sigmoid(S / m) or S / m (Eq. 9-11, 17)."""
    b, h, n, dk = phi_q.shape
    write_k = phi_k
    if w_astro is not None:
        write_k = phi_k + w_astro.transpose(-1, -2).unsqueeze(0)
        if real is not None:
            write_k = write_k * real
    write_k = write_k * (1.0 / m_scale)
    if not causal:
        state = write_k.transpose(-1, -2) @ v  # (B, H, dk, dv) = S / m
        if sigmoid:
            state = torch.sigmoid(state)
        return phi_q @ state
    chunk = resolve_chunk(chunk_size, b * h, dk, v.shape[-1], phi_q.device)
    read = causal_sigmoid_read if sigmoid else causal_linear_read
    return read(phi_q, write_k.expand(b, h, n, dk), v, chunk)


def row_scale(phi_q, phi_k, key_padding_mask, alpha, feedback, causal) -> Tensor:
    """P_i, (B, H, N) or broadcastable: 1 / (phi(q_i) . g_i) with feedback (Eq. 15-16); without it
    1 / (sum_j phi(q_i)_j * n_i ** alpha), n_i = number of tokens written (what phi(q_i) . g_i would be if
    every entry of phi(k) were 1), so that the output keeps its magnitude but P does not see the keys."""
    if feedback:
        k_sum = phi_k.cumsum(dim=-2) if causal else phi_k.sum(dim=-2, keepdim=True)
        return _safe_reciprocal((phi_q * _safe_pow(k_sum, alpha)).sum(dim=-1))  # 1 / C_i
    b, _, n, _ = phi_q.shape
    if key_padding_mask is not None:
        real_count = key_padding_mask.to(phi_q.dtype)
        count = real_count.cumsum(-1) if causal else real_count.sum(-1, keepdim=True).expand(b, n)
        count = count[:, None, :]  # (B, 1, N)
    elif causal:
        count = torch.arange(1, n + 1, device=phi_q.device, dtype=phi_q.dtype)
    else:
        count = phi_q.new_full((n,), n)
    return _safe_reciprocal(phi_q.sum(dim=-1) * _safe_pow(count, alpha))


def softmax_attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, key_padding_mask: Optional[Tensor] = None
) -> Tensor:
    """Scaled dot-product softmax attention (torch SDPA); (B, H, N, d) -> (B, H, N, d_v).

    A query row that may see no real key at all (a fully padded prefix) attends to itself only, so that
    no row is NaN; such rows belong to padded positions and are ignored downstream.
    """
    check_tensor("q", q, 4, "(B, H, N, d_k)")
    check_tensor("k", k, 4, "(B, H, N, d_k)")
    check_tensor("v", v, 4, "(B, H, N, d_v)")
    b, h, n, _ = q.shape
    if key_padding_mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    check_mask(key_padding_mask, b, n)
    allowed = key_padding_mask[:, None, None, :]  # (B, 1, 1, N)
    if causal:
        allowed = allowed & torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
    else:
        allowed = allowed.expand(b, 1, n, n)
    # a query with no allowed key (a fully padded row) attends to itself; applied unconditionally, since asking
    # whether any row is empty would make the host wait for the device on every forward
    empty = ~allowed.any(dim=-1, keepdim=True)
    allowed = allowed | (empty & torch.eye(n, dtype=torch.bool, device=q.device))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)


@torch.no_grad()
def value_sensitivity(out: Tensor, out_zero: Tensor, key_padding_mask: Optional[Tensor] = None) -> float:
    """||out(V) - out(V = 0)|| / ||out(V)||, Frobenius norms over all heads and the real query rows.

    out, out_zero: (B, H, N, d_v) attention terms (before the output projection); key_padding_mask (B, N),
    True = real token, or None. 1 for an attention term linear in V (softmax, linearized), 0 for one that
    ignores V; 0.0 when ||out(V)|| = 0.
    """
    diff = (out.float() - out_zero.float()).square()
    ref = out.float().square()
    if key_padding_mask is not None:
        keep = key_padding_mask.to(torch.float32)[:, None, :, None]
        diff, ref = diff * keep, ref * keep
    den = float(ref.sum())
    return math.sqrt(float(diff.sum()) / den) if den > 0 else 0.0
