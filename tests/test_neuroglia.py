"""The neuron-astrocyte model (astromorphic.neuroglia) and Fig. 3 (astromorphic.plotting.fig3).

* the constants: every one has a unit, a source and a kind; overrides work and unknown names fail;
* the simulation: deterministic for a fixed seed, independent of the solver shortcut, close to a tight reference,
  and a changed constant changes the output;
* the frequency curve (reduced sweep): increasing and concave over 1-10 Hz, with a sublinear fitted exponent;
* the fit table: the exponent of Ca above rest (rest = the model without input, which a 0 Hz run keeps) is
  steeper than that of the absolute Ca, and halving / doubling r_IP3 raises / lowers the exponent;
* the command: the same configuration gives the same bytes, a changed constant in the configuration changes
  the tables and the figure;
* the per-token write/read network (the oracle in tests/_oracles.py) equals the matrix form of the attention,
  bidirectional and causal, with and without the astrocyte term, for every switch, with padding;
* the figure: equal data give byte-identical PNG and PDF (in the command test).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from _oracles import per_token_attention

from astromorphic import neuroglia as ng
from astromorphic.config import SimulationConfig

# --------------------------------------------------------------------------------------------- constants


def test_every_constant_has_unit_source_and_kind():
    for f in dataclasses.fields(ng.SynapseParams):
        meta = f.metadata
        assert meta["unit"], f.name
        assert meta["source"], f.name
        assert meta["kind"] in ng.KINDS, f.name
        if meta["kind"] == "choice":
            assert meta["note"], f"choice {f.name} must say why"
    table = ng.SynapseParams().table()
    assert list(table.columns) == ["name", "value", "unit", "kind", "source", "note"]
    assert len(table) == len(dataclasses.fields(ng.SynapseParams))


def test_params_override_and_unknown_names():
    p = ng.SynapseParams.from_dict({"r_ip3": "0.2", "k_ag": 0})
    assert p.r_ip3 == 0.2 and p.k_ag == 0.0 and p.tau_ag == ng.SynapseParams().tau_ag
    row = p.table().set_index("name").loc["r_ip3"]
    assert row["kind"] == "config override" and row["value"] == 0.2
    with pytest.raises(ValueError, match="unknown synapse parameter"):
        ng.SynapseParams.from_dict({"tau_nonsense": 1.0})
    with pytest.raises(ValueError, match="must be a number"):
        ng.SynapseParams.from_dict({"r_ip3": "fast"})
    with pytest.raises(ValueError, match="simulation.frequency: unknown key"):
        ng.resolve_simulation_config({"frequency": [1, 2]})
    # the workflow's own keys of the section are checked, then left out
    cfg = ng.resolve_simulation_config({"enabled": True, "resources": {"threads": 1}, "n_trains": 3})
    assert cfg["n_trains"] == 3 and "enabled" not in cfg and "resources" not in cfg


@pytest.mark.parametrize(
    "section,message",
    [
        ({"n_trains": 2.5}, r"simulation\.n_trains: .*integer"),
        ({"frequencies": [1.0]}, r"simulation\.frequencies: .*at least 2"),
        ({"duration_s": 10, "warmup_s": 20}, r"warmup_s \(20\) must be shorter than duration_s"),
        ({"method": "Euler"}, r"simulation\.method: "),
        ({"params": {"r_ip3": "fast"}}, r"simulation\.params\.r_ip3: must be a number"),
        ({"params": {"tau_nonsense": 1.0}}, "unknown synapse parameter"),
        ({"resources": {"threads": 0}}, r"simulation\.resources\.threads: "),
    ],
)
def test_simulation_section_is_checked_by_the_config_model(section, message):
    with pytest.raises(ValueError, match=message):
        ng.resolve_simulation_config(section)


def test_simulation_defaults_come_from_the_config_model():
    cfg = ng.resolve_simulation_config(None)
    expected = SimulationConfig().model_dump(exclude={"enabled", "resources"})
    assert cfg == {**expected, "frequencies": [float(f) for f in expected["frequencies"]]}
    assert cfg["frequencies"] == [float(f) for f in range(1, 11)] and cfg["method"] == "LSODA"


def test_resting_state_is_a_fixed_point_of_li_rinzel():
    p = ng.SynapseParams()
    ca, q = ng.resting_state(p)
    dca, dq = ng.li_rinzel_rates(ca, q, p.ip3_star, p)
    assert 0.03 < ca < 0.12  # resting astrocyte Ca2+ is ~0.05-0.1 uM
    assert abs(dca) < 1e-10 and abs(dq) < 1e-10


def test_right_hand_side_is_made_of_the_rate_functions():
    p = ng.SynapseParams()
    y = np.array([3.0, 0.4, 2.5, 1.2, 0.6, 0.7, 0.3, 4.0] + [0.0] * len(ng.ACC_NAMES))
    d = ng.make_rhs(p)(0.0, y)
    assert (d[ng.ICA], d[ng.IQ]) == ng.li_rinzel_rates(0.6, 0.7, 1.2, p)
    assert d[ng.IV] == (-3.0 + p.r_m * (0.4 + ng.slow_inward_current(0.6, p))) / p.tau_m
    assert d[ng.IACC + ng.ACC_NAMES.index("pr")] == ng.release_probability(2.5, 4.0, p)


def test_poisson_trains_are_common_random_numbers_across_rates():
    a = ng.poisson_spike_train(2.0, 50.0, np.random.default_rng(7))
    b = ng.poisson_spike_train(4.0, 50.0, np.random.default_rng(7))
    # the same unit-rate train, twice as fast: b is a scaled copy of a (and longer)
    assert np.allclose(b[: a.size // 2], a[: a.size // 2] / 2.0)
    counts = [ng.poisson_spike_train(5.0, 100.0, np.random.default_rng(s)).size for s in range(20)]
    assert abs(np.mean(counts) - 500) < 3 * math.sqrt(500 / 20)


# --------------------------------------------------------------------------------------------- simulation


def test_simulation_is_deterministic_for_a_seed():
    a = ng.simulate_synapse(5.0, None, 20.0, 11, warmup_s=5.0)
    b = ng.simulate_synapse(5.0, None, 20.0, 11, warmup_s=5.0)
    c = ng.simulate_synapse(5.0, None, 20.0, 12, warmup_s=5.0)
    assert a["summary"] == b["summary"]
    assert np.array_equal(a["spikes"]["post"], b["spikes"]["post"])
    assert a["summary"]["ca_mean"] != c["summary"]["ca_mean"]
    s = a["summary"]
    assert s["n_releases"] > 0 and s["n_post_spikes"] >= s["n_releases"] * 0.9
    assert 0.0 < s["pr_mean"] <= ng.SynapseParams().pr0 * 1.1


def test_solver_shortcut_and_tolerance_do_not_change_the_result():
    fast = ng.simulate_synapse(4.0, None, 20.0, 3, warmup_s=5.0)["summary"]
    every = ng.simulate_synapse(4.0, None, 20.0, 3, warmup_s=5.0, stop_every_spike=True)["summary"]
    tight = ng.simulate_synapse(4.0, None, 20.0, 3, warmup_s=5.0, method="RK45", rtol=1e-6,
                                stop_every_spike=True)["summary"]
    for ref in (every, tight):
        assert fast["n_releases"] == ref["n_releases"]
        assert fast["n_post_spikes"] == ref["n_post_spikes"]
        assert fast["ca_mean"] == pytest.approx(ref["ca_mean"], abs=2e-3)


def test_trace_recording():
    out = ng.simulate_synapse(3.0, None, 10.0, 1, warmup_s=2.0, record_dt=0.1)
    tr = out["trace"]
    assert np.allclose(tr["t"], np.arange(0.0, 10.0 + 1e-9, 0.1))
    assert np.all(np.isfinite(tr["ca"])) and np.all(tr["ca"] > 0) and np.all((tr["pr"] >= 0) & (tr["pr"] <= 1))
    assert tr["pr"][-1] == ng.release_probability(tr["ag"][-1], tr["esp"][-1], ng.SynapseParams())
    # recording does not change the run
    plain = ng.simulate_synapse(3.0, None, 10.0, 1, warmup_s=2.0)["summary"]
    assert plain["n_releases"] == out["summary"]["n_releases"]
    assert plain["ca_mean"] == pytest.approx(out["summary"]["ca_mean"], abs=1e-3)


def test_changing_a_constant_changes_the_output():
    base = ng.simulate_synapse(5.0, None, 20.0, 2, warmup_s=5.0)["summary"]
    more_ip3 = ng.simulate_synapse(5.0, {"r_ip3": 0.24}, 20.0, 2, warmup_s=5.0)["summary"]
    no_dse = ng.simulate_synapse(5.0, {"k_ag": 0.0}, 20.0, 2, warmup_s=5.0)["summary"]
    assert more_ip3["ip3_mean"] > base["ip3_mean"] and more_ip3["ca_mean"] > base["ca_mean"]
    assert no_dse["pr_mean"] > base["pr_mean"]  # DSE depresses release


# --------------------------------------------------------------------------------------------- the curve

REDUCED = dict(frequencies=[1.0, 2.0, 4.0, 6.0, 8.0, 10.0], n_trains=2, duration_s=40.0, seed=0, warmup_s=15.0)


@pytest.fixture(scope="module")
def reduced_sweep() -> pd.DataFrame:
    r = REDUCED
    return ng.sweep(r["frequencies"], r["n_trains"], r["duration_s"], r["seed"], warmup_s=r["warmup_s"])


def test_curve_is_increasing_and_concave(reduced_sweep):
    shape = ng.curve_shape(reduced_sweep)
    assert shape["increasing"], shape
    assert shape["concave"], shape
    assert len(reduced_sweep) == 12 and set(reduced_sweep["train"]) == {0, 1}


def test_fitted_exponent_is_sublinear(reduced_sweep):
    fit = ng.fit_power_law(reduced_sweep, n_boot=300)
    assert 0.0 < fit["alpha"] < 1.0
    assert fit["ci_low"] <= fit["alpha"] <= fit["ci_high"]
    assert fit["paper_alpha"] == 0.25
    assert fit == ng.fit_power_law(reduced_sweep, n_boot=300)  # seeded bootstrap


def test_zero_rate_stays_at_the_resting_state():
    s = ng.simulate_synapse(0.0, None, 20.0, 0, warmup_s=5.0)["summary"]
    assert s["n_pre_spikes"] == 0 and s["n_post_spikes"] == 0
    assert s["ca_mean"] == pytest.approx(s["ca_rest"], abs=1e-9)
    assert s["ca_rest"] == ng.resting_state(ng.SynapseParams())[0]


SENS = dict(frequencies=[1.0, 3.0, 10.0], n_trains=1, duration_s=40.0, seed=0, warmup_s=15.0)


@pytest.fixture(scope="module")
def r_ip3_fits() -> tuple[pd.DataFrame, dict]:
    r, p = SENS, ng.SynapseParams()
    args = (r["frequencies"], r["n_trains"], r["duration_s"], r["seed"])
    base = ng.sweep(*args, p, warmup_s=r["warmup_s"])
    variants = ng.r_ip3_sweeps(*args, p, warmup_s=r["warmup_s"])
    return ng.fit_table({1.0: base, **variants}, p.r_ip3, n_boot=50), {1.0: base, **variants}


def test_fit_table_rows(r_ip3_fits):
    fits, sweeps = r_ip3_fits
    names = ["absolute", "above_rest", "r_ip3_x0.5", "r_ip3_x0.5_above_rest", "r_ip3_x2", "r_ip3_x2_above_rest"]
    assert fits["fit"].tolist() == names
    assert fits["quantity"].tolist() == ["absolute", "above_rest"] * 3
    assert fits["r_ip3"].tolist() == pytest.approx([0.12, 0.12, 0.06, 0.06, 0.24, 0.24])
    assert (fits["ca_rest_uM"] == ng.resting_state(ng.SynapseParams())[0]).all()
    assert (fits["note"] == "").all() and fits["alpha"].notna().all()
    assert ((fits["ci_low"] <= fits["alpha"]) & (fits["alpha"] <= fits["ci_high"])).all()
    # the variants reuse the spike trains and release draws of the main sweep
    for factor in (0.5, 2.0):
        assert sweeps[factor]["train_seed"].tolist() == sweeps[1.0]["train_seed"].tolist()
        assert sweeps[factor]["n_pre_spikes"].tolist() == sweeps[1.0]["n_pre_spikes"].tolist()
        assert (sweeps[factor]["r_ip3_factor"] == factor).all()


def test_exponent_above_rest_and_with_r_ip3_scaled(r_ip3_fits):
    alpha = r_ip3_fits[0].set_index("fit")["alpha"]
    # the resting level is a constant offset that flattens the log-log curve: above rest it is steeper
    for prefix in ("", "r_ip3_x0.5_", "r_ip3_x2_"):
        assert alpha[f"{prefix}above_rest"] > alpha[prefix.rstrip("_") or "absolute"] + 0.01
    # more IP3 per spike moves 1-10 Hz further into the saturation of the astrocyte: a smaller exponent
    assert alpha["r_ip3_x0.5"] > alpha["absolute"] + 0.05 and alpha["absolute"] > alpha["r_ip3_x2"] + 0.05


def test_power_law_fit_recovers_a_known_exponent():
    rows = [{"frequency_hz": f, "train": k, "ca_mean": 0.3 * f**0.25 * (1 + 0.01 * (k - 1))}
            for f in range(1, 11) for k in range(3)]
    fit = ng.fit_power_law(pd.DataFrame(rows), n_boot=200)
    assert fit["alpha"] == pytest.approx(0.25, abs=1e-9)
    assert fit["ci_low"] <= 0.25 <= fit["ci_high"]
    assert fit["prefactor_uM"] == pytest.approx(0.3, rel=1e-6)
    assert fit["r2_loglog"] == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------- command and figure

TINY = {"frequencies": [1.0, 4.0, 10.0], "n_trains": 1, "duration_s": 8.0, "warmup_s": 2.0, "seed": 3, "n_boot": 100}


OUTPUTS = ("sweep.csv", "sweep_r_ip3.csv", "fit.csv", "params.csv", "fig3.png", "fig3.pdf")


def _run(tmp_path, name: str, section: dict) -> dict:
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({"label": "test", "simulation": section}))
    out = tmp_path / name
    assert ng.main(["--config", str(cfg), "--out-dir", str(out), "--quiet"]) == 0
    from astromorphic.plotting import fig3

    fig3.plot(out / "sweep.csv", out / "fit.csv", out / "fig3", label="test")
    return {f: (out / f).read_bytes() for f in OUTPUTS}


def test_command_is_deterministic_and_a_config_constant_changes_tables_and_figure(tmp_path):
    a = _run(tmp_path, "a", TINY)
    b = _run(tmp_path, "b", TINY)
    c = _run(tmp_path, "c", {**TINY, "params": {"r_ip3": 0.2}})
    assert a == b  # same configuration, same bytes: tables, and the figure drawn from them (PNG and PDF)
    for name in OUTPUTS:
        assert a[name] != c[name], name
    fits = pd.read_csv(tmp_path / "a" / "fit.csv")
    fit = fits.iloc[0]
    assert {"fit", "quantity", "r_ip3_factor", "alpha", "ci_low", "ci_high", "paper_alpha", "method"} <= set(fit.index)
    assert fit["fit"] == "absolute" and fit["paper_alpha"] == 0.25
    assert len(fits) == 6 and fits["alpha"].notna().all()
    assert pd.read_csv(tmp_path / "c" / "fit.csv")["r_ip3"].tolist() == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.4, 0.4])
    variants = pd.read_csv(tmp_path / "a" / "sweep_r_ip3.csv")
    assert variants["r_ip3_factor"].tolist() == [0.5] * 3 + [2.0] * 3
    sweep = pd.read_csv(tmp_path / "a" / "sweep.csv")
    assert len(sweep) == 3 and {"frequency_hz", "train", "ca_mean", "ca_steady", "train_seed"} <= set(sweep.columns)
    params = pd.read_csv(tmp_path / "c" / "params.csv").set_index("name")
    assert params.loc["r_ip3", "kind"] == "config override"


def test_explicit_options_override_the_config(tmp_path):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(yaml.safe_dump({"simulation": TINY}))
    out = tmp_path / "o"
    assert ng.main(["--config", str(cfg), "--out-dir", str(out), "--frequencies", "2", "5", "8",
                    "--param", "k_ag=5", "--quiet"]) == 0
    sweep = pd.read_csv(out / "sweep.csv")
    assert sorted(sweep["frequency_hz"]) == [2.0, 5.0, 8.0]
    assert pd.read_csv(out / "params.csv").set_index("name").loc["k_ag", "value"] == 5.0


# --------------------------------------------------------------------------------------------- per-token network

torch = pytest.importorskip("torch")


def _inputs(b=2, h=3, n=9, dk=4, dv=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, n, dk, generator=g, dtype=torch.float64)
    k = torch.randn(b, h, n, dk, generator=g, dtype=torch.float64)
    v = torch.randn(b, h, n, dv, generator=g, dtype=torch.float64)
    w = torch.rand(h, dk, n, generator=g, dtype=torch.float64) * 2.0
    return q, k, v, w


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("astro", [False, True], ids=["no-astro", "astro"])
@pytest.mark.parametrize("nonlinearity", [True, False], ids=["sigmoid", "linear"])
@pytest.mark.parametrize("feedback", [True, False], ids=["feedback", "mean"])
def test_per_token_network_equals_matrix_form(causal, astro, nonlinearity, feedback):
    from astromorphic.attention import astromorphic_attention

    q, k, v, w = _inputs()
    kw = dict(w_astro=w if astro else None, alpha=0.25 if nonlinearity else 1.0, sigmoid=nonlinearity,
              feedback=feedback, causal=causal, m_scale=3.0)
    ref = astromorphic_attention(q, k, v, **kw)
    out = per_token_attention(q, k, v, **kw)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_per_token_network_with_padding_and_relative_position(causal):
    from astromorphic.attention import astromorphic_attention, relative_position_activity

    q, k, v, _ = _inputs(n=11, seed=1)
    m = torch.randn(3, 4, 11, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.3
    w = relative_position_activity(m, 4.0)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[0, 8:] = False
    mask[1, :2] = False  # a padded prefix: nothing written yet, P = 0 there
    for feedback in (True, False):
        kw = dict(w_astro=w, alpha=0.25, sigmoid=True, feedback=feedback, causal=causal, m_scale=50.0,
                  key_padding_mask=mask)
        torch.testing.assert_close(per_token_attention(q, k, v, **kw), astromorphic_attention(q, k, v, **kw),
                                   rtol=1e-10, atol=1e-12)


def test_per_token_network_is_causal_and_keeps_dtype():
    q, k, v, w = _inputs(n=8, seed=3)
    base = per_token_attention(q, k, v, w_astro=w, causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 5:] += 3.0
    v2[:, :, 5:] -= 2.0
    changed = per_token_attention(q, k2, v2, w_astro=w, causal=True)
    torch.testing.assert_close(changed[:, :, :5], base[:, :, :5], rtol=0, atol=0)
    assert not torch.allclose(changed[:, :, 5:], base[:, :, 5:])
    out32 = per_token_attention(q.float(), k.float(), v.float(), w_astro=w.float())
    assert out32.dtype == torch.float32
    arr = per_token_attention(q.numpy(), k.numpy(), v.numpy(), w_astro=w.numpy())
    assert isinstance(arr, np.ndarray) and arr.shape == (2, 3, 8, 5)
