"""The locked environment: ``requirements-lock.txt``, every package the project installs pinned with its hashes.

``make lock`` writes it (``uv pip compile --generate-hashes``) from pyproject.toml's dependencies, its
``workflow`` and ``test`` extras and the torch pair of ``requirements-torch.txt`` (a constraint of the lock),
then ``python -m astromorphic.lock stamp`` records the digest of those inputs (:func:`inputs_digest`) in the
lock, so a test can tell a dependency edited without re-locking. ``make setup`` installs exactly the lock.

Standard library only: ``make lock`` runs it before any environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = "requirements-lock.txt"
TORCH_PINS = "requirements-torch.txt"  # the tested torch/torchvision pair; the lock is compiled under it
LOCKED_EXTRAS = ("workflow", "test")  # gpt2 (tiktoken) is optional and not locked
DIGEST_LINE = "# inputs-sha256: "  # what `stamp` writes into the lock
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: tuple[str, ...]


class LockError(ValueError):
    """A lock file that cannot be read; the message names the file and the fix."""


def canonical(name: str) -> str:
    """The normalised name of a distribution (PEP 503): ``PyYAML`` and ``pyyaml`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: str | Path) -> dict[str, Pin]:
    """Canonical name -> its pin and hashes, from a lock in pip's requirements format."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LockError(f"{path}: {exc.strerror or exc}; `make lock` writes it") from exc
    pins: dict[str, list] = {}
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if match := _PIN.match(stripped):
            current = canonical(match.group(1))
            pins[current] = [match.group(2), []]
        elif stripped.startswith("-") and not stripped.startswith("--hash"):
            raise LockError(f"{path}: unexpected option line {stripped!r}; regenerate it with `make lock`")
        if current is not None:
            pins[current][1] += _HASH.findall(stripped)
    if not pins:
        raise LockError(f"{path}: no `name==version` pins; regenerate it with `make lock`")
    return {name: Pin(version, tuple(hashes)) for name, (version, hashes) in pins.items()}


def lock_inputs(root: str | Path = ".") -> dict:
    """What the lock is compiled from: pyproject's dependencies and locked extras, and the torch pins."""
    root = Path(root)
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    missing = [extra for extra in LOCKED_EXTRAS if extra not in extras]
    if missing:
        raise LockError(f"pyproject.toml has no extra {', '.join(missing)}: update LOCKED_EXTRAS in "
                        "astromorphic/lock.py and the Makefile's `lock` target, then run `make lock`")
    torch = [line.split("#")[0].strip() for line in (root / TORCH_PINS).read_text(encoding="utf-8").splitlines()]
    return {
        "dependencies": sorted(project.get("dependencies", [])),
        "extras": {extra: sorted(extras[extra]) for extra in LOCKED_EXTRAS},
        "constraints": sorted(line for line in torch if line),
        "python": project.get("requires-python", ""),
    }


def inputs_digest(root: str | Path = ".") -> str:
    """sha256 of :func:`lock_inputs` (order of the lists ignored)."""
    return hashlib.sha256(json.dumps(lock_inputs(root), sort_keys=True).encode()).hexdigest()


def recorded_digest(path: str | Path) -> str | None:
    """The digest ``stamp`` wrote into the lock, or None."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(DIGEST_LINE):
            return line[len(DIGEST_LINE):].strip()
    return None


def stamp(path: str | Path, root: str | Path = ".") -> str:
    """Write (or replace) the digest line of the lock, after its header comments."""
    path = Path(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith(DIGEST_LINE)]
    at = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    digest = inputs_digest(root)
    lines.insert(at, f"{DIGEST_LINE}{digest}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return digest


def version_differences(packages: dict[str, str], pins: dict[str, Pin]) -> list[str]:
    """``"pandas 2.2.3 (locked 2.3.1)"`` for each package of ``packages`` (a run's ``packages``: name -> version)
    that the lock pins at another version; packages the lock does not hold (python, astromorphic) are skipped."""
    out = []
    for name, version in sorted(packages.items()):
        pin = pins.get(canonical(name))
        if pin is not None and str(version) != pin.version:
            out.append(f"{name} {version} (locked {pin.version})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m astromorphic.lock", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("stamp", help="record the digest of the lock's inputs in the lock (run by `make lock`)")
    cmd.add_argument("lock", nargs="?", default=LOCK_FILE)
    args = parser.parse_args(argv)
    try:
        read_lock(args.lock)
        print(f"{args.lock}: inputs-sha256 {stamp(args.lock)}")
    except (LockError, OSError) as exc:
        print(f"astromorphic.lock: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
