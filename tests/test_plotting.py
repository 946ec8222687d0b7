"""Figures from fabricated runs: every figure is drawn, says where its data come from, and is
byte-identical when drawn twice from the same inputs."""

from __future__ import annotations

import pandas as pd
import pytest

from _fake_runs import make_runs
from astromorphic.tables import aggregate
from astromorphic.plotting import main as plot_main


@pytest.fixture(scope="module")
def tidy(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    runs, _ = make_runs(root, seeds=(0, 1, 2), epochs=5)
    aggregate.main(["--runs", str(runs), "--out", str(root / "runs.csv")])
    bench = pd.DataFrame(
        [
            dict(device="cpu", dtype="float32", kind=k, causal=c, N=n, B=1, H=4, d=64, fwd_ms=f * n / 100,
                 fwdbwd_ms=3 * f * n / 100, peak_mem_mb=f * n / 50, status="ok")
            for k, f in (("softmax", 2.0), ("linearized", 1.0), ("astromorphic", 1.5), ("relpos_scan", 0.5))
            for c in (False, True)
            for n in (128, 256, 512)
        ]
    )
    bench.to_csv(root / "bench.csv", index=False)
    sim = pd.DataFrame([dict(frequency_hz=f, train=k, ca_mean=0.3 * f**0.3 + 0.01 * k, warmup_s=30.0, duration_s=60.0)
                        for f in (1.0, 2.0, 5.0, 10.0) for k in range(3)])
    sim.to_csv(root / "sim.csv", index=False)
    fit = dict(column="ca_mean", alpha=0.3, prefactor_uM=0.31, ci_low=0.28, ci_high=0.32, ci_level=0.95,
               paper_alpha=0.25)
    pd.DataFrame([fit]).to_csv(root / "fit_one_row.csv", index=False)  # as written before the sensitivity fits
    named = (("absolute", "absolute", 1.0, 0.3), ("above_rest", "above_rest", 1.0, 0.4),
             ("r_ip3_x0.5", "absolute", 0.5, 0.45), ("r_ip3_x0.5_above_rest", "above_rest", 0.5, 0.6),
             ("r_ip3_x2", "absolute", 2.0, 0.2), ("r_ip3_x2_above_rest", "above_rest", 2.0, 0.22))
    fits = [dict(fit=name, quantity=q, r_ip3_factor=k, r_ip3=0.12 * k, ca_rest_uM=0.07, **{**fit, "alpha": a})
            for name, q, k, a in named]
    pd.DataFrame(fits).to_csv(root / "fit.csv", index=False)
    return root


def _draw(root, out_dir, figure):
    runs, summary = str(root / "runs.csv"), str(root / "runs_summary.csv")
    args = {
        "fig4": ["fig4", "--runs", runs, "--task", "imdb", "--threshold", "0.85"],
        "lm": ["lm", "--runs", runs, "--summary", summary],
        "controls": ["controls", "--runs", runs],
        "figS2": ["figS2", "--bench", str(root / "bench.csv")],
        "fig3": ["fig3", "--sweep", str(root / "sim.csv"), "--fit", str(root / "fit.csv")],
    }[figure]
    out = out_dir / figure
    assert plot_main([*args, "--label", "fake", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("figure", ["fig4", "lm", "controls", "figS2", "fig3"])
def test_figure_is_deterministic(tidy, tmp_path, figure):
    first = _draw(tidy, tmp_path / "a", figure)
    second = _draw(tidy, tmp_path / "b", figure)
    for ext in ("png", "pdf"):
        a, b = first.with_suffix(f".{ext}"), second.with_suffix(f".{ext}")
        assert a.stat().st_size > 1000
        assert a.read_bytes() == b.read_bytes(), ext
    pdf = first.with_suffix(".pdf").read_bytes()
    assert b"CreationDate" not in pdf and b"Matplotlib" not in pdf
    assert b"Software" not in first.with_suffix(".png").read_bytes()


def test_seed_lines_draw_mean_and_sample_sd_in_the_preset_style():
    import numpy as np

    from astromorphic.plotting import common

    plt = common.setup()
    nan, inf = float("nan"), float("inf")
    frame = pd.DataFrame({"epoch": [1, 1, 1, 2, 2, 2, 1, 1, 2, 2], "seed": [0, 1, 2, 0, 1, 2, 0, 1, 0, 1],
                          "model": ["astro"] * 6 + ["vanilla"] * 4,
                          "v": [1.0, 2.0, 3.0, nan, 4.0, inf, 5.0, 7.0, 6.0, 8.0]})
    fig, ax = plt.subplots()
    labels = common.seed_lines(ax, frame, "v", ["vanilla", "linearized", "astro"], scale=10.0)
    assert labels == ["vanilla softmax (n=2)", "astro (nonlinearity + rel. position) (n=3)"]
    vanilla, astro = ax.lines[:2]
    # non-finite values are left out, not plotted as zero
    assert list(astro.get_xdata()) == [1, 2] and list(astro.get_ydata()) == [20.0, 40.0]
    assert list(vanilla.get_ydata()) == [60.0, 70.0]
    assert astro.get_color() == "#d62728" and vanilla.get_color() == "#7f7f7f"
    assert astro.get_linestyle() == "-" and vanilla.get_linestyle() == "--"
    # the band is mean ± sample sd (ddof = 1): 20 ± 10 at epoch 1 for astro, 60 ± 14.1 for vanilla
    bands = [np.asarray(c.get_paths()[0].vertices) for c in ax.collections[:2]]
    assert np.nanmax(bands[1][:, 1]) == pytest.approx(30.0) and np.nanmin(bands[1][:, 1]) == pytest.approx(10.0)
    assert np.nanmin(bands[0][:, 1]) == pytest.approx(60.0 - 10 * np.sqrt(2))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
    plt.close(fig)


def test_titles_carry_provenance(tidy):
    from astromorphic.plotting import common

    runs = pd.read_csv(tidy / "runs.csv")
    assert common.is_synthetic(runs)
    assert "synthetic stand-in data" in common.provenance_line(True, "fake")


def test_fig3_shows_the_exponents_above_rest_and_with_r_ip3_scaled(tidy, tmp_path):
    from astromorphic.plotting import fig3

    main_fit, rows = fig3._fit_rows(tidy / "fit.csv")
    assert main_fit["fit"] == "absolute" and set(rows) >= {"above_rest", "r_ip3_x0.5", "r_ip3_x2"}
    assert [r["fit"] for r in fig3._range_fits(rows)] == ["r_ip3_x0.5", "r_ip3_x2"]
    assert fig3._sensitivity_title(rows) == "; above rest 0.400, r_IP3 x0.5: 0.450, r_IP3 x2: 0.200"
    assert fig3._fit_rows(tidy / "fit_one_row.csv")[1] == {}  # a one-row fit.csv draws the main fit only
    old = tmp_path / "old"
    assert plot_main(["fig3", "--sweep", str(tidy / "sim.csv"), "--fit", str(tidy / "fit_one_row.csv"),
                      "--out", str(old)]) == 0  # fmt: skip
    new = _draw(tidy, tmp_path, "fig3")
    assert old.with_suffix(".png").read_bytes() != new.with_suffix(".png").read_bytes()


def test_forest_plot_drawn_from_a_tiny_claims_table(tmp_path):
    """One panel per task; a pair without an interval is drawn as a point; same bytes when drawn twice."""
    from astromorphic.plotting import forest

    claims = pd.DataFrame([
        dict(task="imdb", a="vanilla", b="astro", unit="pp", diff=-0.2, low=-3.6, high=3.3, resolution=3.5,
             paper_diff=0.2, p=0.9, p_holm=1.0, verdict="not resolved", data_source="real"),
        dict(task="imdb", a="astro", b="linearized", unit="pp", diff=2.8, low=float("nan"), high=float("nan"),
             resolution=float("nan"), paper_diff=0.3, p=float("nan"), p_holm=float("nan"),
             verdict="undetermined (no spread in either group: no interval)", data_source="real"),
        dict(task="wikitext2", a="astro", b="vanilla", unit="perplexity", diff=-30.0, low=-45.0, high=-15.0,
             resolution=15.0, paper_diff=-39.6, p=0.01, p_holm=0.03, verdict="reproduces", data_source="real"),
    ])
    claims.to_csv(tmp_path / "claims.csv", index=False)
    assert plot_main(["forest", "--claims", str(tmp_path / "claims.csv"), "--out", str(tmp_path / "a")]) == 0
    first = (tmp_path / "a.png").read_bytes()
    forest.plot(tmp_path / "claims.csv", tmp_path / "b", label=None)
    assert first == (tmp_path / "b.png").read_bytes() and (tmp_path / "a.pdf").stat().st_size > 0

    import matplotlib.pyplot as plt

    drawn = {}
    original = plt.close
    plt.close = lambda fig=None: drawn.setdefault("fig", fig)  # keep the figure to look at it
    try:
        forest.plot(tmp_path / "claims.csv", tmp_path / "c")
    finally:
        plt.close = original
    axes = drawn["fig"].axes
    assert [ax.get_title() for ax in axes] == ["IMDB", "WikiText-2"]
    crosses = [line for line in axes[1].lines if line.get_marker() == "x"]
    assert [float(line.get_xdata()[0]) for line in crosses] == [-39.6]  # the paper's difference is marked
    bars = [line for line in axes[0].lines if len(line.get_xdata()) == 2 and line.get_linestyle() == "-"]
    assert len(bars) == 1  # the pair without an interval has no bar
    assert not [p for ax in axes for p in ax.patches]  # a claims table without margins: no band


def test_forest_plot_shades_each_tasks_equivalence_margin(tmp_path):
    from astromorphic.plotting import forest

    row = dict(a="vanilla", b="astro", diff=0.1, low=-0.4, high=0.6, resolution=0.5, paper_diff=0.2, p=0.6,
               p_holm=0.6, verdict="equivalent within ± 1 pp", data_source="real")
    pd.DataFrame([{**row, "task": "imdb", "unit": "pp", "margin": 1.0},
                  {**row, "task": "cifar10", "unit": "pp", "margin": 2.0}]).to_csv(tmp_path / "claims.csv", index=False)
    import matplotlib.pyplot as plt

    drawn = {}
    original = plt.close
    plt.close = lambda fig=None: drawn.setdefault("fig", fig)
    try:
        forest.plot(tmp_path / "claims.csv", tmp_path / "f")
    finally:
        plt.close = original
    spans = {ax.get_title(): [(round(p.get_x(), 6), round(p.get_x() + p.get_width(), 6)) for p in ax.patches]
             for ax in drawn["fig"].axes}
    assert spans == {"IMDB": [(-1.0, 1.0)], "CIFAR-10": [(-2.0, 2.0)]}
