"""Attention modules: causality, the kinds behind one interface, input validation, the benchmark command, CUDA
paths and the registry of mechanisms."""

from __future__ import annotations

import csv
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from astromorphic import attention as A
from astromorphic.attention import (
    AttentionSpec,
    astromorphic_attention,
    build_attention,
    relative_position_activity,
    softmax_attention,
)
from astromorphic.attention.causal import CausalSigmoidRead
from astromorphic.attention.functional import row_scale

from _attention_refs import DT, assert_value_error, naive_attention, naive_relpos, phi, rand_qkv



# ------------------------------------------------------------------------------------------------
# modules and causality


def all_specs():
    specs = [AttentionSpec(kind="softmax"), AttentionSpec(kind="linearized", m_scale=5.0), AttentionSpec(kind="none")]
    for nonlin, relpos, feedback in itertools.product([True, False], repeat=3):
        specs.append(
            AttentionSpec(
                kind="astromorphic", nonlinearity=nonlin, relative_position=relpos, feedback=feedback, m_scale=3.0
            )
        )
    specs.append(AttentionSpec(kind="astromorphic", m_scale=3.0, position="linear"))
    return specs


@pytest.mark.parametrize(
    "spec",
    all_specs(),
    ids=lambda s: f"{s.kind}-{int(s.nonlinearity)}{int(s.relative_position)}{int(s.feedback)}-{s.position}",
)
def test_causal_modules_are_strictly_causal(spec):
    torch.manual_seed(0)
    mod = build_attention(spec, 8, 2, 24, causal=True, chunk_size=4).double()
    x = torch.randn(2, 19, 8, dtype=DT)
    base = mod(x)
    assert base.shape == x.shape
    for t in (0, 5, 11, 17):
        x2 = x.clone()
        x2[:, t + 1 :] = torch.randn_like(x2[:, t + 1 :]) * 3
        changed = mod(x2)
        assert (changed[:, : t + 1] - base[:, : t + 1]).abs().max() <= 1e-12
    if spec.kind != "none":
        assert (changed[:, t + 1 :] - base[:, t + 1 :]).abs().max() > 1e-6


def test_leaky_spec_writes_whole_sequence():
    torch.manual_seed(0)
    mod = build_attention(AttentionSpec(kind="astromorphic", m_scale=3.0, leaky=True), 8, 2, 16, causal=True).double()
    assert mod.causal is False
    x = torch.randn(1, 12, 8, dtype=DT)
    x2 = x.clone()
    x2[:, 8:] += 1.0
    assert (mod(x2)[:, :8] - mod(x)[:, :8]).abs().max() > 1e-6


@pytest.mark.parametrize("causal", [False, True])
def test_astromorphic_module_matches_core(causal):
    torch.manual_seed(0)
    spec = AttentionSpec(kind="astromorphic", alpha=0.3, m_scale=4.0, tau=2.5)
    mod = build_attention(spec, 12, 3, 32, causal).double()
    assert tuple(mod.M.shape) == (3, 4, 32)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False
    x = torch.randn(2, 10, 12, dtype=DT)
    q, k, v = mod._heads(x, mod.w_q), mod._heads(x, mod.w_k), mod._heads(x, mod.w_v)
    w = naive_relpos(mod.M.detach(), 2.5)[..., :10]  # D on all max_len positions, the first N columns
    core = naive_attention(q, k, v, w, 0.3, True, True, causal, 4.0, mask)
    expect = mod.w_o(core.transpose(1, 2).reshape(2, 10, 12))
    torch.testing.assert_close(mod(x, mask), expect, rtol=1e-6, atol=1e-10)
    mod.record_stats = True
    mod(x, mask)
    assert set(mod.last_stats) == {"value_sens", "sigmoid_arg_mean", "sigmoid_arg_std"}
    assert all(math.isfinite(v) for v in mod.last_stats.values())


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("feedback", [True, False])
def test_gate_only_core_ignores_values(causal, feedback):
    """value_path=False: H = sigmoid(0) = 1/2 everywhere, g and P unchanged; the output does not see V."""
    q, k, v, w = rand_qkv(n=6)
    mask = torch.tensor([[True, True, True, True, False, False], [True, False, True, True, True, False]])
    kw = dict(feedback=feedback, causal=causal, m_scale=2.0, key_padding_mask=mask, chunk_size=4, value_path=False)
    out = astromorphic_attention(q, k, v, w_astro=w, **kw)
    torch.testing.assert_close(out, naive_attention(q, k, v, w, 0.25, True, feedback, causal, 2.0, mask, False))
    # change V (and W_astro): identical output
    assert torch.equal(astromorphic_attention(q, k, torch.randn_like(v) * 5, w_astro=w * 3, **kw), out)
    assert torch.equal(astromorphic_attention(q, k, v, **kw), out)
    # every value column holds 0.5 * sum_j phi(q_i)_j * P_i, and P is that of the value-path model
    full = astromorphic_attention(q, k, torch.ones_like(v) * 1e-300, w_astro=None, **{**kw, "value_path": True})
    torch.testing.assert_close(out, full, rtol=1e-12, atol=1e-15)
    assert torch.equal(out[..., :1].expand_as(out), out)
    qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
    astromorphic_attention(qq, kk, vv, **kw).sum().backward()
    assert torch.isfinite(qq.grad).all() and vv.grad is None  # V is not in the graph at all
    assert (kk.grad is not None and bool(torch.isfinite(kk.grad).all())) if feedback else kk.grad is None


@pytest.mark.parametrize("causal", [False, True])
def test_no_feedback_normaliser_does_not_see_the_keys(causal):
    """Feedback off: P_i = 1 / (sum_j phi(q_i)_j n_i^alpha), which is 1 / C_i when every phi(k) entry is 1."""
    q, k, _, _ = rand_qkv(n=6)
    mask = torch.tensor([[True, True, False, True, True, True], [True] * 6])
    phi_q = phi(q)
    ones = torch.ones_like(k) * mask[:, None, :, None]
    for m in (None, mask):
        kw = dict(key_padding_mask=m, alpha=0.25, causal=causal)
        p1 = row_scale(phi_q, phi(k), feedback=False, **kw)
        p2 = row_scale(phi_q, phi(k * 3 + 1), feedback=False, **kw)
        assert torch.equal(p1, p2)
    fed = row_scale(phi_q, ones, feedback=True, key_padding_mask=mask, alpha=0.25, causal=causal)
    free = row_scale(phi_q, ones, feedback=False, key_padding_mask=mask, alpha=0.25, causal=causal)
    torch.testing.assert_close(free.expand_as(fed), fed, rtol=1e-12, atol=0)


def test_gate_only_module_has_no_m_and_matches_naive():
    torch.manual_seed(0)
    spec = AttentionSpec(kind="astromorphic", m_scale=3.0, value_path=False)
    for causal in (False, True):
        mod = build_attention(spec, 8, 2, 16, causal).double()
        assert mod.M is None and not mod.value_path and "value_path=False" in repr(mod)
        x = torch.randn(2, 9, 8, dtype=DT)
        q, k, v = mod._heads(x, mod.w_q), mod._heads(x, mod.w_k), mod._heads(x, mod.w_v)
        core = naive_attention(q, k, v, None, 0.25, True, True, causal, 3.0, value_path=False)
        torch.testing.assert_close(mod(x), mod.w_o(core.transpose(1, 2).reshape(2, 9, 8)))
        # W_V does not matter at all
        with torch.no_grad():
            mod.w_v.weight.normal_()
            mod.w_v.bias.normal_()
        torch.testing.assert_close(mod(x), mod.w_o(core.transpose(1, 2).reshape(2, 9, 8)))
        assert all(p.grad is None for p in mod.w_v.parameters())


@pytest.mark.parametrize(
    "spec",
    all_specs() + [AttentionSpec(kind="astromorphic", m_scale=3.0, value_path=False)],
    ids=lambda s: f"{s.kind}-{int(s.nonlinearity)}{int(s.relative_position)}{int(s.feedback)}"
    f"{int(s.value_path)}-{s.position}",
)
def test_causal_modules_are_prefix_consistent(spec):
    """The output at t from x[0..t] alone equals that from the whole window (max_len > every window)."""
    torch.manual_seed(0)
    mod = build_attention(spec, 8, 2, 24, causal=True, chunk_size=4).double()
    x = torch.randn(2, 19, 8, dtype=DT)
    base = mod(x)
    for t in (0, 5, 11, 17):
        assert (mod(x[:, : t + 1]) - base[:, : t + 1]).abs().max() <= 1e-12


def test_leaky_module_is_not_prefix_consistent():
    """The leaky diagnostic writes the whole window first, so a shorter window changes earlier outputs."""
    torch.manual_seed(0)
    mod = build_attention(AttentionSpec(kind="astromorphic", m_scale=3.0, leaky=True), 8, 2, 16, causal=True).double()
    x = torch.randn(1, 12, 8, dtype=DT)
    assert (mod(x[:, :6]) - mod(x)[:, :6]).abs().max() > 1e-6


def test_value_sensitivity_by_hand():
    """One token, d = 1, W_Q = W_K = 0 (phi = 1), W_V = 1: out = sigmoid(v), out(V = 0) = 1/2, so with
    v = ln 3 (sigmoid 3/4) value_sens = (3/4 - 1/2) / (3/4) = 1/3."""
    mod = build_attention(AttentionSpec(kind="astromorphic", relative_position=False, m_scale=1.0), 1, 1, 4, False)
    mod = mod.double()
    with torch.no_grad():
        for lin, weight in ((mod.w_q, 0.0), (mod.w_k, 0.0), (mod.w_v, 1.0), (mod.w_o, 1.0)):
            lin.weight.fill_(weight)
            lin.bias.zero_()
    mod.record_stats = True
    x = torch.full((1, 1, 1), math.log(3.0), dtype=DT)
    torch.testing.assert_close(mod(x), torch.full_like(x, 0.75))
    assert mod.last_stats["value_sens"] == pytest.approx(1 / 3, rel=1e-12)
    # the functional form: padded rows are left out of both norms
    out = torch.tensor([[[[3.0], [100.0]]]])
    zero = torch.tensor([[[[1.0], [0.0]]]])
    assert A.value_sensitivity(out, zero, torch.tensor([[True, False]])) == pytest.approx(2 / 3)
    assert A.value_sensitivity(torch.zeros(1, 1, 2, 1), zero) == 0.0


@pytest.mark.parametrize("causal", [False, True])
def test_value_sensitivity_of_each_kind(causal):
    """Linear in V (softmax, linearized, no sigmoid): exactly 1; gate-only: 0; astro in between, and
    near 0 at a large m (the sigmoid's argument is about 0)."""
    x = torch.randn(2, 10, 8, dtype=DT)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 6:] = False
    specs = {
        "softmax": (AttentionSpec(kind="softmax"), 1.0),
        "linearized": (AttentionSpec(kind="linearized", m_scale=5.0), 1.0),
        "no-nonlin": (AttentionSpec(kind="astromorphic", nonlinearity=False, m_scale=5.0), 1.0),
        "gate-only": (AttentionSpec(kind="astromorphic", m_scale=5.0, value_path=False), 0.0),
    }
    for name, (spec, expect) in specs.items():
        torch.manual_seed(0)
        mod = build_attention(spec, 8, 2, 16, causal).double()
        mod.record_stats = True
        mod(x, None if causal else mask)
        assert mod.last_stats["value_sens"] == pytest.approx(expect, abs=1e-12), name
    sens = []
    for m_scale in (0.5, 1e5):
        torch.manual_seed(0)
        mod = build_attention(AttentionSpec(kind="astromorphic", m_scale=m_scale), 8, 2, 16, causal).double()
        mod.record_stats = True
        mod(x)
        sens.append(mod.last_stats["value_sens"])
        # the probe's V = 0 read (the gate-only form, no state) equals the full read with V = 0
        q, k, v = mod._heads(x, mod.w_q), mod._heads(x, mod.w_k), mod._heads(x, mod.w_v)
        torch.testing.assert_close(
            mod._attend_zero_values(q, k, v, None), mod.attend(q, k, torch.zeros_like(v), None), rtol=1e-12, atol=0
        )
    assert 0.05 < sens[0] < 1 and 0 < sens[1] < 1e-3, sens
    none = build_attention(AttentionSpec(kind="none"), 8, 2, 16, causal)
    none.record_stats = True
    none(x)
    assert none.last_stats == {}


def test_switches_map_to_core_arguments():
    off = build_attention(AttentionSpec(kind="astromorphic", nonlinearity=False, alpha=0.25), 8, 2, 8, False)
    assert not off.sigmoid and off.alpha == 1.0 and off.M is not None
    nofb = build_attention(AttentionSpec(kind="astromorphic", feedback=False, relative_position=False), 8, 2, 8, False)
    assert not nofb.feedback and nofb.M is None and nofb.sigmoid and nofb.alpha == 0.25


def test_no_attention_has_no_weights_and_returns_zeros():
    mod = build_attention(AttentionSpec(kind="none"), 8, 2, 8, causal=True)
    assert sum(p.numel() for p in mod.parameters()) == 0
    x = torch.randn(2, 5, 8)
    assert torch.equal(mod(x), torch.zeros_like(x))


def test_softmax_module_and_padding():
    torch.manual_seed(0)
    mod = build_attention(AttentionSpec(kind="softmax"), 8, 2, 16, causal=False).double()
    x = torch.randn(2, 6, 8, dtype=DT)
    mask = torch.tensor([[True] * 6, [True, True, True, False, False, False]])
    out = mod(x, mask)
    x2 = x.clone()
    x2[1, 3:] = 9.0
    torch.testing.assert_close(mod(x2, mask)[1, :3], out[1, :3], rtol=0, atol=1e-12)
    # a query with no real key at all stays finite
    q = torch.randn(1, 1, 3, 2, dtype=DT)
    out = softmax_attention(q, q, q, causal=True, key_padding_mask=torch.tensor([[False, True, True]]))
    assert torch.isfinite(out).all()


# ------------------------------------------------------------------------------------------------
# bad input


def test_bad_input_raises_value_error_naming_the_argument():
    q, k, v, w = rand_qkv()
    core = astromorphic_attention
    assert_value_error(lambda: core(q[0], k, v), "q", "expected")
    assert_value_error(lambda: core(q, k[:, :, :5], v), "k", "expected")
    assert_value_error(lambda: core(q, k, v[:, :1]), "v", "expected")
    assert_value_error(lambda: core(q, k, v, w_astro=w[..., :3]), "w_astro", "(H, d_k, N)")
    for bad in (0, -1.0, float("nan"), float("inf"), "x"):
        assert_value_error(lambda: core(q, k, v, alpha=bad), "alpha", "> 0")
    assert_value_error(lambda: core(q, k, v, m_scale=0.0), "m_scale", "> 0")
    assert_value_error(lambda: core(q, k, v, chunk_size=0), "chunk_size", "positive")
    for name in ("q", "k", "v"):
        bad = dict(q=q, k=k, v=v)
        bad[name] = bad[name].clone()
        bad[name][0, 0, 0, 0] = float("nan")
        assert_value_error(lambda: core(bad["q"], bad["k"], bad["v"]), name, "finite")
    w_bad = w.clone()
    w_bad[0, 0, 0] = float("inf")
    assert_value_error(lambda: core(q, k, v, w_astro=w_bad), "w_astro", "finite")
    assert_value_error(lambda: core(q, k, v, key_padding_mask=torch.ones(2, 7)), "key_padding_mask", "bool")
    assert_value_error(
        lambda: core(q, k, v, key_padding_mask=torch.ones(2, 6, dtype=torch.bool)), "key_padding_mask", "(B, N)"
    )
    assert_value_error(lambda: relative_position_activity(w, -1.0), "tau", "> 0")
    assert_value_error(lambda: relative_position_activity(w[0], 1.0), "M", "(H, d_k, N)")
    assert_value_error(lambda: relative_position_activity(w, 1.0, position="cosine"), "position")
    w_nan = w.clone()
    w_nan[0, 0, 0] = float("nan")
    assert_value_error(lambda: relative_position_activity(w_nan, 1.0), "M", "finite")


def test_module_passes_non_finite_activations_unless_asked():
    mod = build_attention(AttentionSpec(kind="astromorphic"), 8, 2, 10, causal=True)
    x = torch.randn(1, 6, 8)
    x[0, 2, 0] = float("nan")
    assert torch.isnan(mod(x)).any()  # divergence shows as NaN, for the training loop to detect
    mod.check_finite = True
    assert_value_error(lambda: mod(x), "finite")


def test_module_bad_input():
    for spec in (AttentionSpec(kind="astromorphic"), AttentionSpec(kind="softmax"), AttentionSpec(kind="none")):
        mod = build_attention(spec, 8, 2, 10, causal=True)
        assert_value_error(lambda: mod(torch.randn(1, 11, 8)), "x", "max_len=10")
        assert_value_error(lambda: mod(torch.randn(1, 5, 7)), "x", "d_model=8")
    assert_value_error(lambda: build_attention(AttentionSpec(kind="cosine"), 8, 2, 10, False), "spec.kind")
    assert_value_error(lambda: build_attention(AttentionSpec(kind="softmax"), 8, 3, 10, False), "n_heads")
    assert_value_error(lambda: build_attention(AttentionSpec(kind="astromorphic", alpha=0.0), 8, 2, 10, False), "alpha")


# ------------------------------------------------------------------------------------------------
# benchmark command (smoke test; the measurements themselves are not timed tests)


def test_bench_attention_writes_csv(tmp_path):
    from astromorphic.bench import command as bench_command
    from astromorphic.bench import attention as bench

    out = tmp_path / "bench.csv"
    rc = bench_command.main(
        ["attention", "--out", str(out), "--n", "24", "--batch", "1", "--heads", "2", "--dim", "8", "--repeats", "1"]
    )
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert set(bench.COLUMNS) == set(rows[0])
    kinds = {(r["kind"], r["causal"]) for r in rows}
    for kind in ("softmax", "linearized", "astromorphic"):
        assert (kind, "False") in kinds and (kind, "True") in kinds
    assert {"relpos_dense", "relpos_scan"} <= {r["kind"] for r in rows}
    assert all(r["status"] == "ok" for r in rows)
    assert all(float(r["fwdbwd_ms"]) > 0 and float(r["peak_mem_mb"]) > 0 for r in rows)
    summary = bench.summarise(rows)
    assert any(line.strip().startswith("causal: softmax/astromorphic fwd+bwd time N=24:") for line in summary), summary


# ------------------------------------------------------------------------------------------------
# CUDA (the prefix states use different kernels there); skipped on machines without a GPU

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("sigmoid,feedback", [(True, True), (False, True), (True, False)])
def test_cuda_matches_cpu(causal, sigmoid, feedback):
    q, k, v, w = rand_qkv(b=2, h=3, n=70, dk=8, dv=8)
    mask = torch.ones(2, 70, dtype=torch.bool)
    mask[1, 50:] = False
    kwargs = dict(sigmoid=sigmoid, feedback=feedback, causal=causal, m_scale=5.0, chunk_size=16, key_padding_mask=mask)
    cpu_in = [t.clone().requires_grad_() for t in (q, k, v, w)]
    gpu_in = [t.cuda().requires_grad_() for t in (q, k, v, w)]
    ref = astromorphic_attention(*cpu_in[:3], w_astro=cpu_in[3], **kwargs)
    out = astromorphic_attention(*gpu_in[:3], w_astro=gpu_in[3], **{**kwargs, "key_padding_mask": mask.cuda()})
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-9, atol=1e-12)
    ref.square().sum().backward()
    out.square().sum().backward()
    for a, b in zip(cpu_in, gpu_in):
        torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=1e-9, atol=1e-12)


@cuda
def test_cuda_gradcheck_causal_sigmoid_function():
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(9, 2, 3, generator=gen, dtype=DT).cuda().requires_grad_() for _ in range(3))
    assert torch.autograd.gradcheck(lambda a, b, c: CausalSigmoidRead.apply(a, b, c, 4), (q, k, v))


@cuda
def test_cuda_lm_causal_and_bf16():
    from astromorphic.models import build_model
    from astromorphic.presets import spec_for

    torch.manual_seed(0)
    cfg = {"d_model": 32, "n_layers": 1, "n_heads": 4, "max_len": 64, "dropout": 0.0}
    model = build_model("wikitext2", spec_for("astro", {"m_scale_factor": 1.0}, 32), cfg, {"vocab_size": 50}).cuda()
    tokens = torch.randint(0, 50, (2, 64), device="cuda")
    changed = tokens.clone()
    changed[:, 40:] = (changed[:, 40:] + 7) % 50
    with torch.no_grad():
        model.double()
        assert (model(changed)[:, :40] - model(tokens)[:, :40]).abs().max().item() <= 1e-12
        model.float()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(tokens)
    logits.float().logsumexp(-1).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ------------------------------------------------------------------------------------------------
# the registry of mechanisms: every reader takes its kinds from it


def test_registry_builds_each_kind_and_presets_use_only_registered_kinds():
    from astromorphic import presets
    from astromorphic.bench import attention as bench
    from astromorphic.attention import ATTENTION_KINDS, ATTENTION_REGISTRY, causal_read_kernel

    assert ATTENTION_KINDS == ("softmax", "linearized", "astromorphic", "none")
    for name, kind in ATTENTION_REGISTRY.items():
        module = build_attention(AttentionSpec(kind=name), 8, 2, 16, causal=True)
        assert type(module) is kind.module and module.kind == name
        assert set(kind.spec_fields) <= set(AttentionSpec.__dataclass_fields__)
        if kind.bench_preset:
            assert presets.get_preset(kind.bench_preset).kind == name
    assert {p.kind for p in presets.PRESETS.values()} <= set(ATTENTION_KINDS)
    assert bench.KINDS == ("softmax", "linearized", "astromorphic")
    assert list(bench.KERNEL_KINDS) == ["astromorphic_torch", "astromorphic_cpp", "astromorphic_triton"]
    with pytest.raises(ValueError, match="spec.kind"):
        build_attention(AttentionSpec(kind="sparse"), 8, 2, 16, causal=False)
    cpu = torch.device("cpu")
    assert causal_read_kernel(presets.spec_for("linearized", {"m_scale": 1.0}), cpu) == "torch"
    assert causal_read_kernel(presets.spec_for("astro-no-nonlin", {"m_scale": 1.0}), cpu) == "torch"
    for name in ("vanilla", "no-attention", "astro-leaky", "astro-gate-only"):
        assert causal_read_kernel(presets.spec_for(name, {"m_scale": 1.0}), cpu) is None


@pytest.mark.parametrize("causal", [False, True])
def test_bench_cases_compute_the_presets_cores(causal):
    """The benchmark builds its rows through the presets; they compute the cores it names in its docstring."""
    from astromorphic.bench import attention as bench

    b, h, n, d = 1, 2, 12, 4
    m_scale = 500.0 * h * d
    for kind in bench.KINDS:
        inputs, fn = bench.make_case(kind, causal, n, b, h, d, "cpu", DT, chunk=5)
        q, k, v = inputs[:3]
        if kind == "softmax":
            want = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        elif kind == "linearized":
            want = astromorphic_attention(
                q, k, v, alpha=1.0, sigmoid=False, feedback=True, causal=causal, m_scale=m_scale, chunk_size=5
            )
        else:
            w = relative_position_activity(inputs[3], 16.0)
            want = astromorphic_attention(
                q, k, v, w_astro=w, alpha=0.25, sigmoid=True, causal=causal, m_scale=m_scale, chunk_size=5
            )
        torch.testing.assert_close(fn(*inputs), want, rtol=0, atol=0)
        fn(*inputs).sum().backward()
        assert all(t.grad is not None for t in inputs)
