"""The page itself: the findings notebook executed on the tables and exported without its code cells."""

from __future__ import annotations

import argparse
import base64
import shutil
from pathlib import Path
from typing import Any, Iterable
from astromorphic.io import atomic_path, write_text
from astromorphic.tables.aggregate import write_csv
from astromorphic.findings.base import load
from astromorphic.findings.claims import claims_frame
from astromorphic.tasks import REGISTRY

# The figures the page can show, by the name the notebook asks for (FIGURES[name]), with their alt text.
FIGURE_ALT = {
    "forest": "Forest plot of the paper's claims: our difference with its 95 % interval, the paper's difference marked",
    "lm": "WikiText-2: validation and test perplexity against epoch, each seed's selected epoch marked",
    **{f"speed_{t.name}": f"{t.display_name}: steps to a threshold over a range of thresholds, and the seeds "
                           "reaching each" for t in REGISTRY if t.speedup_pairs},
}


def figure_display(figures: dict[str, str], name: str) -> dict[str, str] | None:
    """The figure ``figures[name]`` as a display bundle: a Markdown link to its copy beside the page (findings.md,
    same file name) and the image itself, inlined (findings.html, which travels alone into the report). None when
    the page was not given that figure."""
    path = figures.get(name)
    if not path or not Path(path).is_file():
        return None
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    alt = FIGURE_ALT[name]
    return {"text/markdown": f"![{alt}]({Path(path).name})\n",
            "text/html": f'<img alt="{alt}" src="data:image/png;base64,{data}"/>'}


def parse_figures(items: list[str] | None) -> dict[str, str]:
    """``NAME=PATH`` items (``--figure``) as a dict; NAME one of FIGURE_ALT."""
    figures = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or name not in FIGURE_ALT:
            raise ValueError(f"--figure {item!r}: expected NAME=PATH with NAME one of {sorted(FIGURE_ALT)}")
        figures[name] = path
    return figures


def _inject_parameters(nb: Any, params: dict[str, Any]) -> None:
    """Insert a cell setting ``params`` after the cell tagged ``parameters`` (or first)."""
    import nbformat

    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    where = tagged[0] + 1 if tagged else 0
    source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    nb.cells.insert(where, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))


def render(notebook: str | Path, tables: str | Path | Iterable[str | Path], config_path: str | Path,
           out_dir: str | Path, timeout: int = 600, figures: dict[str, str | Path] | None = None) -> list[Path]:
    """Execute the findings notebook on ``tables`` (the CSV files, or a folder: astromorphic.findings.load) and
    write findings.md and findings.html (no code cells); ``figures`` (name -> PNG, names of FIGURE_ALT) are shown
    on the page and copied beside it."""
    import jupytext
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter, MarkdownExporter
    from traitlets.config import Config

    nb = jupytext.read(str(notebook))
    figures = {name: str(path) for name, path in (figures or {}).items()}
    tables = str(tables) if isinstance(tables, (str, Path)) else [str(path) for path in tables]
    _inject_parameters(nb, {"TABLES": tables, "CONFIG": str(config_path), "FIGURES": figures})
    for i, cell in enumerate(nb.cells):  # fixed cell ids: the exported HTML does not change between runs
        cell["id"] = f"cell-{i}"
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
    resources = {"metadata": {"name": "findings"}}
    out_dir = Path(out_dir)
    paths = []
    # Markdown prefers a display's Markdown (the figure as a link), HTML its HTML (the figure inlined).
    priority = {"MarkdownExporter": ["text/markdown", "text/html", "image/png", "text/plain"],
                "HTMLExporter": ["text/html", "text/markdown", "image/png", "text/plain"]}
    for exporter, ext in ((MarkdownExporter, "md"), (HTMLExporter, "html")):
        config = Config({"NbConvertBase": {"display_data_priority": priority[exporter.__name__]}})
        body, _ = exporter(config=config, exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(nb, resources=dict(resources))
        write_text(out_dir / f"findings.{ext}", body)
        paths.append(out_dir / f"findings.{ext}")
    for path in figures.values():
        copy = out_dir / Path(path).name
        with atomic_path(copy) as tmp:
            shutil.copyfile(path, tmp)
        paths.append(copy)
    return paths


def write_claims(tables: str | Path | Iterable[str | Path], config_path: str | Path, out: str | Path) -> Path:
    """The tidy table of the claims' comparisons (astromorphic.findings.claims_frame), for the forest plot."""
    write_csv(claims_frame(load(tables, config_path)), out)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astromorphic findings",
                                     description="Which of the paper's claims reproduce: the findings page.")
    parser.add_argument("--notebook", default="workflow/notebooks/findings.py", help="jupytext percent notebook")
    parser.add_argument("--tables", nargs="+", default=["results/tables"],
                        help="the tables' CSV files, or the folder that holds them (default: %(default)s)")
    parser.add_argument("--config", default="results/configs/all.yaml", help="the configuration snapshot")
    parser.add_argument("--out-dir", default="results/findings")
    parser.add_argument("--figure", action="append", metavar="NAME=PATH",
                        help=f"a figure (PNG) to show on the page and copy beside it; NAME one of {sorted(FIGURE_ALT)}"
                             " (repeat for several)")
    parser.add_argument("--claims", help="write the claims' comparisons (CSV) here, the forest plot's input")
    parser.add_argument("--no-page", action="store_true", help="only write --claims, no page")
    args = parser.parse_args(argv)
    try:
        figures = parse_figures(args.figure)
    except ValueError as error:
        parser.error(str(error))
    if args.no_page and not args.claims:
        parser.error("--no-page writes nothing without --claims PATH: give the path of the claims CSV")
    if args.claims:
        print(f"findings: wrote {write_claims(args.tables, args.config, args.claims)}")
    if not args.no_page:
        for path in render(args.notebook, args.tables, args.config, args.out_dir, figures=figures):
            print(f"findings: wrote {path}")
    return 0
