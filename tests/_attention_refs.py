"""Naive references of the attention tests, written position by position from the paper's equations."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

DT = torch.float64


def phi(x):
    return F.elu(x) + 1


def naive_attention(q, k, v, w_astro, alpha, sigmoid, feedback, causal, m_scale, mask=None, value_path=True):
    """Eqs. 9-17 for every (batch, head, query i) separately, with explicit sums over the written tokens.

    Without feedback P_i = 1 / (sum_j phi(q_i)_j * n_i ** alpha) (SPEC decision 8, docs/decisions.md);
    without the value path the sigmoid's argument is 0 (SPEC decision 9)."""
    b_, h_, n, dk = q.shape
    dv = v.shape[-1]
    out = torch.zeros(b_, h_, n, dv, dtype=q.dtype)
    for b, h, i in itertools.product(range(b_), range(h_), range(n)):
        written = [s for s in range(n if not causal else i + 1) if mask is None or bool(mask[b, s])]
        hebb = torch.zeros(dk, dv, dtype=q.dtype)  # phi(K)^T V + W_astro V over the written tokens
        presyn = torch.zeros(dk, dtype=q.dtype)  # sum of phi(k_s)
        for s in written:
            key = phi(k[b, h, s])
            if w_astro is not None:
                hebb += torch.outer(key + w_astro[h, :, s], v[b, h, s])
            else:
                hebb += torch.outer(key, v[b, h, s])
            presyn += key
        if not value_path:
            hebb = torch.zeros_like(hebb)
        weight = torch.sigmoid(hebb / m_scale) if sigmoid else hebb / m_scale  # Eq. 11
        read = phi(q[b, h, i]) @ weight
        if feedback:
            g = presyn**alpha  # Eq. 14
            calcium = float((phi(q[b, h, i]) @ g).detach())  # Eq. 15
            p = 1.0 / calcium if calcium != 0 else 0.0  # Eq. 16
        else:  # C_i as if every entry of phi(k) were 1
            p = 1.0 / float(phi(q[b, h, i]).sum().detach() * len(written) ** alpha) if written else 0.0
        out[b, h, i] = p * read  # Eq. 17 without the residual
    return out


def naive_relpos(M, tau, position="exp"):
    h_, dk, n = M.shape
    P = torch.empty(n, n, dtype=M.dtype)
    for i in range(n):
        for j in range(n):
            P[i, j] = math.exp(-abs(i - j) / tau) if position == "exp" else abs(i - j) / n
    D = M @ P @ M.transpose(-1, -2)
    return phi(M.transpose(-1, -2) @ D).transpose(-1, -2)


def katharopoulos(q, k, v, causal):
    """Linear attention of Katharopoulos et al. with phi = elu + 1, in the explicit quadratic form."""
    scores = phi(q) @ phi(k).transpose(-1, -2)
    if causal:
        scores = scores.tril()
    return (scores @ v) / scores.sum(-1, keepdim=True)


def rand_qkv(b=2, h=2, n=7, dk=3, dv=4, scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, n, dk, generator=gen, dtype=DT) * scale
    k = torch.randn(b, h, n, dk, generator=gen, dtype=DT) * scale
    v = torch.randn(b, h, n, dv, generator=gen, dtype=DT) * scale
    w = torch.rand(h, dk, n, generator=gen, dtype=DT) + 0.5
    return q, k, v, w




def assert_value_error(fn, *words):
    with pytest.raises(ValueError) as info:
        fn()
    text = str(info.value)
    for word in words:
        assert word in text, text
