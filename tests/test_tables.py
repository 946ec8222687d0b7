"""Aggregation and tables on fabricated run directories (no training)."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from _fake_runs import MODELS, make_runs, write_run
from astromorphic import tables
from astromorphic.tables import aggregate
from astromorphic.tables import context as table_context
from astromorphic.run_names import format_model_name
from astromorphic.tables import writers as table_writers

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference" / "paper_values.csv"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    runs, cfg = make_runs(root)
    out = root / "tables"
    assert aggregate.main(["--runs", str(runs), "--out", str(out / "runs.csv"), "--timing", str(root / "t.csv")]) == 0
    args = ["--config", str(cfg), "--summary", str(out / "runs_summary.csv"), "--runs", str(out / "runs.csv"),
            "--reference", str(REFERENCE), "--out-dir", str(out)]
    assert tables.main(args) == 0
    return root, out, args


def test_model_names_round_trip():
    assert aggregate.parse_model_name("astro") == ("astro", {})
    name = format_model_name("astro", {"m_scale_factor": 50.0, "alpha": 0.3})
    assert name == "astro@m_scale_factor=50@alpha=0.3"
    assert aggregate.parse_model_name(name) == ("astro", {"m_scale_factor": 50, "alpha": 0.3})
    with pytest.raises(ValueError):
        aggregate.parse_model_name("astro@alpha")


def test_the_tables_read_the_manifests_they_are_given_each_by_its_task(built, tmp_path):
    root, _, _ = built
    manifest = tmp_path / "prepared" / "manifest.json"  # the task is read from the manifest, not from its folder
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"task": "wikitext2", "source": "local", "synthetic": False, "tokenizer": "bpe"}))
    ctx = tables.load_context(root / "config.yaml", None, None, REFERENCE, [manifest])
    assert set(ctx.manifests) == {"wikitext2"} and ctx.tokenizer("wikitext2") == "bpe"
    assert tables.load_context(root / "config.yaml", None, None, REFERENCE).manifests == {}


def test_tidy_has_one_row_per_epoch_and_no_timing(built):
    _, out, _ = built
    tidy = pd.read_csv(out / "runs.csv")
    assert not [c for c in tidy.columns if c.startswith("time_")]
    assert list(tidy.columns[:8]) == ["task", "model", "preset", "overrides", "seed", "status", "synthetic", "epoch"]
    assert not tidy.duplicated(["task", "model", "seed", "epoch"]).any()
    diverged = tidy[(tidy.task == "wikitext2") & (tidy.model == "linearized")]
    assert diverged["epoch"].max() == 2 and set(diverged["status"]) == {"diverged"}
    summary = pd.read_csv(out / "runs_summary.csv")
    assert len(summary) == 2 * (3 * len(MODELS) + 1)
    row = summary[(summary.task == "imdb") & (summary.model == "astro") & (summary.seed == 0)].iloc[0]
    assert row["attn_ratio_init"] == pytest.approx(0.25) and row["synthetic"]


def test_every_table_in_every_format_says_synthetic(built):
    _, out, _ = built
    names = tables.available_tables(yaml.safe_load((built[0] / "config.yaml").read_text()))
    assert set(names) == {"table1", "learning_speed", "speedups", "table2", "tableS1", "tableS2", "tableS3", "controls"}
    for name in names:
        for ext in ("csv", "md", "tex", "html"):
            text = (out / f"{name}.{ext}").read_text()
            assert "synthetic stand-in" in text, (name, ext)


def test_table1_mean_sd_paper_difference_citations_diverged(built):
    _, out, _ = built
    t1 = pd.read_csv(out / "table1.csv")
    row = t1[(t1.task == "imdb") & (t1.model == "astro")].iloc[0]
    summary = pd.read_csv(out / "runs_summary.csv")
    accs = 100 * summary[(summary.task == "imdb") & (summary.model == "astro")]["final_test_acc"]
    assert row["mean"] == pytest.approx(accs.mean()) and row["sd"] == pytest.approx(accs.std(ddof=1))
    assert row["paper_value"] == pytest.approx(88.7) and row["difference"] == pytest.approx(accs.mean() - 88.7)
    cites = t1[t1.kind == "citation"]
    assert set(cites.model) == {"Spikformer", "LSTM", "AWD-LSTM"}
    assert all("citation, not run" in n for n in cites.note)
    lin = t1[(t1.task == "wikitext2") & (t1.model == "linearized")]
    assert (lin["n_diverged"] == 2).all() and lin["mean"].isna().all()
    md = (out / "table1.md").read_text()
    assert "diverged (2/2 seeds)" in md
    # word tokens: per-token and per-word perplexity coincide, so the LM has one row per model
    assert "test perplexity (per token = per word: word tokens)" in md
    lm = t1[(t1.task == "wikitext2") & (t1.kind == "run")]
    assert not lm["metric"].eq("test_word_ppl").any() and len(lm[lm.model == "astro"]) == 1
    assert lm["causal"].all() and "max Δ 0.0e+00: pass" in md  # the fake audits pass, prefix not recorded
    assert "astro-leaky (diagnostic: sees future tokens)" in md
    assert t1.loc[t1.model == "astro-leaky", "diagnostic"].all()
    for line in ("IMDB: embedding: learned token embedding; tokenizer: word; trained on the training split; "
                 "held out: test.", "CIFAR-10: embedding: pixels (convolutional stem); trained on the training "
                 "split; held out: test."):
        assert line in md, line
    # synthetic tokens are not GPT-2 tokens: no difference to the paper's perplexity is computed
    assert "not comparable (tokenization)" in md


def test_learning_speed_censoring_and_speedups(built):
    _, out, _ = built
    speed = pd.read_csv(out / "learning_speed.csv")
    imdb = speed[(speed.task == "imdb")].set_index("model")
    # the fabricated no-attention run never reaches 85 %: shown as not reached, not dropped
    assert imdb.loc["no-attention", "n_reached"] == 0 and math.isnan(imdb.loc["no-attention", "mean"])
    assert "not reached by epoch 6 (0/2 seeds)" in (out / "learning_speed.md").read_text()
    assert imdb.loc["astro", "paper_speedup_vs_linearized"] == pytest.approx((54 - 16) / 54)
    pairs = pd.read_csv(out / "speedups.csv")
    p = pairs[(pairs.task == "cifar10") & (pairs.fast == "astro") & (pairs.slow == "astro-no-relpos")].iloc[0]
    assert p["paper_speedup"] == pytest.approx((111 - 45) / 111)
    a, b = imdb.loc["astro", "mean"], imdb.loc["astro-no-relpos", "mean"]
    assert pairs[(pairs.task == "imdb") & (pairs.fast == "astro") & (pairs.slow == "astro-no-relpos")].iloc[0][
        "speedup"] == pytest.approx((b - a) / b)


def test_epochs_to_threshold():
    assert aggregate.epochs_to_threshold([0, 1, 2, 3], [0.5, 0.84, 0.85, 0.9], 0.85) == 2
    assert math.isnan(aggregate.epochs_to_threshold([0, 1], [0.5, float("nan")], 0.85))


def test_controls_welch_and_ratio(built):
    _, out, _ = built
    ctrl = pd.read_csv(out / "controls.csv")
    assert "no-attention" not in set(ctrl.model)
    row = ctrl[(ctrl.task == "imdb") & (ctrl.model == "astro")].iloc[0]
    assert row["diff_mean"] > 0 and 0 <= row["welch_p"] <= 1
    assert row["attn_ratio_final_mean"] == pytest.approx(0.6)
    assert math.isnan(tables.welch_p([1.0], [2.0, 3.0]))
    # the gate-only control: every preset's difference to it, and the value-sensitivity probe
    summary = pd.read_csv(out / "runs_summary.csv")
    acc = lambda m: 100 * summary[(summary.task == "imdb") & (summary.model == m)].sort_values("seed")[
        "final_test_acc"].to_numpy()  # noqa: E731
    assert row["gate_diff_mean"] == pytest.approx((acc("astro") - acc("astro-gate-only")).mean())
    assert row["value_sens_final_mean"] == pytest.approx(0.001) and row["value_sens_init_mean"] == pytest.approx(0.001)
    gate = ctrl[(ctrl.task == "imdb") & (ctrl.model == "astro-gate-only")].iloc[0]
    assert gate["value_sens_final_mean"] == 0 and math.isnan(gate["gate_diff_mean"])
    vanilla = ctrl[(ctrl.task == "imdb") & (ctrl.model == "vanilla")].iloc[0]
    assert vanilla["value_sens_final_mean"] == 1
    assert "Difference to astro-gate-only" in (out / "controls.md").read_text()


def test_table_s_from_config_and_table2_from_registry(built):
    _, out, _ = built
    s1 = pd.read_csv(out / "tableS1.csv").set_index("key")
    assert s1.loc["train.epochs", "value"] == "6" and s1.loc["train.epochs", "same"] == "no"
    assert s1.loc["model.d_model", "same"] == "yes"  # the fake config keeps the paper's width
    t2 = pd.read_csv(out / "table2.csv").set_index("preset")
    from astromorphic.presets import PRESETS

    assert list(t2.index) == list(PRESETS)


def test_tables_are_byte_identical_when_rebuilt(built, tmp_path):
    _, out, args = built
    again = tmp_path / "again"
    assert tables.main([*args[:-1], str(again)]) == 0
    for path in sorted(again.iterdir()):
        assert path.read_bytes() == (out / path.name).read_bytes(), path.name


def _special_table() -> table_context.Table:
    display = pd.DataFrame([["a_b & c", "50 % ± 2", "x|y", "< 0.001"], ["6", "0.850", "88.70", "—"]],
                           columns=["Key_1", "Ours (mean ± sd)", "P|Q", "Welch p"])
    return table_context.Table("special", "Special", "Cells with 5 % & more_chars.", display,
                        pd.DataFrame({"v": [1.0, 2.0]}), ["A note with 10 % & x_y."])


def test_markdown_is_a_pipe_table_with_pipes_escaped():
    md = table_writers.render_markdown(_special_table(), "real data (configuration: c_1)")
    lines = md.splitlines()
    assert lines[0] == "**Special.** Cells with 5 % & more_chars. Data: real data (configuration: c_1)."
    header, rule, first, second = lines[2:6]
    cells = [c.strip() for c in first.strip("|").split(" | ")]
    assert cells == ["a_b & c", "50 % ± 2", r"x\|y", "< 0.001"]
    assert r"P\|Q" in header and set(rule) <= set("|:-")
    assert "| 0.850 " in second and "| 88.70 " in second  # text, not re-parsed as numbers
    assert lines[-2:] == ["- A note with 10 % & x_y.", "- Data: real data (configuration: c_1)."]


def test_latex_escapes_cells_header_caption_and_notes():
    tex = table_writers.render_latex(_special_table(), "real data (configuration: c_1)")
    assert r"a\_b \& c & 50 \% $\pm$ 2 & x|y & $<$ 0.001 \\" in tex
    assert r"6 & 0.850 & 88.70 & --- \\" in tex
    assert r"Key\_1 & Ours (mean $\pm$ sd) & P|Q & Welch p \\" in tex
    assert r"\caption{Special. Cells with 5 \% \& more\_chars. Data: real data (configuration: c\_1).}" in tex
    assert r"\par\footnotesize A note with 10 \% \& x\_y." in tex
    assert r"\label{tab:special}" in tex and r"\begin{tabular}{llll}" in tex and r"\hline" in tex
    assert tex.rstrip().endswith(r"\end{table}")
    assert "±" not in tex and "—" not in tex


def test_html_escapes_cells_and_notes():
    page = table_writers.render_html(_special_table(), "real data (configuration: c_1)")
    assert "<td>a_b &amp; c</td>" in page and "<td>&lt; 0.001</td>" in page and "<td>x|y</td>" in page
    assert "<th>P|Q</th>" in page and "<td>88.70</td>" in page
    assert "<li>A note with 10 % &amp; x_y.</li>" in page
    assert "<p><b>Data: real data (configuration: c_1).</b></p>" in page
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")


def test_every_format_shows_every_cell(built):
    """Each cell of the Markdown table (header included) is in the LaTeX and the HTML table too."""
    _, out, _ = built
    md, page = (out / "table1.md").read_text(), (out / "table1.html").read_text()
    tex = (out / "table1.tex").read_text()
    rows = [line for line in md.splitlines() if line.startswith("|") and not set(line) <= set("|:-")]
    cells = {c.strip().replace(r"\|", "|") for row in rows for c in re.split(r"(?<!\\)\|", row)[1:-1]}
    assert {"Ours (mean ± sd)", "Ours − paper", "IMDB", "test accuracy (%)", "—"} <= cells
    assert any(c[:1].isdigit() and " ± " in c for c in cells)  # a mean ± sd cell
    for value in cells:
        assert f"<td>{html.escape(value, quote=False)}</td>" in page or f"<th>{value}</th>" in page, value
        latex = value.replace("%", r"\%").replace("_", r"\_").translate(table_writers.LATEX_SYMBOLS)
        assert latex in tex, value


def test_renderers_give_identical_bytes_twice():
    table = _special_table()
    for render in (table_writers.render_markdown, table_writers.render_latex, table_writers.render_html):
        assert render(table, "p").encode() == render(_special_table(), "p").encode()


def test_sweep_runs_are_kept_apart(tmp_path):
    runs, cfg_path = make_runs(tmp_path, tasks=("imdb",), seeds=(0, 1), epochs=3)
    for seed in (0, 1):
        write_run(runs, "imdb", "astro@m_scale_factor=50", seed, epochs=3)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["sweep"] = {"tasks": ["imdb"], "grid": [{"key": "m_scale_factor", "values": [50], "models": ["astro"]}]}
    cfg_path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "tables"
    aggregate.main(["--runs", str(runs), "--out", str(out / "runs.csv")])
    summary = pd.read_csv(out / "runs_summary.csv")
    sweep_rows = summary[summary.model == "astro@m_scale_factor=50"]
    assert set(sweep_rows.preset) == {"astro"} and set(sweep_rows.overrides) == {"m_scale_factor=50"}
    tables.main(["--config", str(cfg_path), "--summary", str(out / "runs_summary.csv"), "--runs", str(out / "runs.csv"),
                 "--reference", str(REFERENCE), "--out-dir", str(out)])
    t1 = pd.read_csv(out / "table1.csv")
    assert "astro@m_scale_factor=50" not in set(t1.model)  # sweep variants stay out of Table I
    sweep = pd.read_csv(out / "sweep.csv")
    assert sweep.iloc[0]["key"] == "m_scale_factor" and sweep.iloc[0]["n"] == 2


def test_sweep_values_in_numeric_order_with_the_resolved_default(tmp_path):
    """m = 64 before m = 1024 (not after, as the run names spell them), and the default an unset m_scale
    resolves to (m_scale_factor x d_model), not 'none'."""
    runs, cfg_path = make_runs(tmp_path, tasks=("imdb",), seeds=(0, 1), epochs=2)
    for value in (1024, 64, 8192):
        for seed in (0, 1):
            write_run(runs, "imdb", f"astro@m_scale={value}", seed, epochs=2)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["sweep"] = {"tasks": ["imdb"], "grid": [{"key": "m_scale", "values": [64, 1024, 8192], "models": ["astro"]}]}
    cfg_path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "tables"
    aggregate.main(["--runs", str(runs), "--out", str(out / "runs.csv")])
    tables.main(["--config", str(cfg_path), "--summary", str(out / "runs_summary.csv"), "--runs", str(out / "runs.csv"),
                 "--reference", str(REFERENCE), "--out-dir", str(out)])
    sweep = pd.read_csv(out / "sweep.csv")
    assert list(sweep["value"]) == [64, 1024, 8192]
    from astromorphic.config import resolve_task_config

    resolved = resolve_task_config(cfg, "imdb")
    attention, model = resolved["attention"], resolved["model"]
    assert attention.get("m_scale") is None
    assert set(sweep["base_value"]) == {attention["m_scale_factor"] * model["d_model"]}
    assert f"| {attention['m_scale_factor'] * model['d_model']:g} " in (out / "sweep.md").read_text()


def test_run_names_sort_by_preset_then_value_as_a_number():
    names = ["astro@m_scale=8192", "astro@m_scale=64", "astro@alpha=0.5", "astro-no-relpos@m_scale=2",
             "astro@m_scale=1024", "astro@alpha=0.25"]
    assert sorted(names, key=aggregate.run_name_order) == [
        "astro@alpha=0.25", "astro@alpha=0.5", "astro@m_scale=64", "astro@m_scale=1024", "astro@m_scale=8192",
        "astro-no-relpos@m_scale=2"]


def test_generated_schema_covers_the_library_and_rejects_bad_values_naming_the_key():
    """The workflow validates against the schema generated from astromorphic.config: it must know every key
    the library accepts, list the registry's presets, and reject what the library rejects."""
    import jsonschema

    from astromorphic.config import TrainConfig, json_schema
    from astromorphic.presets import PRESETS

    schema = json_schema()
    train = schema["$defs"]["ImdbTrain"]["properties"]
    assert set(TrainConfig.model_fields) <= set(train)
    assert set(schema["properties"]["models"]["items"]["enum"]) == set(PRESETS)
    validator = jsonschema.Draft202012Validator(schema)
    for change, key in [
        ({"models": ["vanila"]}, ["models", 0]),
        ({"seeds": 3}, ["seeds"]),
        ({"tasks": {"imdb": {"attention": {"alpha": 1.5}}}}, ["tasks", "imdb", "attention", "alpha"]),
        ({"tasks": {"imdb": {"attention": {"alpha": 0}}}}, ["tasks", "imdb", "attention", "alpha"]),
        ({"tasks": {"imdb": {"train": {"epocs": 1}}}}, ["tasks", "imdb", "train"]),
    ]:
        errors, paths = list(validator.iter_errors(change)), []
        stack = list(errors)
        while stack:  # an optional section reports its errors inside anyOf's context
            error = stack.pop()
            paths.append(list(error.absolute_path))
            stack += error.context or []
        assert errors and key in paths, (change, paths)


def test_ablation_runs_without_position_embedding_are_labelled_rows(tmp_path):
    """The Fig. 4 variants run again with position_embedding: none (config `ablation`): their own labelled rows,
    compared like for like, never mixed into the sweep."""
    runs, cfg_path = make_runs(tmp_path, tasks=("imdb",), seeds=(0, 1), epochs=12)
    for model in ("astro", "linearized"):
        for seed in (0, 1):
            write_run(runs, "imdb", f"{model}@position_embedding=none", seed, epochs=12)
    out = tmp_path / "tables"
    aggregate.main(["--runs", str(runs), "--out", str(out / "runs.csv")])
    tables.main(["--config", str(cfg_path), "--summary", str(out / "runs_summary.csv"), "--runs", str(out / "runs.csv"),
                 "--reference", str(REFERENCE), "--out-dir", str(out)])
    speed = pd.read_csv(out / "learning_speed.csv")
    ablated = speed[speed.model == "astro@position_embedding=none"].iloc[0]
    reference = speed[speed.model == "linearized@position_embedding=none"].iloc[0]
    assert math.isnan(reference["speedup_vs_linearized"])  # the reference of the ablated rows is ablated linearized
    expected = (reference["mean"] - ablated["mean"]) / reference["mean"]
    assert math.isfinite(expected) and ablated["speedup_vs_linearized"] == pytest.approx(expected)
    assert "astro (no absolute position embedding)" in (out / "learning_speed.md").read_text()
    assert "astro (no absolute position embedding)" in (out / "table1.md").read_text()
    assert not (out / "sweep.csv").exists() or "position_embedding" not in (out / "sweep.csv").read_text()
