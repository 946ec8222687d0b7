"""`astromorphic records page`: a rendered findings page and exactly the figures it shows, into the records folder
it was rendered from."""

from __future__ import annotations

from pathlib import Path

import pytest

from astromorphic.findings.publish import PublishError, page_figures, publish_page
from astromorphic.runs import records_command

PAGE = """# Findings

- Runs read from committed records ({folder}): {used} of {total}; all made by the current code.

![Forest plot](forest_claims.png)

text

![IMDB speed](speed_thresholds_imdb.png)

![Forest plot again](forest_claims.png)
"""


def _rendered(tmp_path: Path, folder: str = "results/reference/set", used: int = 4, total: int = 4,
              figures=("forest_claims.png", "speed_thresholds_imdb.png", "lm_perplexity.png")) -> tuple[Path, Path]:
    """A rendered results/findings (with a stale figure of another rendering) and a records folder."""
    findings = tmp_path / "results" / "findings"
    findings.mkdir(parents=True)
    (findings / "findings.md").write_text(PAGE.format(folder=folder, used=used, total=total))
    for name in figures:
        (findings / name).write_bytes(b"png of " + name.encode())
    records = tmp_path / "results" / "reference" / "set"
    (records / "runs").mkdir(parents=True)
    return findings, records


def test_page_figures_are_its_local_images_each_once():
    assert page_figures(PAGE) == ["forest_claims.png", "speed_thresholds_imdb.png"]
    with pytest.raises(PublishError, match="outside its folder: ../figures/a.png"):
        page_figures("![a](../figures/a.png)")


def test_publish_copies_the_page_and_exactly_its_figures_and_removes_stale_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    findings, records = _rendered(tmp_path)
    (records / "speed_thresholds_cifar10.png").write_bytes(b"a figure the new page no longer shows")
    (records / "verification.json").write_text("{}")
    assert records_command.main(["page", "--findings", str(findings), "--out", "results/reference/set"]) == 0
    out = capsys.readouterr().out
    assert "findings.md" in out and "removed figures the page no longer shows: speed_thresholds_cifar10.png" in out
    assert sorted(p.name for p in records.iterdir()) == ["findings.md", "forest_claims.png", "runs",
                                                         "speed_thresholds_imdb.png", "verification.json"]
    assert (records / "forest_claims.png").read_bytes() == b"png of forest_claims.png"
    assert (records / "findings.md").read_text() == (findings / "findings.md").read_text()
    assert not list(records.glob(".*"))  # no temporary file left beside them


@pytest.mark.parametrize(
    "kw, says",
    [
        (dict(folder="results/reference/other"), "rendered from the records in results/reference/other, not"),
        (dict(used=3), "read 3 of its 4 runs from"),
        (dict(figures=("forest_claims.png",)), "shows figures that are not in"),
    ],
)
def test_a_page_of_other_runs_or_without_its_figures_is_refused_and_nothing_is_written(tmp_path, monkeypatch, capsys,
                                                                                        kw, says):
    monkeypatch.chdir(tmp_path)
    findings, records = _rendered(tmp_path, **kw)
    assert records_command.main(["page", "--findings", str(findings), "--out", "results/reference/set"]) == 1
    err = capsys.readouterr().err
    assert says in err and "astromorphic records: error:" in err
    assert [p.name for p in records.iterdir()] == ["runs"]


def test_a_page_of_trained_runs_or_a_folder_without_runs_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    findings, records = _rendered(tmp_path)
    (findings / "findings.md").write_text("- Every run was trained by this workflow with the current code.\n")
    with pytest.raises(PublishError, match="names no records folder"):
        publish_page(findings, records)
    (records / "runs").rmdir()
    with pytest.raises(PublishError, match="not a records folder"):
        publish_page(findings, records)
    with pytest.raises(PublishError, match="no findings page"):
        publish_page(tmp_path / "nowhere", records)
