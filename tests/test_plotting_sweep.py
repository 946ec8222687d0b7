"""The m_scale control figure: drawn from a sweep table and run summaries, deterministic bytes."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from astromorphic.plotting import sweep

VALUES = (1, 16, 6400)


@pytest.fixture
def inputs(tmp_path: Path):
    rows = []
    for preset in ("astro", "linearized"):
        for value, mean in zip(VALUES, (80.0, 81.0, 82.0)):
            rows.append(dict(task="imdb", preset=preset, key="m_scale", value=value, base_value="none",
                             metric="test_acc", mean=mean, sd=0.5, n=2))
    pd.DataFrame(rows).to_csv(tmp_path / "sweep.csv", index=False)
    summary = []
    for model in ("astro", "linearized", "no-attention"):
        for seed in (0, 1):
            summary.append(dict(task="imdb", model=model, preset=model, overrides=None, seed=seed,
                                status="finished", synthetic=False, final_test_acc=0.79 + 0.01 * seed))
    for preset in ("astro", "linearized"):
        for value, acc in zip(VALUES, (0.80, 0.81, 0.82)):
            for seed in (0, 1):
                summary.append(dict(task="imdb", model=f"{preset}@m_scale={value}", preset=preset,
                                    overrides=f"m_scale={value}", seed=seed, status="finished", synthetic=False,
                                    final_test_acc=acc + 0.01 * seed))
    summary.append(dict(task="imdb", model="astro@m_scale=16", preset="astro", overrides="m_scale=16", seed=2,
                        status="diverged", synthetic=False, final_test_acc=0.1))
    pd.DataFrame(summary).to_csv(tmp_path / "summary.csv", index=False)
    config = {"tasks": {"imdb": {"model": {"d_model": 32}, "attention": {"m_scale_factor": 500}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_default_value_resolves_m_scale_from_factor(inputs):
    config = yaml.safe_load((inputs / "config.yaml").read_text())
    assert sweep.default_value(config, "imdb", "m_scale") == 500 * 32


def test_points_are_the_tables_metric_per_seed(inputs):
    config = yaml.safe_load((inputs / "config.yaml").read_text())
    points = sweep.sweep_points(pd.read_csv(inputs / "sweep.csv"), pd.read_csv(inputs / "summary.csv"), config,
                                "imdb", "m_scale")
    means = points.groupby(["model", "value"])["metric"].mean()
    # the swept runs give the sweep table's means; the diverged seed is left out, as in the table
    for value, mean in zip(VALUES, (80.5, 81.5, 82.5)):
        assert means[("astro", float(value))] == pytest.approx(mean)
    assert means[("astro", 16000.0)] == pytest.approx(79.5)  # the plain run, at the configured value
    assert set(points[points.model == "no-attention"]["value"]) == {16000.0}
    assert len(points) == 2 * (2 * 4) + 2


def test_sweep_figure_is_written_and_deterministic(inputs):
    args = (inputs / "sweep.csv", inputs / "summary.csv", inputs / "config.yaml")
    first = sweep.plot(*args, inputs / "a" / "fig")
    second = sweep.plot(*args, inputs / "b" / "fig")
    assert [p.suffix for p in first] == [".png", ".pdf"]
    for a, b in zip(first, second):
        assert a.stat().st_size > 1000
        assert a.read_bytes() == b.read_bytes()
