"""``astromorphic simulate``: the frequency sweep and its fits written to a folder (see the package docstring)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from astromorphic.neuroglia.fit import fit_table, r_ip3_sweeps
from astromorphic.neuroglia.model import sweep
from astromorphic.neuroglia.params import PAPER_ALPHA, SynapseParams
from astromorphic.config import ConfigError, SimulationConfig, describe_error
from astromorphic.io import write_json, write_text
from astromorphic.config import apply_overrides

WORKFLOW_KEYS = ("enabled", "resources")


def resolve_simulation_config(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``simulation`` section of a configuration, validated by ``astromorphic.config.SimulationConfig``
    (which holds the defaults), with every constant in ``params`` checked against :class:`SynapseParams`.

    ``enabled`` and ``resources`` belong to the workflow: checked, then left out of the result. Errors are
    ``ValueError`` (``astromorphic.config.ConfigError``) naming the key, e.g. ``simulation.n_trains``."""
    from pydantic import ValidationError

    try:
        model = SimulationConfig.model_validate(dict(section or {}))
    except ValidationError as exc:
        raise ConfigError(f"simulation.{describe_error(exc)}") from None
    cfg = model.model_dump(mode="python", exclude=set(WORKFLOW_KEYS))
    cfg["params"] = dict(cfg["params"])
    SynapseParams.from_dict(cfg["params"])  # fail early on an unknown constant
    cfg["frequencies"] = [float(f) for f in cfg["frequencies"]]
    return cfg


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="astromorphic simulate",
        description="Simulate the tripartite synapse over presynaptic spike frequencies (Fig. 3 data).",
    )
    ap.add_argument("--config", help="YAML configuration; its `simulation` section is used (or the whole file)")
    ap.add_argument("--out-dir", help="folder for sweep.csv, fit.csv, params.csv, simulation.json (required)")
    ap.add_argument("--frequencies", type=float, nargs="+", help="presynaptic rates in Hz")
    ap.add_argument("--n-trains", type=int)
    ap.add_argument("--duration-s", type=float)
    ap.add_argument("--warmup-s", type=float)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--rtol", type=float)
    ap.add_argument("--method", choices=["RK45", "RK23", "DOP853", "LSODA", "Radau", "BDF"])
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="override one constant")
    ap.add_argument("--list-params", action="store_true", help="print the constants with units and sources, then exit")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(list(argv))


def _csv_text(df: "Any") -> str:
    return df.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def main(argv: Sequence[str] | None = None) -> int:
    import pandas as pd

    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if args.list_params:
        table = SynapseParams().table()
        print(table[["name", "value", "unit", "kind", "source"]].to_string(index=False))
        return 0
    if not args.out_dir:
        print("astromorphic simulate: --out-dir is required", file=sys.stderr)
        return 2
    section: dict[str, Any] = {}
    if args.config:
        import yaml

        with open(args.config, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        section = dict(doc.get("simulation", doc) or {}) if isinstance(doc, dict) else {}
    for key in ("frequencies", "n_trains", "duration_s", "warmup_s", "seed", "rtol", "method"):
        value = getattr(args, key)
        if value is not None:
            section[key] = value
    if args.param:  # NAME=VALUE, read like every other override (astromorphic.config.apply_overrides)

        section = apply_overrides(section, [f"params.{item}" for item in args.param])
    cfg = resolve_simulation_config(section)
    p = SynapseParams.from_dict(cfg["params"])

    sweep_args = (cfg["frequencies"], cfg["n_trains"], cfg["duration_s"], cfg["seed"])
    options = dict(warmup_s=cfg["warmup_s"], method=cfg["method"], rtol=cfg["rtol"], progress=not args.quiet)
    start = time.perf_counter()
    df = sweep(*sweep_args, p, **options)
    main_s = time.perf_counter() - start
    variants = r_ip3_sweeps(*sweep_args, p, **options)
    sim_s = time.perf_counter() - start
    fits = fit_table({1.0: df, **variants}, p.r_ip3, column=cfg["fit_column"], n_boot=cfg["n_boot"], seed=cfg["seed"])

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "sweep.csv", _csv_text(df))
    write_text(out / "sweep_r_ip3.csv", _csv_text(pd.concat(list(variants.values()), ignore_index=True)))
    write_text(out / "fit.csv", _csv_text(fits))
    write_text(out / "params.csv", _csv_text(p.table()))
    n_runs = len(df) * (1 + len(variants))
    timing = {"wall_time_s": round(sim_s, 3), "wall_time_main_sweep_s": round(main_s, 3), "n_runs": n_runs}
    records = fits.astype(object).where(fits.notna(), None).to_dict(orient="records")
    write_json(out / "simulation.json",
               {"config": cfg, "params": p.to_dict(), **timing, "fit": records[0], "fits": records})  # fmt: skip
    if not args.quiet:
        _print_fits(fits, n_runs, sim_s, out)
    return 0


def _print_fits(fits: "Any", n_runs: int, sim_s: float, out: Path) -> None:
    main_fit = fits.iloc[0]
    others = ", ".join(f"{r.fit} {r.alpha:.3f}" for r in fits.iloc[1:].itertuples())
    print(
        f"alpha = {main_fit['alpha']:.3f} [{main_fit['ci_low']:.3f}, {main_fit['ci_high']:.3f}] (paper {PAPER_ALPHA}); "
        f"increasing={main_fit['curve_increasing']} concave={main_fit['curve_concave']}; {others}; "
        f"{n_runs} runs in {sim_s:.1f} s -> {out}",
        file=sys.stderr,
    )
