"""The bidirectional linear-attention core as one autograd Function with a hand-written backward.

Built from elementary operators, the core (phi, the write state, its sigmoid, g, C, the guarded reciprocal
P and their autograd backward) issues about 70 operators per layer and training step, and the eager GPU
step is bound by kernel launches. :class:`BidirectionalCore` computes the same numbers (the module
docstring of ``attention.functional``; equal to the elementary-operator reference within float rounding)
with the fewest operators it can, forward and backward:

* phi(x) = elu(x) + 1, and its derivative elu'(x) comes from torch's own ELU backward kernel; the 1/m of
  the sigmoid argument is applied where it costs nothing: on the written keys (``add`` with ``alpha``),
  as the ``scale`` of the keys' ELU backward, and on W_astro by its producer.
* Contractions are two-operand ``einsum`` calls in the caller's axis order (``tokens``: "bhn" for
  (B, H, N, d) tensors, "bnh" for the (B, N, H, d) views of the projections, which need no transposes).
* The zero rules of the paper's Eq. 14 and 16 are kept exactly: P_i = 0 where C_i == 0, and g = 0 ** alpha
  = 0 with a zero gradient (the division alpha * g / sum phi(k) of the backward divides by the smallest
  positive number in place of a zero sum, where g is 0; exact in IEEE arithmetic with subnormal numbers,
  torch's default).

The backward uses gc = sum_e (dL/dout * P) * out = -dL/dC (it is zero where P is), so neither the
numerator nor P ** 2 has to be formed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class CoreSwitches:
    """The switches of one bidirectional core call (``astromorphic_attention``'s arguments)."""

    tokens: str  # axis order of q, k, v and the output: "bhn" (B, H, N, d) or "bnh" (B, N, H, d)
    m_scale: float
    alpha: float
    sigmoid: bool
    feedback: bool
    value_path: bool


def _elu_grad(grad: Tensor, x: Tensor, scale: float = 1.0) -> Tensor:
    """scale * grad * elu'(x) in one kernel (torch's ELU backward with the ELU's output scale)."""
    return torch.ops.aten.elu_backward(grad, 1.0, scale, 1.0, False, x)


def _smallest_positive(dtype: torch.dtype) -> float:
    """The smallest positive (subnormal) number of ``dtype``: 2 ** -149 in float32."""
    info = torch.finfo(dtype)
    return info.smallest_normal * info.eps


def _full(grad: Tensor, like: Tensor) -> Tensor:
    """grad broadcast to the shape of ``like`` (a view; no operator when it already has it)."""
    return grad if grad.shape == like.shape else grad.expand_as(like)


class BidirectionalCore(torch.autograd.Function):
    """out = P * num, the bidirectional attention term of Eq. 17 (``attention.functional``).

    q, k: (..., d_k) and v: (..., d_v) in the axis order ``sw.tokens``; w: W_astro / m with the batch axis
    left out ((H, N, d_k) for "bhn", (N, H, d_k) for "bnh") or None; real: the padding mask as 0/1 in
    the input's dtype, broadcastable to q ((B, 1, N, 1) or (B, N, 1, 1)), or None; count: n ** alpha of
    the no-feedback normaliser (a number, or a (B, 1, 1, 1) tensor with padding), unused with feedback.
    k is None when neither feedback nor the value path reads it; v is None without the value path, and
    then the output is (..., 1), the same in every value column (H = 1/2, or 0 without the sigmoid).
    """

    @staticmethod
    def forward(ctx, q, k, v, w, real, count, sw: CoreSwitches):
        t = sw.tokens
        inv_m = 1.0 / sw.m_scale
        pq = F.elu(q).add_(1.0)
        pk = None
        if k is not None:
            pk = F.elu(k).add_(1.0)
            if real is not None:
                pk.mul_(real)
        vm = wk = hs = None
        if sw.value_path:
            # padded rows of v are zero, so they add nothing to S whatever their written key is
            vm = v if real is None else v * real
            wk = pk * inv_m if w is None else torch.add(w, pk, alpha=inv_m)  # (phi(k) + W_astro) / m
            s = torch.einsum(f"{t}d,{t}e->bhde", wk, vm)
            hs = s.sigmoid_() if sw.sigmoid else s
            num = torch.einsum(f"{t}d,bhde->{t}e", pq, hs)
        else:
            num = pq.sum(-1, keepdim=True).mul_(0.5 if sw.sigmoid else 0.0)
        g = safe = None
        if sw.feedback:
            ksum = pk.sum(t.index("n"), keepdim=True)
            g = ksum
            if sw.alpha != 1.0:
                g = ksum.pow(sw.alpha)
                # the divisor of dg/dksum = alpha * g / ksum: ksum itself, and where ksum == 0 (there g == 0)
                # the smallest positive number, so the gradient is 0 there and unchanged everywhere else
                safe = ksum.clamp_min(_smallest_positive(ksum.dtype))
            c = torch.einsum(f"{t}d,{t.replace('n', 'z')}d->{t}z", pq, g)
        else:
            c = pq.sum(-1, keepdim=True).mul_(count)
        p = c.reciprocal().masked_fill_(c == 0, 0.0)  # Eq. 16: the reciprocal of the non-zero entries
        out = num.mul_(p)
        ctx.sw = sw
        ctx.count = count
        ctx.has_w = w is not None
        ctx.save_for_backward(q, k, pq, vm, wk, hs, g, safe, p, out, real)
        return out

    @staticmethod
    def backward(ctx, gout):
        sw: CoreSwitches = ctx.sw
        t = sw.tokens
        q, k, pq, vm, wk, hs, g, safe, p, out, real = ctx.saved_tensors
        needs = ctx.needs_input_grad
        gq = gk = gv = gw = None
        gnum = gout * p
        gc = (gnum * out).sum(-1, keepdim=True)  # -dL/dC
        # dL/dphi(q): through the numerator and through C = phi(q) . g (or phi(q) . 1 * count)
        if sw.value_path:
            gpq = torch.einsum(f"{t}e,bhde->{t}d", gnum, hs)
        else:
            gpq = gnum * (0.5 if sw.sigmoid else 0.0)
        if sw.feedback:
            gpq = torch.addcmul(gpq, gc, g, value=-1.0)
        elif isinstance(ctx.count, Tensor):
            gpq = torch.addcmul(gpq, gc, ctx.count, value=-1.0)
        else:
            gpq = torch.add(gpq, gc, alpha=-ctx.count)
        if needs[0]:
            gq = _elu_grad(_full(gpq, q), q)
        # dL/dphi(k) * m: through the written keys (scaled by 1/m in the ELU backward) and through g
        gpk = None
        if sw.value_path:
            ghs = torch.einsum(f"{t}d,{t}e->bhde", pq, gnum)
            gs = torch.ops.aten.sigmoid_backward(ghs, hs) if sw.sigmoid else ghs
            gpk = torch.einsum(f"{t}e,bhde->{t}d", vm, gs)  # dL/dwk
            if ctx.has_w and needs[3]:
                gw = gpk.sum(0)
            if needs[2]:
                gv = torch.einsum(f"{t}d,bhde->{t}e", wk, gs)
                if real is not None:
                    gv.mul_(real)
        if sw.feedback and k is not None and needs[1]:
            gg = torch.einsum(f"{t}z,{t}d->{t.replace('n', 'z')}d", gc, pq)  # -dL/dg
            value = -(sw.m_scale if sw.value_path else 1.0)
            if sw.alpha == 1.0:
                gpk = gg.mul(value) if gpk is None else gpk.add_(gg, alpha=value)
            else:  # dg/dksum = alpha * g / ksum, 0 where ksum == 0 (there g == 0)
                value *= sw.alpha
                gpk = gg.mul(g).div_(safe).mul_(value) if gpk is None else gpk.addcdiv_(gg * g, safe, value=value)
        if gpk is not None and needs[1]:
            if real is not None:
                gpk = gpk * real
            gk = _elu_grad(_full(gpk, k), k, 1.0 / sw.m_scale if sw.value_path else 1.0)
        return gq, gk, gv, gw, None, None, None


def bidirectional_core(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    w: Optional[Tensor],
    real: Optional[Tensor],
    sw: CoreSwitches,
) -> Tensor:
    """The bidirectional attention term through :class:`BidirectionalCore`, (..., d_v) like v.

    Arguments as :class:`BidirectionalCore`, all in the compute dtype; ``w`` is W_astro / m.
    """
    count: Union[float, Tensor] = 1.0
    if not sw.feedback:
        n_axis = sw.tokens.index("n")
        if real is None:
            count = float(q.shape[n_axis]) ** sw.alpha
        else:  # real tokens per sequence; 0 ** alpha = 0 gives P = 0
            count = real.sum(n_axis, keepdim=True).pow_(sw.alpha)
    keys = k if (sw.feedback or sw.value_path) else None
    values = v if sw.value_path else None
    out = BidirectionalCore.apply(q, keys, values, w if sw.value_path else None, real, count, sw)
    return out if sw.value_path else out.expand(*out.shape[:-1], v.shape[-1])
