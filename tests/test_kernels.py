"""Fused causal kernels against the PyTorch path: the compiled CPU kernel in this process, the Triton kernel
under the Triton interpreter in one subprocess (TRITON_INTERPRET=1 has to be set before the kernels are
defined), the dispatch, the build (fallback without a compiler, no race between parallel first builds),
and the GPU benchmark script on tiny sizes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from astromorphic.attention.causal import CausalSigmoidRead
from astromorphic import kernels
from astromorphic.attention import astromorphic_attention
from astromorphic.kernels import cpu_causal

ROOT = Path(__file__).resolve().parents[1]
HAVE_CPP = cpu_causal.load() is not None
needs_cpp = pytest.mark.skipif(not HAVE_CPP, reason=f"no compiled CPU kernel: {cpu_causal.why_unavailable()}")
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=2e-5, atol=2e-5)}


def make_inputs(z, n, dk, dv, dtype, seed=0, scale=0.4):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(z, n, dk, generator=gen, dtype=torch.float64).to(dtype)
    k = (torch.rand(z, n, dk, generator=gen, dtype=torch.float64) * scale).to(dtype)
    v = torch.randn(z, n, dv, generator=gen, dtype=torch.float64).to(dtype)
    go = torch.randn(z, n, dv, generator=gen, dtype=torch.float64).to(dtype)
    return q, k, v, go


def torch_read(q, k, v, chunk):
    """The PyTorch reference on head-major inputs."""
    return CausalSigmoidRead.apply(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), chunk).transpose(0, 1)


def value_and_grads(fn, q, k, v, go):
    ins = [t.clone().requires_grad_() for t in (q, k, v)]
    out = fn(*ins)
    return [out.detach(), *torch.autograd.grad(out, ins, go)]


# ------------------------------------------------------------------------------------------------
# compiled CPU kernel


@needs_cpp
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "z,n,dk,dv,chunk,tile",
    [
        (3, 7, 2, 2, 3, None),  # N not a multiple of the chunk, tiny state (generic 8-wide rows)
        (2, 45, 5, 3, 16, None),
        (2, 70, 64, 64, 64, None),  # the benchmark's head size, ragged last chunk
        (1, 100, 64, 64, 16, 16),  # four column tiles: dq and dk summed over tiles
        (2, 33, 24, 40, 8, 32),  # a partial last tile
        (1, 300, 16, 16, 200, None),  # long chunk: several sub-chunks in the backward pass
    ],
)
def test_cpp_matches_torch(dtype, z, n, dk, dv, chunk, tile):
    q, k, v, go = make_inputs(z, n, dk, dv, dtype)
    ref = value_and_grads(lambda a, b, c: torch_read(a, b, c, chunk), q, k, v, go)
    got = value_and_grads(lambda a, b, c: cpu_causal.CppCausalSigmoidRead.apply(a, b, c, chunk, tile), q, k, v, go)
    for name, g, r in zip(("out", "dq", "dk", "dv"), got, ref):
        torch.testing.assert_close(g, r, **TOL[dtype], msg=lambda m, name=name: f"{name}: {m}")


@needs_cpp
def test_cpp_gradcheck_float64():
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 9, 3, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    for chunk, tile in ((1, None), (4, 8), (16, None)):
        assert torch.autograd.gradcheck(
            lambda a, b, c: cpu_causal.CppCausalSigmoidRead.apply(a, b, c, chunk, tile), (q, k, v)
        )


@needs_cpp
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpp_propagates_nan_and_saturates(dtype):
    q, k, v, _ = make_inputs(1, 20, 16, 16, dtype)
    k = k * 1e3  # saturated sigmoids stay finite
    out = cpu_causal.CppCausalSigmoidRead.apply(q, k, v, 8)
    torch.testing.assert_close(out, torch_read(q, k, v, 8), **TOL[dtype])
    k[0, 5, 3] = float("nan")
    out = cpu_causal.CppCausalSigmoidRead.apply(q, k, v, 8)
    assert torch.isfinite(out[0, :5]).all()
    assert torch.isnan(out[0, 5:]).all()  # every later state holds the NaN


@needs_cpp
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 compiler flags")
def test_cpp_portable_build_matches_torch(monkeypatch):
    """The build other processors get: no AVX-512 intrinsics, compiler-vectorised rows (cached per machine)."""
    lib = cpu_causal.build_and_load(
        cpu_causal._compiler(), cpu_causal.cache_dir(), flag_sets=(["-march=native", "-mno-avx512f", "-fopenmp"],)
    )
    monkeypatch.setattr(cpu_causal, "_lib", lib)
    for tile in (16, 64):
        q, k, v, go = make_inputs(2, 40, 32, 64, torch.float32)
        ref = value_and_grads(lambda a, b, c: torch_read(a, b, c, 16), q, k, v, go)
        got = value_and_grads(lambda a, b, c: cpu_causal.CppCausalSigmoidRead.apply(a, b, c, 16, tile), q, k, v, go)
        for g, r in zip(got, ref):
            torch.testing.assert_close(g, r, **TOL[torch.float32])


@needs_cpp
def test_cpp_rejects_bad_inputs_naming_them():
    q, k, v, _ = make_inputs(1, 5, 4, 4, torch.float32)
    apply = cpu_causal.CppCausalSigmoidRead.apply
    with pytest.raises(ValueError, match="^q: .*dtype"):
        apply(q.half(), k.half(), v.half(), 4)
    with pytest.raises(ValueError, match="^k: .*shape"):
        apply(q, k[:, :4], v, 4)
    with pytest.raises(ValueError, match="^v: "):
        apply(q, k, v[:, :3], 4)
    with pytest.raises(ValueError, match="^chunk: "):
        apply(q, k, v, 0)
    with pytest.raises(ValueError, match="^tile: "):
        apply(q, k, v, 4, 12)


def attention_case(dtype, feedback, seed=0, b=2, h=3, n=29, d=8):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, d, generator=gen, dtype=torch.float64).to(dtype) for _ in range(3))
    w = (torch.rand(h, d, n, generator=gen, dtype=torch.float64) + 0.5).to(dtype)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[1, 20:] = False
    mask[0, :3] = False  # a padded prefix too
    kwargs = dict(
        w_astro=w, causal=True, sigmoid=True, feedback=feedback, m_scale=6.0, key_padding_mask=mask, chunk_size=8
    )
    return (q, k, v), kwargs


def run_attention(kernel, inputs, kwargs):
    ins = [t.clone().requires_grad_() for t in inputs]
    with kernels.causal_kernel(kernel):
        out = astromorphic_attention(*ins, **kwargs)
    out.square().sum().backward()
    return [out.detach()] + [t.grad for t in ins]


@needs_cpp
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("feedback", [True, False])
def test_cpp_through_attention_with_padding(dtype, feedback):
    inputs, kwargs = attention_case(dtype, feedback)
    ref = run_attention("torch", inputs, kwargs)
    got = run_attention("cpp", inputs, kwargs)
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, **TOL[dtype])


# ------------------------------------------------------------------------------------------------
# dispatch


def test_dispatch_choice_and_overrides(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    assert kernels.select_causal_kernel(cpu, torch.float32) == ("cpp" if HAVE_CPP else "torch")
    assert kernels.select_causal_kernel(cpu, torch.bfloat16) == "torch"
    monkeypatch.setenv(kernels.ENV_VAR, "torch")
    assert kernels.select_causal_kernel(cpu, torch.float32) == "torch"
    with kernels.causal_kernel("auto"):  # the context manager takes precedence over the variable
        assert kernels.select_causal_kernel(cpu, torch.float32) == ("cpp" if HAVE_CPP else "torch")
    monkeypatch.setenv(kernels.ENV_VAR, "fast")
    with pytest.raises(ValueError, match=kernels.ENV_VAR):
        kernels.select_causal_kernel(cpu, torch.float32)
    with pytest.raises(ValueError, match="causal_kernel"):
        with kernels.causal_kernel("fast"):
            pass
    monkeypatch.setenv(kernels.ENV_VAR, "cpp")
    with pytest.raises(RuntimeError, match="float32 or float64"):
        kernels.select_causal_kernel(cpu, torch.float16)


def test_fallback_without_library_warns_once_and_forced_kernel_raises(monkeypatch):
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    monkeypatch.setattr(cpu_causal, "_tried", True)
    monkeypatch.setattr(cpu_causal, "_lib", None)
    monkeypatch.setattr(cpu_causal, "_reason", "no C++ compiler found (set CXX, or install g++)")
    monkeypatch.setattr(kernels, "_warned", False)
    q, k, v = (torch.randn(1, 2, 6, 4, dtype=torch.float64) for _ in range(3))
    with pytest.warns(RuntimeWarning, match="unavailable, the library could not be built .*no C\\+\\+ compiler"):
        out = astromorphic_attention(q, k, v, causal=True, chunk_size=4)
    with kernels.causal_kernel("torch"):
        torch.testing.assert_close(out, astromorphic_attention(q, k, v, causal=True, chunk_size=4))
    assert kernels._warned
    with pytest.raises(RuntimeError, match="'cpp' was requested .*no C\\+\\+ compiler"):
        with kernels.causal_kernel("cpp"):
            astromorphic_attention(q, k, v, causal=True)
    if os.environ.get("TRITON_INTERPRET") != "1":  # the interpreter would run Triton on the CPU
        with pytest.raises(RuntimeError, match="'triton' was requested .*CUDA"):
            with kernels.causal_kernel("triton"):
                astromorphic_attention(q.float(), k.float(), v.float(), causal=True)


def test_build_fails_cleanly_without_compiler(tmp_path):
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        cpu_causal.build_and_load(None, tmp_path)
    with pytest.raises(RuntimeError, match="could not compile"):
        cpu_causal.build_and_load(str(ROOT / "tests" / "no-such-compiler"), tmp_path)


@needs_cpp
def test_parallel_first_builds_do_not_race(tmp_path):
    """Two processes build into an empty cache at once: both load a library, and one library is left."""
    code = textwrap.dedent("""
        import torch
        from astromorphic.kernels import cpu_causal
        lib = cpu_causal.load()
        assert lib is not None, cpu_causal.why_unavailable()
        q = torch.rand(1, 5, 4, generator=torch.Generator().manual_seed(0))
        out = cpu_causal.CppCausalSigmoidRead.apply(q, q, q, 2)
        print(float(out.sum()))
        """)
    env = {**os.environ, cpu_causal.CACHE_ENV: str(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (stdout, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr
    assert outs[0][0] == outs[1][0]
    assert len(list(tmp_path.glob("causal_sigmoid_*.so"))) == 1
    assert not list(tmp_path.glob(".causal_sigmoid_*"))  # no temporary file left behind


# ------------------------------------------------------------------------------------------------
# Triton kernel, under the interpreter, in one subprocess

TRITON_CASES = [
    # (z, n, dk, dv, chunk): N not a multiple of the chunk, several column tiles, two row tiles
    (2, 13, 4, 3, 4),
    (1, 21, 8, 40, 16),
    (1, 10, 72, 16, 8),
]


def _triton_worker() -> None:
    """Runs in the subprocess: prints one JSON line of max relative errors per check."""
    assert os.environ.get("TRITON_INTERPRET") == "1"
    from astromorphic.kernels.triton_causal import TritonCausalSigmoidRead

    def rel(a, b):
        return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))

    results = {}
    for case in TRITON_CASES:
        z, n, dk, dv, chunk = case
        q, k, v, go = make_inputs(z, n, dk, dv, torch.float32, seed=1)
        ref = value_and_grads(lambda a, b, c: torch_read(a, b, c, chunk), q, k, v, go)
        got = value_and_grads(lambda a, b, c: TritonCausalSigmoidRead.apply(a, b, c, chunk), q, k, v, go)
        results[f"read{case}"] = [rel(g, r) for g, r in zip(got, ref)]
    q, k, v, go = make_inputs(1, 9, 16, 16, torch.float32, seed=2)
    ref = value_and_grads(lambda a, b, c: torch_read(a, b, c, 4), q, k, v, go)
    got = value_and_grads(
        lambda a, b, c: TritonCausalSigmoidRead.apply(a.bfloat16(), b.bfloat16(), c.bfloat16(), 4).float(), q, k, v, go
    )
    results["bfloat16"] = [rel(g, r) for g, r in zip(got, ref)]
    for feedback in (True, False):
        inputs, kwargs = attention_case(torch.float32, feedback, n=19, b=2, h=2)
        ref = run_attention("torch", inputs, kwargs)
        got = run_attention("triton", inputs, kwargs)
        results[f"attention_feedback={feedback}"] = [rel(g, r) for g, r in zip(got, ref)]
    print(json.dumps(results))


@pytest.fixture(scope="module")
def triton_results():
    pytest.importorskip("triton")
    env = {
        **os.environ,
        "TRITON_INTERPRET": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", "import test_kernels; test_kernels._triton_worker()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "check,tol",
    [(f"read{c}", 2e-5) for c in TRITON_CASES]
    + [("bfloat16", 2e-2), ("attention_feedback=True", 2e-5), ("attention_feedback=False", 2e-5)],
)
def test_triton_interpreter_matches_torch(triton_results, check, tol):
    errors = triton_results[check]
    assert len(errors) == 4  # output, dq, dk, dv (or output and the three input gradients)
    assert max(errors) <= tol, (check, errors)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_on_cuda_matches_torch(dtype):
    from astromorphic.kernels.triton_causal import TritonCausalSigmoidRead

    q, k, v, go = (t.cuda() for t in make_inputs(4, 300, 64, 64, torch.float32, seed=4))
    ref = value_and_grads(lambda a, b, c: torch_read(a, b, c, 64), q, k, v, go)
    got = value_and_grads(
        lambda a, b, c: TritonCausalSigmoidRead.apply(a.to(dtype), b.to(dtype), c.to(dtype), 64).float(), q, k, v, go
    )
    tol = 2e-5 if dtype == torch.float32 else 3e-2
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, rtol=tol, atol=tol * r.abs().max().item())


# The paper language model's shapes (Table S3): d_model 768 over 6 heads (head size 128), batch 24 (so
# batch x heads = 144), 512 positions, chunk 16, m = 100 x 768.
PAPER_LM = dict(batch=24, heads=6, n=512, d=128, chunk=16, m_scale=100.0 * 768)


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_on_cuda_paper_lm_shapes(dtype):
    from astromorphic.kernels.triton_causal import TritonCausalSigmoidRead

    z, n, d, chunk = PAPER_LM["batch"] * PAPER_LM["heads"], PAPER_LM["n"], PAPER_LM["d"], PAPER_LM["chunk"]
    q, k, v, go = (t.cuda() for t in make_inputs(z, n, d, d, torch.float32, seed=5, scale=0.05))
    ref = value_and_grads(lambda a, b, c: torch_read(a, b, c, chunk), q, k, v, go)
    got = value_and_grads(
        lambda a, b, c: TritonCausalSigmoidRead.apply(a.to(dtype), b.to(dtype), c.to(dtype), chunk).float(),
        q, k, v, go,
    )  # fmt: skip
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    for name, g, r in zip(("out", "dq", "dk", "dv"), got, ref):
        torch.testing.assert_close(g, r, rtol=tol, atol=tol * r.abs().max().item(), msg=lambda m: f"{name}: {m}")


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_attention_paper_lm_shapes_triton_matches_torch(dtype):
    """The whole causal astromorphic core (W_astro, feedback) at the paper LM's shapes: Triton against the
    PyTorch path in float32, with the inputs in ``dtype``."""
    b, h, n, d = PAPER_LM["batch"], PAPER_LM["heads"], PAPER_LM["n"], PAPER_LM["d"]
    gen = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(b, h, n, d, generator=gen) for _ in range(3))
    w = torch.rand(h, d, n, generator=gen) + 0.5
    kwargs = dict(causal=True, sigmoid=True, feedback=True, m_scale=PAPER_LM["m_scale"], chunk_size=PAPER_LM["chunk"])

    def run(kernel, cast):
        ins = [t.cuda().to(cast).requires_grad_() for t in (q, k, v, w)]
        with kernels.causal_kernel(kernel):
            out = astromorphic_attention(*ins[:3], w_astro=ins[3], **kwargs)
        out.float().square().sum().backward()
        return [out.detach().float()] + [t.grad.float() for t in ins]

    ref = run("torch", torch.float32)
    got = run("triton", dtype)
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    for name, g, r in zip(("out", "dq", "dk", "dv", "dw"), got, ref):
        torch.testing.assert_close(g, r, rtol=tol, atol=tol * r.abs().max().item(), msg=lambda m: f"{name}: {m}")
    assert kernels.selected_causal_kernel("cuda", torch.float32) == "triton"


# ------------------------------------------------------------------------------------------------
# Triton failures: one line naming the fallback; a missing Triton on CUDA warns once


def _failing_kernel(err: BaseException):
    class Kernel:
        def __getitem__(self, grid):
            def launch(*args, **meta):
                raise err

            return launch

    return Kernel()


JIT_FAILURES = [
    RuntimeError("Failed to find C compiler. Please specify via CC environment variable."),
    subprocess.CalledProcessError(
        1, ["gcc", "main.c"], output="main.c:1:10: fatal error: Python.h: No such file or directory\n 1 | #include"
    ),
    PermissionError(13, "Permission denied", "/home/user/.triton/cache/abc"),
]


@pytest.mark.parametrize("err", JIT_FAILURES, ids=lambda e: type(e).__name__)
def test_triton_jit_failure_is_one_line_naming_the_fallback(monkeypatch, err):
    from astromorphic.kernels import triton_causal

    monkeypatch.setattr(triton_causal, "problem", lambda device: None)
    monkeypatch.setattr(triton_causal, "_forward_kernel", _failing_kernel(err), raising=False)
    q, k, v, _ = make_inputs(2, 8, 4, 4, torch.float32)
    with pytest.raises(triton_causal.TritonKernelError) as info:
        triton_causal.TritonCausalSigmoidRead.apply(q, k, v, 4)
    message = str(info.value)
    assert "\n" not in message, message
    assert f"{kernels.ENV_VAR}=torch" in message and type(err).__name__ in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no second traceback below it


def test_triton_oom_is_not_reported_as_a_jit_failure(monkeypatch):
    from astromorphic.kernels import triton_causal

    monkeypatch.setattr(triton_causal, "problem", lambda device: None)
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory")
    monkeypatch.setattr(triton_causal, "_forward_kernel", _failing_kernel(oom), raising=False)
    q, k, v, _ = make_inputs(2, 8, 4, 4, torch.float32)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        triton_causal.TritonCausalSigmoidRead.apply(q, k, v, 4)


def test_missing_triton_on_cuda_warns_once_and_is_reported(monkeypatch):
    from astromorphic.kernels import triton_causal

    cuda_device = torch.device("cuda")  # only the choice is made: no CUDA needed
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    monkeypatch.setattr(triton_causal, "problem", lambda device: "Triton is not importable (ModuleNotFoundError)")
    monkeypatch.setattr(kernels, "_triton_warned", False)
    with pytest.warns(RuntimeWarning, match=f"Triton causal kernel is unavailable on CUDA.*{kernels.ENV_VAR}=torch"):
        assert kernels.select_causal_kernel(cuda_device, torch.bfloat16) == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time: no warning
        assert kernels.select_causal_kernel(cuda_device, torch.bfloat16) == "torch"
        assert kernels.selected_causal_kernel(cuda_device, torch.bfloat16) == "torch"
    monkeypatch.setattr(triton_causal, "problem", lambda device: None)
    assert kernels.selected_causal_kernel("cuda", torch.bfloat16) == "triton"
    assert kernels.selected_causal_kernel("cuda", torch.float64) == "torch"


def test_selected_causal_kernel_follows_the_request_without_warning(monkeypatch):
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    monkeypatch.setattr(kernels, "_warned", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernels.selected_causal_kernel("cpu") == ("cpp" if HAVE_CPP else "torch")
        assert kernels.selected_causal_kernel("cpu", torch.bfloat16) == "torch"
        monkeypatch.setenv(kernels.ENV_VAR, "torch")
        assert kernels.selected_causal_kernel("cpu") == "torch"
    monkeypatch.setenv(kernels.ENV_VAR, "cpp")
    with pytest.raises(RuntimeError, match="'cpp' was requested"):
        kernels.selected_causal_kernel("cpu", torch.float16)


# ------------------------------------------------------------------------------------------------
# GPU benchmark script, on the CPU with tiny sizes


@needs_cpp
def test_gpu_bench_script_runs_tiny_on_cpu(tmp_path):
    pytest.importorskip("triton")
    out = tmp_path / "triton.csv"
    env = {
        **os.environ,
        "TRITON_INTERPRET": "1",
        "DEVICE": "cpu",
        "DTYPES": "float32",
        "NS": "8,16",
        "DIMS": "4",
        "BATCH": "1",
        "HEADS": "2",
        "REPEATS": "1",
        "OUT": str(out),
        "PYTHON": sys.executable,
    }
    proc = subprocess.run(
        ["bash", str(ROOT / "workflow" / "scripts" / "bench_causal_gpu.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    import csv

    rows = list(csv.DictReader(out.open()))
    kinds = {(r["kind"], r["d"], r["N"]) for r in rows}
    for kind in ("softmax", "astromorphic_triton", "astromorphic_torch"):
        for n in ("8", "16"):
            assert (kind, "4", n) in kinds, kinds
    assert all(r["status"] == "ok" and r["causal"] == "True" for r in rows)
    assert {r["kernel"] for r in rows if r["kind"] == "astromorphic_triton"} == {"triton"}
