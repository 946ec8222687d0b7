"""Attention: the functional core against a per-position computation written from Eqs. 9-17 (the references
in _attention_refs.py), causality, gradients and relative position (dense and scan)."""

from __future__ import annotations

import itertools

import pytest
import torch

from astromorphic import attention as A
from astromorphic.attention import (
    AttentionSpec,
    astromorphic_attention,
    build_attention,
    relative_position_activity,
    relative_position_matrix,
)
from astromorphic.attention.causal import CausalSigmoidRead, resolve_chunk
from astromorphic.attention.relpos import exp_decay_product

from _attention_refs import DT, assert_value_error, katharopoulos, naive_attention, naive_relpos, rand_qkv



# ------------------------------------------------------------------------------------------------
# the functional core against the naive computation


SWITCHES = list(itertools.product([True, False], [True, False], [0.25, 1.0], [False, True]))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("sigmoid,feedback,alpha,with_w", SWITCHES)
def test_core_matches_naive(causal, sigmoid, feedback, alpha, with_w):
    q, k, v, w = rand_qkv()
    w = w if with_w else None
    expect = naive_attention(q, k, v, w, alpha, sigmoid, feedback, causal, m_scale=3.0)
    for chunk in (1, 3, 16, None):  # several chunks with a ragged last one, one chunk, automatic
        got = astromorphic_attention(
            q,
            k,
            v,
            w_astro=w,
            alpha=alpha,
            sigmoid=sigmoid,
            feedback=feedback,
            causal=causal,
            m_scale=3.0,
            chunk_size=chunk,
        )
        assert got.shape == (2, 2, 7, 4)
        torch.testing.assert_close(got, expect, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("sigmoid,feedback", [(True, True), (False, True), (True, False), (False, False)])
def test_core_with_padding_matches_naive(causal, sigmoid, feedback):
    q, k, v, w = rand_qkv(n=6)
    mask = torch.tensor([[True, True, True, True, False, False], [True, False, True, True, True, False]])
    expect = naive_attention(q, k, v, w, 0.25, sigmoid, feedback, causal, 2.0, mask)
    got = astromorphic_attention(
        q,
        k,
        v,
        w_astro=w,
        sigmoid=sigmoid,
        feedback=feedback,
        causal=causal,
        m_scale=2.0,
        key_padding_mask=mask,
        chunk_size=4,
    )
    torch.testing.assert_close(got, expect, rtol=1e-6, atol=1e-12)
    # the content of padded tokens does not matter
    k2, v2 = k.clone(), v.clone()
    k2[~mask[:, None, :].expand(2, 2, 6)] = 5.0
    v2[~mask[:, None, :].expand(2, 2, 6)] = -7.0
    got2 = astromorphic_attention(
        q,
        k2,
        v2,
        w_astro=w,
        sigmoid=sigmoid,
        feedback=feedback,
        causal=causal,
        m_scale=2.0,
        key_padding_mask=mask,
        chunk_size=4,
    )
    torch.testing.assert_close(got2, got, rtol=0, atol=1e-12)


def test_fully_padded_prefix_is_finite_and_zero():
    """Nothing written: C = 0 and the count is 0; P = 0 (reciprocal of non-zero entries only)."""
    q, k, v, w = rand_qkv(b=1, n=5)
    mask = torch.tensor([[False, False, True, True, True]])
    for feedback, sigmoid in itertools.product([True, False], [True, False]):
        qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
        out = astromorphic_attention(
            qq, kk, vv, causal=True, key_padding_mask=mask, feedback=feedback, sigmoid=sigmoid, chunk_size=2
        )
        assert torch.isfinite(out).all()
        assert (out[:, :, :2] == 0).all()
        out.sum().backward()
        assert all(torch.isfinite(t.grad).all() for t in (qq, kk, vv))


def test_automatic_chunk_length():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_chunk(None, 4, 64, 64, cpu) == A.CPU_CHUNK
    assert resolve_chunk(7, 4, 64, 64, gpu) == 7
    assert resolve_chunk(None, 4, 64, 64, gpu) == 256  # small states: few, large kernels
    assert resolve_chunk(None, 144, 128, 128, gpu) == 16  # large states: bounded memory
    assert resolve_chunk(None, 1, 2, 2, gpu) == 256


def test_linearized_equals_katharopoulos_over_m():
    q, k, v, _ = rand_qkv(n=9)
    m = 7.0
    for causal in (False, True):
        got = astromorphic_attention(
            q, k, v, alpha=1.0, sigmoid=False, feedback=True, causal=causal, m_scale=m, chunk_size=4
        )
        torch.testing.assert_close(got, katharopoulos(q, k, v, causal) / m, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_linearized_module_equals_katharopoulos(causal):
    torch.manual_seed(0)
    mod = build_attention(AttentionSpec(kind="linearized", alpha=0.5, m_scale=11.0), 8, 2, 16, causal).double()
    assert mod.alpha == 1.0 and not mod.sigmoid and mod.M is None and mod.feedback
    x = torch.randn(2, 10, 8, dtype=DT)
    q, k, v = mod._heads(x, mod.w_q), mod._heads(x, mod.w_k), mod._heads(x, mod.w_v)
    expect = mod.w_o((katharopoulos(q, k, v, causal) / 11.0).transpose(1, 2).reshape(2, 10, 8))
    torch.testing.assert_close(mod(x), expect, rtol=1e-10, atol=1e-12)


def test_half_precision_is_computed_in_float32():
    q, k, v, w = rand_qkv(n=40)
    ref = astromorphic_attention(q.float(), k.float(), v.float(), w_astro=w.float(), causal=True)
    out = astromorphic_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), w_astro=w.bfloat16(), causal=True)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)


# ------------------------------------------------------------------------------------------------
# gradients


def test_gradcheck_causal_sigmoid_function():
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(7, 3, 2, generator=gen, dtype=DT, requires_grad=True) for _ in range(3))
    for chunk in (1, 3, 8):
        assert torch.autograd.gradcheck(lambda a, b, c: CausalSigmoidRead.apply(a, b, c, chunk), (q, k, v))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("sigmoid,feedback", [(True, True), (False, True), (True, False)])
def test_gradcheck_core(causal, sigmoid, feedback):
    q, k, v, w = rand_qkv(b=1, h=2, n=5, dk=2, dv=2)
    mask = torch.tensor([[True, True, True, False, True]])
    inputs = tuple(t.clone().requires_grad_() for t in (q, k, v, w))

    def f(q, k, v, w):
        return astromorphic_attention(
            q,
            k,
            v,
            w_astro=w,
            sigmoid=sigmoid,
            feedback=feedback,
            causal=causal,
            m_scale=2.0,
            key_padding_mask=mask,
            chunk_size=2,
        )

    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("causal", [False, True])
def test_gradients_finite_near_zero(causal):
    for scale, (sigmoid, feedback, alpha, with_w) in itertools.product([0.0, 1e-8], SWITCHES):
        q, k, v, w = rand_qkv(scale=scale, n=6)
        q, k, v = (t.float().requires_grad_() for t in (q, k, v))
        w = w.float().requires_grad_() if with_w else None
        out = astromorphic_attention(
            q, k, v, w_astro=w, sigmoid=sigmoid, feedback=feedback, alpha=alpha, causal=causal, chunk_size=4
        )
        out.square().sum().backward()
        for t in (q, k, v) + ((w,) if with_w else ()):
            assert torch.isfinite(t.grad).all()


@pytest.mark.parametrize("causal,sigmoid", [(False, True), (True, True), (True, False)])
def test_gradients_finite_long_sequence(causal, sigmoid):
    n = 8192
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 1, n, 4).requires_grad_() for _ in range(3))
    M = (torch.randn(1, 4, n) * 0.02).requires_grad_()
    w = relative_position_activity(M, 16.0)
    out = astromorphic_attention(q, k, v, w_astro=w, sigmoid=sigmoid, causal=causal, m_scale=64.0, chunk_size=64)
    out.square().mean().backward()
    for t in (q, k, v, M):
        assert torch.isfinite(t.grad).all()
    assert torch.isfinite(out).all()


# ------------------------------------------------------------------------------------------------
# relative position


@pytest.mark.parametrize("position", ["exp", "linear"])
@pytest.mark.parametrize("n", [1, 5, 16, 37, 300])
def test_relative_position_dense_and_scan_match_naive(position, n):
    gen = torch.Generator().manual_seed(n)
    M = torch.randn(2, 3, n, generator=gen, dtype=DT) * 0.5
    tau = 0.7 if n == 300 else 4.0
    expect = naive_relpos(M, tau, position) if n <= 37 else None
    dense = relative_position_activity(M, tau, position=position, method="dense")
    scan = relative_position_activity(M, tau, position=position, method="scan")
    auto = relative_position_activity(M, tau, position=position)
    assert dense.shape == (2, 3, n)
    if expect is not None:
        torch.testing.assert_close(dense, expect, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(scan, dense, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(auto, dense, rtol=1e-9, atol=1e-12)


def test_exp_scan_has_no_overflow_for_long_short_decay():
    M = torch.randn(1, 2, 4096) * 0.1
    for tau in (0.05, 1.0, 1e4):
        out = exp_decay_product(M, tau)
        assert torch.isfinite(out).all()
    torch.testing.assert_close(
        exp_decay_product(M[..., :600], 3.0), M[..., :600] @ relative_position_matrix(600, 3.0)
    )


def test_relative_position_first_columns_do_not_depend_on_n():
    """D = M P M^T on all L positions of M; n keeps the first n columns (SPEC decision 7)."""
    gen = torch.Generator().manual_seed(5)
    M = torch.randn(2, 3, 40, generator=gen, dtype=DT) * 0.5
    for position in ("exp", "linear"):
        full = naive_relpos(M, 4.0, position)
        for n in (1, 7, 40):
            for method in ("dense", "scan"):
                got = relative_position_activity(M, 4.0, position=position, method=method, n=n)
                torch.testing.assert_close(got, full[..., :n], rtol=1e-9, atol=1e-12)
        # the old construction (D on the first n positions only) differs: the test above can fail
        assert (naive_relpos(M[..., :7], 4.0, position) - full[..., :7]).abs().max() > 1e-6
    for bad in (0, 41, 2.0, True):
        assert_value_error(lambda: relative_position_activity(M, 4.0, n=bad), "n", "[1, 40]")


def test_relative_position_gradcheck():
    M = (torch.randn(1, 2, 21, dtype=DT) * 0.5).requires_grad_()
    for method in ("dense", "scan"):
        assert torch.autograd.gradcheck(lambda m: relative_position_activity(m, 3.0, method=method), (M,))
