"""The LM causality audit with its prefix-consistency check (SPEC decisions 6 and 7): every causal preset
passes both; the leaky diagnostic fails both; a causal but window-length-dependent model fails only the
prefix check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from astromorphic.training.evaluation import causality_audit
from astromorphic.models import build_model
from astromorphic.presets import preset_names, spec_for

ATTN_CFG = {"alpha": 0.25, "m_scale_factor": 0.5, "tau": 4.0, "position": "exp"}
CFG = {"d_model": 16, "n_layers": 2, "n_heads": 2, "ffn_mult": 2, "dropout": 0.1, "max_len": 32, "chunk_size": 4}
CAUSAL_PRESETS = [p for p in preset_names("wikitext2") if p != "astro-leaky"]
CPU = torch.device("cpu")


def lm(preset, **attn):
    torch.manual_seed(0)
    spec = spec_for(preset, {**ATTN_CFG, **attn}, CFG["d_model"])
    return build_model("wikitext2", spec, CFG, {"vocab_size": 40}).double()


def windows(n=24):
    return torch.randint(0, 40, (2, n), generator=torch.Generator().manual_seed(3))


def test_every_causal_preset_is_listed():
    assert {"vanilla", "linearized", "astro", "astro-no-relpos", "astro-no-nonlin", "astro-no-feedback"} <= set(
        CAUSAL_PRESETS
    )
    assert "astro-gate-only" in CAUSAL_PRESETS


@pytest.mark.parametrize("preset", CAUSAL_PRESETS + ["astro/linear-position"])
def test_causal_presets_pass_causality_and_prefix_consistency(preset):
    if preset == "astro/linear-position":
        model = lm("astro", position="linear")
    else:
        model = lm(preset)
    audit = causality_audit(model, windows(), 40, CPU, "float32", tol=1e-9)
    assert audit["passed"] and audit["prefix_passed"], audit
    assert audit["prefix_max_abs_change"] <= 1e-9
    assert len(audit["prefix_per_position"]) == len(audit["positions"]) == 5
    # the window is shorter than max_len: the relative position term must not depend on its length
    base = model.eval()(windows())
    for t in (0, 7, 15):
        torch.testing.assert_close(model(windows()[:, : t + 1]), base[:, : t + 1], rtol=0, atol=1e-12)


def test_leaky_diagnostic_fails_both_checks():
    """Expected: it writes the whole window before reading, so it is neither causal nor prefix consistent."""
    audit = causality_audit(lm("astro-leaky"), windows(), 40, CPU, "float32", tol=1e-9)
    assert not audit["passed"] and not audit["prefix_passed"]
    assert audit["prefix_max_abs_change"] > 1e-6


class LengthDependentLM(nn.Module):
    """Causal (position t never sees later tokens) but not prefix consistent: the logits at every position
    are scaled by the window length."""

    def __init__(self, vocab: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, vocab)

    def forward(self, tokens):
        return self.embed(tokens) * tokens.shape[1]


def test_length_dependent_model_fails_only_the_prefix_check():
    torch.manual_seed(0)
    audit = causality_audit(LengthDependentLM(40), windows(), 40, CPU, "float32", tol=1e-6)
    assert audit["passed"] and audit["max_abs_change"] == 0.0
    assert not audit["prefix_passed"] and audit["prefix_max_abs_change"] > 1.0
    # the existing keys are kept
    for key in ("max_abs_change", "positions", "per_position", "samples", "seq_len", "tolerance", "passed"):
        assert key in audit


def test_old_relative_position_construction_is_caught():
    """W_astro built from the first n columns of M alone (D on n positions) depends on n: the audit fails."""
    model = lm("astro")
    for block in model.blocks:
        attn = block.attn

        def old_activity(n, attn=attn):
            from astromorphic.attention import relative_position_activity

            return relative_position_activity(attn.M[..., :n], attn.tau, position=attn.position)

        attn.astro_activity = old_activity
    audit = causality_audit(model, windows(), 40, CPU, "float32", tol=1e-9)
    assert audit["passed"] and not audit["prefix_passed"]
