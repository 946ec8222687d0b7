"""Fused kernels for the causal astromorphic read, and the dispatch between them.

The causal astromorphic attention needs, per (batch * head) z and position t,
``num_t = q_t^T sigmoid(S_t)`` with ``S_t = sum_{s <= t} k_s v_s^T`` (k already holds 1/m and the W_astro
term). Three implementations compute it, forward and backward, with the same chunk checkpoints:

* ``torch``: the PyTorch path ``attention.causal.CausalSigmoidRead`` (chunked prefix states, recomputing
  backward); the reference, and the fallback everywhere.
* ``cpp``: a compiled CPU kernel (``causal_sigmoid.cpp``, C++ with OpenMP, built on first use; see
  ``astromorphic.kernels.cpu_causal``), float32 and float64.
* ``triton``: a Triton kernel for CUDA (``astromorphic.kernels.triton_causal``), float32, bfloat16 and
  float16 inputs, accumulating in float32. On the CPU it runs only under the Triton interpreter
  (``TRITON_INTERPRET=1``), for tests.

Choice: ``auto`` (default) takes ``triton`` on CUDA for float32/bfloat16/float16 when Triton imports
(else ``torch``, with one warning naming the reason), ``cpp`` on the CPU for float32/float64 when the
library builds (else ``torch``, with one warning naming the reason), and ``torch`` otherwise.
:func:`selected_causal_kernel` says which kernel a device and dtype get, without warning (run records
store it). A Triton kernel that fails to compile or launch (no C compiler, no ``Python.h``, an unwritable
cache) raises :class:`~astromorphic.kernels.triton_causal.TritonKernelError`, whose one-line message
names ``ASTROMORPHIC_CAUSAL_KERNEL=torch``. The environment variable ``ASTROMORPHIC_CAUSAL_KERNEL``
(``auto|torch|cpp|triton``) or the context manager ``causal_kernel(name)`` (it takes precedence) forces a
path; a forced path that cannot run raises an error naming the reason instead of falling back.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Iterator, Optional

import torch
from torch import Tensor

from astromorphic.kernels import cpu_causal
from astromorphic.kernels.choice import CHOICES, ENV_VAR

__all__ = [
    "ENV_VAR",
    "CHOICES",
    "causal_kernel",
    "requested_kernel",
    "select_causal_kernel",
    "selected_causal_kernel",
    "causal_sigmoid_read",
]

CPP_DTYPES = (torch.float32, torch.float64)
TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

_local = threading.local()
_warned = False  # the compiled CPU kernel is unavailable: said once per process
_triton_warned = False  # Triton is unavailable on CUDA: said once per process


def _check_choice(name, where: str) -> str:
    if not isinstance(name, str) or name.strip().lower() not in CHOICES:
        raise ValueError(f"{where}: expected one of {CHOICES}, got {name!r}")
    return name.strip().lower()


@contextlib.contextmanager
def causal_kernel(name: str) -> Iterator[None]:
    """Force the causal kernel (``auto``, ``torch``, ``cpp`` or ``triton``) inside the block (this thread)."""
    name = _check_choice(name, "causal_kernel")
    previous = getattr(_local, "choice", None)
    _local.choice = name
    try:
        yield
    finally:
        _local.choice = previous


def requested_kernel() -> str:
    """The requested choice: the innermost ``causal_kernel`` block, else $ASTROMORPHIC_CAUSAL_KERNEL, else auto."""
    choice = getattr(_local, "choice", None)
    if choice is not None:
        return choice
    env = os.environ.get(ENV_VAR)
    if env is None or env.strip() == "":
        return "auto"
    return _check_choice(env, f"environment variable {ENV_VAR}")


def _cpp_problem(device: torch.device, dtype: torch.dtype) -> Optional[str]:
    if device.type != "cpu":
        return f"it runs on the CPU only, got a tensor on {device.type}"
    if dtype not in CPP_DTYPES:
        return f"it takes float32 or float64, got {dtype}"
    if cpu_causal.load() is None:
        return f"the library could not be built ({cpu_causal.why_unavailable()})"
    return None


def _triton_problem(device: torch.device, dtype: torch.dtype) -> Optional[str]:
    if dtype not in TRITON_DTYPES:
        return f"it takes float32, bfloat16 or float16, got {dtype}"
    # deferred: Triton is optional (imported only where a CUDA run asks for its kernel)
    from astromorphic.kernels import triton_causal

    return triton_causal.problem(device)


def _choose(device: torch.device, dtype: torch.dtype) -> tuple[str, Optional[str]]:
    """(kernel, why the faster kernel of the device is not used, or None)."""
    choice = requested_kernel()
    if choice == "torch":
        return "torch", None
    if choice in ("cpp", "triton"):
        problem = (_cpp_problem if choice == "cpp" else _triton_problem)(device, dtype)
        if problem:
            raise RuntimeError(f"causal kernel {choice!r} was requested ({ENV_VAR} or causal_kernel) but {problem}")
        return choice, None
    if device.type == "cuda":
        if dtype not in TRITON_DTYPES:
            return "torch", None
        problem = _triton_problem(device, dtype)
        return ("triton", None) if problem is None else ("torch", problem)
    if device.type == "cpu" and dtype in CPP_DTYPES:
        problem = _cpp_problem(device, dtype)
        return ("cpp", None) if problem is None else ("torch", problem)
    return "torch", None


def selected_causal_kernel(device: torch.device | str, dtype: torch.dtype = torch.float32) -> str:
    """'triton', 'cpp' or 'torch': the causal kernel that inputs on ``device`` computed in ``dtype`` get
    (the same choice as :func:`select_causal_kernel`, without its warning). A forced kernel that cannot run
    raises ``RuntimeError`` naming the reason."""
    return _choose(torch.device(device), dtype)[0]


def select_causal_kernel(device: torch.device, dtype: torch.dtype) -> str:
    """'torch', 'cpp' or 'triton' for inputs on ``device`` computed in ``dtype``; the first fallback of each
    kind (no compiled CPU kernel, no Triton on CUDA) warns once per process."""
    global _warned, _triton_warned
    kernel, problem = _choose(device, dtype)
    if problem is None:
        return kernel
    if device.type == "cuda" and not _triton_warned:
        _triton_warned = True
        warnings.warn(
            f"astromorphic: the Triton causal kernel is unavailable on CUDA, {problem}; using the slower "
            f"PyTorch path (install Triton, or set {ENV_VAR}=torch to choose it)",
            RuntimeWarning,
            stacklevel=3,
        )
    elif device.type == "cpu" and not _warned:
        _warned = True
        warnings.warn(
            f"astromorphic: the compiled CPU causal kernel is unavailable, {problem}; using the slower PyTorch path",
            RuntimeWarning,
            stacklevel=3,
        )
    return kernel


def causal_sigmoid_read(q: Tensor, k: Tensor, v: Tensor, chunk: int, kernel: str) -> Tensor:
    """num_t = q_t^T sigmoid(sum_{s <= t} k_s v_s^T) with the fused ``kernel`` ('cpp' or 'triton').

    q, k: (B, H, N, dk) with the 1/m folded into k; v: (B, H, N, dv). Returns (B, H, N, dv).
    """
    b, h, n, dk = q.shape
    dv = v.shape[-1]

    def flat(t: Tensor) -> Tensor:
        return t.reshape(b * h, n, t.shape[-1])

    if kernel == "cpp":
        read = cpu_causal.CppCausalSigmoidRead
    elif kernel == "triton":
        # deferred: Triton is optional (imported only where a CUDA run asks for its kernel)
        from astromorphic.kernels.triton_causal import TritonCausalSigmoidRead as read
    else:
        raise ValueError(f"kernel: expected 'cpp' or 'triton', got {kernel!r}")
    return read.apply(flat(q), flat(k), flat(v), chunk).reshape(b, h, n, dv)
