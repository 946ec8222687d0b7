"""Attention benchmark (Fig. S2 as a measurement): time and peak memory against sequence length N.

``astromorphic bench attention --out results/bench/attention_cpu.csv [--device cpu|cuda] [--n 128,...,8192]
[--batch 1 --heads 4 --dim 64[,128]] [--repeats 3] [--dtype float32|bfloat16] [--chunk C] [--threads T]
[--kinds softmax,linearized,astromorphic,astromorphic_torch,astromorphic_cpp,astromorphic_triton,relpos_dense,relpos_scan]
[--causal false|true|both]``

Rows (one per device, dtype, d, kind, causal, N):

* ``softmax``: ``torch.nn.functional.scaled_dot_product_attention`` (PyTorch picks the kernel).
* ``linearized``: ``astromorphic_attention`` without sigmoid, alpha = 1, no W_astro, feedback on.
* ``astromorphic``: the full astromorphic core as a layer runs it: W_astro from a learnable M through
  ``relative_position_activity`` (method "auto") plus ``astromorphic_attention`` with sigmoid, alpha = 0.25
  and feedback; gradients flow to q, k, v and M.

Each mechanism row times the per-head core (``attend``, no projections) of the layer its registry record's
preset builds (``attention.ATTENTION_REGISTRY``: ``bench_preset``), with m = 500 d_model and the presets'
default constants. Causal rows use the causal kernel the dispatch picks
  (``astromorphic.kernels``: compiled on the CPU, Triton on CUDA), named in the ``kernel`` column.
* ``astromorphic_torch`` / ``astromorphic_cpp`` / ``astromorphic_triton``: the same layer with the causal
  kernel forced to the PyTorch path, the compiled CPU kernel or the Triton kernel (causal rows only; the
  bidirectional layer has no such kernel). A kernel that cannot run on the device and dtype (the compiled
  kernel off the CPU, Triton without CUDA) is left out of the run with a note on stderr.
* ``relpos_dense`` / ``relpos_scan``: ``relative_position_activity`` alone with the dense P and with the
  scan (bidirectional rows only); they fix the crossover ``attention.DENSE_MAX_N``.

What is measured:

* ``fwd_ms``: the forward pass with autograd recording (the forward half of a training step).
  ``fwdbwd_ms``: forward plus backward of the sum of the output. Both the minimum over ``--repeats`` runs
  after one warm-up run (the minimum is the figure least disturbed by other load on a shared machine).
  The points of one N (all kinds, both causal settings, every d) are timed interleaved: each repetition
  runs every point once in turn, so that a change of load on a shared machine affects them alike.
* ``peak_mem_mb``: the peak of memory held by tensors allocated during one forward+backward, above what
  was allocated before it (the inputs are not counted; saved activations, temporaries and the input
  gradients are). On CUDA: ``torch.cuda.max_memory_allocated`` minus ``torch.cuda.memory_allocated``
  before the call. On the CPU: the running sum of the allocations and frees that the PyTorch profiler
  records with ``profile_memory=True``, in time order (a separate, untimed run). It does not include
  memory outside PyTorch's allocator (interpreter, libraries, allocator caches).
* ``status``: ``ok``; ``oom`` when the device ran out of memory; ``skipped`` for larger N of a kind once
  one of its points took longer than ``--max-seconds``.
* ``fwd_median_ms``, ``fwdbwd_median_ms``: the medians over the same ``--repeats`` runs (on a shared
  machine, the minimum shows the cost without interference and the median the typical cost under load).
* ``kernel``: the causal kernel that ran for causal astromorphic rows (``torch``, ``cpp`` or ``triton``);
  empty for the other rows.

On CUDA the default dtypes are float32 and bfloat16 (the astromorphic core computes bfloat16 inputs in
float32 internally); on the CPU float32.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import statistics
import sys
import time
from typing import Callable, Optional

import torch

from astromorphic import kernels, presets
from astromorphic.attention import (
    ATTENTION_REGISTRY,
    DEFAULT_CHUNK,
    AttentionKind,
    build_attention,
    relative_position_activity,
)
from astromorphic.io import write_text

COLUMNS = (
    "device",
    "dtype",
    "kind",
    "causal",
    "N",
    "B",
    "H",
    "d",
    "fwd_ms",
    "fwdbwd_ms",
    "peak_mem_mb",
    "status",
    "kernel",
    "fwd_median_ms",
    "fwdbwd_median_ms",
)
DEFAULT_N = tuple(128 * 2**i for i in range(7))  # 128 .. 8192
# the mechanisms with a benchmark preset; the layers with a fused causal kernel also once per kernel, forced
KINDS = tuple(name for name, kind in ATTENTION_REGISTRY.items() if kind.bench_preset)
KERNEL_KINDS = {
    f"{name}_{kernel}": kernel
    for name, kind in ATTENTION_REGISTRY.items()
    if kind.bench_preset and kind.causal_kernel
    for kernel in kernels.CHOICES
    if kernel != "auto"
}
RELPOS_KINDS = ("relpos_dense", "relpos_scan")
ALL_KINDS = KINDS + tuple(KERNEL_KINDS) + RELPOS_KINDS
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


def _mechanism(kind: str) -> Optional[AttentionKind]:
    """The attention mechanism a benchmark kind times (a kernel kind: its mechanism); None for relpos rows."""
    return ATTENTION_REGISTRY.get(kind.rsplit("_", 1)[0] if kind in KERNEL_KINDS else kind)


def make_case(kind: str, causal: bool, n: int, b: int, h: int, d: int, device, dtype, chunk: int):
    """(inputs needing grad, function of the inputs) for one benchmark point."""
    gen = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).to(device=device, dtype=dtype).requires_grad_()

    if kind in RELPOS_KINDS:
        m = rand(h, d, n, scale=0.02)
        method = kind.split("_")[1]
        return (m,), lambda m: relative_position_activity(m, 16.0, method=method, validate=False)
    mechanism = _mechanism(kind)
    if mechanism is None or mechanism.bench_preset is None:
        raise ValueError(f"kind: expected one of {ALL_KINDS}, got {kind!r}")
    q, k, v = rand(b, h, n, d), rand(b, h, n, d), rand(b, h, n, d)
    # the layer of the mechanism's preset, m = 500 * d_model; only its per-head core (attend) is timed
    spec = presets.spec_for(mechanism.bench_preset, {"m_scale_factor": 500.0}, d_model=h * d)
    layer = build_attention(spec, h * d, h, n, causal, chunk_size=chunk).to(device=device, dtype=dtype)
    inputs = (q, k, v)
    if getattr(layer, "M", None) is not None:  # the relative-position parameter gets its gradient too
        layer.M = torch.nn.Parameter(rand(h, d, n, scale=0.02))
        inputs += (layer.M,)
    forced = KERNEL_KINDS.get(kind)

    def attend(q, k, v, *_):
        with kernels.causal_kernel(forced) if forced else contextlib.nullcontext():
            return layer.attend(q, k, v, None)

    return inputs, attend


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The precision the astromorphic core computes in (float32 for half inputs)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def causal_kernel_for(kind: str, causal: bool, device, dtype: torch.dtype) -> str:
    """The causal kernel a row of ``kind`` runs ('' when none); RuntimeError when a forced one cannot run."""
    mechanism = _mechanism(kind)
    if not causal or mechanism is None or not mechanism.causal_kernel:
        return ""
    forced = kernels.causal_kernel(KERNEL_KINDS[kind]) if kind in KERNEL_KINDS else contextlib.nullcontext()
    with forced:
        return kernels.select_causal_kernel(torch.device(device), _compute_dtype(dtype))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_once(fn: Callable, inputs, device, backward: bool) -> float:
    for t in inputs:
        t.grad = None
    _sync(device)
    start = time.perf_counter()
    out = fn(*inputs)
    if backward:
        out.float().sum().backward()
    _sync(device)
    return (time.perf_counter() - start) * 1e3


@contextlib.contextmanager
def _native_stderr_silenced():
    """The profiler's native library logs every start and stop on file descriptor 2; silence that."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cpu_peak_mb(fn: Callable, inputs) -> float:
    """Peak of tensor memory allocated during fn (profiler allocation events, in time order)."""
    from torch.profiler import ProfilerActivity, profile

    for t in inputs:
        t.grad = None
    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(*inputs).float().sum().backward()
    allocs = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        tag, extra = node.typed
        if str(tag).endswith("Allocation") and str(extra.device).startswith("cpu"):
            allocs.append((node.start_time_ns, extra.alloc_size))
    allocs.sort()
    current = peak = 0
    for _, size in allocs:
        current += size
        peak = max(peak, current)
    return peak / 2**20


def _cuda_peak_mb(fn: Callable, inputs, device) -> float:
    for t in inputs:
        t.grad = None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn(*inputs).float().sum().backward()
    _sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def _empty_row(kind, causal, n, b, h, d, device: torch.device, dtype: torch.dtype) -> dict:
    return {
        "device": device.type,
        "dtype": str(dtype).replace("torch.", ""),
        "kind": kind,
        "causal": causal,
        "N": n,
        "B": b,
        "H": h,
        "d": d,
        "fwd_ms": "",
        "fwdbwd_ms": "",
        "peak_mem_mb": "",
        "status": "ok",
        "kernel": causal_kernel_for(kind, causal, device, dtype),
        "fwd_median_ms": "",
        "fwdbwd_median_ms": "",
    }


def _oom(row: dict, device: torch.device, err: BaseException) -> None:
    if not _is_oom(err) and not isinstance(err, MemoryError):
        raise err
    row["status"] = "oom"
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure_points(specs, n, b, h, device, dtype, repeats, chunk) -> list[dict]:
    """One row per (kind, causal, d) in ``specs`` at length ``n``, timed interleaved: after a warm-up of
    each, every repetition times each point once in turn, so that all points of one N see the same load
    on a shared machine. Peak memory is measured afterwards, one point at a time."""
    device = torch.device(device)
    rows, cases = [], []
    for kind, causal, d in specs:
        row = _empty_row(kind, causal, n, b, h, d, device, dtype)
        rows.append(row)
        try:
            inputs, fn = make_case(kind, causal, n, b, h, d, device, dtype, chunk)
            _time_once(fn, inputs, device, backward=True)  # warm-up
            cases.append((row, inputs, fn, [], []))
        except (RuntimeError, MemoryError) as err:
            _oom(row, device, err)
    for _ in range(repeats):
        for row, inputs, fn, fwd, fwdbwd in cases:
            if row["status"] != "ok":
                continue
            try:
                fwd.append(_time_once(fn, inputs, device, False))
                fwdbwd.append(_time_once(fn, inputs, device, True))
            except (RuntimeError, MemoryError) as err:
                _oom(row, device, err)
    for row, inputs, fn, fwd, fwdbwd in cases:
        if row["status"] != "ok":
            continue
        row["fwd_ms"], row["fwd_median_ms"] = round(min(fwd), 4), round(statistics.median(fwd), 4)
        row["fwdbwd_ms"], row["fwdbwd_median_ms"] = round(min(fwdbwd), 4), round(statistics.median(fwdbwd), 4)
        try:
            if device.type == "cuda":
                row["peak_mem_mb"] = round(_cuda_peak_mb(fn, inputs, device), 4)
            else:
                row["peak_mem_mb"] = round(_cpu_peak_mb(fn, inputs), 4)
        except (RuntimeError, MemoryError) as err:
            _oom(row, device, err)
    return rows


def measure_point(kind, causal, n, b, h, d, device, dtype, repeats, chunk) -> dict:
    """One row (see measure_points)."""
    return measure_points([(kind, causal, d)], n, b, h, device, dtype, repeats, chunk)[0]


def _rows_to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _value(rows, device, dtype, kind, causal, n, col="fwdbwd_ms", d=None) -> Optional[float]:
    for r in rows:
        if d is not None and r["d"] != d:
            continue
        if (r["device"], r["dtype"], r["kind"], r["causal"], r["N"]) == (device, dtype, kind, causal, n):
            return float(r[col]) if r["status"] == "ok" and r[col] != "" else None
    return None


def _normalise(row: dict) -> dict:
    """Rows as measured or as read back from the CSV (strings) -> typed N and causal."""
    out = dict(row)
    out["N"] = int(out["N"])
    out["d"] = int(out["d"]) if str(out.get("d", "")).strip() else 0
    out["causal"] = out["causal"] if isinstance(out["causal"], bool) else str(out["causal"]).lower() == "true"
    return out


def summarise(rows: list[dict]) -> list[str]:
    """The paper-facing numbers: crossovers against softmax, causal memory growth, cost of the extras, and
    the causal kernels side by side."""
    rows = [_normalise(r) for r in rows]
    lines = []
    for device, dtype, d in sorted({(r["device"], r["dtype"], r["d"]) for r in rows}):
        ns = sorted({r["N"] for r in rows if (r["device"], r["dtype"], r["d"]) == (device, dtype, d)})

        def val(kind, causal, n, col="fwdbwd_ms"):
            return _value(rows, device, dtype, kind, causal, n, col, d=d)

        lines.append(f"[{device} {dtype} d={d}]")
        for causal in (False, True):
            ratios = []
            crossover = None
            for n in ns:
                s = val("softmax", causal, n)
                a = val("astromorphic", causal, n)
                if s and a:
                    ratios.append(f"N={n}: {s / a:.2f}x")
                    if crossover is None and a < s:
                        crossover = n
                    elif a >= s:
                        crossover = None  # must stay faster for every larger N
            label = "causal" if causal else "bidirectional"
            lines.append(f"  {label}: softmax/astromorphic fwd+bwd time {', '.join(ratios) or 'n/a'}")
            lines.append(f"  {label}: astromorphic faster than softmax from N = {crossover or 'none measured'}")
        ran = sorted(
            {
                r.get("kernel") or ""
                for r in rows
                if (r["device"], r["dtype"], r["d"], r["kind"]) == (device, dtype, d, "astromorphic") and r["causal"]
            }
            - {""}
        )
        if ran:
            lines.append(f"  causal astromorphic rows ran the causal kernel(s): {', '.join(ran)}")
        lo, hi = val("astromorphic", True, 1024, "peak_mem_mb"), val("astromorphic", True, 8192, "peak_mem_mb")
        if lo and hi:
            lines.append(f"  causal astromorphic peak memory N=8192 / N=1024: {hi:.1f} / {lo:.1f} MB = {hi / lo:.2f}x")
        by_kernel = []
        for n in ns:
            base = val("astromorphic_torch", True, n)
            cells = []
            for kind in KERNEL_KINDS:
                t = val(kind, True, n)
                if t:
                    speedup = f" ({base / t:.2f}x)" if base and kind != "astromorphic_torch" else ""
                    cells.append(f"{KERNEL_KINDS[kind]} {t:.1f} ms{speedup}")
            soft = val("softmax", True, n)
            if cells and soft:
                cells.append(f"softmax {soft:.1f} ms")
            if len(cells) > 1:
                by_kernel.append(f"N={n}: " + ", ".join(cells))
        if by_kernel:
            lines.append("  causal fwd+bwd by kernel (speed-up over the torch path): " + "; ".join(by_kernel))
        lin, ast = val("linearized", False, 1024), val("astromorphic", False, 1024)
        if lin and ast:
            lines.append(f"  bidirectional astromorphic / linearized fwd+bwd at N=1024: {ast / lin:.2f}x")
        rel = []
        for n in ns:
            dn, sc = val("relpos_dense", False, n), val("relpos_scan", False, n)
            if dn and sc:
                rel.append(f"N={n}: {'scan' if sc < dn else 'dense'} ({dn:.2f} vs {sc:.2f} ms)")
        if rel:
            lines.append(f"  relative position, faster method (dense vs scan fwd+bwd): {', '.join(rel)}")
    return lines


def _progress(total: int):
    quiet = not sys.stderr.isatty() or bool(os.environ.get("CI"))
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, disable=quiet, desc="bench attention", unit="point")


def run_attention(args) -> list[dict]:
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    points = []
    left_out = set()
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device: expected a device that is present, got 'cuda' (CUDA is not available)")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"--device: expected cpu or cuda, got {device!r}")
        dtypes = args.dtype.split(",") if args.dtype else (["float32", "bfloat16"] if device == "cuda" else ["float32"])
        for dtype in dtypes:
            if dtype not in DTYPES:
                raise ValueError(f"--dtype: expected one of {sorted(DTYPES)}, got {dtype!r}")
            for dim in args.dim:
                for kind in args.kinds:
                    if kind.startswith("relpos"):
                        causals = (False,)
                    elif kind in KERNEL_KINDS:  # the kernels exist for the causal layer only
                        causals = tuple(c for c in args.causal if c)
                    else:
                        causals = args.causal
                    for causal in causals:
                        if kind in KERNEL_KINDS:
                            try:
                                causal_kernel_for(kind, causal, device, DTYPES[dtype])
                            except RuntimeError as err:
                                if (device, dtype, kind) not in left_out:
                                    print(
                                        f"bench attention: leaving out {kind} on {device} {dtype}: {err}",
                                        file=sys.stderr,
                                    )
                                left_out.add((device, dtype, kind))
                                continue
                        points.append((device, dtype, dim, kind, causal))
    rows = []
    bar = _progress(len(points) * len(args.n))
    slow = set()  # (device, dtype, d, kind, causal) whose larger N are skipped
    groups = {}
    for device, dtype, dim, kind, causal in points:
        groups.setdefault((device, dtype), []).append((kind, causal, dim))
    for (device, dtype), specs in groups.items():
        for n in args.n:
            live = [spec for spec in specs if (device, dtype, spec[2], spec[0], spec[1]) not in slow]
            measured = measure_points(live, n, args.batch, args.heads, device, DTYPES[dtype], args.repeats, args.chunk)
            by_spec = {(r["kind"], r["causal"], r["d"]): r for r in measured}
            for kind, causal, dim in specs:
                row = by_spec.get((kind, causal, dim))
                if row is None:
                    row = {c: "" for c in COLUMNS}
                    row.update(
                        device=device, dtype=dtype, kind=kind, causal=causal, N=n, B=args.batch, H=args.heads, d=dim
                    )
                    row["status"] = "skipped"
                elif row["status"] != "ok" or row["fwdbwd_ms"] > args.max_seconds * 1e3:
                    slow.add((device, dtype, dim, kind, causal))
                rows.append(row)
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    rows.sort(key=lambda r: (r["device"], r["dtype"], r["d"], ALL_KINDS.index(r["kind"]), r["causal"], r["N"]))
    return rows


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _kind_list(text: str) -> list[str]:
    kinds = [x.strip() for x in text.split(",") if x.strip()]
    bad = [k for k in kinds if k not in ALL_KINDS]
    if not kinds or bad:
        raise argparse.ArgumentTypeError(f"expected kinds among {ALL_KINDS}, got {text!r}")
    return kinds


def _causal_list(text: str) -> list[bool]:
    table = {"false": [False], "true": [True], "both": [False, True]}
    if text.lower() not in table:
        raise argparse.ArgumentTypeError(f"expected false, true or both, got {text!r}")
    return table[text.lower()]


def add_parser(sub) -> None:
    """The ``attention`` sub-command of ``astromorphic bench``."""
    p = sub.add_parser("attention", help="time and peak memory of the attention kinds against N")
    p.add_argument("--out", required=True, help="CSV file to write (atomically)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, or both comma-separated (default cpu)")
    p.add_argument("--n", type=_int_list, default=list(DEFAULT_N), help="sequence lengths (default 128..8192)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=_int_list, default=[64], help="head size d (d_k = d_v); several comma-separated")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtype", default=None, help="float32 and/or bfloat16 (default: float32; CUDA adds bfloat16)")
    p.add_argument(
        "--chunk", type=int, default=DEFAULT_CHUNK, help="chunk length of the causal computations (default automatic)"
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's default)")
    p.add_argument(
        "--kinds",
        type=_kind_list,
        default=list(ALL_KINDS),
        help="subset of the kinds (default all; kernels that cannot run on the device are left out)",
    )
    p.add_argument("--causal", type=_causal_list, default=[False, True], help="false, true or both (default both)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="skip larger N of a kind after a slower point")




def run(args: argparse.Namespace) -> int:
    """``astromorphic bench attention``: the rows to ``--out``, the ratios printed."""
    for name in ("batch", "heads", "repeats", "chunk"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    rows = run_attention(args)
    write_text(args.out, _rows_to_csv(rows))
    for line in summarise(rows):
        print(line)
    print(f"wrote {args.out} ({len(rows)} rows)")
    return 0
