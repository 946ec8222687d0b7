"""Run names: a preset with the configuration keys it overrides, ``astro@m_scale=32`` (a sweep point or an
ablation variant), the name of its run directory. Standard library only: configuration, runs, tables and the
workflow read it."""

from __future__ import annotations

import re
from typing import Any

_OVERRIDE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>[^@/=]+)$")


def parse_model_name(name: str) -> tuple[str, dict[str, Any]]:
    """``"astro@m_scale_factor=50@tau=8"`` -> ``("astro", {"m_scale_factor": 50, "tau": 8})``."""
    preset, *parts = name.split("@")
    overrides: dict[str, Any] = {}
    for part in parts:
        match = _OVERRIDE.match(part)
        if not match:
            raise ValueError(f"model name {name!r}: override {part!r} is not <key>=<value>")
        overrides[match["key"]] = _parse_number(match["value"])
    return preset, overrides


def format_model_name(preset: str, overrides: dict[str, Any] | None = None) -> str:
    """Inverse of :func:`parse_model_name`; keys keep the given order."""
    parts = [preset] + [f"{key}={format_value(value)}" for key, value in (overrides or {}).items()]
    return "@".join(parts)


def format_value(value: Any) -> str:
    """The exact spelling of a swept value in a directory name: it reads back (:func:`parse_model_name`) as an
    equal number. Integers as written (``1234567``), integral floats like the integer (``1.0`` -> ``1``),
    other floats by ``repr`` (``0.25``, ``1e-05``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    return str(value)


def _parse_number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
