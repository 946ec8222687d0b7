"""The value-sensitivity probe (SPEC decision 9) through the model and the run's probe columns."""

from __future__ import annotations

import pytest
import torch

from astromorphic.data.batches import Batch
from astromorphic.training.evaluation import PROBE_KEY_ORDER, attention_probe, probe_columns, probe_flat
from astromorphic.models import build_model
from astromorphic.presets import preset_names, spec_for

CFG = {"d_model": 16, "n_layers": 2, "n_heads": 2, "ffn_mult": 2, "dropout": 0.1, "max_len": 24, "chunk_size": 4}


def model_for(preset, m_scale):
    torch.manual_seed(0)
    spec = spec_for(preset, {"m_scale": m_scale}, 16)
    return build_model("imdb", spec, CFG, {"vocab_size": 50, "n_classes": 2, "pad_id": 0})


def probe_of(preset, m_scale=1.0):
    tokens = torch.randint(1, 50, (3, 20), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[2, 12:] = False
    return attention_probe(
        model_for(preset, m_scale), Batch((tokens, mask), torch.zeros(3), 3, 52), torch.device("cpu"), "float32"
    )


def test_probe_key_order():
    assert PROBE_KEY_ORDER[:2] == ("attn_ratio", "value_sens")
    probe = probe_of("astro")
    assert probe_columns(probe) == [
        "attn_ratio_l0",
        "attn_ratio_l1",
        "value_sens_l0",
        "sigmoid_arg_mean_l0",
        "sigmoid_arg_std_l0",
        "value_sens_l1",
        "sigmoid_arg_mean_l1",
        "sigmoid_arg_std_l1",
    ]
    assert set(probe_flat(probe)) == set(probe_columns(probe))
    assert probe_columns(probe_of("vanilla")) == ["attn_ratio_l0", "attn_ratio_l1", "value_sens_l0", "value_sens_l1"]
    assert probe_columns(probe_of("no-attention")) == ["attn_ratio_l0", "attn_ratio_l1"]


@pytest.mark.parametrize("preset", [p for p in preset_names("imdb") if p != "no-attention"])
def test_value_sens_of_each_preset(preset):
    small_m, paper_m = probe_of(preset, 1.0), probe_of(preset, 500.0 * 16)
    for probe in (small_m, paper_m):
        assert len(probe) == 2 and all(0.0 <= layer["value_sens"] <= 1.0 + 1e-6 for layer in probe)
    if preset in ("vanilla", "linearized", "astro-no-nonlin"):  # linear in V: exactly 1 at any m
        assert all(abs(layer["value_sens"] - 1.0) < 1e-5 for layer in small_m + paper_m)
    elif preset == "astro-gate-only":
        assert all(layer["value_sens"] == 0.0 for layer in small_m + paper_m)
    else:  # the sigmoid read: sensitive to V at m = 1, hardly at the paper's m
        assert all(layer["value_sens"] > 0.05 for layer in small_m)
        assert all(layer["value_sens"] < 1e-2 for layer in paper_m)
