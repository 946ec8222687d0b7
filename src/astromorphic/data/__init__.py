"""Data layer: read IMDB, CIFAR-10 and WikiText-2 (downloads, local copies in the official formats, or
deterministic synthetic stand-ins) and write prepared tensors plus a manifest.

Command line::

    astromorphic prepare TASK --source SOURCE --out DIR [--config CFG.yaml] [options]
    astromorphic prepare TASK --from-dir DIR --out OUT    # the source found in a local folder

Python::

    from astromorphic.data import prepare, load_prepared, source_from_dir
    manifest = prepare("imdb", "aclimdb:../shared/data/imdb", "results/data/imdb", seq_len=400)
    splits, manifest = load_prepared("results/data/imdb")
    source_from_dir("wikitext2", "data/wikitext2")  # {"source": "tokens:data/wikitext2", "split_map": {...}}

Tasks and sources
-----------------
=========  ==========================================================================================
imdb       ``hf`` (stanfordnlp/imdb, pinned revision), ``aclimdb:PATH`` (folder or .tar.gz archives),
           ``synthetic``
cifar10    ``torchvision`` or ``torchvision:ROOT`` (official python archive, MD5 checked),
           ``imagefolder:PATH`` (class folders of PNG/JPEG files or .tar.gz archives), ``synthetic``
wikitext2  ``hf`` (Salesforce/wikitext, raw config, pinned revision), ``tokens:PATH`` (the official
           wiki.{train,valid,test}.tokens files), ``synthetic``
=========  ==========================================================================================

A local folder in an official format (the workflow's ``data_dir/<task>``) names its own source:
:func:`source_from_dir` recognises the ``aclImdb`` folder or archives (imdb), the python batches
``cifar-10-python.tar.gz`` / ``cifar-10-batches-py`` (preferred) or image folders and archives (cifar10), and the
``wiki.*.tokens`` files or ``wikitext-2-v1.zip`` (wikitext2; ``split_map: {train: valid}`` when
``wiki.train.tokens`` is missing; ``tokenizer: gpt2`` and ``gpt2_dir`` when GPT-2's released ``encoder.json`` and
``vocab.bpe`` sit in the folder, in its ``gpt2/`` sub-folder or in a ``gpt2/`` folder beside it, as in
``<data_dir>/gpt2`` next to ``<data_dir>/wikitext2``).

Options (config section ``tasks.<task>.data``, the model ``astromorphic.config.<Task>Data``, which also holds
the defaults; every key optional except ``source``; null = the default for the chosen source; unknown keys and
wrong types are errors naming the key)
-----------------------------------------------------------------------------------------------------
All tasks:
    ``source`` (str), ``seed`` (int, 0: synthetic generators and random subsets),
    ``n_train``, ``n_test`` (int or null; synthetic: how many to generate; real: a class-balanced random
    subset, null = all), ``network_timeout`` (seconds to wait for a download host, default 10).
imdb, cifar10:
    ``valid_size`` (int or null: a validation split of that many training examples, class-balanced; IMDB holds
    out whole movies, from the release's url files; synthetic: generated; null = none, and the manifest is the one
    made before the option existed), ``valid_seed`` (the draw; null = 0): :mod:`astromorphic.data.validation`.
imdb:
    ``seq_len`` (400; synthetic 64), ``truncation`` (head|tail), ``padding`` (right|left),
    ``lowercase`` (null = lower-case unless GloVe is used), ``min_freq`` (2; synthetic 1),
    ``max_vocab`` (30000 incl. <pad>, <unk>; 0 = no cap), ``glove`` (path to GloVe .txt/.zip/.gz or null),
    ``glove_dim`` (300), ``vocab_size`` (synthetic only, 200), ``hf_dataset``, ``hf_revision``,
    ``hf_cache_dir``.
cifar10:
    ``root`` (torchvision download folder; default ``~/.cache/astromorphic/torchvision``), ``download``
    (true), ``verify_md5`` (true).
wikitext2:
    ``tokenizer`` (auto|gpt2|bpe|word; auto = GPT-2 when its files are available locally, else a
    byte-level BPE trained on the training split; gpt2 downloads from the Hugging Face Hub when nothing local
    is found; synthetic default word), ``bpe_vocab_size`` (8192), ``bpe_min_frequency`` (2),
    ``gpt2_dir`` (a folder with GPT-2's released ``encoder.json`` and ``vocab.bpe``),
    ``gpt2_tokenizer_file`` (a local GPT-2 ``tokenizer.json``; wins over ``gpt2_dir``),
    ``split_map`` (e.g. ``{train: valid}`` when ``wiki.train.tokens`` is missing), ``n_valid``,
    ``seq_len`` (recorded only), ``hf_dataset``, ``hf_config`` (wikitext-2-raw-v1), ``hf_revision``,
    ``hf_cache_dir``; for wikitext2 ``n_train``/``n_valid``/``n_test`` count words (synthetic: generate
    about this many, defaults 100000/10000/10000; real: keep the first lines up to this many words).

Output format: see :mod:`astromorphic.data.common` and ``docs/architecture.md`` ("Prepared data").
``manifest.json`` and the tensor files are byte-identical when the same inputs are prepared twice; the
wall-clock times go to ``prepare_timing.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from astromorphic import tasks as task_registry
from astromorphic.data.common import (
    MANIFEST_NAME,
    TIMING_NAME,
    DataError,
    SourceUnavailableError,
)
from astromorphic import __version__
from astromorphic.data import common, validation
from astromorphic import io as aio
from astromorphic.config import seed_arg
from astromorphic.config import ConfigError, apply_overrides, parse_assignment

__all__ = [
    "MANIFEST_NAME",
    "TASKS",
    "TIMING_NAME",
    "VALIDATION_OPTIONS",
    "DataError",
    "SourceUnavailableError",
    "load_embedding",
    "check_prepared",
    "load_prepared",
    "main",
    "read_manifest",
    "prepare",
    "source_from_dir",
]

# task -> the module that prepares its data (astromorphic.tasks names it)
TASKS = {t.name: t.data_module for t in task_registry.REGISTRY}


def _task_module(task: str):
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return importlib.import_module(TASKS[task])


# The options of a validation split (astromorphic.data.validation), added after data were prepared: left out of the
# manifest without one (valid_size null), so that data prepared without them keep their manifest.
VALIDATION_OPTIONS = ("valid_size", "valid_seed")


def prepare(task: str, source: str, out_dir: str | Path, **options: Any) -> dict[str, Any]:
    """Prepare one task's data into ``out_dir`` and return the manifest.

    Nothing is written unless preparation succeeds; errors are :class:`DataError` with a message that
    names the file or source and what was expected.
    """
    module = _task_module(task)
    kind, arg = common.parse_source(source)
    options = {k: v for k, v in options.items() if k != "source"}
    opts = common.resolve_options(task, kind, options)
    timer = common.Timings()
    files, manifest = module.prepare(kind, arg, opts, timer)
    manifest = {
        "format_version": common.FORMAT_VERSION,
        "astromorphic_version": __version__,
        "source_spec": source,
        "timing_file": TIMING_NAME,  # wall-clock times stay out of the manifest, which must be deterministic
        **manifest,
        "options": {k: opts[k] for k in sorted(opts)
                    if k not in VALIDATION_OPTIONS or opts.get("valid_size") is not None},  # fmt: skip
    }
    with timer.stage("write"):
        common.write_prepared(out_dir, files, manifest)
    timing = {"task": task, "source": source, **timer.as_dict()}

    aio.write_json(Path(out_dir) / TIMING_NAME, timing)
    return json.loads((Path(out_dir) / MANIFEST_NAME).read_text())


def source_from_dir(task: str, folder: str | Path) -> dict[str, Any]:
    """The data options that read ``folder``, a local copy of ``task`` in an official format: ``source``
    (``KIND:FOLDER``) and, for WikiText-2, ``split_map: {train: valid}`` without ``wiki.train.tokens`` and
    ``tokenizer: gpt2`` + ``gpt2_dir`` where GPT-2's files are found in, under or beside the folder.

    For CIFAR-10 the official python batches are preferred over image folders. A folder that holds none of
    the formats is a :class:`DataError` naming it and what was expected.
    """
    module = _task_module(task)
    folder = Path(folder)
    expected = f"expected {module.LOCAL_FORMATS}"
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder for the {task} data; {expected}")
    found = module.local_source(folder)
    if found is None:
        raise DataError(f"{folder}: no {task} data in an official format; {expected}")
    return found


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a prepared folder; :class:`DataError` naming the file when it is missing or not a JSON
    object."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise DataError(
            f"{manifest_path}: not found; prepare the data first (astromorphic prepare TASK --source ... --out {directory})"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{manifest_path}: not readable as JSON ({' '.join(str(exc).split())}); prepare the data "
                        "again") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), list):
        raise DataError(f"{manifest_path}: not a manifest of prepared data (no list of splits); prepare the data again")
    return manifest


# Options of tasks.<task>.data that decide the prepared tensors' sizes and contents: a configuration that sets one
# to another value than the data were prepared with is refused before training on them.
CHECKED_OPTIONS = ("n_train", "n_valid", "n_test", "seq_len", "vocab_size", "max_vocab", "min_freq", "seed",
                   "bpe_vocab_size", "truncation", "padding")  # fmt: skip


def check_prepared(directory: str | Path, task: str, data_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of ``directory`` when it holds ``task``'s data prepared as ``data_cfg`` (tasks.<task>.data)
    says, for the options of :data:`CHECKED_OPTIONS` that it sets; :class:`DataError` naming the manifest, the
    key and the fix otherwise."""
    manifest = read_manifest(directory)
    path = Path(directory) / MANIFEST_NAME
    if manifest.get("task") != task:
        raise DataError(f"{path}: data prepared for the {manifest.get('task')!r} task, not {task!r}; give the "
                        f"{task} data folder (--data) or prepare it (astromorphic prepare {task} ...)")
    options = manifest.get("options") or {}
    for key in CHECKED_OPTIONS:
        want = (data_cfg or {}).get(key)
        if want is not None and options.get(key) is not None and options[key] != want:  # None: not used there
            raise DataError(f"{path}: prepared with {key}={options[key]!r} but tasks.{task}.data.{key} is {want!r}; "
                            "prepare the data again under this configuration")
    if data_cfg is not None:  # a validation split decides what trains and what selects: it must be the one asked for
        have, want = _validation_draw(options), _validation_draw(data_cfg)
        if have != want:
            said = lambda d: f"valid_size={d[0]}, valid_seed={d[1]}" if d else "no validation split"  # noqa: E731
            raise DataError(f"{path}: prepared with {said(have)} but tasks.{task}.data asks for {said(want)}; prepare "
                            "the data again under this configuration")
    return manifest


def _validation_draw(options: dict[str, Any]) -> tuple[int, int] | None:
    size = options.get("valid_size")
    seed = options.get("valid_seed")
    return None if size is None else (int(size), validation.DEFAULT_SEED if seed is None else int(seed))


def load_prepared(directory: str | Path, verify: bool = False) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Read a prepared folder: ``({split: {name: tensor}}, manifest)``. ``verify`` checks every file's sha256."""
    import torch

    directory = Path(directory)
    manifest_path = directory / MANIFEST_NAME
    manifest = read_manifest(directory)
    if verify:
        for rec in manifest.get("outputs", []):
            path = directory / rec["name"]
            if not path.is_file() or aio.sha256_file(path) != rec["sha256"]:
                raise DataError(
                    f"{path}: missing or changed since preparation (sha256 differs from {manifest_path.name})"
                )
    splits = {}
    for split in manifest["splits"]:
        path = directory / f"{split}.pt"
        if not path.is_file():
            raise DataError(f"{path}: missing; the folder is incomplete (prepare it again)")
        splits[split] = torch.load(path, map_location="cpu", weights_only=True)
    return splits, manifest


def load_embedding(directory: str | Path, manifest: dict[str, Any] | None = None):
    """The GloVe vectors (V, dim) float32 tensor of a prepared IMDB folder, or None when there are none."""
    import torch

    directory = Path(directory)
    if manifest is None:
        manifest = json.loads((directory / MANIFEST_NAME).read_text())
    name = manifest.get("embedding_file")
    if not name:
        return None
    return torch.load(directory / name, map_location="cpu", weights_only=True)["vectors"]


# ------------------------------------------------------------------------------------------------ CLI


def _config_options(path: str, task: str) -> dict[str, Any]:
    import yaml

    try:
        cfg = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: cannot read the config ({exc})") from exc
    section = cfg.get("tasks", {}).get(task, {}).get("data") if isinstance(cfg.get("tasks"), dict) else None
    if section is None:
        section = cfg.get("data", cfg) if isinstance(cfg, dict) else {}
        if "tasks" in section or not isinstance(section, dict):
            raise DataError(f"{path}: no tasks.{task}.data section")
    return dict(section)


def _seed_arg(text: str) -> int:
    return seed_arg(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="astromorphic prepare",
        description="Read a dataset and write prepared tensors plus manifest.json into --out.",
        epilog="Every option can also come from the config section tasks.<task>.data; flags win. "
        "See `python -c 'import astromorphic.data as d; help(d)'` for all keys.",
    )
    p.add_argument("task", choices=sorted(TASKS))
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--source", help="hf | aclimdb:PATH | torchvision[:ROOT] | imagefolder:PATH | tokens:PATH | synthetic"
    )
    where.add_argument(
        "--from-dir", metavar="DIR", help="a local copy in an official format (the source is detected there)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", help="YAML config; its tasks.<task>.data section gives the options")
    p.add_argument("--seq-len", type=int, dest="seq_len")
    p.add_argument("--max-vocab", type=int, dest="max_vocab")
    p.add_argument("--min-freq", type=int, dest="min_freq")
    p.add_argument("--vocab-size", type=int, dest="vocab_size", help="synthetic IMDB vocabulary size")
    p.add_argument("--n-train", type=int, dest="n_train")
    p.add_argument("--n-valid", type=int, dest="n_valid")
    p.add_argument("--n-test", type=int, dest="n_test")
    p.add_argument("--seed", type=_seed_arg)
    p.add_argument("--glove", help="GloVe vectors file (.txt, .zip or .gz)")
    p.add_argument("--tokenizer", choices=["auto", "gpt2", "bpe", "word"])
    p.add_argument("--bpe-vocab-size", type=int, dest="bpe_vocab_size")
    p.add_argument("--gpt2-dir", dest="gpt2_dir", help="folder with GPT-2's encoder.json and vocab.bpe")
    p.add_argument("--split-map", action="append", default=[], metavar="SPLIT=FROM", help="e.g. train=valid")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other option (YAML value)")
    return p


FLAG_OPTIONS = ("seq_len", "max_vocab", "min_freq", "vocab_size", "n_train", "n_valid", "n_test", "seed", "glove",
                "tokenizer", "bpe_vocab_size", "gpt2_dir")  # fmt: skip


def _cli_options(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The source and the options of a command line: the config section, then the flags, ``--set``,
    ``--split-map`` and ``--from-dir`` over it."""
    options: dict[str, Any] = _config_options(args.config, args.task) if args.config else {}
    options.update({key: getattr(args, key) for key in FLAG_OPTIONS if getattr(args, key) is not None})
    try:
        options = apply_overrides(options, args.set)
        for item in args.split_map:
            if "=" not in item:
                raise DataError(f"--split-map expects SPLIT=FROM (e.g. train=valid), got {item!r}")
            split, origin = parse_assignment(item)
            options["split_map"] = {**(options.get("split_map") or {}), ".".join(split): origin}
    except ConfigError as exc:
        raise DataError(str(exc)) from None
    if args.from_dir:
        found = source_from_dir(args.task, args.from_dir)
        options.update({k: v for k, v in found.items() if k == "source" or options.get(k) is None})
    source = args.source or options.get("source")
    if not source:
        raise DataError("no source: give --source, --from-dir or a 'source' key in the config's tasks.<task>.data")
    return source, {k: v for k, v in options.items() if k != "source"}


def _check_writable(folder: Path) -> None:
    """A probe file (removed again) in ``folder`` or, while it does not exist, in its nearest existing parent, so
    that nothing is left behind; ``OSError`` naming that folder when it cannot be written."""
    import os
    import tempfile

    where = folder.absolute()
    while not where.is_dir() and where != where.parent:
        where = where.parent
    fd, probe = tempfile.mkstemp(prefix=f"{aio.TEMP_PREFIX}write-probe.", suffix=aio.TEMP_SUFFIX, dir=where)
    os.close(fd)
    os.unlink(probe)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        source, options = _cli_options(args)
        _check_writable(Path(args.out))  # a read-only folder is known before the work, a full disk only during it
        manifest = prepare(args.task, source, args.out, **options)
    except DataError as exc:
        print(f"astromorphic prepare: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full or read-only disk: the file and the reason, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"astromorphic prepare: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    timing = json.loads((Path(args.out) / TIMING_NAME).read_text())
    flag = " [SYNTHETIC STAND-IN]" if manifest.get("synthetic") else ""
    counts = ", ".join(f"{s}: {c}" for s, c in manifest.get("counts", {}).items())
    print(f"prepared {args.task} from {source}{flag} -> {args.out} ({counts}) in {timing['total_s']:.1f} s")
    print("  stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in timing["stages_s"].items()))
    return 0
