"""Figures from fabricated runs: every figure is drawn, says where its data come from, and is
byte-identical when drawn twice from the same inputs."""

from __future__ import annotations

import pandas as pd
import pytest

from _fake_runs import make_runs
from astromorphic import aggregate
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
    return root


def _draw(root, out_dir, figure):
    runs, summary = str(root / "runs.csv"), str(root / "runs_summary.csv")
    args = {
        "fig4": ["fig4", "--runs", runs, "--task", "imdb", "--threshold", "0.85"],
        "lm": ["lm", "--runs", runs, "--summary", summary],
        "controls": ["controls", "--runs", runs],
        "figS2": ["figS2", "--bench", str(root / "bench.csv")],
    }[figure]
    out = out_dir / figure
    assert plot_main([*args, "--label", "fake", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("figure", ["fig4", "lm", "controls", "figS2"])
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


def test_band_is_mean_and_sample_sd():
    from astromorphic.plotting.common import band

    frame = pd.DataFrame({"epoch": [1, 1, 1, 2], "seed": [0, 1, 2, 0], "v": [1.0, 2.0, 3.0, float("nan")]})
    stats = band(frame, "v").set_index("epoch")
    assert stats.loc[1, "mean"] == 2.0 and stats.loc[1, "sd"] == pytest.approx(1.0) and stats.loc[1, "n"] == 3
    assert 2 not in stats.index  # non-finite values are left out, not plotted as zero


def test_titles_carry_provenance(tidy):
    from astromorphic.plotting import common

    runs = pd.read_csv(tidy / "runs.csv")
    assert common.is_synthetic(runs)
    assert "synthetic stand-in data" in common.provenance_line(True, "fake")
