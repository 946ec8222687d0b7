"""Relative position (Eq. 12): the astrocyte activity W_astro from the learnable M.

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
(position only; linear in max_len with the scan). The dense form is one autograd Function with a
hand-written backward (``DenseActivity``, P symmetric); the modules keep P as a buffer built once.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from astromorphic.attention.checks import check_finite_tensor, check_positive_number, check_tensor, fail
from astromorphic.attention.functional import autocast_off

POSITION_KINDS = ("exp", "linear")

# Largest N for which relative_position_activity(method="auto") forms P densely, per device type
# (measured with `astromorphic bench attention`, relpos_dense against relpos_scan rows).
DENSE_MAX_N = {"cpu": 256, "cuda": 4096}


def _decay_block_size(n: int) -> int:
    """Block length of the exponential scan: ~sqrt(N) as a power of two, within [16, 64] (measured)."""
    return int(min(64, max(16, 1 << round(math.log2(math.sqrt(max(n, 1)))))))


def _decay(distance: Tensor, tau: float) -> Tensor:
    """exp(-distance / tau), with values below the smallest normal number set to zero (no subnormals)."""
    out = torch.exp(-distance / tau)
    return out.masked_fill(out < torch.finfo(out.dtype).tiny, 0.0)


def exp_decay_product(m: Tensor, tau: float, block: Optional[int] = None) -> Tensor:
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
    raise fail("position", f"one of {POSITION_KINDS}", repr(position))


class DenseActivity(torch.autograd.Function):
    """scale * phi(a), a = M[..., :n]^T D, D = M P M^T, for a symmetric P (L x L), with its own backward.

    ``axes`` orders the output: "hjn" (H, d_k, n), the public layout of W_astro; "hnj" (H, n, d_k) and
    "nhj" (n, H, d_k), the rows the bidirectional core adds to phi(k). With P symmetric, D is symmetric and
    dL/dM = D dL/da^T (first n columns) + (G + G^T) M P with G = M[..., :n] dL/da: six operators backward.
    """

    @staticmethod
    def forward(ctx, M, decay, n, scale, axes):
        mp = torch.matmul(M, decay)  # (H, d_k, L)
        d = torch.einsum("hkl,hjl->hkj", mp, M)  # D = M P M^T on all L positions
        m1 = M if n == M.shape[-1] else M[..., :n]
        a = torch.einsum(f"hkn,hkj->{axes}", m1, d)
        ctx.scale, ctx.axes = scale, axes
        ctx.save_for_backward(m1, mp, d, a)
        return torch.ops.aten.elu(a, 1.0, scale, 1.0).add_(scale)

    @staticmethod
    def backward(ctx, gw):
        m1, mp, d, a = ctx.saved_tensors
        axes = ctx.axes
        ga = torch.ops.aten.elu_backward(gw, 1.0, ctx.scale, 1.0, False, a)
        gd = torch.einsum(f"hkn,{axes}->hkj", m1, ga)
        gm = torch.einsum(f"hkj,{axes}->hkn", d, ga)
        if gm.shape[-1] != mp.shape[-1]:
            gm = F.pad(gm, (0, mp.shape[-1] - gm.shape[-1]))
        return torch.baddbmm(gm, gd + gd.mT, mp), None, None, None, None


class ConcatHeads(torch.autograd.Function):
    """torch.cat of several M along the heads, whose backward is one split (torch.cat's and torch.stack's
    issue one operator per input)."""

    @staticmethod
    def forward(ctx, *ms):
        ctx.sizes = [m.shape[0] for m in ms]
        return torch.cat(ms)

    @staticmethod
    def backward(ctx, grad):
        return grad.split(ctx.sizes)


def position_activity(
    M: Tensor,
    tau: float,
    position: str,
    method: str,
    n: int,
    scale: float,
    axes: str,
    decay: Optional[Tensor] = None,
) -> Tensor:
    """scale * W_astro for the first n positions in the axis order ``axes`` (see DenseActivity), checked
    arguments, M in its compute dtype; ``decay``: P (L x L) when already built (a module's buffer)."""
    length = M.shape[-1]
    if method == "auto":
        method = "dense" if length <= DENSE_MAX_N.get(M.device.type, DENSE_MAX_N["cpu"]) else "scan"
    if method == "dense":
        if decay is None:
            decay = relative_position_matrix(length, tau, position, device=M.device, dtype=M.dtype)
        elif decay.dtype != M.dtype or decay.device != M.device:
            decay = decay.to(device=M.device, dtype=M.dtype)
        return DenseActivity.apply(M, decay, n, float(scale), axes)
    mp = exp_decay_product(M, tau) if position == "exp" else _linear_distance_product(M)
    d = torch.einsum("hkl,hjl->hkj", mp, M)
    a = torch.einsum(f"hkn,hkj->{axes}", M[..., :n], d)
    return torch.ops.aten.elu(a, 1.0, float(scale), 1.0) + scale


def relative_position_activity(
    M: Tensor,
    tau: float = 16.0,
    *,
    position: str = "exp",
    method: str = "auto",
    validate: bool = True,
    n: Optional[int] = None,
    decay: Optional[Tensor] = None,
) -> Tensor:
    """W_astro = phi(M^T (M P M^T))^T for M of shape (H, d_k, L); returns (H, d_k, n), n = L by default.

    D = M P M^T is always built on all L positions of M (the model's ``max_len``); ``n`` keeps only the
    first n columns of W_astro, so that they do not depend on n (SPEC decision 7, prefix consistency).
    ``validate=False`` skips the NaN/inf check of M.
    ``method``: "dense" forms P (L x L), "scan" never does, "auto" picks by L and device (DENSE_MAX_N).
    ``decay``: the dense P when already built (``relative_position_matrix(L, tau, position)``).
    Computed in float32 for half-precision M, with autocast off.
    """
    check_tensor("M", M, 3, "(H, d_k, N)")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= M.shape[-1]):
        raise fail("n", f"an integer in [1, {M.shape[-1]}] (the columns of M)", repr(n))
    if position not in POSITION_KINDS:
        raise fail("position", f"one of {POSITION_KINDS}", repr(position))
    if method not in ("auto", "dense", "scan"):
        raise fail("method", "one of ('auto', 'dense', 'scan')", repr(method))
    if position == "exp":
        tau = check_positive_number("tau", tau)
    if validate:
        check_finite_tensor("M", M)
    n = M.shape[-1] if n is None else n
    out_dtype = M.dtype
    if M.dtype in (torch.float16, torch.bfloat16):
        M = M.float()
    with autocast_off(M.device.type):
        w = position_activity(M, tau, position, method, n, 1.0, "hjn", decay)
    return w if w.dtype == out_dtype else w.to(out_dtype)
