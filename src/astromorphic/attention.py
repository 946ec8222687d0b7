"""Attention: softmax, linearized (Kozachkov et al. [18]) and astromorphic, bidirectional and strictly causal.

Functional core
---------------
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
* Causal with sigmoid. The sigmoid acts on each prefix state, so the d_k x d_v state of every position has
  to be formed. It is formed ``chunk_size`` positions at a time from the carried state, and a hand-written
  ``torch.autograd.Function`` recomputes each chunk during the backward pass (running backwards over the
  chunks, carrying the gradient of the state). Only the input rows and one state per chunk are kept for
  the backward pass, so memory is O(N d + N d^2 / chunk_size + chunk_size d^2) per head, never O(N d^2).
  ``chunk_size=None`` (default) chooses 64 on the CPU and, on CUDA, 16 to 256 by the size of the states.
  Within a chunk the prefix states come from one cumsum kernel on CUDA and from a step-wise fused
  multiply-add on the CPU (torch's CPU cumsum along a leading dimension is several times slower).
* Causal without sigmoid is ordinary causal linear attention, computed chunk-wise (intra-chunk masked
  product plus the carried state), also with O(N d + N d^2 / chunk_size) memory.
* Half precision. float16/bfloat16 inputs are computed in float32 (long prefix sums of positive terms
  stall in 8-bit mantissas) and the result is cast back.
* Padding. ``key_padding_mask`` (B, N) bool, True = real token: padded tokens add nothing to S or g and are
  not counted in n_i of the no-feedback normaliser; rows of padded queries are still computed (and ignored
  downstream).

Relative position (Eq. 12)
--------------------------
``relative_position_activity(M, tau)`` returns W_astro = phi(M^T (M P M^T))^T for M of shape (H, d_k, L),
with P_ij = exp(-|i - j| / tau) (``position="exp"``, default) or |i - j| / L (``position="linear"``,
SPEC decision 5); ``n=`` keeps the first n columns. The product M P is formed densely (L x L matrix) or
without P: for "exp" as a blocked two-sided exponential scan (a matrix product with a small in-block decay
matrix, plus a carry between blocks; only non-positive powers of exp(-1/tau) appear, so nothing
overflows), for "linear" from prefix sums (in float64 against cancellation). ``method="auto"`` picks the
dense form for L <= DENSE_MAX_N (256 on the CPU, 4096 on CUDA), the crossovers measured by
``astromorphic bench attention``. Decay weights below the smallest normal float are set to zero (they are
below float tolerance, and subnormal arithmetic is slow). W_astro depends on the positions only, never on
token content (SPEC decision 7). The modules build D = M P M^T on all ``max_len`` positions and keep the
first N columns of W_astro for a sequence of length N, so column t is the same for every window length
(prefix consistency: the causal output at t depends on tokens 0..t only, not on how long the window is),
and the same function of position in the causal and bidirectional models. It is computed once per forward
(position only; linear in max_len with the scan).

Modules
-------
``build_attention(spec, d_model, n_heads, max_len, causal)`` returns a module ``forward(x, key_padding_mask)``
giving the attention term (B, N, D) only, never the residual. Every kind has input projections W_Q, W_K,
W_V (D -> D, split into heads of width D / n_heads) and an output projection W_O (D -> D). The output
projection is our choice for concatenating the heads; it keeps the astromorphic and linearized models
iso-architecture with the softmax baseline. Kinds:

* ``softmax``: ``torch.nn.functional.scaled_dot_product_attention`` (scale 1/sqrt(d_k)).
* ``linearized``: the core with sigmoid off, alpha = 1, no relative position, feedback on (Katharopoulos
  linear attention with phi = elu + 1, divided by m).
* ``astromorphic``: switches ``nonlinearity`` (sigmoid, and alpha as given; off: no sigmoid, alpha = 1),
  ``relative_position`` (a learnable M of shape (n_heads, d_k, max_len) per layer; P and D are built over
  all max_len positions and a sequence of length N <= max_len uses the first N columns of W_astro),
  ``feedback`` and ``value_path`` (off: no M, since W_astro only enters the cut sigmoid argument).
  M is initialised from N(0, 0.02^2): small, so that W_astro = phi(a) starts close to 1 everywhere and
  the astrocyte term starts as a plain sum of the values.
* ``none``: the no-attention control; returns zeros, has no parameters.

``spec.leaky`` in a causal model makes the astromorphic attention write the whole sequence before reading
(the ``astro-leaky`` diagnostic). Modules check shapes and lengths, but not activations for NaN/inf
(``module.check_finite = True`` turns that on): a diverging run must reach the training loop's divergence
check as NaN rather than stop with an exception. ``module.record_stats = True`` stores ``module.last_stats``:
for softmax and the linear-attention kinds ``value_sens`` = ||out(V) - out(V = 0)|| / ||out(V)|| (the
attention term before W_O recomputed with V = 0; Frobenius norms over the real tokens of the batch;
``value_sensitivity``), and for the linear-attention kinds the mean and standard deviation over all entries
of the sigmoid argument S / m of the full-sequence write state (recorded whether or not the sigmoid is
applied; 0 without the value path).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from astromorphic import kernels

__all__ = [
    "AttentionSpec",
    "ATTENTION_KINDS",
    "DENSE_MAX_N",
    "feature_map",
    "astromorphic_attention",
    "relative_position_activity",
    "relative_position_matrix",
    "softmax_attention",
    "value_sensitivity",
    "build_attention",
    "SoftmaxAttention",
    "AstromorphicAttention",
    "NoAttention",
]

ATTENTION_KINDS = ("softmax", "linearized", "astromorphic", "none")
POSITION_KINDS = ("exp", "linear")

# Largest N for which relative_position_activity(method="auto") forms P densely, per device type
# (measured with `astromorphic bench attention`, relpos_dense against relpos_scan rows).
DENSE_MAX_N = {"cpu": 256, "cuda": 4096}

# Chunk length of the causal computations (positions per chunk); None = chosen by _resolve_chunk.
DEFAULT_CHUNK = None
CPU_CHUNK = 64
CUDA_CHUNK_ELEMENTS = 1 << 24  # on CUDA, one chunk of prefix states holds at most this many numbers

M_INIT_STD = 0.02


@dataclass(frozen=True)
class AttentionSpec:
    kind: str  # "softmax" | "linearized" | "astromorphic" | "none"
    nonlinearity: bool = True  # sigmoid on H and alpha != 1   (astromorphic only)
    relative_position: bool = True  # H_astro term with learnable M  (astromorphic only)
    feedback: bool = True  # P_i = 1 / (phi(q_i) . g); off: 1 / (number of tokens written)
    alpha: float = 0.25
    m_scale: float = 1.0  # the divisor m inside the sigmoid, resolved by the caller
    tau: float = 16.0  # decay length of P_ij = exp(-|i-j|/tau)
    position: str = "exp"  # "exp" or "linear" (P_ij = |i-j|/N)
    leaky: bool = False  # diagnostic: a causal model whose attention writes the whole sequence first
    value_path: bool = True  # off: the sigmoid's argument set to 0, H = 1/2 (gate-only control; astromorphic)


# ----------------------------------------------------------------------------------------------------
# validation helpers


def _fail(name: str, expected: str, got) -> ValueError:
    return ValueError(f"{name}: expected {expected}, got {got}")


def _check_tensor(name: str, t, ndim: int, layout: str) -> None:
    if not isinstance(t, Tensor):
        raise _fail(name, f"a torch.Tensor of shape {layout}", type(t).__name__)
    if t.dim() != ndim:
        raise _fail(name, f"a {ndim}-d tensor of shape {layout}", f"shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise _fail(name, "a floating-point tensor", t.dtype)


def _check_finite_tensor(name: str, t: Tensor) -> None:
    if not bool(torch.isfinite(t).all()):
        raise _fail(name, "finite values", "NaN or infinite entries")


def _check_positive_number(name: str, x) -> float:
    try:
        value = float(x)
    except (TypeError, ValueError):
        raise _fail(name, "a finite number > 0", repr(x)) from None
    if not math.isfinite(value) or value <= 0:
        raise _fail(name, "a finite number > 0", repr(x))
    return value


def _check_chunk(chunk_size):
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise _fail("chunk_size", "a positive integer or None (automatic)", repr(chunk_size))
    return chunk_size


def _resolve_chunk(chunk_size: Optional[int], z: int, dk: int, dv: int, device: torch.device) -> int:
    """The chunk length: as given, else CPU_CHUNK on the CPU, and on CUDA the largest power of two in
    [16, 256] whose chunk of z * dk * dv prefix states stays within CUDA_CHUNK_ELEMENTS (fewer, larger
    kernels; the GPU is bound by kernel launches at small sizes)."""
    if chunk_size is not None:
        return chunk_size
    if device.type != "cuda":
        return CPU_CHUNK
    fit = max(1, CUDA_CHUNK_ELEMENTS // max(1, z * dk * dv))
    return int(min(256, max(16, 1 << (fit.bit_length() - 1))))


def _check_mask(mask, batch: int, n: int) -> None:
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise _fail("key_padding_mask", "a bool tensor of shape (B, N), True = real token", got)
    if tuple(mask.shape) != (batch, n):
        raise _fail("key_padding_mask", f"shape (B, N) = {(batch, n)}", f"shape {tuple(mask.shape)}")


# ----------------------------------------------------------------------------------------------------
# small exact helpers


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


# ----------------------------------------------------------------------------------------------------
# causal read with a sigmoid on every prefix state: chunked, recomputing backward


def _fill_prefix_states(out: Tensor, start: Tensor, k: Tensor, v: Tensor) -> None:
    """out[j] = start + sum_{i <= j} k[i] v[i]^T for a chunk (time-major).

    out (n, Z, dk, dv), start (Z, dk, dv), k (n, Z, dk), v (n, Z, dv). On CUDA a single cumsum kernel;
    on the CPU a step-wise fused multiply-add, several times faster than torch's cumsum along a leading
    dimension.
    """
    if out.is_cuda:
        torch.mul(k.unsqueeze(-1), v.unsqueeze(-2), out=out)
        out[0] += start
        out.cumsum_(0)
        return
    rows = out.unbind(0)
    ks = k.unsqueeze(-1).unbind(0)
    vs = v.unsqueeze(-2).unbind(0)
    prev = start
    for row, kj, vj in zip(rows, ks, vs):
        torch.addcmul(prev, kj, vj, out=row)
        prev = row


def _reverse_prefix_sum_(x: Tensor, carry: Tensor) -> None:
    """In place: x[j] <- carry + sum_{i >= j} x[i] along dim 0."""
    if x.is_cuda:
        x[-1] += carry
        x.copy_(x.flip(0).cumsum(0).flip(0))
        return
    rows = x.unbind(0)
    rows[-1].add_(carry)
    for j in range(len(rows) - 2, -1, -1):
        rows[j].add_(rows[j + 1])


class _CausalSigmoidRead(torch.autograd.Function):
    """num_t = q_t^T sigmoid(sum_{s <= t} k_s v_s^T), time-major inputs.

    q, k: (N, Z, dk) with the 1/m already folded into k; v: (N, Z, dv). Returns (N, Z, dv).
    Saves q, k, v and one (Z, dk, dv) state per chunk; the backward pass recomputes each chunk's states.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, chunk: int) -> Tensor:
        n_pos, z, dk = q.shape
        dv = v.shape[-1]
        n_chunks = -(-n_pos // chunk)
        starts = q.new_empty(n_chunks, z, dk, dv)
        out = q.new_empty(n_pos, z, dv)
        buf = q.new_empty(min(chunk, n_pos), z, dk, dv)
        state = q.new_zeros(z, dk, dv)
        for b in range(n_chunks):
            lo, hi = b * chunk, min(n_pos, (b + 1) * chunk)
            starts[b] = state
            states = buf[: hi - lo]
            _fill_prefix_states(states, state, k[lo:hi], v[lo:hi])
            state = states[-1].clone()
            states.sigmoid_()
            out[lo:hi] = torch.matmul(q[lo:hi].unsqueeze(-2), states).squeeze(-2)
        ctx.save_for_backward(q, k, v, starts)
        ctx.chunk = chunk
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        q, k, v, starts = ctx.saved_tensors
        chunk = ctx.chunk
        grad_out = grad_out.contiguous()
        n_pos, z, dk = q.shape
        dv = v.shape[-1]
        n_chunks = starts.shape[0]
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        dq = torch.empty_like(q) if need_q else None
        dk_ = torch.empty_like(k) if need_k else None
        dv_ = torch.empty_like(v) if need_v else None
        buf = q.new_empty(min(chunk, n_pos), z, dk, dv)
        carry = q.new_zeros(z, dk, dv)  # sum of dL/dS_t over all t after the current chunk
        for b in reversed(range(n_chunks)):
            lo, hi = b * chunk, min(n_pos, (b + 1) * chunk)
            h = buf[: hi - lo]
            _fill_prefix_states(h, starts[b], k[lo:hi], v[lo:hi])
            h.sigmoid_()
            go = grad_out[lo:hi]
            if need_q:
                dq[lo:hi] = torch.matmul(go.unsqueeze(-2), h.transpose(-1, -2)).squeeze(-2)
            # dL/dS_t = sigmoid'(S_t) * (q_t go_t^T), formed in place of h
            h.addcmul_(h, h, value=-1.0)
            h.mul_(q[lo:hi].unsqueeze(-1))
            h.mul_(go.unsqueeze(-2))
            # G_t = sum_{t' >= t} dL/dS_t' (reverse prefix sum, with the carry from later chunks)
            _reverse_prefix_sum_(h, carry)
            carry = h[0].clone()
            if need_k:
                dk_[lo:hi] = torch.matmul(v[lo:hi].unsqueeze(-2), h.transpose(-1, -2)).squeeze(-2)
            if need_v:
                dv_[lo:hi] = torch.matmul(k[lo:hi].unsqueeze(-2), h).squeeze(-2)
        return dq, dk_, dv_, None


def _causal_sigmoid_read(q: Tensor, k: Tensor, v: Tensor, chunk: int) -> Tensor:
    """(B, H, N, d) inputs (k already scaled by 1/m) -> (B, H, N, dv).

    A fused kernel when one applies (``astromorphic.kernels``: compiled on the CPU, Triton on CUDA;
    forced with ``ASTROMORPHIC_CAUSAL_KERNEL`` or ``kernels.causal_kernel``), else ``_CausalSigmoidRead``.
    """
    kernel = kernels.select_causal_kernel(q.device, q.dtype)
    if kernel != "torch":
        return kernels.causal_sigmoid_read(q, k, v, chunk, kernel)
    b, h, n, dk = q.shape
    dv = v.shape[-1]

    def time_major(t: Tensor) -> Tensor:
        return t.permute(2, 0, 1, 3).reshape(n, b * h, t.shape[-1])

    out = _CausalSigmoidRead.apply(time_major(q), time_major(k), time_major(v), chunk)
    return out.reshape(n, b, h, dv).permute(1, 2, 0, 3)


def _causal_linear_read(q: Tensor, k: Tensor, v: Tensor, chunk: int) -> Tensor:
    """num_t = q_t^T sum_{s <= t} k_s v_s^T, chunk-wise; (B, H, N, d) -> (B, H, N, dv)."""
    n = q.shape[-2]
    pad = (-n) % chunk
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    nc = (n + pad) // chunk
    qb = q.unflatten(-2, (nc, chunk))
    kb = k.unflatten(-2, (nc, chunk))
    vb = v.unflatten(-2, (nc, chunk))
    local = kb.transpose(-1, -2) @ vb  # (B, H, nc, dk, dv)
    # state carried into each chunk: exclusive prefix sum over chunks (no subtraction, no cancellation)
    before = torch.cat([torch.zeros_like(local[..., :1, :, :]), torch.cumsum(local[..., :-1, :, :], dim=-3)], dim=-3)
    mask = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    scores = (qb @ kb.transpose(-1, -2)).masked_fill(~mask, 0.0)
    out = qb @ before + scores @ vb
    return out.flatten(-3, -2)[..., :n, :]


# ----------------------------------------------------------------------------------------------------
# the functional core


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
    alpha = _check_positive_number("alpha", alpha)
    m_scale = _check_positive_number("m_scale", m_scale)
    chunk_size = _check_chunk(chunk_size)
    _check_tensor("q", q, 4, "(B, H, N, d_k)")
    _check_tensor("k", k, 4, "(B, H, N, d_k)")
    _check_tensor("v", v, 4, "(B, H, N, d_v)")
    b, h, n, dk = q.shape
    if tuple(k.shape) != tuple(q.shape):
        raise _fail("k", f"shape (B, H, N, d_k) = {tuple(q.shape)} like q", f"shape {tuple(k.shape)}")
    if tuple(v.shape[:3]) != (b, h, n):
        raise _fail("v", f"shape (B, H, N, d_v) with (B, H, N) = {(b, h, n)} like q", f"shape {tuple(v.shape)}")
    if n < 1:
        raise _fail("q", "at least one position (N >= 1)", f"shape {tuple(q.shape)}")
    if w_astro is not None:
        _check_tensor("w_astro", w_astro, 3, "(H, d_k, N)")
        if tuple(w_astro.shape) != (h, dk, n):
            raise _fail("w_astro", f"shape (H, d_k, N) = {(h, dk, n)}", f"shape {tuple(w_astro.shape)}")
    if key_padding_mask is not None:
        _check_mask(key_padding_mask, b, n)
    if validate:
        for name, t in (("q", q), ("k", k), ("v", v), ("w_astro", w_astro)):
            if t is not None:
                _check_finite_tensor(name, t)

    out_dtype = q.dtype
    compute = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    with _autocast_off(q.device.type):
        out = _core(
            q.to(compute),
            k.to(compute),
            v.to(compute),
            None if w_astro is None else w_astro.to(compute),
            alpha,
            sigmoid,
            feedback,
            causal,
            m_scale,
            key_padding_mask,
            chunk_size,
            bool(value_path),
        )
    return out.to(out_dtype)


def _autocast_off(device_type: str):
    """Disable autocast (the core computes in the input precision, float32 for half inputs)."""
    if device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def _core(
    q, k, v, w_astro, alpha, sigmoid, feedback, causal, m_scale, key_padding_mask, chunk_size, value_path=True
) -> Tensor:
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
    return num * _row_scale(phi_q, phi_k, key_padding_mask, alpha, feedback, causal).unsqueeze(-1)


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
    chunk = _resolve_chunk(chunk_size, b * h, dk, v.shape[-1], phi_q.device)
    read = _causal_sigmoid_read if sigmoid else _causal_linear_read
    return read(phi_q, write_k.expand(b, h, n, dk), v, chunk)


def _row_scale(phi_q, phi_k, key_padding_mask, alpha, feedback, causal) -> Tensor:
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


# ----------------------------------------------------------------------------------------------------
# relative position (Eq. 12)


def _decay_block_size(n: int) -> int:
    """Block length of the exponential scan: ~sqrt(N) as a power of two, within [16, 64] (measured)."""
    return int(min(64, max(16, 1 << round(math.log2(math.sqrt(max(n, 1)))))))


def _decay(distance: Tensor, tau: float) -> Tensor:
    """exp(-distance / tau), with values below the smallest normal number set to zero (no subnormals)."""
    out = torch.exp(-distance / tau)
    return out.masked_fill(out < torch.finfo(out.dtype).tiny, 0.0)


def _exp_decay_product(m: Tensor, tau: float, block: Optional[int] = None) -> Tensor:
    """(M P) for P_ij = exp(-|i - j| / tau) without forming P: M (..., N) -> (..., N).

    With r = exp(-1/tau), (M P)_j = sum_i M_i r^|i - j| is a forward plus a backward linear recurrence.
    They are evaluated in blocks of length c: one product with the c x c decay matrix covers both
    directions inside every block; each block's sums weighted to its end and to its start are carried to
    the later and the earlier blocks through an (N/c) x (N/c) decay matrix. Only non-positive powers of r
    appear, so nothing overflows; all powers are computed directly as exp(-distance / tau).
    """
    n = m.shape[-1]
    c = block or _decay_block_size(n)
    if n <= c:
        return m @ relative_position_matrix(n, tau, "exp", device=m.device, dtype=m.dtype)
    pad = (-n) % c
    nb = (n + pad) // c
    kw = {"device": m.device, "dtype": m.dtype}
    idx = torch.arange(c, **kw)
    in_block = _decay((idx[:, None] - idx[None, :]).abs(), tau)  # (c, c)
    to_ends = _decay(torch.stack([c - 1 - idx, idx], dim=-1), tau)  # (c, 2): to the block's end / start
    from_carry = _decay(torch.stack([idx + 1, c - idx], dim=0), tau)  # (2, c): from the previous end / next start
    bidx = torch.arange(nb, **kw)
    gap = bidx[None, :] - 1 - bidx[:, None]  # [b', b] = b - 1 - b'
    to_later = torch.where(gap >= 0, _decay(c * gap.clamp_min(0), tau), torch.zeros_like(gap))

    blocks = (F.pad(m, (0, pad)) if pad else m).unflatten(-1, (nb, c))  # (..., nb, c)
    ends = blocks @ to_ends  # (..., nb, 2)
    carry_left = ends[..., 0] @ to_later  # state at the end of the previous block, (..., nb)
    carry_right = ends[..., 1] @ to_later.transpose(0, 1)  # state at the start of the next block
    carries = torch.stack([carry_left, carry_right], dim=-1)  # (..., nb, 2)
    out = blocks @ in_block + carries @ from_carry
    return out.flatten(-2)[..., :n]


def _linear_distance_product(m: Tensor) -> Tensor:
    """(M P) for P_ij = |i - j| / N from prefix sums (float64 inside): M (..., N) -> (..., N)."""
    n = m.shape[-1]
    x = m.to(torch.float64)
    pos = torch.arange(n, device=m.device, dtype=torch.float64)
    c_left = x.cumsum(-1)  # sum_{i <= j} M_i
    i_left = (x * pos).cumsum(-1)  # sum_{i <= j} i M_i
    c_tot = c_left[..., -1:]
    i_tot = i_left[..., -1:]
    # sum_i M_i |i - j| = j (2 C_L - C_tot) - 2 I_L + I_tot
    out = pos * (2 * c_left - c_tot) - 2 * i_left + i_tot
    return (out / n).to(m.dtype)


def relative_position_matrix(n: int, tau: float = 16.0, position: str = "exp", *, device=None, dtype=None) -> Tensor:
    """The dense N x N matrix P of Eq. 12."""
    idx = torch.arange(n, device=device, dtype=dtype or torch.get_default_dtype())
    dist = (idx[:, None] - idx[None, :]).abs()
    if position == "exp":
        return _decay(dist, tau)
    if position == "linear":
        return dist / n
    raise _fail("position", f"one of {POSITION_KINDS}", repr(position))


def relative_position_activity(
    M: Tensor,
    tau: float = 16.0,
    *,
    position: str = "exp",
    method: str = "auto",
    validate: bool = True,
    n: Optional[int] = None,
) -> Tensor:
    """W_astro = phi(M^T (M P M^T))^T for M of shape (H, d_k, L); returns (H, d_k, n), n = L by default.

    D = M P M^T is always built on all L positions of M (the model's ``max_len``); ``n`` keeps only the
    first n columns of W_astro, so that they do not depend on n (SPEC decision 7, prefix consistency).
    ``validate=False`` skips the NaN/inf check of M.
    ``method``: "dense" forms P (L x L), "scan" never does, "auto" picks by L and device (DENSE_MAX_N).
    Computed in float32 for half-precision M, with autocast off.
    """
    _check_tensor("M", M, 3, "(H, d_k, N)")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= M.shape[-1]):
        raise _fail("n", f"an integer in [1, {M.shape[-1]}] (the columns of M)", repr(n))
    if position not in POSITION_KINDS:
        raise _fail("position", f"one of {POSITION_KINDS}", repr(position))
    if method not in ("auto", "dense", "scan"):
        raise _fail("method", "one of ('auto', 'dense', 'scan')", repr(method))
    if position == "exp":
        tau = _check_positive_number("tau", tau)
    if validate:
        _check_finite_tensor("M", M)
    length = M.shape[-1]
    n = length if n is None else n
    if method == "auto":
        method = "dense" if length <= DENSE_MAX_N.get(M.device.type, DENSE_MAX_N["cpu"]) else "scan"
    out_dtype = M.dtype
    if M.dtype in (torch.float16, torch.bfloat16):
        M = M.float()
    with _autocast_off(M.device.type):
        if method == "dense":
            mp = M @ relative_position_matrix(length, tau, position, device=M.device, dtype=M.dtype)
        elif position == "exp":
            mp = _exp_decay_product(M, tau)
        else:
            mp = _linear_distance_product(M)
        d = mp @ M.transpose(-1, -2)  # D = M P M^T, (H, d_k, d_k), on all L positions
        edges = M[..., :n].transpose(-1, -2) @ d  # a = M^T D for the first n positions, (H, n, d_k)
        return feature_map(edges).transpose(-1, -2).to(out_dtype)


# ----------------------------------------------------------------------------------------------------
# softmax attention


def softmax_attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, key_padding_mask: Optional[Tensor] = None
) -> Tensor:
    """Scaled dot-product softmax attention (torch SDPA); (B, H, N, d) -> (B, H, N, d_v).

    A query row that may see no real key at all (a fully padded prefix) attends to itself only, so that
    no row is NaN; such rows belong to padded positions and are ignored downstream.
    """
    _check_tensor("q", q, 4, "(B, H, N, d_k)")
    _check_tensor("k", k, 4, "(B, H, N, d_k)")
    _check_tensor("v", v, 4, "(B, H, N, d_v)")
    b, h, n, _ = q.shape
    if key_padding_mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    _check_mask(key_padding_mask, b, n)
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


# ----------------------------------------------------------------------------------------------------
# value-sensitivity probe


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


# ----------------------------------------------------------------------------------------------------
# modules


class _ProjectedAttention(nn.Module):
    """Input projections W_Q, W_K, W_V and output projection W_O around a per-head attention core."""

    kind = "base"

    def __init__(self, d_model: int, n_heads: int, max_len: int, causal: bool):
        super().__init__()
        if d_model % n_heads:
            raise _fail("n_heads", f"a divisor of d_model={d_model}", n_heads)
        self.d_model, self.n_heads, self.max_len, self.causal = d_model, n_heads, max_len, causal
        self.d_head = d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)
        self.record_stats = False
        self.last_stats: dict[str, float] = {}

    def _heads(self, x: Tensor, proj: nn.Linear) -> Tensor:
        b, n, _ = x.shape
        return proj(x).view(b, n, self.n_heads, self.d_head).transpose(1, 2)

    def _check_input(self, x: Tensor, key_padding_mask: Optional[Tensor]) -> None:
        _check_tensor("x", x, 3, "(B, N, d_model)")
        if x.shape[-1] != self.d_model:
            raise _fail("x", f"last dimension d_model={self.d_model}", f"shape {tuple(x.shape)}")
        if x.shape[1] > self.max_len:
            raise _fail("x", f"sequence length N <= max_len={self.max_len}", f"N={x.shape[1]}")
        if key_padding_mask is not None:
            _check_mask(key_padding_mask, x.shape[0], x.shape[1])

    def forward(self, x: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        self._check_input(x, key_padding_mask)
        q, k, v = self._heads(x, self.w_q), self._heads(x, self.w_k), self._heads(x, self.w_v)
        out = self._core(q, k, v, key_padding_mask)  # (B, H, N, d_head)
        b, _, n, _ = out.shape
        return self.w_o(out.transpose(1, 2).reshape(b, n, self.d_model))

    def _core(self, q, k, v, key_padding_mask):
        out = self._attend(q, k, v, key_padding_mask)
        if self.record_stats:
            self.last_stats = self._probe_stats(q, k, v, key_padding_mask, out)
        return out

    def _attend(self, q, k, v, key_padding_mask):  # pragma: no cover - abstract
        raise NotImplementedError

    def _attend_zero_values(self, q, k, v, key_padding_mask):
        """The attention term with V = 0."""
        return self._attend(q, k, torch.zeros_like(v), key_padding_mask)

    @torch.no_grad()
    def _probe_stats(self, q, k, v, key_padding_mask, out) -> dict[str, float]:
        """``value_sens``: the attention term recomputed with V = 0 against the real one."""
        zero = self._attend_zero_values(q, k, v, key_padding_mask)
        return {"value_sens": value_sensitivity(out, zero, key_padding_mask)}


class SoftmaxAttention(_ProjectedAttention):
    kind = "softmax"

    def _attend(self, q, k, v, key_padding_mask):
        return softmax_attention(q, k, v, causal=self.causal, key_padding_mask=key_padding_mask)


class AstromorphicAttention(_ProjectedAttention):
    """The astromorphic core (also the linearized kind, with its switches fixed)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        max_len: int,
        causal: bool,
        *,
        kind: str = "astromorphic",
        sigmoid: bool = True,
        alpha: float = 0.25,
        relative_position: bool = True,
        feedback: bool = True,
        m_scale: float = 1.0,
        tau: float = 16.0,
        position: str = "exp",
        chunk_size: Optional[int] = DEFAULT_CHUNK,
        value_path: bool = True,
    ):
        super().__init__(d_model, n_heads, max_len, causal)
        self.kind = kind
        self.sigmoid = bool(sigmoid)
        self.value_path = bool(value_path)
        self.alpha = _check_positive_number("alpha", alpha)
        self.feedback = bool(feedback)
        self.m_scale = _check_positive_number("m_scale", m_scale)
        if position not in POSITION_KINDS:
            raise _fail("position", f"one of {POSITION_KINDS}", repr(position))
        self.position = position
        self.tau = _check_positive_number("tau", tau) if position == "exp" else float(tau)
        self.chunk_size = _check_chunk(chunk_size)
        # Activations are not checked for NaN/inf (a diverging run must reach the training loop's
        # divergence check rather than raise); set True to check them (it synchronises a GPU).
        self.check_finite = False
        if relative_position and self.value_path:  # without the value path W_astro would be unused
            self.M = nn.Parameter(torch.randn(n_heads, self.d_head, max_len) * M_INIT_STD)
        else:
            self.register_parameter("M", None)

    def extra_repr(self) -> str:
        return (
            f"kind={self.kind}, causal={self.causal}, sigmoid={self.sigmoid}, alpha={self.alpha}, "
            f"relative_position={self.M is not None}, feedback={self.feedback}, m_scale={self.m_scale}, "
            f"tau={self.tau}, position={self.position}, value_path={self.value_path}"
        )

    def astro_activity(self, n: int) -> Optional[Tensor]:
        """W_astro for the first n positions, or None without relative position.

        D = M P M^T is built on all max_len positions and the first n columns are kept, so column t does
        not depend on n (prefix consistency, SPEC decision 7). It depends on M only (positions, not
        tokens): one (H, d_k, max_len) x (max_len, max_len) product (or the O(max_len) scan) per forward.
        """
        if self.M is None:
            return None
        return relative_position_activity(self.M, self.tau, position=self.position, validate=self.check_finite, n=n)

    def _attend(self, q, k, v, key_padding_mask, value_path: Optional[bool] = None):
        return astromorphic_attention(
            q,
            k,
            v,
            w_astro=self.astro_activity(q.shape[-2]),
            alpha=self.alpha,
            sigmoid=self.sigmoid,
            feedback=self.feedback,
            causal=self.causal,
            m_scale=self.m_scale,
            key_padding_mask=key_padding_mask,
            chunk_size=self.chunk_size,
            validate=self.check_finite,
            value_path=self.value_path if value_path is None else value_path,
        )

    def _attend_zero_values(self, q, k, v, key_padding_mask):
        """V = 0 makes S = 0 (both write terms are linear in V): exactly the gate-only read, no state needed."""
        return self._attend(q, k, v, key_padding_mask, value_path=False)

    @torch.no_grad()
    def _probe_stats(self, q, k, v, key_padding_mask, out) -> dict[str, float]:
        stats = super()._probe_stats(q, k, v, key_padding_mask, out)
        stats.update(self._write_stats(k, v, self.astro_activity(q.shape[-2]), key_padding_mask))
        return stats

    @torch.no_grad()
    def _write_stats(self, k, v, w_astro, key_padding_mask) -> dict[str, float]:
        """Mean and std of the sigmoid argument S / m of the full-sequence write state (0 when the
        value path is cut: the gate-only control sets the argument to 0)."""
        if not self.value_path:
            return {"sigmoid_arg_mean": 0.0, "sigmoid_arg_std": 0.0}
        k = feature_map(k.float())
        v = v.float()
        if w_astro is not None:
            k = k + w_astro.float().transpose(-1, -2).unsqueeze(0)
        if key_padding_mask is not None:
            v = v * key_padding_mask.float()[:, None, :, None]
        arg = (k.transpose(-1, -2) @ v) / self.m_scale
        return {"sigmoid_arg_mean": float(arg.mean()), "sigmoid_arg_std": float(arg.std(unbiased=False))}


class NoAttention(nn.Module):
    """The no-attention control: the attention term is zero; no parameters."""

    kind = "none"

    def __init__(self, d_model: int, n_heads: int, max_len: int, causal: bool):
        super().__init__()
        self.d_model, self.n_heads, self.max_len, self.causal = d_model, n_heads, max_len, causal
        self.record_stats = False
        self.last_stats: dict[str, float] = {}

    def forward(self, x: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        _check_tensor("x", x, 3, "(B, N, d_model)")
        if x.shape[-1] != self.d_model:
            raise _fail("x", f"last dimension d_model={self.d_model}", f"shape {tuple(x.shape)}")
        if x.shape[1] > self.max_len:
            raise _fail("x", f"sequence length N <= max_len={self.max_len}", f"N={x.shape[1]}")
        return torch.zeros_like(x)


def build_attention(
    spec: AttentionSpec,
    d_model: int,
    n_heads: int,
    max_len: int,
    causal: bool,
    *,
    chunk_size: Optional[int] = DEFAULT_CHUNK,
) -> nn.Module:
    """The attention module for ``spec``: forward(x (B, N, D), key_padding_mask) -> attention term (B, N, D)."""
    if not isinstance(spec, AttentionSpec):
        raise _fail("spec", "an AttentionSpec", type(spec).__name__)
    if spec.kind not in ATTENTION_KINDS:
        raise _fail("spec.kind", f"one of {ATTENTION_KINDS}", repr(spec.kind))
    for name, value in (("d_model", d_model), ("n_heads", n_heads), ("max_len", max_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(name, "a positive integer", repr(value))
    if spec.kind == "none":
        return NoAttention(d_model, n_heads, max_len, causal)
    if spec.kind == "softmax":
        return SoftmaxAttention(d_model, n_heads, max_len, causal)
    if spec.kind == "linearized":
        return AstromorphicAttention(
            d_model,
            n_heads,
            max_len,
            causal,
            kind="linearized",
            sigmoid=False,
            alpha=1.0,
            relative_position=False,
            feedback=True,
            m_scale=spec.m_scale,
            chunk_size=chunk_size,
        )
    return AstromorphicAttention(
        d_model,
        n_heads,
        max_len,
        causal and not spec.leaky,
        kind="astromorphic",
        sigmoid=spec.nonlinearity,
        alpha=spec.alpha if spec.nonlinearity else 1.0,
        relative_position=spec.relative_position,
        feedback=spec.feedback,
        m_scale=spec.m_scale,
        tau=spec.tau,
        position=spec.position,
        chunk_size=chunk_size,
        value_path=spec.value_path,
    )
