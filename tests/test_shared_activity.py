"""The layers' relative-position activities computed in one call per forward (``precompute_attention``)
against each layer computing its own: the models' outputs and every parameter's gradient agree within
float32 rtol = atol = 1e-5 and float64 1e-10 (the same sums; the batched products may order them
differently), on the dense and the scan path, with and without padding."""

from __future__ import annotations

import pytest
import torch

from astromorphic import models
from astromorphic.attention import AstromorphicAttention, AttentionSpec, build_attention, precompute_attention
from astromorphic.attention.relpos import ConcatHeads
from astromorphic.models import build_model
from astromorphic.presets import spec_for

ATTN_CFG = {"alpha": 0.25, "m_scale_factor": 0.5, "tau": 4.0, "position": "exp"}
RELPOS_PRESETS = ["astro", "astro-no-nonlin", "astro-no-feedback"]
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def _model(task, preset, dtype, **extra):
    cfg = {"d_model": 16, "n_layers": 3, "n_heads": 2, "ffn_mult": 2, "dropout": 0.0, "max_len": 24}
    if task == "cifar10":
        cfg.update(patch=2, stem_channels=4, image_size=8, max_len=16)
    cfg.update(extra)
    info = {"vocab_size": 50, "n_classes": 3, "pad_id": 0} if task == "imdb" else {"n_classes": 10}
    torch.manual_seed(0)
    model = build_model(task, spec_for(preset, ATTN_CFG, cfg["d_model"]), cfg, info).to(dtype)
    with torch.no_grad():  # an M far from its small initial values: W_astro varies over positions and heads
        for block in model.blocks:
            block.attn.M.mul_(40.0)
    model.check_values = False
    return model


def _run(model, inputs, shared: bool, monkeypatch):
    """Logits and the gradients of every parameter, with the shared activity or with each layer's own."""
    with monkeypatch.context() as patch:
        if not shared:
            patch.setattr(models, "precompute_attention", lambda modules, n: [None] * len(modules))
        model.zero_grad(set_to_none=True)
        logits = model(*inputs)
        weights = torch.linspace(-1.0, 2.0, logits.numel(), dtype=logits.dtype).view_as(logits)
        (logits * weights).sum().backward()
    return logits.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _assert_paths_agree(model, inputs, dtype, monkeypatch):
    n = inputs[0].shape[1] if inputs[0].dim() == 2 else model.n_tokens
    shared = precompute_attention([block.attn for block in model.blocks], n)
    assert all(rows is not None for rows in shared)  # every layer takes the batched path
    got, got_grads = _run(model, inputs, True, monkeypatch)
    ref, ref_grads = _run(model, inputs, False, monkeypatch)
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(got, ref, rtol=tol, atol=tol)
    assert got_grads.keys() == ref_grads.keys() and any(".M" in name for name in got_grads)
    for name, grad in got_grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=tol, atol=tol, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("preset", RELPOS_PRESETS)
def test_vision_classifier_shared_activity_matches_per_layer(preset, dtype, monkeypatch):
    model = _model("cifar10", preset, dtype)
    _assert_paths_agree(model, (torch.randn(2, 3, 8, 8, dtype=dtype),), dtype, monkeypatch)


@pytest.mark.parametrize("max_len", [24, 300])  # dense P, and the scan above DENSE_MAX_N on the CPU (256)
@pytest.mark.parametrize("preset", RELPOS_PRESETS)
def test_text_classifier_shared_activity_matches_per_layer(preset, max_len, monkeypatch):
    model = _model("imdb", preset, torch.float64, max_len=max_len)
    tokens = torch.randint(1, 50, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[1, 12:] = False
    _assert_paths_agree(model, (tokens, mask), torch.float64, monkeypatch)


def test_layers_share_one_decay_matrix():
    """The layers' P (Eq. 12) are equal, so one of them serves the whole stack."""
    model = _model("cifar10", "astro", torch.float32)
    decays = [block.attn.decay for block in model.blocks]
    assert all(torch.equal(decay, decays[0]) for decay in decays[1:])


def _module(tau=4.0, max_len=8, kind="astromorphic", causal=False):
    return build_attention(AttentionSpec(kind=kind, m_scale=3.0, tau=tau), 8, 2, max_len, causal)


def test_what_is_shared():
    """Modules with the same P and scale share one call; a different tau, max_len, kind, a causal module,
    the probe and the checked mode compute their own (None)."""
    torch.manual_seed(0)
    a, b, c = _module(), _module(), _module()
    others = [_module(tau=2.0), _module(max_len=9), _module(kind="softmax"), _module(kind="none"), _module(causal=True)]
    probed, checked = _module(), _module()
    probed.record_stats, checked.check_finite = True, True
    shared = precompute_attention([a, others[0], b, *others[1:], c, probed, checked], 6)
    assert [rows is None for rows in shared] == [False, True, False] + [True] * 4 + [False, True, True]
    for module, rows in zip((a, b, c), (shared[0], shared[2], shared[7])):
        assert isinstance(module, AstromorphicAttention) and rows.shape == (6, 2, 4)
        torch.testing.assert_close(rows, module.position_rows(module.M, 6), rtol=1e-6, atol=1e-6)
    assert precompute_attention([a], 6) == [None]  # one module alone: nothing to share
    assert precompute_attention([a, b], 9) == [None, None]  # longer than max_len: the module raises its error


def test_probe_and_checked_mode_keep_the_outputs():
    model = _model("cifar10", "astro", torch.float64).eval()
    images = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    ref = model(images)
    model.set_probe(True)
    torch.testing.assert_close(model(images), ref, rtol=1e-10, atol=1e-10)
    assert all("sigmoid_arg_mean" in layer for layer in model.attention_probe())
    model.set_probe(False)
    for block in model.blocks:
        block.attn.check_finite = True
    torch.testing.assert_close(model(images), ref, rtol=1e-10, atol=1e-10)


def test_concat_heads_backward_splits():
    ms = [torch.randn(2, 3, 4, requires_grad=True), torch.randn(1, 3, 4, requires_grad=True)]
    out = ConcatHeads.apply(*ms)
    assert torch.equal(out, torch.cat(ms))
    grad = torch.randn_like(out)
    out.backward(grad)
    assert torch.equal(ms[0].grad, grad[:2]) and torch.equal(ms[1].grad, grad[2:])
