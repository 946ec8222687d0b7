"""The compiled CPU kernel of the causal sigmoid read (``causal_sigmoid.cpp``), built on first use.

The C++ source ships with the package. On first use it is compiled with the system C++ compiler
(``$CXX``, else ``c++`` / ``g++``) into a cache directory (``$ASTROMORPHIC_KERNEL_CACHE``, else
``$XDG_CACHE_HOME/astromorphic/kernels`` or ``~/.cache/astromorphic/kernels``; a temporary directory when
that is not writable), and loaded with ctypes. It has a plain C interface, so it needs no PyTorch headers
and compiles in a few seconds. The build is keyed by a hash of the source, the compiler, its flags and the
processor (it is built with ``-march=native``), so a changed source or another machine sharing the cache
directory gets its own build. Concurrent first uses serialise on a file lock; the library is written under
a temporary name and renamed into place, so no process ever loads a half-written file.

When no compiler works, ``load()`` returns None and ``why_unavailable()`` says why; the dispatch in
``astromorphic.kernels`` then falls back to the PyTorch path with one warning.

OpenMP: the library is linked against ``libgomp.so.1``, the soname of the OpenMP runtime PyTorch loads,
so both share one thread pool; each call uses ``torch.get_num_threads()`` threads.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["load", "build_and_load", "check_inputs", "why_unavailable", "CppCausalSigmoidRead", "cache_dir", "SOURCE"]

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("causal_sigmoid.cpp")
ABI_VERSION = 2
CACHE_ENV = "ASTROMORPHIC_KERNEL_CACHE"
BASE_FLAGS = ["-O3", "-std=c++17", "-shared", "-fPIC", "-ffp-contract=fast", "-fno-math-errno", "-fno-trapping-math"]
# tried in order: the fastest build that compiles wins
FLAG_SETS = (["-march=native", "-fopenmp"], ["-fopenmp"], ["-march=native", "-fopenmp-simd"], ["-fopenmp-simd"], [])
SCRATCH_BYTES = 256 * 1024  # backward: sigmoids of one sub-chunk, kept in the per-core cache

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_tried = False
_reason = ""


def cache_dir() -> Path:
    """Where compiled kernels are kept (created on demand)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "astromorphic" / "kernels"


def _writable_dir(path: Path) -> Optional[Path]:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe", delete=True)
        probe.close()
        return path
    except OSError:
        return None


def _compiler() -> Optional[str]:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def _machine_id() -> str:
    """What -march=native depends on: the processor's model and feature flags."""
    parts = [platform.machine()]
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    parts.append(line.strip())
                if len(parts) > 4:
                    break
    except OSError:
        parts.append(platform.processor())
    return "\n".join(parts)


def _compiler_version(cxx: str) -> str:
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _build(cxx: str, directory: Path, flag_sets=FLAG_SETS) -> Path:
    """Compile (once, under a file lock) and return the library path; raises RuntimeError on failure."""
    import fcntl

    source = SOURCE.read_bytes()
    version = _compiler_version(cxx)
    errors = []
    for extra in flag_sets:
        flags = BASE_FLAGS + extra
        key = hashlib.sha256(
            b"\0".join([source, " ".join([cxx] + flags).encode(), version.encode(), _machine_id().encode()])
        ).hexdigest()[:20]
        lib = directory / f"causal_sigmoid_{key}.so"
        failed = directory / f"causal_sigmoid_{key}.failed"
        if lib.exists():
            return lib
        if failed.exists():
            errors.append(f"{' '.join(extra) or 'plain'}: failed before (see {failed})")
            continue
        with open(directory / f"causal_sigmoid_{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be compiling the same key
            if lib.exists():
                return lib
            tmp = directory / f".causal_sigmoid_{key}.{os.getpid()}.so"
            cmd = [cxx, *flags, str(SOURCE), "-o", str(tmp)]
            start = time.perf_counter()
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.SubprocessError) as err:
                proc = None
                message = str(err)
            if proc is not None and proc.returncode == 0 and tmp.exists():
                os.replace(tmp, lib)
                log.info("compiled the CPU causal kernel in %.1f s: %s", time.perf_counter() - start, lib)
                return lib
            tmp.unlink(missing_ok=True)
            if proc is not None:  # a compile error (not a timeout): remembered, not retried for this key
                message = (proc.stderr or proc.stdout or f"exit status {proc.returncode}").strip()
                failed.write_text(" ".join(cmd) + "\n" + message + "\n")
            errors.append(f"{' '.join(extra) or 'plain'}: {message.splitlines()[-1] if message else 'failed'}")
    raise RuntimeError("could not compile " + SOURCE.name + " with " + cxx + ": " + "; ".join(errors))


def _bind(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    if lib.astro_abi_version() != ABI_VERSION:
        raise RuntimeError(f"{path}: ABI version {lib.astro_abi_version()}, expected {ABI_VERSION}")
    ptr, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for suffix in ("f32", "f64"):
        fwd = getattr(lib, f"astro_causal_forward_{suffix}")
        fwd.argtypes = [ptr] * 6 + [i64] * 6 + [c_int]
        fwd.restype = c_int
        bwd = getattr(lib, f"astro_causal_backward_{suffix}")
        bwd.argtypes = [ptr] * 9 + [i64] * 7 + [c_int]
        bwd.restype = c_int
    lib.astro_forward_scratch.argtypes = [i64, i64]
    lib.astro_forward_scratch.restype = i64
    lib.astro_backward_scratch.argtypes = [i64] * 4
    lib.astro_backward_scratch.restype = i64
    return lib


def build_and_load(cxx: Optional[str], directory: Optional[Path], flag_sets=FLAG_SETS) -> ctypes.CDLL:
    """Compile (if needed) with ``cxx`` into ``directory`` and load; RuntimeError/OSError when impossible.

    ``flag_sets``: the extra compiler flags to try, in order (the first that compiles is used)."""
    if os.name != "posix":
        raise RuntimeError(f"the CPU kernel is built on POSIX systems only, not {os.name!r}")
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
    if directory is None:
        raise RuntimeError(f"no writable cache directory (tried {cache_dir()} and the temporary directory)")
    return _bind(_build(cxx, directory, flag_sets))


def load() -> Optional[ctypes.CDLL]:
    """The compiled library, building it on first use; None when it cannot be built (see why_unavailable)."""
    global _lib, _tried, _reason
    if _tried:
        return _lib
    with _lock:
        if _tried:
            return _lib
        try:
            directory = _writable_dir(cache_dir()) or _writable_dir(
                Path(tempfile.gettempdir()) / f"astromorphic-kernels-{os.getuid()}"
            )
            _lib = build_and_load(_compiler(), directory)
        except (RuntimeError, OSError, AttributeError) as err:
            _lib, _reason = None, str(err)
        _tried = True
    return _lib


def why_unavailable() -> str:
    """Why load() returned None ('' when it has not failed)."""
    return _reason


# ----------------------------------------------------------------------------------------------------
# autograd function


_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_LANES = {torch.float32: 16, torch.float64: 8}  # one 512-bit vector
_TILES = (8, 16, 32, 64)


def _tile(z: int, dv: int, dtype: torch.dtype, threads: int) -> int:
    """Columns of the state per work item: wide (one item walks whole rows) unless the items would not
    keep every thread busy; never much wider than dv."""
    widest = 64 if dtype == torch.float32 else 32
    tile = 8
    while tile < widest and tile < dv:
        tile *= 2
    lanes = _LANES[dtype]
    while tile > lanes and z * (-(-dv // tile)) < threads:
        tile //= 2
    return tile


def _sub_chunk(dk: int, tile: int, itemsize: int, chunk: int) -> int:
    return int(max(1, min(chunk, SCRATCH_BYTES // max(1, dk * tile * itemsize))))


def check_inputs(q: Tensor, k: Tensor, v: Tensor, chunk, *, dtypes: tuple, where: str) -> None:
    """Shapes (Z, N, dk), (Z, N, dk), (Z, N, dv), one dtype among ``dtypes`` and device; chunk >= 1."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor) or t.dim() != 3:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name}: expected a 3-d tensor (Z, N, d) for {where}, got {got}")
        if t.dtype not in dtypes:
            raise ValueError(f"{name}: expected dtype in {[str(d) for d in dtypes]} for {where}, got {t.dtype}")
        if t.device != q.device or t.dtype != q.dtype:
            raise ValueError(
                f"{name}: expected the device and dtype of q ({q.device}, {q.dtype}), got {t.device}, {t.dtype}"
            )
    if tuple(k.shape) != tuple(q.shape):
        raise ValueError(f"k: expected the shape of q {tuple(q.shape)}, got {tuple(k.shape)}")
    if tuple(v.shape[:2]) != tuple(q.shape[:2]) or v.shape[2] < 1 or q.shape[1] < 1 or q.shape[2] < 1:
        raise ValueError(f"v: expected shape (Z, N, dv) with (Z, N) = {tuple(q.shape[:2])}, got {tuple(v.shape)}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk: expected a positive integer, got {chunk!r}")


def _ptr(t: Tensor) -> int:
    return t.data_ptr()


def _check_status(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"causal kernel {what}: rejected its arguments (status {status})")


class CppCausalSigmoidRead(torch.autograd.Function):
    """num_t = q_t^T sigmoid(sum_{s <= t} k_s v_s^T), head-major inputs, the compiled CPU kernel.

    q, k: (Z, N, dk) with the 1/m folded into k; v: (Z, N, dv); float32 or float64 on the CPU.
    Returns (Z, N, dv). Saves q, k, v and one (dk, dv) state per chunk of ``chunk`` positions.
    ``tile`` (8, 16, 32 or 64 state columns per work item) is chosen from the shape and the thread
    count when None.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, chunk: int, tile: Optional[int] = None) -> Tensor:
        lib = load()
        if lib is None:
            raise RuntimeError(f"the compiled CPU causal kernel is unavailable: {why_unavailable()}")
        check_inputs(q, k, v, chunk, dtypes=tuple(_SUFFIX), where="the compiled CPU causal kernel")
        if q.device.type != "cpu":
            raise ValueError(f"q: expected a tensor on the CPU for the compiled CPU causal kernel, got {q.device}")
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        z, n, dk = q.shape
        dv = v.shape[-1]
        n_chunks = -(-n // chunk)
        threads = torch.get_num_threads()
        if tile is None:
            tile = _tile(z, dv, q.dtype, threads)
        elif tile not in _TILES:
            raise ValueError(f"tile: expected one of {_TILES} or None, got {tile!r}")
        out = q.new_empty(z, n, dv)
        starts = q.new_empty(z, n_chunks, dk, dv)
        scratch = q.new_empty(threads * lib.astro_forward_scratch(dk, tile))
        fn = getattr(lib, f"astro_causal_forward_{_SUFFIX[q.dtype]}")
        status = fn(
            _ptr(q), _ptr(k), _ptr(v), _ptr(out), _ptr(starts), _ptr(scratch), z, n, dk, dv, chunk, tile, threads
        )  # fmt: skip
        _check_status(status, "forward")
        ctx.save_for_backward(q, k, v, starts)
        ctx.chunk, ctx.tile = chunk, tile
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        q, k, v, starts = ctx.saved_tensors
        lib = load()
        grad_out = grad_out.contiguous()
        z, n, dk = q.shape
        dv = v.shape[-1]
        threads = torch.get_num_threads()
        tile = ctx.tile
        tiles = -(-dv // tile)
        sub = _sub_chunk(dk, tile, q.element_size(), ctx.chunk)
        dq = q.new_empty(tiles, z, n, dk)
        dk_ = q.new_empty(tiles, z, n, dk)
        dv_ = q.new_empty(z, n, dv)
        scratch = q.new_empty(threads * lib.astro_backward_scratch(dk, tile, ctx.chunk, sub))
        fn = getattr(lib, f"astro_causal_backward_{_SUFFIX[q.dtype]}")
        status = fn(
            _ptr(q), _ptr(k), _ptr(v), _ptr(grad_out), _ptr(starts), _ptr(dq), _ptr(dk_), _ptr(dv_), _ptr(scratch),
            z, n, dk, dv, ctx.chunk, sub, tile, threads,
        )  # fmt: skip
        _check_status(status, "backward")
        dq = dq[0] if tiles == 1 else dq.sum(0)
        dk_ = dk_[0] if tiles == 1 else dk_.sum(0)
        needs = ctx.needs_input_grad
        return (dq if needs[0] else None), (dk_ if needs[1] else None), (dv_ if needs[2] else None), None, None
