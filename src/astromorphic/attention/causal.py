"""The causal reads of the linear-attention core, chunk-wise (``chunk_size`` positions at a time).

* Causal with sigmoid. The sigmoid acts on each prefix state, so the d_k x d_v state of every position has
  to be formed. It is formed ``chunk_size`` positions at a time from the carried state, and a hand-written
  ``torch.autograd.Function`` (:class:`CausalSigmoidRead`) recomputes each chunk during the backward pass
  (running backwards over the chunks, carrying the gradient of the state). Only the input rows and one
  state per chunk are kept for the backward pass, so memory is O(N d + N d^2 / chunk_size + chunk_size d^2)
  per head, never O(N d^2). ``chunk_size=None`` (default) chooses 64 on the CPU and, on CUDA, 16 to 256 by
  the size of the states. Within a chunk the prefix states come from one cumsum kernel on CUDA and from a
  step-wise fused multiply-add on the CPU (torch's CPU cumsum along a leading dimension is several times
  slower). A fused kernel (``astromorphic.kernels``) replaces this path where one applies.
* Causal without sigmoid is ordinary causal linear attention, computed chunk-wise (intra-chunk masked
  product plus the carried state), also with O(N d + N d^2 / chunk_size) memory.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from astromorphic import kernels

# Chunk length of the causal computations (positions per chunk); None = chosen by resolve_chunk.
DEFAULT_CHUNK = None
CPU_CHUNK = 64
CUDA_CHUNK_ELEMENTS = 1 << 24  # on CUDA, one chunk of prefix states holds at most this many numbers


def resolve_chunk(chunk_size: Optional[int], z: int, dk: int, dv: int, device: torch.device) -> int:
    """The chunk length: as given, else CPU_CHUNK on the CPU, and on CUDA the largest power of two in
    [16, 256] whose chunk of z * dk * dv prefix states stays within CUDA_CHUNK_ELEMENTS (fewer, larger
    kernels; the GPU is bound by kernel launches at small sizes)."""
    if chunk_size is not None:
        return chunk_size
    if device.type != "cuda":
        return CPU_CHUNK
    fit = max(1, CUDA_CHUNK_ELEMENTS // max(1, z * dk * dv))
    return int(min(256, max(16, 1 << (fit.bit_length() - 1))))


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


class CausalSigmoidRead(torch.autograd.Function):
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


def causal_sigmoid_read(q: Tensor, k: Tensor, v: Tensor, chunk: int) -> Tensor:
    """(B, H, N, d) inputs (k already scaled by 1/m) -> (B, H, N, dv).

    A fused kernel when one applies (``astromorphic.kernels``: compiled on the CPU, Triton on CUDA;
    forced with ``ASTROMORPHIC_CAUSAL_KERNEL`` or ``kernels.causal_kernel``), else ``CausalSigmoidRead``.
    """
    kernel = kernels.select_causal_kernel(q.device, q.dtype)
    if kernel != "torch":
        return kernels.causal_sigmoid_read(q, k, v, chunk, kernel)
    b, h, n, dk = q.shape
    dv = v.shape[-1]

    def time_major(t: Tensor) -> Tensor:
        return t.permute(2, 0, 1, 3).reshape(n, b * h, t.shape[-1])

    out = CausalSigmoidRead.apply(time_major(q), time_major(k), time_major(v), chunk)
    return out.reshape(n, b, h, dv).permute(1, 2, 0, 3)


def causal_linear_read(q: Tensor, k: Tensor, v: Tensor, chunk: int) -> Tensor:
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
