"""Figures: one module per figure, one ``plot(...)`` function each; ``astromorphic plot FIGURE ...``.

* ``fig4``      Fig. 4(a) IMDB / 4(b) CIFAR-10: test accuracy against epoch, four variants   (``fig4.py``)
* ``lm``        WikiText-2 perplexity against epoch for every preset, diverged runs marked  (``lm_curves.py``)
* ``figS2``     Fig. S2: attention time and memory against N, from the benchmark          (``figS2.py``)
* ``fig3``      Fig. 3: astrocyte Ca2+ against presynaptic spike frequency               (``fig3.py``)
* ``controls``  the attention probes (magnitude, value sensitivity) against epoch        (``controls.py``)
* ``sweep``     the metric against a swept attention constant, no-attention level drawn   (``sweep.py``)
* ``forest``    the paper's Table I pairs: our difference and interval, the paper's marked (``forest.py``)
* ``speed_thresholds``  steps to a threshold over a range of thresholds, one task      (``speed_thresholds.py``)

Every figure is written as PNG and PDF without metadata (``astromorphic.io.save_figure``), so equal inputs give
equal bytes, and says in its title whether it comes from synthetic stand-in data.
"""

from __future__ import annotations

import argparse
import importlib

from astromorphic.tasks import FIG4_PANELS, LM_TASKS, TASK_NAMES, get as task_get

FIGURES = {
    "fig4": "astromorphic.plotting.fig4",
    "lm": "astromorphic.plotting.lm_curves",
    "figS2": "astromorphic.plotting.figS2",
    "fig3": "astromorphic.plotting.fig3",
    "controls": "astromorphic.plotting.controls",
    "sweep": "astromorphic.plotting.sweep",
    "forest": "astromorphic.plotting.forest",
    "speed_thresholds": "astromorphic.plotting.speed_thresholds",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="astromorphic plot", description="Draw one figure (PNG and PDF).")
    sub = parser.add_subparsers(dest="figure", required=True, metavar="FIGURE")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--out", required=True, help="output path without extension (PNG and PDF are written)")
        p.add_argument("--label", help="configuration label printed on the figure")
        return p

    p = add("fig4", "test accuracy against epoch, four variants (Fig. 4)")
    p.add_argument("--runs", required=True, help="tidy per-epoch CSV (astromorphic aggregate)")
    p.add_argument("--task", required=True, choices=list(FIG4_PANELS))
    p.add_argument("--threshold", type=float, help="learning-speed threshold drawn as a line (fraction)")

    p = add("lm", "perplexity against epoch for every preset")
    p.add_argument("--runs", required=True, help="tidy per-epoch CSV (astromorphic aggregate)")
    p.add_argument("--summary", help="per-run summary CSV, to mark diverged runs")
    p.add_argument("--task", default=LM_TASKS[0])

    p = add("figS2", "attention time and memory against N (Fig. S2)")
    p.add_argument("--bench", required=True, help="CSV of `astromorphic bench attention`")

    p = add("fig3", "astrocyte Ca2+ against presynaptic spike frequency (Fig. 3)")
    p.add_argument("--sweep", required=True, help="sweep.csv of `astromorphic simulate`")
    p.add_argument("--fit", required=True, help="fit.csv of `astromorphic simulate`")

    p = add("controls", "attention-magnitude probe against epoch")
    p.add_argument("--runs", required=True, help="tidy per-epoch CSV (astromorphic aggregate)")

    p = add("sweep", "task metric against one swept attention constant (log axis), no-attention level drawn")
    p.add_argument("--sweep", required=True, help="sweep.csv of `astromorphic tables`")
    p.add_argument("--summary", required=True, help="per-run summary CSV (astromorphic aggregate)")
    p.add_argument("--config", required=True, help="the configuration the runs used (for the default value)")
    p.add_argument("--task", default=TASK_NAMES[0])
    p.add_argument("--key", default="m_scale", help="swept key, e.g. m_scale, m_scale_factor, alpha, tau")

    p = add("forest", "the paper's Table I pairs: our difference with its interval, the paper's difference marked")
    p.add_argument("--claims", required=True, help="claims CSV of `astromorphic findings --claims`")

    p = add("speed_thresholds", "steps to a threshold over a range of thresholds, and the seeds reaching each")
    p.add_argument("--curves", required=True, help="learning curves CSV (astromorphic aggregate --curves)")
    p.add_argument("--runs", required=True, help="tidy per-epoch CSV (astromorphic aggregate)")
    p.add_argument("--config", required=True, help="the configuration the runs used (thresholds, report section)")
    p.add_argument("--task", required=True, choices=[t for t in TASK_NAMES if task_get(t).speedup_pairs])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(FIGURES[args.figure])
    if args.figure == "fig4":
        paths = module.plot(args.runs, args.task, args.out, threshold=args.threshold, label=args.label)
    elif args.figure == "lm":
        paths = module.plot(args.runs, args.out, task=args.task, label=args.label, summary_csv=args.summary)
    elif args.figure == "figS2":
        paths = module.plot(args.bench, args.out, label=args.label)
    elif args.figure == "fig3":
        paths = module.plot(args.sweep, args.fit, args.out, label=args.label)
    elif args.figure == "speed_thresholds":
        paths = module.plot(args.curves, args.runs, args.config, args.task, args.out, label=args.label)
    elif args.figure == "forest":
        paths = module.plot(args.claims, args.out, label=args.label)
    elif args.figure == "sweep":
        paths = module.plot(args.sweep, args.summary, args.config, args.out, task=args.task, key=args.key,
                            label=args.label)
    else:
        paths = module.plot(args.runs, args.out, label=args.label)
    for path in paths or []:
        print(f"plot {args.figure}: {path}")
    return 0
