"""IMDB sentiment (Maas et al. 2011): 25,000 train and 25,000 test reviews, labels 0 = negative, 1 = positive.

Sources:

- ``hf``: Hugging Face ``stanfordnlp/imdb`` at a pinned revision (option ``hf_dataset`` may also name a
  local folder laid out like the Hub repository, ``plain_text/{train,test}-*.parquet``).
- ``aclimdb:PATH``: the official release, as the ``aclImdb`` folder (``aclImdb/{train,test}/{pos,neg}/
  <id>_<rating>.txt``), a folder holding it, a folder of ``.tar.gz`` archives of it, or one archive
  (``aclImdb_v1.tar.gz``). The unlabelled ``train/unsup`` reviews are ignored.
- ``synthetic``: the negation-scope stand-in of :mod:`astromorphic.data.synthetic`.

Tokens: ``<br />`` tags become spaces, then a regular expression splits words (with inner apostrophes)
and single punctuation marks. With a GloVe file (option ``glove``) case is kept (GloVe 840B is cased), the
vocabulary is the training words that GloVe knows, and ``embedding.pt`` holds their vectors; otherwise
the text is lower-cased and the vocabulary is built from the training split. Ids: 0 = ``<pad>``,
1 = ``<unk>``, then words by decreasing training frequency (ties by the word). Each review is truncated to
``seq_len`` tokens (``truncation``: keep the ``head`` or the ``tail``) and padded with 0 on the ``right``
or ``left``.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from astromorphic.data import common, synthetic
from astromorphic.data.common import DataError

HF_DATASET = "stanfordnlp/imdb"
HF_REVISION = "e6281661ce1c48d982bc483cf8a173c1bbeb5d31"
CLASS_NAMES = ("neg", "pos")
PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
SPLITS = ("train", "test")
ALTERNATIVES = (
    "Alternatives: --source aclimdb:PATH (the official aclImdb folder or its .tar.gz archives, "
    "downloadable as aclImdb_v1.tar.gz from the Stanford AI Lab), or --source synthetic (offline stand-in)."
)

DEFAULTS: dict[str, Any] = {
    "seq_len": 400,
    "truncation": "head",  # keep the first seq_len tokens ("tail": the last)
    "padding": "right",
    "lowercase": None,  # None: lower-case unless GloVe vectors are used (GloVe 840B is cased)
    "min_freq": 2,  # vocabulary: words seen at least this often in the training split
    "max_vocab": 30000,  # vocabulary size cap, the two special tokens included; 0: no cap
    "glove": None,  # path to a GloVe text file (.txt, .zip or .gz): keep its vectors for the vocabulary
    "glove_dim": 300,
    "n_train": None,  # None: all; else a class-balanced random subset of this size (seeded)
    "n_test": None,
    "seed": 0,
    "vocab_size": None,  # synthetic only: words in the generator's vocabulary, specials included
    "hf_dataset": HF_DATASET,
    "hf_revision": HF_REVISION,
    "hf_cache_dir": None,
    "network_timeout": 10.0,
}
SYNTHETIC_DEFAULTS: dict[str, Any] = {
    "seq_len": 64,
    "n_train": 2000,
    "n_test": 1000,
    "vocab_size": 200,
    "min_freq": 1,
    "max_vocab": 0,
}

_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def tokenize(text: str, lowercase: bool) -> list[str]:
    text = _BREAK.sub(" ", text)
    if lowercase:
        text = text.lower()
    return _TOKEN.findall(text)


# ------------------------------------------------------------------------------------------------ reading


def _acl_root(path: Path) -> Path | None:
    if (path / "train").is_dir() or (path / "test").is_dir():
        return path
    if (path / "aclImdb").is_dir():
        return path / "aclImdb"
    return None


def read_aclimdb(path: str | Path) -> tuple[dict[str, list[tuple[int, int, int, str]]], list[dict[str, Any]]]:
    """Reviews per split as ``(label, id, rating, text)`` sorted by label then id, and input file records."""
    path = Path(path)
    expected = "the aclImdb folder (aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt) or .tar.gz archives of it"
    if not path.exists():
        raise DataError(f"{path}: not found; expected {expected}")
    found: dict[tuple[str, int], dict[int, tuple[int, str]]] = {}
    inputs: list[dict[str, Any]] = []

    def add(name: str, data: bytes, origin: str) -> None:
        m = _MEMBER.search(name)
        assert m is not None
        split, label, rid, rating = m.group(1), CLASS_NAMES.index(m.group(2)), int(m.group(3)), int(m.group(4))
        bucket = found.setdefault((split, label), {})
        if rid in bucket:
            raise DataError(f"{origin}: review {split}/{m.group(2)}/{rid} appears twice")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{origin}: {name} is not UTF-8 text ({exc})") from exc
        bucket[rid] = (rating, text)

    root = _acl_root(path) if path.is_dir() else None
    if path.is_dir() and root is None:
        archives = sorted(p for p in path.iterdir() if common.is_archive(p))
        if not archives:
            raise DataError(f"{path}: no train/ or test/ folder and no .tar.gz archive here; expected {expected}")
    elif path.is_file():
        if not common.is_archive(path):
            raise DataError(f"{path}: not a .tar.gz/.tgz/.tar archive; expected {expected}")
        archives = [path]
    else:
        archives = []

    if root is not None:
        digest = hashlib.sha256()
        total, n_files = 0, 0
        for split in SPLITS:
            for label in CLASS_NAMES:
                folder = root / split / label
                if not folder.is_dir():
                    raise DataError(
                        f"{folder}: folder missing; expected {split} reviews labelled {label} as <id>_<rating>.txt"
                    )
                files = sorted(
                    (p for p in folder.iterdir() if _MEMBER.search(p.as_posix())),
                    key=lambda p: common.natural_key(p.name),
                )
                for p in common.progress(files, desc=f"read {split}/{label}"):
                    data = p.read_bytes()
                    rel = p.relative_to(root).as_posix()
                    digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
                    total += len(data)
                    n_files += 1
                    add(rel, data, str(p))
        inputs.append({"name": f"{root.name}/ ({n_files} review files)", "sha256": digest.hexdigest(), "bytes": total})
    for archive in archives:
        before = sum(len(v) for v in found.values())
        what = "gzip'd tar archive of aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt review files"
        for name, data in common.progress(
            common.iter_archive(archive, lambda n: bool(_MEMBER.search(n)), what),
            desc=f"read {archive.name}",
            unit=" files",
        ):
            if data is not None:
                add(name, data, str(archive))
        record = common.file_record(archive)
        record["reviews"] = sum(len(v) for v in found.values()) - before
        inputs.append(record)

    out: dict[str, list[tuple[int, int, int, str]]] = {}
    for split in SPLITS:
        rows = []
        for label in range(len(CLASS_NAMES)):
            bucket = found.get((split, label))
            if not bucket:
                raise DataError(
                    f"{path}: no reviews for {split}/{CLASS_NAMES[label]}; expected files "
                    f"aclImdb/{split}/{CLASS_NAMES[label]}/<id>_<rating>.txt (folder or archive member)"
                )
            rows += [(label, rid, rating, text) for rid, (rating, text) in sorted(bucket.items())]
        out[split] = rows
    return out, inputs


def read_hf(opts: dict[str, Any]) -> tuple[dict[str, tuple[list[str], list[int]]], list[dict[str, Any]]]:
    ds, inputs = common.load_hf_dataset(
        opts["hf_dataset"],
        None,
        opts["hf_revision"],
        opts["hf_cache_dir"],
        float(opts["network_timeout"]),
        "hf",
        ALTERNATIVES,
    )
    out = {}
    for split in SPLITS:
        if split not in ds:
            raise DataError(f"Hugging Face dataset {opts['hf_dataset']!r} has no {split!r} split (has {', '.join(ds)})")
        table = ds[split]
        missing = {"text", "label"} - set(table.column_names)
        if missing:
            raise DataError(
                f"Hugging Face dataset {opts['hf_dataset']!r} split {split!r} lacks column(s) {sorted(missing)}"
            )
        texts, labels = list(table["text"]), [int(x) for x in table["label"]]
        bad = sorted(set(labels) - {0, 1})
        if bad:
            raise DataError(f"Hugging Face dataset {opts['hf_dataset']!r} split {split!r}: labels {bad} are not 0/1")
        out[split] = (texts, labels)
    return out, inputs


def read_glove(path: str | Path, words: set[str], dim: int) -> dict[str, np.ndarray]:
    """Stream a GloVe text file (``word v1 ... vD`` per line; plain, .gz or .zip) and keep vectors of ``words``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: GloVe file not found (expected a text file of 'word v1 ... v{dim}' lines, .txt/.zip/.gz)"
        )
    wanted = {w.encode("utf-8"): w for w in words}
    vectors: dict[str, np.ndarray] = {}

    def scan(fh) -> None:
        for lineno, line in enumerate(common.progress(fh, desc="GloVe", unit=" lines"), start=1):
            word, sep, rest = line.partition(b" ")
            if not sep:
                continue
            key = wanted.get(word)
            if key is None or key in vectors:  # the first occurrence wins (840B has a few duplicates)
                continue
            try:
                vec = np.array(rest.split(), dtype=np.float32)
            except ValueError as exc:
                raise DataError(f"{path}: line {lineno} is not 'word v1 ... v{dim}' ({exc})") from exc
            if vec.shape != (dim,):
                raise DataError(f"{path}: line {lineno} has {vec.size} values, expected {dim} (option glove_dim)")
            vectors[key] = vec

    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith(".txt")]
                if len(names) != 1:
                    raise DataError(f"{path}: expected exactly one .txt file in the zip, found {names}")
                with zf.open(names[0]) as fh:
                    scan(io.BufferedReader(fh))
        elif path.suffix == ".gz":
            import gzip

            with gzip.open(path, "rb") as fh:
                scan(fh)
        else:
            with open(path, "rb") as fh:
                scan(fh)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"{path}: truncated or corrupted GloVe file ({type(exc).__name__}: {exc})") from exc
    return vectors


# ------------------------------------------------------------------------------------------------ encoding


def build_vocabulary(
    counts: Counter, min_freq: int, max_vocab: int | None, allowed: set[str] | None = None
) -> list[str]:
    items = [(w, c) for w, c in counts.items() if c >= min_freq and (allowed is None or w in allowed)]
    items.sort(key=lambda wc: (-wc[1], wc[0]))
    if max_vocab is not None:
        items = items[: max(max_vocab - 2, 0)]
    return [PAD, UNK] + [w for w, _ in items]


def encode(
    token_lists: list[list[str]], stoi: dict[str, int], seq_len: int, truncation: str, padding: str
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    n = len(token_lists)
    tokens = np.full((n, seq_len), PAD_ID, dtype=np.int64)
    lengths = np.empty(n, dtype=np.int64)
    raw_lengths = np.empty(n, dtype=np.int64)
    n_unk = 0
    for i, toks in enumerate(token_lists):
        raw_lengths[i] = len(toks)
        kept = toks[:seq_len] if truncation == "head" else toks[-seq_len:] if toks else toks
        ids = [stoi.get(t, UNK_ID) for t in kept] or [UNK_ID]  # an empty review becomes one <unk>
        n_unk += sum(1 for x in ids if x == UNK_ID)
        k = len(ids)
        if padding == "right":
            tokens[i, :k] = ids
        else:
            tokens[i, seq_len - k :] = ids
        lengths[i] = k
    stats = {
        "mean_length_raw": round(float(raw_lengths.mean()), 3) if n else 0.0,
        "max_length_raw": int(raw_lengths.max()) if n else 0,
        "truncated_fraction": round(float((raw_lengths > seq_len).mean()), 6) if n else 0.0,
        "unk_fraction_of_kept_tokens": round(n_unk / max(int(lengths.sum()), 1), 6),
    }
    return tokens, lengths, stats


# ------------------------------------------------------------------------------------------------ prepare


def prepare(
    kind: str, arg: str | None, opts: dict[str, Any], timer: common.Timings
) -> tuple[dict[str, bytes], dict[str, Any]]:
    with timer.stage("import"):
        import torch

    seq_len = common.require_int(opts, "seq_len")
    common.require_choice(opts, "truncation", ("head", "tail"))
    common.require_choice(opts, "padding", ("right", "left"))
    min_freq = common.require_int(opts, "min_freq")
    max_vocab = common.require_int(opts, "max_vocab", minimum=0) or None
    if max_vocab is not None and max_vocab < 3:
        raise DataError(f"data option 'max_vocab' must be 0 (no cap) or at least 3, got {max_vocab}")
    seed = common.require_int(opts, "seed", minimum=0)
    if opts["vocab_size"] is not None and kind != "synthetic":
        raise DataError(
            "option vocab_size applies to the synthetic source only; use max_vocab to cap a real vocabulary"
        )
    use_glove = opts["glove"] is not None
    lowercase = (not use_glove) if opts["lowercase"] is None else bool(opts["lowercase"])

    manifest: dict[str, Any] = {"task": "imdb", "source": kind, "synthetic": kind == "synthetic"}
    texts: dict[str, list[str]] = {}
    labels: dict[str, np.ndarray] = {}
    with timer.stage("read"):
        if kind == "aclimdb":
            if not arg:
                raise DataError(
                    "source aclimdb needs a path: --source aclimdb:PATH (the aclImdb folder or its .tar.gz archives)"
                )
            reviews, inputs = read_aclimdb(arg)
            for split in SPLITS:
                texts[split] = [r[3] for r in reviews[split]]
                labels[split] = np.array([r[0] for r in reviews[split]], dtype=np.int64)
            manifest["source_path"] = arg
        elif kind == "hf":
            if arg:
                opts = {**opts, "hf_dataset": arg}
            data, inputs = read_hf(opts)
            for split in SPLITS:
                texts[split], labels[split] = data[split][0], np.asarray(data[split][1], dtype=np.int64)
            manifest["hf_dataset"] = opts["hf_dataset"]
            manifest["revision"] = None if Path(opts["hf_dataset"]).is_dir() else opts["hf_revision"]
        elif kind == "synthetic":
            vocab_size = common.require_int(opts, "vocab_size", minimum=40)
            n_train, n_test = common.require_int(opts, "n_train", 2), common.require_int(opts, "n_test", 2)
            texts["train"], labels["train"] = synthetic.imdb_like(n_train, seq_len, vocab_size, seed)
            texts["test"], labels["test"] = synthetic.imdb_like(n_test, seq_len, vocab_size, seed + 1_000_003)
            inputs = []
            manifest["note"] = common.SYNTHETIC_NOTE
            manifest["generator"] = {
                "name": "imdb_like",
                "version": synthetic.GENERATOR_VERSION,
                "numpy": np.__version__,
                "seed": seed,
                "test_seed": seed + 1_000_003,
                "vocab_size": vocab_size,
                "rule": (
                    "a negator flips the next sentiment word within "
                    f"{synthetic.NEGATION_SCOPE} tokens; after negation all sentiment words agree with the label; "
                    f"{synthetic.NEGATION_RATE:.0%} of sentiment words are negated; stray negators are distractors"
                ),
            }
        else:
            raise DataError(f"unknown source {kind!r} for task imdb; expected hf, aclimdb:PATH or synthetic")
    manifest["inputs"] = inputs

    subsets = {}
    if kind != "synthetic":
        for split in SPLITS:
            n = common.require_int(opts, f"n_{split}", 2, allow_none=True)
            if n is not None and n < len(texts[split]):
                original = len(texts[split])
                idx = common.balanced_subset(labels[split], n, 2, seed, f"imdb {split}")
                texts[split] = [texts[split][i] for i in idx]
                labels[split] = labels[split][idx]
                subsets[split] = {
                    "n": n,
                    "of": original,
                    "seed": seed,
                    "rule": "class-balanced random subset, original order",
                }

    with timer.stage("tokenize"):
        token_lists = {
            split: [
                tokenize(t, lowercase) for t in common.progress(texts[split], desc=f"tokenize {split}", unit=" reviews")
            ]
            for split in SPLITS
        }
    with timer.stage("vocabulary"):
        counts: Counter = Counter()
        for toks in token_lists["train"]:
            counts.update(toks)
        n_train_tokens = sum(counts.values())
    files: dict[str, bytes] = {}
    embedding_info = None
    if use_glove:
        with timer.stage("glove"):
            candidates = {w for w, c in counts.items() if c >= min_freq}
            glove_path = Path(opts["glove"])
            vectors = read_glove(glove_path, candidates, common.require_int(opts, "glove_dim"))
            vocab = build_vocabulary(counts, min_freq, max_vocab, allowed=set(vectors))
            matrix = np.zeros((len(vocab), int(opts["glove_dim"])), dtype=np.float32)  # <pad>, <unk>: zeros
            for i, w in enumerate(vocab[2:], start=2):
                matrix[i] = vectors[w]
            covered = sum(counts[w] for w in vocab[2:])
            files["embedding.pt"] = common.tensor_file_bytes({"vectors": torch.from_numpy(matrix)})
            embedding_info = {
                "name": "GloVe",
                "file": common.file_record(glove_path),
                "dim": int(opts["glove_dim"]),
                "words_found": len(vectors),
                "candidate_words": len(candidates),
                "train_token_coverage": round(covered / max(n_train_tokens, 1), 6),
                "special_rows": "zeros for <pad> and <unk>",
            }
    else:
        vocab = build_vocabulary(counts, min_freq, max_vocab)
    stoi = {w: i for i, w in enumerate(vocab)}

    length_stats, encoded = {}, {}
    with timer.stage("encode"):
        for split in SPLITS:
            encoded[split] = encode(token_lists[split], stoi, seq_len, opts["truncation"], opts["padding"])
            length_stats[split] = encoded[split][2]
    with timer.stage("serialize"):
        for split in SPLITS:
            tokens, lengths, _ = encoded.pop(split)
            files[f"{split}.pt"] = common.tensor_file_bytes(
                {
                    "tokens": torch.from_numpy(tokens),
                    "lengths": torch.from_numpy(lengths),
                    "labels": torch.from_numpy(labels[split]),
                }
            )
    files["vocab.json"] = common.json_list_bytes(vocab)

    manifest.update(
        {
            "splits": list(SPLITS),
            "counts": {s: {"examples": len(texts[s])} for s in SPLITS},
            "subsets": subsets,
            "n_classes": 2,
            "class_names": list(CLASS_NAMES),
            "class_balance": {s: common.class_counts(labels[s], 2) for s in SPLITS},
            "vocab_size": len(vocab),
            "pad_id": PAD_ID,
            "unk_id": UNK_ID,
            "seq_len": seq_len,
            "truncation": opts["truncation"],
            "padding": opts["padding"],
            "tokenizer": "regex-words" + ("-lowercase" if lowercase else "-cased"),
            "tokenizer_info": {
                "pattern": _TOKEN.pattern,
                "removed": _BREAK.pattern,
                "lowercase": lowercase,
                "vocabulary_from": "train split" + (" words present in the GloVe file" if use_glove else ""),
                "min_freq": min_freq,
                "max_vocab": max_vocab,
                "distinct_train_words": len(counts),
                "vocab_file": "vocab.json (JSON list; entry i is the word of id i)",
            },
            "embedding_file": "embedding.pt" if use_glove else None,
            "embedding": embedding_info,
            "length_stats": length_stats,
        }
    )
    return files, manifest
