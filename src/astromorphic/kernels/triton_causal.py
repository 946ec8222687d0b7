"""Triton kernel of the causal sigmoid read for CUDA, forward and backward.

Grid: one program per (z, tile of BLOCK_V state columns, tile of BLOCK_K state rows). A program keeps its
BLOCK_K x BLOCK_V slice of the state S in registers (float32), walks t in order, applies the sigmoid in
place and writes only its share of the output: the partial sum over its rows (the host adds the row tiles
when there are several). It stores the state at the start of every chunk of ``chunk`` positions.

Backward, per program: G (the sum of dL/dS_t' over t' >= t) in registers; the chunks are walked in
reverse. From a chunk's saved state the program writes the state at the start of each sub-chunk of SUB
positions to a scratch buffer (state updates only), then, sub-chunk by sub-chunk, last first, recomputes
the sigmoids of the SUB positions into the scratch buffer and walks back through them:
dq_t = H_t go_t (partial over the program's columns), G += H (1 - H) (.) q_t go_t^T, dk_t = G v_t
(partial over columns), dv_t = G^T k_t (partial over rows). Scratch per program is
(chunk / SUB + SUB) x BLOCK_K x BLOCK_V floats, independent of N. Inputs may be float32, bfloat16 or
float16; all arithmetic is float32 and the results are cast back to the input dtype.

On the CPU the kernels run under the Triton interpreter (``TRITON_INTERPRET=1`` set before Triton is
imported); the tests use that on small shapes.

Triton compiles a kernel on its first launch for a shape class, with the host's C compiler and the Python
headers, into its cache (``TRITON_CACHE_DIR``, default ``~/.triton/cache``). When that fails the launch
raises :class:`TritonKernelError`, one line that names the cause and the way round it
(``ASTROMORPHIC_CAUSAL_KERNEL=torch``), instead of the compiler's many lines.
"""

from __future__ import annotations

import os
from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from astromorphic.kernels.choice import ENV_VAR
from astromorphic.kernels.cpu_causal import check_inputs

__all__ = ["problem", "TritonCausalSigmoidRead", "TritonKernelError", "block_sizes"]

try:  # Triton is optional: without it the dispatch uses another path
    import triton
    import triton.language as tl

    _IMPORT_ERROR: Optional[str] = None
except Exception as err:  # pragma: no cover - depends on the installation
    triton = None
    tl = None
    _IMPORT_ERROR = f"{type(err).__name__}: {err}"

SUB_CHUNK = 16  # positions whose sigmoids the backward pass keeps in scratch at a time


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "") == "1"


def problem(device: torch.device) -> Optional[str]:
    """None when the Triton kernel can run on ``device``, else the reason it cannot."""
    if triton is None:
        return f"Triton is not importable ({_IMPORT_ERROR})"
    if device.type == "cuda":
        return None
    if device.type == "cpu" and _interpreting():
        return None
    return f"it runs on CUDA (or on the CPU under TRITON_INTERPRET=1), got a tensor on {device.type}"


class TritonKernelError(RuntimeError):
    """The Triton kernel failed to compile or launch (no C compiler, no Python.h, an unwritable cache...)."""


def _first_line(err: BaseException, limit: int = 300) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if isinstance(err, OSError) and getattr(err, "filename", None) and err.filename not in text:
        text += f" ({err.filename})"
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _launch(kernel, grid, *args, **meta) -> None:
    """``kernel[grid](*args, **meta)``; a compile or launch failure becomes one :class:`TritonKernelError` line
    (running out of device memory stays what it is)."""
    try:
        kernel[grid](*args, **meta)
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as err:
        raise TritonKernelError(
            f"the Triton causal kernel failed to compile or launch ({_first_line(err)}); it needs a C compiler, "
            f"the Python headers (Python.h) and a writable TRITON_CACHE_DIR; set {ENV_VAR}=torch to use the "
            "PyTorch path instead"
        ) from None


def block_sizes(dk: int, dv: int) -> tuple[int, int]:
    """(BLOCK_K, BLOCK_V): powers of two, at most 64 rows and 32 columns of the state per program."""
    bk = min(64, max(16, 1 << (max(dk, 1) - 1).bit_length()))
    bv = min(32, max(16, 1 << (max(dv, 1) - 1).bit_length()))
    return bk, bv


if triton is not None:

    @triton.jit
    def _forward_kernel(
        q_ptr, k_ptr, v_ptr, out_ptr, starts_ptr,
        Z, N, DK, DV, N_CHUNKS,
        CHUNK: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_V: tl.constexpr,
    ):  # fmt: skip
        z = tl.program_id(0).to(tl.int64)  # 64-bit offsets: Z * N * d can pass 2**31
        pv = tl.program_id(1)
        pk = tl.program_id(2)
        rows = pk * BLOCK_K + tl.arange(0, BLOCK_K)
        cols = pv * BLOCK_V + tl.arange(0, BLOCK_V)
        rmask = rows < DK
        cmask = cols < DV
        tile_mask = rmask[:, None] & cmask[None, :]
        q_base = q_ptr + z * N * DK
        k_base = k_ptr + z * N * DK
        v_base = v_ptr + z * N * DV
        out_base = out_ptr + (pk * Z + z) * N * DV
        start_base = starts_ptr + z * N_CHUNKS * DK * DV + rows[:, None] * DV + cols[None, :]
        state = tl.zeros((BLOCK_K, BLOCK_V), dtype=tl.float32)
        kt = tl.load(k_base + rows, mask=rmask, other=0.0).to(tl.float32)
        qt = tl.load(q_base + rows, mask=rmask, other=0.0).to(tl.float32)
        vt = tl.load(v_base + cols, mask=cmask, other=0.0).to(tl.float32)
        for t in range(0, N):
            if t % CHUNK == 0:
                tl.store(start_base + (t // CHUNK) * DK * DV, state, mask=tile_mask)
            # the next position's rows are requested before this one's work (hides the load latency)
            more = t + 1 < N
            k_next = tl.load(k_base + (t + 1) * DK + rows, mask=rmask & more, other=0.0).to(tl.float32)
            q_next = tl.load(q_base + (t + 1) * DK + rows, mask=rmask & more, other=0.0).to(tl.float32)
            v_next = tl.load(v_base + (t + 1) * DV + cols, mask=cmask & more, other=0.0).to(tl.float32)
            state += kt[:, None] * vt[None, :]
            h = tl.sigmoid(state)
            tl.store(out_base + t * DV + cols, tl.sum(qt[:, None] * h, axis=0), mask=cmask)
            kt, qt, vt = k_next, q_next, v_next

    @triton.jit
    def _backward_kernel(
        q_ptr, k_ptr, v_ptr, go_ptr, starts_ptr, dq_ptr, dk_ptr, dv_ptr, scratch_ptr,
        Z, N, DK, DV, N_CHUNKS, N_VT, N_KT,
        CHUNK: tl.constexpr, SUB: tl.constexpr, N_SUB_MAX: tl.constexpr,
        BLOCK_K: tl.constexpr, BLOCK_V: tl.constexpr,
    ):  # fmt: skip
        z = tl.program_id(0).to(tl.int64)  # 64-bit offsets: Z * N * d can pass 2**31
        pv = tl.program_id(1)
        pk = tl.program_id(2)
        rows = pk * BLOCK_K + tl.arange(0, BLOCK_K)
        cols = pv * BLOCK_V + tl.arange(0, BLOCK_V)
        rmask = rows < DK
        cmask = cols < DV
        tile_mask = rmask[:, None] & cmask[None, :]
        local = tl.arange(0, BLOCK_K)[:, None] * BLOCK_V + tl.arange(0, BLOCK_V)[None, :]
        program = (z * N_VT + pv) * N_KT + pk
        ck_base = scratch_ptr + program * (N_SUB_MAX + SUB) * BLOCK_K * BLOCK_V
        h_base = ck_base + N_SUB_MAX * BLOCK_K * BLOCK_V
        q_base = q_ptr + z * N * DK
        k_base = k_ptr + z * N * DK
        v_base = v_ptr + z * N * DV
        go_base = go_ptr + z * N * DV
        dq_base = dq_ptr + (pv * Z + z) * N * DK  # partial over this program's columns
        dk_base = dk_ptr + (pv * Z + z) * N * DK
        dv_base = dv_ptr + (pk * Z + z) * N * DV  # partial over this program's rows
        start_base = starts_ptr + z * N_CHUNKS * DK * DV + rows[:, None] * DV + cols[None, :]
        grad = tl.zeros((BLOCK_K, BLOCK_V), dtype=tl.float32)
        for rb in range(0, N_CHUNKS):
            b = N_CHUNKS - 1 - rb
            lo = b * CHUNK
            hi = tl.minimum(N, lo + CHUNK)
            n_sub = (hi - lo + SUB - 1) // SUB
            # the state at the start of every sub-chunk
            state = tl.load(start_base + b * DK * DV, mask=tile_mask, other=0.0)
            for t in range(lo, hi):
                if (t - lo) % SUB == 0:
                    tl.store(ck_base + ((t - lo) // SUB) * BLOCK_K * BLOCK_V + local, state)
                kt = tl.load(k_base + t * DK + rows, mask=rmask, other=0.0).to(tl.float32)
                vt = tl.load(v_base + t * DV + cols, mask=cmask, other=0.0).to(tl.float32)
                state += kt[:, None] * vt[None, :]
            tl.debug_barrier()
            for rs in range(0, n_sub):
                s = n_sub - 1 - rs
                a = lo + s * SUB
                e = tl.minimum(hi, a + SUB)
                state = tl.load(ck_base + s * BLOCK_K * BLOCK_V + local)
                # recompute the sigmoids; dq_t = H_t go_t
                for t in range(a, e):
                    kt = tl.load(k_base + t * DK + rows, mask=rmask, other=0.0).to(tl.float32)
                    vt = tl.load(v_base + t * DV + cols, mask=cmask, other=0.0).to(tl.float32)
                    gt = tl.load(go_base + t * DV + cols, mask=cmask, other=0.0).to(tl.float32)
                    state += kt[:, None] * vt[None, :]
                    h = tl.sigmoid(state)
                    tl.store(h_base + (t - a) * BLOCK_K * BLOCK_V + local, h)
                    tl.store(dq_base + t * DK + rows, tl.sum(h * gt[None, :], axis=1), mask=rmask)
                tl.debug_barrier()
                # walk back: G += H (1 - H) (.) q go^T ; dk_t = G v_t ; dv_t = G^T k_t
                for rt in range(0, e - a):
                    t = e - 1 - rt
                    qt = tl.load(q_base + t * DK + rows, mask=rmask, other=0.0).to(tl.float32)
                    kt = tl.load(k_base + t * DK + rows, mask=rmask, other=0.0).to(tl.float32)
                    vt = tl.load(v_base + t * DV + cols, mask=cmask, other=0.0).to(tl.float32)
                    gt = tl.load(go_base + t * DV + cols, mask=cmask, other=0.0).to(tl.float32)
                    h = tl.load(h_base + (t - a) * BLOCK_K * BLOCK_V + local)
                    grad += (h - h * h) * (qt[:, None] * gt[None, :])
                    tl.store(dk_base + t * DK + rows, tl.sum(grad * vt[None, :], axis=1), mask=rmask)
                    tl.store(dv_base + t * DV + cols, tl.sum(grad * kt[:, None], axis=0), mask=cmask)
                tl.debug_barrier()


def _launch_config(q: Tensor, v: Tensor):
    z, n, dk = q.shape
    dv = v.shape[-1]
    bk, bv = block_sizes(dk, dv)
    return z, n, dk, dv, bk, bv, -(-dk // bk), -(-dv // bv)


def _num_warps(bk: int, bv: int) -> int:
    return 4 if bk * bv >= 2048 else 2


class TritonCausalSigmoidRead(torch.autograd.Function):
    """num_t = q_t^T sigmoid(sum_{s <= t} k_s v_s^T), head-major inputs, the Triton kernel.

    q, k: (Z, N, dk) with the 1/m folded into k; v: (Z, N, dv); float32, bfloat16 or float16 on CUDA (or
    on the CPU under the Triton interpreter). Returns (Z, N, dv) in the input dtype.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, chunk: int) -> Tensor:
        reason = problem(q.device)
        if reason:
            raise RuntimeError(f"the Triton causal kernel cannot run: {reason}")

        check_inputs(q, k, v, chunk, dtypes=(torch.float32, torch.bfloat16, torch.float16), where="the Triton kernel")
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        z, n, dk, dv, bk, bv, n_kt, n_vt = _launch_config(q, v)
        n_chunks = -(-n // chunk)
        f32 = {"device": q.device, "dtype": torch.float32}
        out = torch.empty(n_kt, z, n, dv, **f32)
        starts = torch.empty(z, n_chunks, dk, dv, **f32)
        _launch(
            _forward_kernel, (z, n_vt, n_kt), q, k, v, out, starts, z, n, dk, dv, n_chunks,
            CHUNK=chunk, BLOCK_K=bk, BLOCK_V=bv, num_warps=_num_warps(bk, bv),
        )  # fmt: skip
        ctx.save_for_backward(q, k, v, starts)
        ctx.chunk = chunk
        out = out[0] if n_kt == 1 else out.sum(0)
        return out.to(q.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        q, k, v, starts = ctx.saved_tensors
        chunk = ctx.chunk
        grad_out = grad_out.contiguous()
        z, n, dk, dv, bk, bv, n_kt, n_vt = _launch_config(q, v)
        n_chunks = starts.shape[1]
        sub = min(chunk, SUB_CHUNK)
        n_sub_max = -(-chunk // sub)
        f32 = {"device": q.device, "dtype": torch.float32}
        dq = torch.empty(n_vt, z, n, dk, **f32)
        dk_ = torch.empty(n_vt, z, n, dk, **f32)
        dv_ = torch.empty(n_kt, z, n, dv, **f32)
        scratch = torch.empty(z * n_vt * n_kt * (n_sub_max + sub) * bk * bv, **f32)
        _launch(
            _backward_kernel, (z, n_vt, n_kt),
            q, k, v, grad_out, starts, dq, dk_, dv_, scratch, z, n, dk, dv, n_chunks, n_vt, n_kt,
            CHUNK=chunk, SUB=sub, N_SUB_MAX=n_sub_max, BLOCK_K=bk, BLOCK_V=bv, num_warps=_num_warps(bk, bv),
        )  # fmt: skip

        def reduce(t: Tensor) -> Tensor:
            return (t[0] if t.shape[0] == 1 else t.sum(0)).to(q.dtype)

        needs = ctx.needs_input_grad
        return (
            reduce(dq) if needs[0] else None,
            reduce(dk_) if needs[1] else None,
            reduce(dv_) if needs[2] else None,
            None,
        )
