"""Value types of the configuration (:mod:`astromorphic.config`) and its strict YAML reader.

Numbers, integers, seeds and preset names with the ranges the code accepts: a seed is an integer within
0..2**63-1 (what ``torch.manual_seed`` and the run's derived generator seeds take), so that a configuration that
validates also runs. :class:`UniqueKeyLoader` reads YAML refusing a key written twice in one mapping (plain
YAML keeps the last), naming the line of both.
"""

from __future__ import annotations

import argparse
import math
from functools import partial
from typing import Annotated, Any, Union

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, WithJsonSchema

from astromorphic import tasks

MAX_SEED = 2**63 - 1


def _to_number(value: Any) -> Any:
    """Numbers stay as written (500 stays an int); ``"1e-3"`` (YAML 1.1 reads it as a string) becomes 0.001."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"must be a number, got {value!r}") from None
    if isinstance(value, (int, float)) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


def _check_bounds(value: Any, *, gt=None, ge=None, lt=None, le=None) -> Any:
    for bound, ok, word in ((gt, lambda b: value > b, ">"), (ge, lambda b: value >= b, ">="),
                            (lt, lambda b: value < b, "<"), (le, lambda b: value <= b, "<=")):  # fmt: skip
        if bound is not None and not ok(bound):
            raise ValueError(f"must be {word} {bound:g}, got {value!r}")
    return value


def Real(*, gt=None, ge=None, lt=None, le=None):  # noqa: N802 - a type factory, used like a type
    """A finite number (int or float, kept as written) within the given bounds."""
    schema: dict[str, Any] = {"type": "number"}
    for key, bound in (("exclusiveMinimum", gt), ("minimum", ge), ("exclusiveMaximum", lt), ("maximum", le)):
        if bound is not None:
            schema[key] = bound
    return Annotated[
        Union[StrictInt, float],
        BeforeValidator(_to_number),
        AfterValidator(partial(_check_bounds, gt=gt, ge=ge, lt=lt, le=le)),
        WithJsonSchema(schema),
    ]


PosInt = Annotated[StrictInt, Field(ge=1)]
NonNegInt = Annotated[StrictInt, Field(ge=0)]


def unique_items(values: list) -> list:
    seen: list = []
    for v in values:
        if any(v == s for s in seen):  # 1 and 1.0 are the same value
            raise ValueError(f"values must be unique, {v!r} appears twice")
        seen.append(v)
    return values


def _known_preset(name: str) -> str:
    # deferred: the preset registry imports torch; the configuration is read without it
    from astromorphic.presets import preset_names

    names = preset_names()
    if name not in names:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(names)}")
    return name


def _preset_enum(schema: dict) -> None:
    # deferred: the preset registry imports torch; the configuration is read without it
    from astromorphic.presets import preset_names

    schema["enum"] = preset_names()


ModelName = Annotated[str, AfterValidator(_known_preset), Field(json_schema_extra=_preset_enum)]


Seed = Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]


def seed_arg(text: str) -> int:
    """argparse type of a ``--seed``: an integer within 0..2**63-1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed within 0..2**63-1, got {value}")
    return value


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping holding one key twice (``seeds:`` written twice)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader reports it
                    break
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"duplicate key {key!r} (first at line {first.line + 1}); keep one", key_node.start_mark,
                    )  # fmt: skip
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def check_unique_keys(path) -> None:
    """:class:`yaml.YAMLError` when the YAML file at ``path`` writes a key twice in one mapping."""
    with open(path, encoding="utf-8") as fh:
        yaml.load(fh, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader


TASKS = tasks.TASK_NAMES
LM_TASKS = tasks.LM_TASKS


class Section(BaseModel):
    """Unknown keys are errors; defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
