"""The task models (tiny sizes), LM causality, probing, input validation, and the preset registry."""

from __future__ import annotations

import math

import pytest
import torch

from astromorphic.attention import AttentionSpec
from astromorphic.models import (
    DecoderLM,
    TextClassifier,
    VisionClassifier,
    build_model,
    resolve_model_cfg,
)
from astromorphic.presets import MECHANISMS, PRESETS, get_preset, preset_names, spec_for, table2_rows

ATTN_CFG = {"alpha": 0.25, "m_scale_factor": 0.5, "tau": 4.0, "position": "exp"}
TINY = {"d_model": 16, "n_layers": 2, "n_heads": 2, "ffn_mult": 2, "dropout": 0.1, "max_len": 24, "chunk_size": 4}


def tiny(task, **extra):
    cfg = dict(TINY)
    if task == "cifar10":
        cfg.update(patch=2, stem_channels=4, image_size=8, max_len=16)
    if task == "wikitext2":
        cfg.update(n_layers=1)
    cfg.update(extra)
    return cfg


def make(task, preset, **extra):
    spec = spec_for(preset, ATTN_CFG, tiny(task)["d_model"])
    info = {
        "imdb": {"vocab_size": 50, "n_classes": 2, "pad_id": 0},
        "cifar10": {"n_classes": 10},
        "wikitext2": {"vocab_size": 40},
    }
    return build_model(task, spec, tiny(task, **extra), info[task])


# ------------------------------------------------------------------------------------------------
# forward / backward for every task and preset


@pytest.mark.parametrize("preset", preset_names("imdb"))
def test_text_classifier(preset):
    torch.manual_seed(0)
    model = make("imdb", preset)
    assert isinstance(model, TextClassifier)
    tokens = torch.randint(1, 50, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[1, 12:] = False
    tokens[1, 12:] = 0
    logits = model(tokens, mask)
    assert logits.shape == (3, 2)
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # padded positions do not change the prediction
    model.eval()
    tokens2 = tokens.clone()
    tokens2[1, 12:] = torch.randint(1, 50, (8,))
    torch.testing.assert_close(model(tokens2, mask), model(tokens, mask), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preset", preset_names("cifar10"))
def test_vision_classifier(preset):
    torch.manual_seed(0)
    model = make("cifar10", preset)
    assert isinstance(model, VisionClassifier) and model.n_tokens == 16
    logits = model(torch.randn(2, 3, 8, 8))
    assert logits.shape == (2, 10)
    logits.sum().backward()


@pytest.mark.parametrize("preset", preset_names("wikitext2"))
def test_decoder_lm(preset):
    torch.manual_seed(0)
    model = make("wikitext2", preset)
    assert isinstance(model, DecoderLM)
    logits = model(torch.randint(0, 40, (2, 24)))
    assert logits.shape == (2, 24, 40)
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.randint(0, 40, (48,))).backward()
    assert model.lm_head.weight is model.embed.weight  # tied by default


# ------------------------------------------------------------------------------------------------
# causality of the LM


@pytest.mark.parametrize("preset", [p for p in preset_names("wikitext2") if p != "astro-leaky"] + ["linear-position"])
def test_lm_is_strictly_causal(preset):
    torch.manual_seed(0)
    if preset == "linear-position":
        spec = spec_for("astro", {**ATTN_CFG, "position": "linear"}, 16)
        model = build_model("wikitext2", spec, tiny("wikitext2", n_layers=2), {"vocab_size": 40})
    else:
        model = make("wikitext2", preset, n_layers=2)
    model = model.double().eval()
    tokens = torch.randint(0, 40, (2, 23))
    base = model(tokens)
    for t in (0, 3, 9, 21):
        changed = tokens.clone()
        changed[:, t + 1 :] = torch.randint(0, 40, changed[:, t + 1 :].shape)
        out = model(changed)
        assert (out[:, : t + 1] - base[:, : t + 1]).abs().max().item() <= 1e-12


def test_leaky_lm_leaks():
    torch.manual_seed(0)
    model = make("wikitext2", "astro-leaky").double().eval()
    tokens = torch.randint(0, 40, (1, 20))
    changed = tokens.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 40
    assert (model(changed)[:, :10] - model(tokens)[:, :10]).abs().max() > 1e-9


# ------------------------------------------------------------------------------------------------
# probing


@pytest.mark.parametrize("preset", ["astro", "vanilla", "no-attention", "linearized", "astro-gate-only"])
def test_probe(preset):
    torch.manual_seed(0)
    model = make("imdb", preset)
    tokens = torch.randint(1, 50, (2, 10))
    model(tokens)
    assert model.attention_probe() == [{}, {}]
    model.set_probe(True)
    model(tokens)
    probe = model.attention_probe()
    assert len(probe) == 2
    for layer in probe:
        assert math.isfinite(layer["attn_ratio"]) and layer["attn_ratio"] >= 0
        if preset in ("astro", "linearized", "astro-gate-only"):
            assert {"sigmoid_arg_mean", "sigmoid_arg_std"} <= set(layer)
        if preset == "no-attention":
            assert "value_sens" not in layer
        else:
            assert 0.0 <= layer["value_sens"] <= 1.0 + 1e-6
    if preset == "no-attention":
        assert all(layer["attn_ratio"] == 0.0 for layer in probe)
    if preset in ("vanilla", "linearized"):  # linear in V
        assert all(layer["value_sens"] == pytest.approx(1.0, abs=1e-6) for layer in probe)
    if preset == "astro-gate-only":
        assert all(layer["value_sens"] == 0.0 and layer["sigmoid_arg_std"] == 0.0 for layer in probe)
    model.set_probe(False)
    assert model.attention_probe() == [{}, {}]


# ------------------------------------------------------------------------------------------------
# configuration and bad input


def test_paper_defaults():
    MODEL_DEFAULTS = {task: resolve_model_cfg(task, {}) for task in ("imdb", "cifar10", "wikitext2")}
    assert {k: MODEL_DEFAULTS["imdb"][k] for k in ("d_model", "n_layers", "n_heads", "max_len")} == {
        "d_model": 128,
        "n_layers": 1,
        "n_heads": 4,
        "max_len": 400,
    }
    assert {k: MODEL_DEFAULTS["cifar10"][k] for k in ("d_model", "n_layers", "n_heads", "patch", "max_len")} == {
        "d_model": 256,
        "n_layers": 8,
        "n_heads": 8,
        "patch": 2,
        "max_len": 256,
    }
    assert {k: MODEL_DEFAULTS["wikitext2"][k] for k in ("d_model", "n_layers", "n_heads", "max_len")} == {
        "d_model": 768,
        "n_layers": 1,
        "n_heads": 6,
        "max_len": 512,
    }
    model = build_model("cifar10", spec_for("astro", {"m_scale_factor": 500}, 256), {}, {"n_classes": 10})
    assert model.n_tokens == 256 and len(model.blocks) == 8
    assert tuple(model.blocks[0].attn.M.shape) == (8, 32, 256)
    assert model.blocks[0].attn.m_scale == 500 * 256


def test_glove_embedding_is_projected_and_frozen():
    vectors = torch.randn(50, 300)
    spec = spec_for("linearized", ATTN_CFG, 16)
    model = build_model(
        "imdb", spec, tiny("imdb"), {"vocab_size": 50, "n_classes": 2, "pad_id": 0, "embedding": vectors}
    )
    assert not model.embed.weight.requires_grad
    assert model.embed_proj.in_features == 300 and model.embed_proj.out_features == 16
    assert model(torch.randint(0, 50, (2, 8))).shape == (2, 2)


def assert_value_error(fn, *words):
    with pytest.raises(ValueError) as info:
        fn()
    for word in words:
        assert word in str(info.value), str(info.value)


def test_bad_input():
    text, lm, vision = make("imdb", "astro"), make("wikitext2", "astro"), make("cifar10", "vanilla")
    assert_value_error(lambda: text(torch.randint(0, 50, (2, 25))), "tokens", "max_len=24")
    assert_value_error(lambda: lm(torch.randint(0, 40, (2, 25))), "tokens", "max_len=24")
    assert_value_error(lambda: lm(torch.randint(0, 40, (2, 5)).float()), "tokens", "int64")
    assert_value_error(lambda: lm(torch.full((1, 5), 40)), "tokens", "vocab_size=40")
    assert_value_error(
        lambda: text(torch.randint(0, 50, (2, 5)), torch.ones(2, 4, dtype=torch.bool)), "key_padding_mask"
    )
    assert_value_error(lambda: vision(torch.randn(2, 3, 9, 9)), "images", "(B, 3, 8, 8)")
    bad = torch.randn(1, 3, 8, 8)
    bad[0, 0, 0, 0] = float("nan")
    assert_value_error(lambda: vision(bad), "images", "finite")
    spec = spec_for("astro", ATTN_CFG, 16)
    assert_value_error(lambda: build_model("mnist", spec, {}, {}), "task")
    assert_value_error(
        lambda: build_model("imdb", spec, {"d_modle": 8}, {"vocab_size": 5, "n_classes": 2}), "model_cfg", "d_modle"
    )
    assert_value_error(
        lambda: build_model("imdb", spec, {"d_model": 10, "n_heads": 4}, {"vocab_size": 5, "n_classes": 2}), "n_heads"
    )
    assert_value_error(lambda: build_model("imdb", spec, tiny("imdb"), {"n_classes": 2}), "vocab_size")
    assert_value_error(lambda: build_model("cifar10", spec, tiny("cifar10", max_len=8), {}), "max_len")
    assert_value_error(lambda: resolve_model_cfg("imdb", {"dropout": 1.5}), "dropout")


# ------------------------------------------------------------------------------------------------
# presets


def test_preset_registry():
    assert list(PRESETS) == [
        "vanilla",
        "linearized",
        "astro",
        "astro-no-relpos",
        "astro-no-nonlin",
        "astro-no-feedback",
        "astro-leaky",
        "astro-gate-only",
        "no-attention",
    ]
    assert preset_names("imdb") == [p for p in PRESETS if p != "astro-leaky"]
    assert "astro-leaky" in preset_names("wikitext2")
    with pytest.raises(ValueError) as info:
        get_preset("astro-fast")
    assert "astro-fast" in str(info.value) and "vanilla" in str(info.value)
    with pytest.raises(ValueError):
        spec_for("nope", ATTN_CFG, 16)


def test_spec_resolution():
    cfg = {"alpha": 0.3, "m_scale_factor": 500, "tau": 8.0, "position": "linear"}
    astro = spec_for("astro", cfg, 128)
    assert astro == AttentionSpec("astromorphic", True, True, True, 0.3, 64000.0, 8.0, "linear", False)
    assert spec_for("astro", {**cfg, "m_scale": 7.0}, 128).m_scale == 7.0
    lin = spec_for("linearized", cfg, 128)
    assert (lin.kind, lin.nonlinearity, lin.relative_position, lin.feedback, lin.alpha) == (
        "linearized",
        False,
        False,
        True,
        1.0,
    )
    nonlin = spec_for("astro-no-nonlin", cfg, 128)
    assert (nonlin.nonlinearity, nonlin.alpha, nonlin.relative_position, nonlin.feedback) == (False, 1.0, True, True)
    assert spec_for("astro-no-relpos", cfg, 128).relative_position is False
    assert spec_for("astro-no-feedback", cfg, 128).feedback is False
    assert spec_for("astro-leaky", cfg, 128).leaky is True
    gate = spec_for("astro-gate-only", cfg, 128)
    assert (gate.kind, gate.value_path, gate.nonlinearity, gate.alpha, gate.feedback, gate.relative_position) == (
        "astromorphic",
        False,
        True,
        0.3,
        True,
        False,
    )
    assert all(spec_for(p, cfg, 128).value_path for p in PRESETS if p != "astro-gate-only")
    assert spec_for("vanilla", cfg, 128).kind == "softmax"
    assert spec_for("no-attention", cfg, 128).kind == "none"
    with pytest.raises(ValueError, match="m_scale"):
        spec_for("astro", {"alpha": 0.25})
    with pytest.raises(ValueError, match="unknown keys"):
        spec_for("astro", {"m_scale": 1.0, "beta": 2})
    with pytest.raises(ValueError, match="alpha"):
        spec_for("astro", {"m_scale": 1.0, "alpha": 0.0})


def test_table2_rows():
    rows = {r["preset"]: r for r in table2_rows()}
    keys = [m[0] for m in MECHANISMS]
    assert set(rows) == set(PRESETS)
    assert keys[:2] == ["softmax_attention", "value_path"]
    assert [rows["vanilla"][k] for k in keys] == [True, False, False, False, False, False, False]
    assert [rows["linearized"][k] for k in keys] == [False, True, True, False, False, False, True]
    assert [rows["astro"][k] for k in keys] == [False, True, True, True, True, True, True]
    assert [rows["astro-no-relpos"][k] for k in keys] == [False, True, True, False, True, True, True]
    assert [rows["astro-no-nonlin"][k] for k in keys] == [False, True, True, True, False, False, True]
    assert [rows["astro-no-feedback"][k] for k in keys] == [False, True, True, True, True, False, False]
    # gate-only: nothing written (S = 0), sigmoid (of 0), alpha, g and the feedback kept
    assert [rows["astro-gate-only"][k] for k in keys] == [False, False, False, False, True, True, True]
    assert [rows["no-attention"][k] for k in keys] == [False] * 7
    assert "Eq. 9" not in rows["astro-gate-only"]["equations"] and "Eq. 16" in rows["astro-gate-only"]["equations"]
    assert "Eq. 11" in rows["astro"]["equations"] and "Eq. 11" not in rows["linearized"]["equations"]
    assert get_preset("astro").equations[0] == "Eq. 9"
    assert [r["preset"] for r in table2_rows("imdb")] == preset_names("imdb")


# ------------------------------------------------------------------------------------------------
# absolute position embedding


def test_position_embedding_option():
    assert resolve_model_cfg("imdb", {})["position_embedding"] == "learned"
    assert make("imdb", "astro").pos is not None
    for task in ("imdb", "cifar10", "wikitext2"):
        model = make(task, "astro-no-relpos", position_embedding="none")
        assert model.pos is None and not any("pos" == n for n, _ in model.named_parameters())
    # without any position information, astro-no-relpos cannot tell the order of a bag of tokens
    torch.manual_seed(0)
    model = make("imdb", "astro-no-relpos", position_embedding="none").double().eval()
    tokens = torch.randint(1, 50, (1, 12))
    torch.testing.assert_close(model(tokens.flip(-1)), model(tokens), rtol=1e-10, atol=1e-12)
    assert_value_error(lambda: resolve_model_cfg("imdb", {"position_embedding": "sinusoidal"}), "position_embedding")
    assert_value_error(lambda: resolve_model_cfg("imdb", {"abs_pos": False}), "abs_pos")


# ------------------------------------------------------------------------------------------------
# feedback off keeps the output's magnitude (SPEC decision 8, docs/decisions.md)


def _first_core_outputs(task, preset, tokens, d, heads, m_factor, ln_input):
    """The first block's attention term before W_O, (B, H, N, d_head), of a model at initialisation."""
    torch.manual_seed(0)  # the same weights for every preset that has the same parameters
    cfg = {"d_model": d, "n_layers": 1, "n_heads": heads, "max_len": 64, "dropout": 0.0}
    model = build_model(
        task, spec_for(preset, {"m_scale_factor": m_factor}, d), cfg, {"vocab_size": 97, "n_classes": 2}
    )
    model = model.double().eval()
    store = {}
    hook = model.blocks[0].attn.register_forward_pre_hook(lambda mod, args: store.setdefault("x", args[0]))
    with torch.no_grad():
        model(tokens)
    hook.remove()
    att = model.blocks[0].attn
    x = store["x"]
    if ln_input:  # a deeper layer sees LayerNorm outputs (entries of size about 1)
        x = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    with torch.no_grad():
        return att.attend(att._heads(x, att.w_q), att._heads(x, att.w_k), att._heads(x, att.w_v), None)


@pytest.mark.parametrize("task", ["wikitext2", "imdb"])
@pytest.mark.parametrize("m_factor", [1 / 64, 500])
@pytest.mark.parametrize("ln_input", [False, True])
def test_no_feedback_keeps_magnitude_at_every_position(task, m_factor, ln_input):
    tokens = torch.randint(1, 97, (3, 64), generator=torch.Generator().manual_seed(2))
    rms = {}
    for preset in ("astro", "astro-no-feedback"):
        out = _first_core_outputs(task, preset, tokens, 64, 2, m_factor, ln_input)
        rms[preset] = out.square().mean(dim=(0, 3)).sqrt()  # per head and position, (H, N)
    ratio = rms["astro-no-feedback"] / rms["astro"]
    assert ratio.shape == (2, 64)
    assert bool(((ratio > 0.5) & (ratio < 2.0)).all()), (float(ratio.min()), float(ratio.max()))
