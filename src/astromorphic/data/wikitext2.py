"""WikiText-2 (Merity et al. 2016) for causal language modelling: one token stream per split.

Sources:

- ``hf``: Hugging Face ``Salesforce/wikitext``, config ``wikitext-2-raw-v1`` (option ``hf_config``), at a
  pinned revision; one row per line of the release. ``hf_dataset`` may name a local folder laid out like
  the Hub repository (``wikitext-2-raw-v1/{train,validation,test}-*.parquet``).
- ``tokens:PATH``: the official tokenized files ``wiki.train.tokens``, ``wiki.valid.tokens`` and
  ``wiki.test.tokens`` in a folder (or in its ``wikitext-2/`` sub-folder, or in the ``wikitext-2-v1.zip``
  archive). When the train file is missing, the option ``split_map`` (``--split-map train=valid``) may
  name another split to train on; the manifest records the mapping and warns that the split is then not
  held out. Without a mapping a missing file is an error. With ``held_out`` (a fraction), the copy leaves out
  the end of the split it copies (whole articles, from the first top-level heading at or after ``1 - held_out``
  of its words), and that split keeps only its end: ``{train: valid}`` with ``held_out: 0.1`` trains on the
  first ~90 % of the validation text and selects models on the rest (:func:`hold_out`).
- ``synthetic``: text from the small probabilistic grammar of :mod:`astromorphic.data.synthetic`.

Tokenizers (option ``tokenizer``):

- ``gpt2``: the GPT-2 byte-level BPE (50,257 tokens), as the paper uses. Looked for, in this order: a
  ``tokenizer.json`` (option ``gpt2_tokenizer_file``), a folder with the released ``encoder.json`` and
  ``vocab.bpe`` (option ``gpt2_dir``; built with the ``tokenizers`` library: BPE model, byte-level
  pre-tokenizer without a prefix space, as GPT-2), the Hugging Face cache (``openai-community/gpt2``),
  tiktoken's cache; when none is there, ``tokenizer.json`` is downloaded from the Hugging Face Hub, and an
  offline machine gets a one-line error that lists the places looked at. Every GPT-2 tokenizer is checked
  against known encodings ("Hello world" -> [15496, 995], " Hello" -> [18435]) and the vocabulary size; the
  manifest's ``tokenizer_info`` records where it came from and the sha256 of its files.
- ``bpe``: a byte-level BPE trained with the ``tokenizers`` library on the training split
  (``bpe_vocab_size``, ``bpe_min_frequency``); deterministic. A stand-in for GPT-2, and the manifest says so.
- ``word``: one token per whitespace-separated word plus ``<eos>`` per line, the vocabulary built from the
  training split (unseen words become ``<unk>``): the classic word-level setting, and the default for the
  synthetic source.
- ``auto`` (default): ``gpt2`` when its files are available locally (the same places, nothing downloaded),
  else ``bpe``.

Option ``compact_vocab``: the output layer covers only the tokens that occur in the training text, renumbered
in id order, plus one unknown-token id for every other token (:func:`compact_vocab`); the manifest's
``output_vocab`` records its size and how many tokens of each split are unknown, and ``output_vocab.pt`` maps
the new ids back to the tokenizer's. It cuts the cost of GPT-2's 50,257-way output layer on a small training
text; perplexities over it are not those over the full vocabulary (an unseen token is scored as the unknown
token), and the tables say so.

Each line (with its newline) is encoded on its own and the ids are concatenated. Word counts, needed for
word-level perplexity (total NLL / words), follow the tokenized release: whitespace-separated words plus
one end-of-line token per line, blank lines included. This gives exactly 217,646 (valid) and 245,569
(test) for the official files.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from astromorphic.data import common, synthetic
from astromorphic.data.common import DataError
from astromorphic.data.tokenizers import find_gpt2_dir, make_tokenizer

SPLITS = ("train", "valid", "test")
HF_SPLITS = {"train": "train", "valid": "validation", "test": "test"}
WORDS_RULE = (
    "whitespace-separated words plus one end-of-line token per line, blank lines included (as in the tokenized release)"
)
SOURCE_FORMS = "hf, tokens:PATH or synthetic"
ALTERNATIVES = (
    "Alternatives: --source tokens:PATH (the official wiki.{train,valid,test}.tokens files; "
    "with --split-map train=valid when the train file is missing), or --source synthetic (offline stand-in)."
)
ZIP_NAME = "wikitext-2-v1.zip"
LOCAL_FORMATS = f"the official wiki.{{train,valid,test}}.tokens files (here or in wikitext-2/) or {ZIP_NAME}"

# ------------------------------------------------------------------------------------------------ reading


def split_lines(text: str) -> list[str]:
    """Lines with their newline kept; only "\\n" separates lines (the release has other Unicode separators)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1] + "\n")
    return lines


def count_words(lines: list[str]) -> int:
    return sum(len(line.split()) for line in lines) + len(lines)


def _tokens_folder(path: Path) -> Path:
    """The folder that holds the wiki.*.tokens files: ``path`` or its ``wikitext-2/`` sub-folder."""
    if not any(path.glob("wiki.*.tokens")) and (path / "wikitext-2").is_dir():
        return path / "wikitext-2"
    return path


def local_source(folder: Path) -> dict[str, Any] | None:
    """Data options for a local folder in the official format (see :func:`astromorphic.data.source_from_dir`);
    without ``wiki.train.tokens``, ``split_map: {train: valid}`` (the manifest then warns that it is not held out);
    with GPT-2's released files in the folder, in its ``gpt2/`` sub-folder or in a ``gpt2/`` folder beside it,
    ``tokenizer: gpt2`` and ``gpt2_dir`` (:func:`find_gpt2_dir`)."""
    names = [p.name for p in _tokens_folder(folder).glob("wiki.*.tokens")]
    source = f"tokens:{folder}"
    if not names and (folder / ZIP_NAME).is_file():
        source = f"tokens:{folder / ZIP_NAME}"
        try:
            with zipfile.ZipFile(folder / ZIP_NAME) as zf:
                names = [n for n in zf.namelist() if n.endswith(".tokens")]
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"{folder / ZIP_NAME}: not a readable zip archive ({exc}); expected {ZIP_NAME}") from exc
    if not names:
        return None
    found: dict[str, Any] = {"source": source}
    if not any(n.endswith("wiki.train.tokens") for n in names):
        found["split_map"] = {"train": "valid"}
    gpt2_dir = find_gpt2_dir(folder)
    if gpt2_dir is not None:
        found.update({"tokenizer": "gpt2", "gpt2_dir": str(gpt2_dir)})
    return found


def read_tokens_files(path: str | Path, split_map: dict[str, str]) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"{path}: not found; expected a folder with wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens"
        )
    raw: dict[str, bytes] = {}
    inputs: list[dict[str, Any]] = []
    where: dict[str, str] = {}
    if path.is_file():
        if path.suffix != ".zip":
            raise DataError(f"{path}: expected a folder with the wiki.*.tokens files or the wikitext-2-v1.zip archive")
        try:
            with zipfile.ZipFile(path) as zf:
                for name in sorted(zf.namelist()):
                    for split in SPLITS:
                        if name.endswith(f"wiki.{split}.tokens"):
                            raw[split] = zf.read(name)
                            where[split] = f"{path}: {name}"
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise DataError(f"{path}: truncated or corrupted zip archive ({exc}); expected wikitext-2-v1.zip") from exc
        inputs.append(common.file_record(path))
        base = f"{path}: wikitext-2"
    else:
        folder = _tokens_folder(path)
        for split in SPLITS:
            f = folder / f"wiki.{split}.tokens"
            if f.is_file():
                raw[split] = f.read_bytes()
                where[split] = str(f)
                inputs.append(common.file_record(f))
        base = str(folder)
    for split in SPLITS:
        if split in raw or split in split_map:
            continue
        hint = (
            " Map another split for training with --split-map train=valid (the manifest records it)."
            if split == "train"
            else ""
        )
        raise DataError(f"{base}/wiki.{split}.tokens: missing; expected the official WikiText-2 {split} file.{hint}")
    lines = {}
    for split, data in raw.items():
        try:
            lines[split] = split_lines(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DataError(f"{where[split]}: not UTF-8 text ({exc})") from exc
        if not lines[split]:
            raise DataError(f"{where[split]}: empty file; expected WikiText-2 {split} text")
    return lines, inputs


def read_hf(arg: str | None, opts: dict[str, Any]) -> tuple[dict[str, list[str]], list[dict[str, Any]], dict]:
    """Lines per split of the ``hf`` source, input records and manifest entries."""
    ds, inputs, record = common.hf_source(arg, opts, opts["hf_config"], ALTERNATIVES)
    lines = {}
    for split, hf_split in HF_SPLITS.items():
        if hf_split not in ds:
            raise DataError(
                f"Hugging Face dataset {record['hf_dataset']!r} has no {hf_split!r} split (has {', '.join(ds)})"
            )
        rows = ds[hf_split]["text"]
        # One row per line of the release; the raw config keeps the newline, blank lines are empty rows.
        lines[split] = [r if r.endswith("\n") else r + "\n" for r in rows]
    return lines, inputs, record


def _prefix_words(lines: list[str], n_words: int) -> list[str]:
    out, count = [], 0
    for line in lines:
        if count >= n_words:
            break
        out.append(line)
        count += len(line.split()) + 1
    return out


# ------------------------------------------------------------------------------------------------ sources
# Each reader returns ({split: lines}, manifest entries including "inputs" and "text_form"); a split that
# split_map fills from another one may be missing.


def _from_tokens(arg: str | None, opts: dict[str, Any], timer: common.Timings) -> tuple[dict, dict]:
    path = common.need_path("tokens", arg, "folder with wiki.*.tokens")
    with timer.stage("read"):
        lines, inputs = read_tokens_files(path, opts["split_map"] or {})
    text_form = "tokenized release (wiki.*.tokens; rare words replaced by <unk>)"
    return lines, {"source_path": path, "inputs": inputs, "text_form": text_form}


def _from_hf(arg: str | None, opts: dict[str, Any], timer: common.Timings) -> tuple[dict, dict]:
    with timer.stage("read"):
        lines, inputs, record = read_hf(arg, opts)
    text_form = f"Hugging Face {opts['hf_config']} rows (one per line)"
    return lines, {**record, "hf_config": opts["hf_config"], "inputs": inputs, "text_form": text_form}


def _generate(arg: str | None, opts: dict[str, Any], timer: common.Timings) -> tuple[dict, dict]:
    seeds = synthetic.split_seeds(opts["seed"], SPLITS)
    split_map = opts["split_map"] or {}
    sizes = {s: common.require_int(opts, f"n_{s}", 10) for s in SPLITS if s not in split_map}
    with timer.stage("read"):
        lines = {s: synthetic.wikitext_like(n, seeds[s]) for s, n in sizes.items()}
    rule = (
        "articles from a probabilistic grammar: subject-verb number agreement across prepositional "
        "phrases and relative clauses, pronouns agreeing with the previous subject, topic nouns per article"
    )
    record = common.synthetic_record("wikitext_like", rule, seeds=seeds)
    return lines, {**record, "inputs": [], "text_form": "synthetic grammar text laid out like the tokenized release"}


SOURCES = {"tokens": _from_tokens, "hf": _from_hf, "synthetic": _generate}


# ------------------------------------------------------------------------------------------------ prepare


def _split_map(opts: dict[str, Any]) -> dict[str, str]:
    split_map = dict(opts["split_map"] or {})
    for target, origin in split_map.items():
        if target not in SPLITS or origin not in SPLITS or target == origin:
            raise DataError(f"split_map {target}={origin}: both must be distinct splits among {', '.join(SPLITS)}")
        if origin in split_map:
            raise DataError(f"split_map {target}={origin}: {origin} is itself mapped; map to a split that is read")
    return split_map


def _apply_split_map(lines: dict[str, list[str]], split_map: dict[str, str], held_out: float | None) -> tuple[list[str], dict]:
    """Fill the mapped splits from their origin, or, with ``held_out``, from the origin's text before its held-out
    end (:func:`hold_out`); the warnings that say so and the manifest's ``held_out`` entry."""
    warnings, record = [], {}
    if held_out is not None and not split_map:
        raise DataError("held_out: only with split_map (it holds out part of a split that another split copies)")
    origins = sorted(split_map.values())
    if held_out is not None and len(set(origins)) < len(origins):
        raise DataError(f"held_out: split_map {split_map} copies one split twice; hold out from one copy only")
    for target, origin in sorted(split_map.items()):
        if held_out is None:
            lines[target] = lines[origin]
            warnings.append(
                f"split {target!r} is a copy of {origin!r} (split_map): it is not held out, and numbers measured on "
                f"{origin!r} after training on it are not generalisation"
            )
            continue
        lines[target], lines[origin], record[origin] = hold_out(lines[origin], held_out)
        record[origin]["rest_to"] = target
        warnings.append(
            f"split {target!r} is the first part of {origin!r} (split_map, held_out {held_out}); {origin!r} is "
            f"its held-out end ({record[origin]['words']} of {record[origin]['of_words']} words), not the release's "
            f"{origin!r} split"
        )
    return warnings, record


HEADING = re.compile(r"^ = [^=].* = $")
HELD_OUT_RULE = "whole articles at the end of the split: from the first top-level heading at or after (1 - held_out) of its words"


def hold_out(lines: list[str], fraction: float) -> tuple[list[str], list[str], dict[str, Any]]:
    """Split ``lines`` into (kept, held-out end, record): the end starts at the first top-level article heading
    (`` = Title = ``) at or after ``1 - fraction`` of the words (:data:`WORDS_RULE`), or at that line when no
    heading follows, so that no article is cut in two."""
    total, count, cut = count_words(lines), 0, len(lines)
    for i, line in enumerate(lines):
        if count >= (1 - fraction) * total:
            cut = i
            break
        count += len(line.split()) + 1
    heading = next((i for i in range(cut, len(lines)) if HEADING.match(lines[i].rstrip("\n"))), cut)
    kept, end = lines[:heading], lines[heading:]
    if not kept or not end:
        raise DataError(f"held_out {fraction}: leaves an empty part of a split of {total} words; choose a fraction "
                        "that keeps text on both sides")
    return kept, end, {"fraction": fraction, "words": count_words(end), "of_words": total, "rule": HELD_OUT_RULE}


def _prefix_subsets(lines: dict[str, list[str]], opts: dict[str, Any]) -> dict[str, Any]:
    """Options ``n_<split>`` on real text: keep the first lines up to n words; the manifest's subsets record."""
    subsets = {}
    for split in SPLITS:
        n = common.require_int(opts, f"n_{split}", 1, allow_none=True)
        if n is None:
            continue
        kept = _prefix_words(lines[split], n)
        if len(kept) < len(lines[split]):
            subsets[split] = {
                "words": count_words(kept),
                "of_words": count_words(lines[split]),
                "rule": "first lines up to n words",
            }
            lines[split] = kept
    return subsets


COMPACT_RULE = (
    "the tokenizer's ids that occur in the training text, in id order, then one unknown-token id for every other id"
)


def compact_vocab(streams: dict[str, np.ndarray], vocab_size: int) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """Streams over a compacted vocabulary (:data:`COMPACT_RULE`): the ids of the training text, renumbered from
    0 in their order, and the unknown id ``len(kept)`` for the others. Returns the new streams, the kept ids (new
    id -> tokenizer id) and the manifest's ``output_vocab`` entry, which counts the unknown tokens of each split:
    a perplexity over this vocabulary scores an unseen token as the one unknown token."""
    kept = np.unique(streams["train"]).astype(np.int64)
    table = np.full(vocab_size, len(kept), dtype=np.int64)
    table[kept] = np.arange(len(kept), dtype=np.int64)
    out = {split: table[stream] for split, stream in streams.items()}
    unknown = {split: int((out[split] == len(kept)).sum()) for split in out}
    record = {"rule": COMPACT_RULE, "size": len(kept) + 1, "of": vocab_size, "unk_id": len(kept),
              "unknown_tokens": unknown, "file": "output_vocab.pt"}  # fmt: skip
    return out, kept, record


def prepare(
    kind: str, arg: str | None, opts: dict[str, Any], timer: common.Timings
) -> tuple[dict[str, bytes], dict[str, Any]]:
    with timer.stage("import"):
        import torch

    split_map = _split_map(opts)
    lines, read_info = common.read_source("wikitext2", kind, arg, opts, timer, SOURCES, SOURCE_FORMS)
    warnings, held_out = _apply_split_map(lines, split_map, opts.get("held_out"))
    subsets = _prefix_subsets(lines, opts) if kind != "synthetic" else {}
    with timer.stage("tokenizer"):
        tok = make_tokenizer(opts["tokenizer"], lines["train"], opts)
    with timer.stage("encode"):
        streams = {split: tok.encode_lines(lines[split]) for split in SPLITS}
    files = dict(tok.files)
    output_vocab = None
    if opts.get("compact_vocab"):
        streams, kept, output_vocab = compact_vocab(streams, tok.vocab_size)
        files["output_vocab.pt"] = common.tensor_file_bytes({"token_ids": torch.from_numpy(kept)})
    vocab_size = tok.vocab_size if output_vocab is None else output_vocab["size"]
    with timer.stage("serialize"):
        for split in SPLITS:
            files[f"{split}.pt"] = common.tensor_file_bytes({"tokens": torch.from_numpy(streams[split])})
    counts = {
        s: {"tokens": int(streams[s].size), "words": count_words(lines[s]), "lines": len(lines[s])} for s in SPLITS
    }
    info = dict(tok.info)
    info.setdefault("vocab_size", tok.vocab_size)
    if info.get("stand_in"):
        warnings.append(info["note"])
    manifest = {"task": "wikitext2", "source": kind, "synthetic": kind == "synthetic", **read_info}
    manifest.update(
        {
            "splits": list(SPLITS),
            "counts": counts,
            "words_rule": WORDS_RULE,
            "tokens_per_word": {s: round(counts[s]["tokens"] / max(counts[s]["words"], 1), 6) for s in SPLITS},
            "vocab_size": vocab_size,
            "output_vocab": output_vocab,
            "tokenizer": tok.name,
            "tokenizer_info": info,
            "seq_len": opts["seq_len"],
            "split_map": split_map,
            "held_out": held_out,
            "subsets": subsets,
            "warnings": warnings,
            "n_classes": None,
            "class_balance": None,
        }
    )
    return files, manifest
