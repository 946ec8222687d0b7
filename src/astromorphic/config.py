"""Loading, defaulting and validating the pipeline configuration (``config/*.yaml``).

A configuration names the tasks to run and, per task, four sections: ``data`` (options of
``astromorphic prepare``), ``model`` (sizes), ``attention`` (the astromorphic constants) and ``train``
(optimisation and run-time settings); ``resources`` is read only by the workflow. ``DEFAULTS`` holds the
value used for every key a configuration leaves out. The model sizes, learning rates, batch sizes and
epoch counts default to the paper's (SPEC.md section 3), so ``resolve_task_config({}, task)`` is the
paper's set-up; the remaining defaults are our documented choices (SPEC.md section 3, "Not in the paper").

Validation happens in two layers, both before any data is read or any model is built:

* structure, against ``workflow/schemas/config.schema.yaml`` when that file is present (``load_config``);
* meaning, in ``validate_run``: every error is a ``ValueError`` whose message starts with the key path,
  e.g. ``tasks.imdb.train.lr must be > 0, got -0.1``.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

TASKS = ("imdb", "cifar10", "wikitext2")
CLASSIFICATION_TASKS = ("imdb", "cifar10")
LM_TASKS = ("wikitext2",)


SCHEDULES = ("constant", "cosine")
DEVICES = ("cpu", "cuda", "auto")
DTYPES = ("float32", "bfloat16")
POSITIONS = ("exp", "linear")

# Keys shared by every task's ``train`` section.
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 1.0e-3,
    "batch_size": 32,
    "epochs": 10,
    "weight_decay": 0.01,  # AdamW (SPEC 3: not in the paper)
    "betas": [0.9, 0.999],
    "eps": 1.0e-8,
    "schedule": "constant",  # constant | cosine (after the warm-up)
    "warmup_epochs": 0.0,  # linear warm-up length in epochs (may be fractional) ...
    "warmup_steps": None,  # ... or in optimiser steps; when set it wins over warmup_epochs
    "min_lr_ratio": 0.0,  # cosine floor, as a fraction of lr
    "grad_clip": None,  # max global gradient norm; None = off, so that divergence stays visible
    "augment": {},  # CIFAR-10: {random_crop_padding: 4, hflip: true}
    "threads": None,  # torch intra-op threads; None = resources.threads, else 1
    "device": "cpu",  # cpu | cuda | auto
    "dtype": "float32",  # float32 | bfloat16 (autocast; the weights stay float32)
    "eval_batch_size": None,  # None = batch_size
    "threshold": 0.85,  # accuracy threshold for the learning-speed table (read downstream)
    "max_train_batches": None,  # cap on optimiser steps per epoch (quick configurations)
    "max_eval_samples": None,  # classifiers: evaluate on the first n test samples only
    "max_eval_tokens": None,  # LM: evaluate on the first n tokens of valid and test only
    "probe_samples": 8,  # size of the fixed batch the attention-magnitude probe runs on
    "audit_samples": 2,  # LM causality audit: number of windows
    "audit_tol": 1.0e-5,  # LM causality audit: largest logit change that still counts as causal
}

DEFAULTS: dict[str, Any] = {
    "label": "",
    "synthetic": False,
    "results_dir": "results",
    "seeds": [0, 1, 2],
    "models": [
        "vanilla",
        "linearized",
        "astro",
        "astro-no-relpos",
        "astro-no-nonlin",
        "astro-no-feedback",
        "no-attention",
    ],
    "lm_extra_models": ["astro-leaky"],
    "tasks": {
        # IMDB: encoder, 1 layer, 4 heads, D = 128, 400 tokens, lr 1e-5, batch 64, 120 epochs (Table S1).
        "imdb": {
            "data": {"seq_len": 400},
            "model": {"d_model": 128, "n_layers": 1, "n_heads": 4, "ffn_mult": 4, "dropout": 0.1, "max_len": 400},
            "attention": {"alpha": 0.25, "m_scale_factor": 500.0, "tau": 16.0, "position": "exp"},
            "train": {"lr": 1.0e-5, "batch_size": 64, "epochs": 120},
        },
        # CIFAR-10: conv stem, patch 2 -> 16 x 16 = 256 patches, 8 layers, 8 heads, D = 256 (Table S2).
        "cifar10": {
            "data": {},
            "model": {
                "d_model": 256,
                "n_layers": 8,
                "n_heads": 8,
                "ffn_mult": 4,
                "dropout": 0.1,
                "max_len": 256,
                "patch": 2,
            },
            "attention": {"alpha": 0.25, "m_scale_factor": 500.0, "tau": 16.0, "position": "exp"},
            "train": {
                "lr": 1.0e-3,
                "batch_size": 32,
                "epochs": 250,
                "augment": {"random_crop_padding": 4, "hflip": True},
            },
        },
        # WikiText-2: decoder, 1 layer, 6 heads, D = 768, 512 tokens, lr 1e-5, batch 24, 50 epochs (Table S3).
        "wikitext2": {
            "data": {"seq_len": 512},
            "model": {"d_model": 768, "n_layers": 1, "n_heads": 6, "ffn_mult": 4, "dropout": 0.1, "max_len": 512},
            "attention": {"alpha": 0.25, "m_scale_factor": 100.0, "tau": 16.0, "position": "exp"},
            "train": {"lr": 1.0e-5, "batch_size": 24, "epochs": 50, "probe_samples": 4},
        },
    },
}

RESOURCES_DEFAULTS: dict[str, Any] = {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpu": 0}

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


# ---------------------------------------------------------------------------------------------- loading


def deep_merge(base: dict, override: dict | None) -> dict:
    """A new dict: ``base`` with ``override`` laid over it, recursively for nested dicts."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | Path, *, schema: str | Path | None = None) -> dict:
    """Read a YAML configuration, check it against the JSON schema (when present) and fill top-level defaults.

    Task sections are kept as written; ``resolve_task_config`` fills them.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the configuration must be a mapping, got {type(config).__name__}")
    # Our own checks first (their messages say what is expected), then the schema catches the rest.
    tasks = config.get("tasks")
    if isinstance(tasks, dict):
        for task in tasks:
            if task in TASKS:
                validate_task(config, task)
    validate_schema(config, schema)
    out = {k: copy.deepcopy(v) for k, v in DEFAULTS.items() if k != "tasks"}
    out.update(config)
    out.setdefault("tasks", {})
    return out


def validate_schema(config: dict, schema: str | Path | None = None) -> None:
    """Structural check against the workflow's JSON schema; a no-op when the schema file is absent."""
    schema_path = Path(schema) if schema is not None else SCHEMA_PATH
    if not schema_path.exists():
        return
    import jsonschema

    with open(schema_path, encoding="utf-8") as fh:
        schema_doc = yaml.safe_load(fh)
    validator_cls = jsonschema.validators.validator_for(schema_doc)
    errors = sorted(validator_cls(schema_doc).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "<config>"
        raise ValueError(f"{where}: {err.message}")


# ---------------------------------------------------------------------------------------------- resolving


def resolve_task_config(config: dict, task: str) -> dict:
    """The task's ``data``, ``model``, ``attention``, ``train`` and ``resources`` sections with defaults filled.

    ``train.threads`` falls back to ``resources.threads``; ``train.eval_batch_size`` to ``train.batch_size``.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} unknown; expected one of {', '.join(TASKS)}")
    given = ((config or {}).get("tasks") or {}).get(task) or {}
    if not isinstance(given, dict):
        raise ValueError(f"tasks.{task} must be a mapping, got {type(given).__name__}")
    base = DEFAULTS["tasks"][task]
    resolved: dict[str, Any] = {}
    for section in ("data", "model", "attention"):
        resolved[section] = deep_merge(base.get(section, {}), _section(given, task, section))
    resolved["train"] = deep_merge(deep_merge(TRAIN_DEFAULTS, base.get("train", {})), _section(given, task, "train"))
    resolved["resources"] = deep_merge(RESOURCES_DEFAULTS, _section(given, task, "resources"))
    for key, value in given.items():  # keep any other section (e.g. notes) as written
        resolved.setdefault(key, copy.deepcopy(value))
    train = resolved["train"]
    given_train = _section(given, task, "train")
    if "augment" in given_train:  # replaced as a whole: `augment: {}` switches the default augmentation off
        train["augment"] = copy.deepcopy(given_train["augment"]) or {}
    if train.get("threads") is None:
        train["threads"] = resolved["resources"].get("threads") or 1
    if train.get("eval_batch_size") is None:
        train["eval_batch_size"] = train["batch_size"]
    if train.get("augment") is None:
        train["augment"] = {}
    return resolved


def _section(given: dict, task: str, section: str) -> dict:
    value = given.get(section)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"tasks.{task}.{section} must be a mapping, got {type(value).__name__}")
    return value


def train_seq_len(task_cfg: dict) -> int | None:
    """Sequence length the model sees in training: ``data.seq_len``, else ``model.max_len`` (LM and IMDB)."""
    seq_len = task_cfg.get("data", {}).get("seq_len")
    return int(seq_len) if seq_len is not None else task_cfg.get("model", {}).get("max_len")


def known_models(task: str | None = None) -> tuple[str, ...]:
    """Preset names from the registry (astromorphic.presets), restricted to those valid for ``task``."""
    from astromorphic.presets import preset_names

    return tuple(preset_names(task if task in TASKS else None))


# ---------------------------------------------------------------------------------------------- validation


def validate_run(config: dict, task: str, model: str) -> dict:
    """Check that ``task``/``model`` can run under ``config``; return the resolved task configuration.

    Raises ``ValueError`` naming the offending key. Touches neither data nor models.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} unknown; expected one of {', '.join(TASKS)}")
    names = known_models(task)
    if model not in names:
        all_names = known_models(None)
        if model in all_names:
            raise ValueError(f"model {model!r} is not defined for task {task!r}; expected one of {', '.join(names)}")
        raise ValueError(f"model {model!r} unknown; expected one of {', '.join(names)}")
    cfg = validate_task(config, task)
    _check_with_library(task, model, cfg)
    return cfg


def validate_task(config: dict, task: str) -> dict:
    """Check the task's sections (whatever the model); return them resolved. ``ValueError`` names the key."""
    cfg = resolve_task_config(config, task)
    p = f"tasks.{task}"
    m, a, t, d = cfg["model"], cfg["attention"], cfg["train"], cfg["data"]

    # model
    for key in ("d_model", "n_layers", "n_heads", "max_len"):
        _int(m, key, f"{p}.model", minimum=1)
    _number(m, "ffn_mult", f"{p}.model", low=0.0, low_open=True, optional=True)
    if m["d_model"] % m["n_heads"]:
        raise ValueError(f"{p}.model.d_model ({m['d_model']}) must be divisible by {p}.model.n_heads ({m['n_heads']})")
    _number(m, "dropout", f"{p}.model", low=0.0, high=1.0, high_open=True, optional=True)

    # sequence length against the model's positional length
    seq_len = d.get("seq_len")
    if seq_len is not None:
        _int(d, "seq_len", f"{p}.data", minimum=1)
        if seq_len > m["max_len"]:
            raise ValueError(f"{p}.data.seq_len ({seq_len}) exceeds {p}.model.max_len ({m['max_len']})")
    if task == "cifar10" and m.get("patch") is not None:
        _int(m, "patch", f"{p}.model", minimum=1)
        image_size = int(m.get("image_size", 32))
        n_patches = (image_size // m["patch"]) ** 2
        if n_patches > m["max_len"]:
            raise ValueError(
                f"{p}.model.patch ({m['patch']}) gives {n_patches} patches, more than {p}.model.max_len ({m['max_len']})"
            )

    # attention
    _number(a, "alpha", f"{p}.attention", low=0.0, low_open=True, optional=True)
    _number(a, "tau", f"{p}.attention", low=0.0, low_open=True, optional=True)
    _number(a, "m_scale_factor", f"{p}.attention", low=0.0, low_open=True, optional=True)
    _number(a, "m_scale", f"{p}.attention", low=0.0, low_open=True, optional=True)
    if a.get("position") is not None and a["position"] not in POSITIONS:
        raise ValueError(f"{p}.attention.position must be one of {', '.join(POSITIONS)}, got {a['position']!r}")

    # training
    q = f"{p}.train"
    _number(t, "lr", q, low=0.0, low_open=True)
    _int(t, "batch_size", q, minimum=1)
    _int(t, "eval_batch_size", q, minimum=1)
    _int(t, "epochs", q, minimum=0)
    _number(t, "weight_decay", q, low=0.0)
    _number(t, "eps", q, low=0.0, low_open=True)
    betas = t.get("betas")
    if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(_is_real(b) and 0 <= b < 1 for b in betas)):
        raise ValueError(f"{q}.betas must be two numbers in [0, 1), got {betas!r}")
    if t["schedule"] not in SCHEDULES:
        raise ValueError(f"{q}.schedule must be one of {', '.join(SCHEDULES)}, got {t['schedule']!r}")
    _number(t, "warmup_epochs", q, low=0.0, optional=True)
    _int(t, "warmup_steps", q, minimum=0, optional=True)
    _number(t, "min_lr_ratio", q, low=0.0, high=1.0)
    _number(t, "grad_clip", q, low=0.0, low_open=True, optional=True)
    if t["device"] not in DEVICES:
        raise ValueError(f"{q}.device must be one of {', '.join(DEVICES)}, got {t['device']!r}")
    if t["dtype"] not in DTYPES:
        raise ValueError(f"{q}.dtype must be one of {', '.join(DTYPES)}, got {t['dtype']!r}")
    _int(t, "threads", q, minimum=1)
    _number(t, "threshold", q, low=0.0, high=1.0, optional=True)
    for key in ("max_train_batches", "max_eval_samples", "max_eval_tokens"):
        _int(t, key, q, minimum=1, optional=True)
    _int(t, "probe_samples", q, minimum=1)
    _int(t, "audit_samples", q, minimum=1)
    _number(t, "audit_tol", q, low=0.0)
    aug = t.get("augment") or {}
    if not isinstance(aug, dict):
        raise ValueError(f"{q}.augment must be a mapping, got {type(aug).__name__}")
    unknown_aug = set(aug) - {"random_crop_padding", "hflip"}
    if unknown_aug:
        raise ValueError(f"{q}.augment.{sorted(unknown_aug)[0]} unknown; expected random_crop_padding, hflip")
    _int(aug, "random_crop_padding", f"{q}.augment", minimum=0, optional=True)
    if aug.get("hflip") is not None and not isinstance(aug["hflip"], bool):
        raise ValueError(f"{q}.augment.hflip must be true or false, got {aug['hflip']!r}")
    if aug and task != "cifar10" and (aug.get("random_crop_padding") or aug.get("hflip")):
        raise ValueError(f"{q}.augment is only defined for cifar10")
    return cfg


def _check_with_library(task: str, model: str, cfg: dict) -> None:
    """Let the model and preset code check their own sections (unknown keys, ranges), still without data."""
    try:
        from astromorphic.models import resolve_model_cfg
        from astromorphic.presets import spec_for
    except ImportError:  # pragma: no cover - the library is incomplete only while it is being written
        return
    try:
        resolve_model_cfg(task, cfg["model"])
    except ValueError as exc:
        raise ValueError(f"tasks.{task}.model: {exc}") from None
    try:
        spec_for(model, cfg["attention"], cfg["model"]["d_model"])
    except ValueError as exc:
        raise ValueError(f"tasks.{task}.attention: {exc}") from None


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _number(
    section: dict, key: str, prefix: str, *, low=None, high=None, low_open=False, high_open=False, optional=False
):
    value = section.get(key)
    name = f"{prefix}.{key}"
    if value is None:
        if optional:
            return
        raise ValueError(f"{name} is required")
    if not _is_real(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high:g}, got {value!r}")


def _int(section: dict, key: str, prefix: str, *, minimum=None, optional=False):
    value = section.get(key)
    name = f"{prefix}.{key}"
    if value is None:
        if optional:
            return
        raise ValueError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
