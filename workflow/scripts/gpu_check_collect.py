"""Tables of the GPU check (workflow/scripts/gpu_check.sh), from what its stages left behind.

    python gpu_check_collect.py environment OUT.csv
    python gpu_check_collect.py junit JUNIT.xml OUT.csv
    python gpu_check_collect.py runs OUT.csv RUN_DIR [RUN_DIR ...]

Standard library and torch only (the GPU machine has neither pandas' extras nor the workflow's packages
beyond what the check installs), so that the collection works whatever stage failed before it.
"""

from __future__ import annotations

import csv
import importlib
import json
import platform
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def _write(path: str, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or ["empty"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _version(module: str) -> str:
    try:
        return getattr(importlib.import_module(module), "__version__", "?")
    except Exception as err:  # noqa: BLE001 - the table says what is missing
        return f"missing ({type(err).__name__})"


def environment(out: str) -> None:
    """key,value rows: the device, the library versions and the causal kernel each dtype gets."""
    import torch

    rows = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda or "",
        "triton": _version("triton"),
        "pydantic": _version("pydantic"),
        "numpy": _version("numpy"),
        "host_cpus": str(__import__("os").cpu_count()),
        "cuda_available": str(torch.cuda.is_available()),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        rows.update(
            gpu=torch.cuda.get_device_name(0),
            gpu_memory_gib=f"{props.total_memory / 2**30:.1f}",
            gpu_capability=f"{props.major}.{props.minor}",
            gpu_count=str(torch.cuda.device_count()),
        )
    try:
        from astromorphic import kernels

        device = "cuda" if torch.cuda.is_available() else "cpu"
        for dtype in ("float32", "bfloat16"):
            rows[f"causal_kernel_{device}_{dtype}"] = kernels.selected_causal_kernel(device, getattr(torch, dtype))
    except Exception as err:  # noqa: BLE001
        rows["causal_kernel"] = f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    _write(out, [{"key": k, "value": v} for k, v in rows.items()])


def junit(xml_file: str, out: str) -> None:
    """One row per test: test, outcome (passed, failed, error, skipped), seconds, message (first line)."""
    rows = []
    if Path(xml_file).exists():
        for case in ET.parse(xml_file).getroot().iter("testcase"):
            outcome, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                found = case.find(tag)
                if found is not None:
                    outcome = "failed" if tag == "failure" else tag
                    message = (found.get("message") or found.text or "").strip().splitlines()[:1]
                    message = message[0][:300] if message else ""
                    break
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            rows.append({"test": name, "outcome": outcome, "seconds": case.get("time", ""), "message": message})
    _write(out, rows)


RUN_KEYS = ("status", "device", "precision", "causal_kernel", "n_parameters")


def runs(out: str, run_dirs: list[str]) -> None:
    """Every epoch row of each run's metrics.csv, with the task, model and a few run.json keys in front."""
    rows = []
    for folder in map(Path, run_dirs):
        record = {}
        if (folder / "run.json").exists():
            record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        head = {"task": record.get("task", folder.parent.parent.name), "model": record.get("model", folder.parent.name)}
        for key in RUN_KEYS:
            value = record.get(key)
            if key == "device" and isinstance(value, dict):
                value = value.get("name") or value.get("type")
            if isinstance(value, dict):  # e.g. precision: {"dtype": ..., "tf32": ...}
                head.update({f"run_{key}_{k}": v for k, v in value.items() if not isinstance(v, (dict, list))})
            elif value is not None:
                head[f"run_{key}"] = value
        metrics = folder / "metrics.csv"
        if not metrics.exists():
            rows.append({**head, "note": "no metrics.csv (the stage failed or was stopped before an epoch ended)"})
            continue
        with open(metrics, newline="", encoding="utf-8") as handle:
            rows += [{**head, **row} for row in csv.DictReader(handle)]
    _write(out, rows)


def main(argv: list[str]) -> int:
    what, *args = argv
    {"environment": environment, "junit": junit}.get(what, lambda *a: runs(a[0], list(a[1:])))(*args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
