"""Publishing a rendered findings page beside the records it was computed from.

A committed page (``results/reference/<label slug>/findings.md``) is ``results/findings/findings.md`` of a
rendering from that records folder, with exactly the figures it shows. :func:`publish_page` copies the page and
the images it links, and nothing else: a figure left in ``results/findings`` by an earlier rendering of another
configuration is not carried along, and a figure of the folder that the new page no longer shows is removed. It
refuses a page that was not rendered from that folder, or that aggregated runs the folder does not hold (export
them first), naming the fix. Each file is written atomically (:func:`astromorphic.io.write_bytes`), so an
interrupted copy leaves no half-written file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from astromorphic import io as aio

PAGE = "findings.md"
FIGURE_SUFFIX = ".png"
# ![alt](name.png): the page's images, local files beside it
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
# the provenance line of the page (astromorphic.findings.base.records_note)
_SOURCE = re.compile(r"Runs read from committed records \((?P<folder>[^)]+)\): (?P<used>\d+) of (?P<total>\d+)")


class PublishError(RuntimeError):
    """A page that cannot be published into that folder; the message names the fix."""


@dataclass
class Published:
    copied: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def page_figures(text: str) -> list[str]:
    """The local images a page links, in order, each once (links with a scheme or a folder are not figures of
    the page's own folder and are refused)."""
    names = list(dict.fromkeys(_IMAGE.findall(text)))
    foreign = [n for n in names if "/" in n or ":" in n]
    if foreign:
        raise PublishError(f"the page links images outside its folder: {', '.join(foreign)}")
    return names


def _same_folder(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def check_source(text: str, records: Path, page: Path) -> None:
    """The page must say that it read every run from ``records``."""
    found = _SOURCE.search(text)
    fix = f"render it with `--config records={records}`"
    if found is None:
        raise PublishError(f"{page} names no records folder (every run was trained): {fix}")
    if not _same_folder(found["folder"], records):
        raise PublishError(f"{page} was rendered from the records in {found['folder']}, not {records}: {fix}")
    if found["used"] != found["total"]:
        raise PublishError(f"{page} read {found['used']} of its {found['total']} runs from {records}; the others "
                           f"were trained: export them first (`astromorphic records export --out {records}`), then "
                           "render again")


def publish_page(findings: str | Path, records: str | Path) -> Published:
    """Copy ``findings``/findings.md and the figures it links into the records folder ``records``; remove the
    folder's figures the page does not link. The page goes last, so that it never names a figure not yet there."""
    findings, records = Path(findings), Path(records)
    page = findings / PAGE
    if not page.is_file():
        raise PublishError(f"{page}: no findings page; render one first (snakemake ... --config records={records})")
    if not (records / "runs").is_dir():
        raise PublishError(f"{records}: not a records folder (no runs/ in it); export one with "
                           "`astromorphic records export`")
    text = page.read_text()
    check_source(text, records, page)
    figures = page_figures(text)
    missing = [name for name in figures if not (findings / name).is_file()]
    if missing:
        raise PublishError(f"{page} shows figures that are not in {findings}: {', '.join(missing)}; render again")
    done = Published()
    for name in figures + [PAGE]:
        aio.write_bytes(records / name, (findings / name).read_bytes())
        done.copied.append(name)
    for stale in sorted(records.glob(f"*{FIGURE_SUFFIX}")):
        if stale.name not in figures:
            stale.unlink()
            done.removed.append(stale.name)
    return done
