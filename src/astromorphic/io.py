"""Atomic, deterministic file output.

Every file the pipeline writes goes through here: written to a temporary file in the same folder, flushed,
then renamed over the target, so a killed job never leaves a half-written file that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

# Temporary files of atomic writes: ``.<target name>.<random>.tmp`` beside the target.
TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    An ``OSError`` without a file name (a full disk, a failing device) is raised again naming ``target``.
    """
    target = Path(target)
    try:
        with _atomic_path(target) as tmp:
            yield tmp
    except OSError as exc:
        if exc.filename is not None or not exc.errno:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc


@contextlib.contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates the file with mode 0600; give the final file the usual umask-derived mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def temporary_files(folder: str | os.PathLike) -> list[Path]:
    """Temporary files of atomic writes in ``folder`` (left behind when a writer was killed)."""
    return sorted(p for p in Path(folder).glob(f"{TEMP_PREFIX}?*.?*{TEMP_SUFFIX}") if p.is_file())


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, dumps_json(obj))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def torch_save_atomic(obj: Any, target: str | os.PathLike) -> None:
    """``torch.save`` through :func:`atomic_path`; serialised in memory first, so that a failing disk gives an
    ``OSError`` naming ``target`` rather than a serialiser error."""
    import io as _stdio

    import torch

    buffer = _stdio.BytesIO()
    torch.save(obj, buffer)
    write_bytes(target, buffer.getbuffer())


def save_figure(fig, stem: str | os.PathLike, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Save a matplotlib figure without timestamps or software metadata, so equal data give equal bytes."""
    stem = Path(stem)
    written = []
    for fmt in formats:
        target = stem.with_suffix(f".{fmt}")
        metadata: dict[str, Any]
        if fmt == "png":
            metadata = {"Software": None}
        elif fmt == "pdf":
            metadata = {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}
        elif fmt == "svg":
            metadata = {"Date": None, "Creator": None}
        else:
            metadata = {}
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, metadata=metadata, dpi=150)
        written.append(target)
    return written
