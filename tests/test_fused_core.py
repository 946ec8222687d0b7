"""The hand-written bidirectional core (attention.fused) and the dense relative-position activity against
the elementary-operator reference (functional._core, autograd) and torch.autograd.gradcheck.

Tolerance: float32 outputs and gradients within rtol = atol = 1e-5 of the reference, float64 within 1e-10
(the two compute the same sums in a different order)."""

from __future__ import annotations

import itertools

import pytest
import torch

from astromorphic.attention import AttentionSpec, build_attention, relative_position_activity, relative_position_matrix
from astromorphic.attention.functional import _core, astromorphic_attention
from astromorphic.attention.fused import CoreSwitches, bidirectional_core
from astromorphic.attention.relpos import DenseActivity

# sigmoid, feedback, alpha, with W_astro, value path
SWITCHES = [s for s in itertools.product([True, False], [True, False], [0.25, 1.0], [True, False], [True, False])]
SWITCHES = [s for s in SWITCHES if s[4] or not s[3]]  # without the value path there is no W_astro
MASK = torch.tensor([[True, True, False, True, True], [False] * 5])  # the second sequence fully padded


def _inputs(dtype, b=2, h=2, n=5, dk=3, dv=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(b, h, n, dk, generator=gen, dtype=dtype) for _ in range(2))
    v = torch.randn(b, h, n, dv, generator=gen, dtype=dtype)
    w = torch.rand(h, dk, n, generator=gen, dtype=dtype) + 0.5  # W_astro = phi(...) > 0
    return q, k, v, w


def _grads(out, inputs):
    weights = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype).view_as(out)
    return torch.autograd.grad((out * weights).sum(), inputs, allow_unused=True)


@pytest.mark.parametrize("tokens", ["bhn", "bnh"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("sigmoid,feedback,alpha,with_w,value_path", SWITCHES)
def test_gradcheck_fused_core(tokens, masked, sigmoid, feedback, alpha, with_w, value_path):
    q, k, v, w = (t.requires_grad_() for t in _inputs(torch.float64, b=2, h=2, n=5, dk=2, dv=2))
    sw = CoreSwitches(tokens, 3.0, alpha, sigmoid, feedback, value_path)
    order = (0, 1, 2, 3) if tokens == "bhn" else (0, 2, 1, 3)
    real = None
    if masked:
        real = MASK.to(torch.float64)[:, None, :, None] if tokens == "bhn" else MASK.to(torch.float64)[:, :, None, None]

    def f(q, k, v, w):
        rows = w.transpose(-1, -2) if tokens == "bhn" else w.permute(2, 0, 1)
        out = bidirectional_core(
            q.permute(order), k.permute(order), v.permute(order), rows if with_w else None, real, sw
        )
        return out.permute(order)

    assert torch.autograd.gradcheck(f, (q, k, v, w))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("sigmoid,feedback,alpha,with_w,value_path", SWITCHES)
def test_fused_core_matches_the_reference(dtype, tol, masked, sigmoid, feedback, alpha, with_w, value_path):
    q, k, v, w = (t.requires_grad_() for t in _inputs(dtype, b=2, h=3, n=5, dk=4, dv=6, seed=1))
    w_astro = w if with_w else None
    mask = MASK if masked else None
    ref = _core(q, k, v, w_astro, alpha, sigmoid, feedback, False, 7.0, mask, None, value_path)
    kw = dict(w_astro=w_astro, alpha=alpha, sigmoid=sigmoid, feedback=feedback, m_scale=7.0, key_padding_mask=mask)
    got = astromorphic_attention(q, k, v, value_path=value_path, **kw)
    torch.testing.assert_close(got, ref, rtol=tol, atol=tol)
    for g, r in zip(_grads(got, (q, k, v, w)), _grads(ref, (q, k, v, w))):
        assert (g is None) == (r is None)  # the same inputs reach the output
        if r is not None:
            torch.testing.assert_close(g, r, rtol=tol, atol=tol)


def test_fully_padded_sequence_and_zero_rules():
    """A fully padded sequence: sum phi(k) = 0, g = 0 ** alpha = 0, C = 0, P = 0: output 0, gradients 0."""
    q, k, v, w = (t.float().requires_grad_() for t in _inputs(torch.float64, seed=2))
    out = astromorphic_attention(q, k, v, w_astro=w, m_scale=2.0, key_padding_mask=MASK)
    assert torch.equal(out[1], torch.zeros_like(out[1])) and out[0].abs().min() > 0
    gq, gk, gv, gw = _grads(out, (q, k, v, w))
    for g in (gq, gk, gv, gw):
        assert torch.isfinite(g).all()
    assert not gq[1].any() and not gk[1].any() and not gv[1].any()
    assert not gk[0][:, 2].any() and not gv[0][:, 2].any()  # the padded position of the first sequence


SPECS = {
    "astro": AttentionSpec(kind="astromorphic", m_scale=40.0, tau=3.0),
    "linearized": AttentionSpec(kind="linearized", m_scale=40.0),
    "astro-no-relpos": AttentionSpec(kind="astromorphic", relative_position=False, m_scale=40.0),
    "astro-no-nonlin": AttentionSpec(kind="astromorphic", nonlinearity=False, m_scale=40.0, position="linear"),
    "astro-no-feedback": AttentionSpec(kind="astromorphic", feedback=False, m_scale=40.0),
    "astro-gate-only": AttentionSpec(kind="astromorphic", value_path=False, relative_position=False),
}


def _reference_forward(mod, x, mask):
    """The module's forward from elementary operators: heads split by transposes, W_astro through the scan
    (autograd, no P), the core of functional._core."""
    b, n, _ = x.shape
    q, k, v = (mod._heads(x, proj) for proj in (mod.w_q, mod.w_k, mod.w_v))
    w = None if mod.M is None else relative_position_activity(mod.M, mod.tau, position=mod.position, method="scan", n=n)
    core = _core(q, k, v, w, mod.alpha, mod.sigmoid, mod.feedback, False, mod.m_scale, mask, None, mod.value_path)
    return mod.w_o(core.transpose(1, 2).reshape(b, n, mod.d_model))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("name", list(SPECS))
def test_module_fast_path_matches_the_general_path(name, dtype, tol):
    """The module's bidirectional forward (no transposes, P as a buffer, the fused core) against the
    elementary-operator reference: output and the gradients of every parameter, with a window shorter than
    max_len, with and without padding."""
    torch.manual_seed(0)
    mod = build_attention(SPECS[name], 16, 4, 12, causal=False).to(dtype)
    x = torch.randn(2, 9, 16, dtype=dtype)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    for m in (None, mask):
        got = mod(x, m)
        ref = _reference_forward(mod, x, m)
        torch.testing.assert_close(got, ref, rtol=tol, atol=tol)
        params = [p for p in mod.parameters()]
        for g, r in zip(_grads(got, params), _grads(ref, params)):
            assert (g is None) == (r is None)
            if r is not None:
                torch.testing.assert_close(g, r, rtol=tol, atol=tol)


def test_decay_buffer_is_not_in_the_state_dict_and_follows_casts():
    mod = build_attention(SPECS["astro"], 16, 4, 12, causal=False)
    assert "decay" not in mod.state_dict() and set(mod.state_dict()) >= {"M", "w_q.weight"}
    assert mod.decay.dtype == torch.float32
    torch.testing.assert_close(mod.decay, relative_position_matrix(12, 3.0), rtol=0, atol=0)
    mod.double()
    assert mod.decay.dtype == torch.float64  # a fresh float64 P, not the float32 one widened
    assert torch.equal(mod.decay, relative_position_matrix(12, 3.0, dtype=torch.float64))
    assert build_attention(SPECS["astro-no-relpos"], 16, 4, 12, causal=False).decay is None


@pytest.mark.parametrize("position", ["exp", "linear"])
@pytest.mark.parametrize("axes", ["hjn", "hnj", "nhj"])
@pytest.mark.parametrize("n", [7, 4])
def test_gradcheck_dense_activity(position, axes, n):
    gen = torch.Generator().manual_seed(3)
    M = torch.randn(2, 3, 7, generator=gen, dtype=torch.float64).requires_grad_()
    decay = relative_position_matrix(7, 2.0, position, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda m: DenseActivity.apply(m, decay, n, 0.5, axes), (M,))


@pytest.mark.parametrize("position", ["exp", "linear"])
def test_dense_activity_gradient_matches_the_scan(position):
    """The dense Function's gradient against autograd through the scan (no P formed)."""
    M = (torch.randn(3, 4, 40, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 0.3).requires_grad_()
    dense = relative_position_activity(M, 5.0, position=position, method="dense", n=30)
    scan = relative_position_activity(M, 5.0, position=position, method="scan", n=30)
    torch.testing.assert_close(dense, scan, rtol=1e-10, atol=1e-12)
    (gd,), (gs,) = _grads(dense, (M,)), _grads(scan, (M,))
    torch.testing.assert_close(gd, gs, rtol=1e-10, atol=1e-12)
