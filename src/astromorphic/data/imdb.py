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

import io
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from astromorphic.data import common, synthetic, validation
from astromorphic.data.common import DataError

CLASS_NAMES = ("neg", "pos")
PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
SPLITS = ("train", "test")
SOURCE_FORMS = "hf, aclimdb:PATH or synthetic"
ALTERNATIVES = (
    "Alternatives: --source aclimdb:PATH (the official aclImdb folder or its .tar.gz archives, "
    "downloadable as aclImdb_v1.tar.gz from the Stanford AI Lab), or --source synthetic (offline stand-in)."
)
ACL_EXPECTED = "the aclImdb folder (aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt) or .tar.gz archives of it"
LOCAL_FORMATS = "an aclImdb/ folder, train/ and test/ folders of it, or .tar.gz archives of it (aclImdb_v1.tar.gz)"

_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_URLS = re.compile(r"(?:^|/)(train|test)/urls_(pos|neg)\.txt$")  # line i: the IMDb page of review id i's movie
_TITLE = re.compile(r"/title/(tt\d+)")
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


def local_source(folder: Path) -> dict[str, Any] | None:
    """Data options for a local folder in the official format (see :func:`astromorphic.data.source_from_dir`)."""
    if _acl_root(folder) is not None or any(common.is_archive(p) for p in folder.iterdir()):
        return {"source": f"aclimdb:{folder}"}
    return None


def read_aclimdb(
    path: str | Path, urls: dict[tuple[str, int], list[str]] | None = None
) -> tuple[dict[str, list[tuple[int, int, int, str]]], list[dict[str, Any]]]:
    """Reviews per split as ``(label, id, rating, text)`` sorted by label then id, and input file records.

    With a dict ``urls``, the release's ``urls_pos.txt`` / ``urls_neg.txt`` are read into it as well:
    ``{(split, label): lines}``, line i the IMDb page of the movie of review id i (:func:`review_movies`)."""
    path = Path(path)
    root, archives = _acl_layout(path)
    found: dict[tuple[str, int], dict[int, tuple[int, str]]] = {}
    inputs: list[dict[str, Any]] = []
    if root is not None:
        inputs.append(_read_acl_tree(root, found))
        if urls is not None:
            inputs += _read_url_files(root, urls)
    what = "gzip'd tar archive of aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt review files"
    wanted = (lambda n: bool(_MEMBER.search(n) or _URLS.search(n))) if urls is not None else _MEMBER.search
    for archive in archives:
        members, record = common.read_archive(archive, lambda n: bool(wanted(n)), what, "reviews")
        for name, data in members:
            if data is not None and _URLS.search(name):
                _add_urls(urls, name, data, str(archive))
            elif data is not None:
                _add_review(found, name, data, str(archive))
        record["reviews"] = sum(1 for name, data in members if data is not None and _MEMBER.search(name))
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


def _acl_layout(path: Path) -> tuple[Path | None, list[Path]]:
    """The aclImdb folder to read, or the archives to read, of a source path."""
    if not path.exists():
        raise DataError(f"{path}: not found; expected {ACL_EXPECTED}")
    if path.is_file():
        if not common.is_archive(path):
            raise DataError(f"{path}: not a .tar.gz/.tgz/.tar archive; expected {ACL_EXPECTED}")
        return None, [path]
    root = _acl_root(path)
    if root is not None:
        return root, []
    archives = sorted(p for p in path.iterdir() if common.is_archive(p))
    if not archives:
        raise DataError(f"{path}: no train/ or test/ folder and no .tar.gz archive here; expected {ACL_EXPECTED}")
    return None, archives


def _add_review(found: dict, name: str, data: bytes, origin: str) -> None:
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


def _add_urls(urls: dict, name: str, data: bytes, origin: str) -> None:
    m = _URLS.search(name)
    assert m is not None
    try:
        urls[(m.group(1), CLASS_NAMES.index(m.group(2)))] = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{origin}: {name} is not UTF-8 text ({exc})") from exc


def _read_url_files(root: Path, urls: dict) -> list[dict[str, Any]]:
    """The url files of an aclImdb folder into ``urls``; their input records."""
    records = []
    for split in SPLITS:
        for label in CLASS_NAMES:
            path = root / split / f"urls_{label}.txt"
            if path.is_file():
                _add_urls(urls, path.relative_to(root).as_posix(), path.read_bytes(), str(path))
                records.append(common.file_record(path, path.relative_to(root.parent).as_posix()))
    return records


def review_movies(reviews: list[tuple[int, int, int, str]], urls: dict, split: str, where: str) -> list[str]:
    """The movie (IMDb title id, ``tt0453418``) of each review ``(label, id, rating, text)`` of ``split``, from
    line ``id`` of its class's url file; a :class:`DataError` naming the file when one is missing or short."""
    movies = []
    for label, rid, _, _ in reviews:
        lines = urls.get((split, label))
        if lines is None:
            raise DataError(f"{where}: no aclImdb/{split}/urls_{CLASS_NAMES[label]}.txt (each review's movie, in the "
                            "official release); a validation split by movie needs it: copy it beside the reviews "
                            "or set data.valid_size null")
        if rid >= len(lines):
            raise DataError(f"{where}: aclImdb/{split}/urls_{CLASS_NAMES[label]}.txt has {len(lines)} lines, none for "
                            f"review {rid}; use the file of the official release")
        found = _TITLE.search(lines[rid])
        movies.append(found.group(1) if found else lines[rid].strip())
    return movies


def _read_acl_tree(root: Path, found: dict) -> dict[str, Any]:
    tree = common.TreeDigest(root)
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
                rel, data = tree.read(p)
                _add_review(found, rel, data, str(p))
    return tree.record("review files")


def read_hf(arg: str | None, opts: dict[str, Any]) -> tuple[dict[str, tuple[list[str], list[int]]], list, dict]:
    """Texts and labels per split of the ``hf`` source, input records and manifest entries."""
    ds, inputs, record = common.hf_source(arg, opts, None, ALTERNATIVES)
    name = record["hf_dataset"]
    out = {}
    for split in SPLITS:
        if split not in ds:
            raise DataError(f"Hugging Face dataset {name!r} has no {split!r} split (has {', '.join(ds)})")
        table = ds[split]
        missing = {"text", "label"} - set(table.column_names)
        if missing:
            raise DataError(f"Hugging Face dataset {name!r} split {split!r} lacks column(s) {sorted(missing)}")
        texts, labels = list(table["text"]), [int(x) for x in table["label"]]
        bad = sorted(set(labels) - {0, 1})
        if bad:
            raise DataError(f"Hugging Face dataset {name!r} split {split!r}: labels {bad} are not 0/1")
        out[split] = (texts, labels)
    return out, inputs, record


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


# ------------------------------------------------------------------------------------------------ sources
# Each reader returns ({split: (texts, labels as int64 array)}, manifest entries including "inputs"); with a
# validation split (option valid_size), the official release's also holds "movies" ({split: movie of each review},
# taken out before the manifest is written) and a synthetic stand-in generates a "valid" split.


def _from_aclimdb(arg: str | None, opts: dict[str, Any], timer: common.Timings) -> tuple[dict, dict]:
    path = common.need_path("aclimdb", arg, "the aclImdb folder or its .tar.gz archives")
    urls: dict | None = {} if opts.get("valid_size") is not None else None
    with timer.stage("read"):
        reviews, inputs = read_aclimdb(path, urls)
    data = {s: ([r[3] for r in reviews[s]], np.array([r[0] for r in reviews[s]], dtype=np.int64)) for s in SPLITS}
    info: dict[str, Any] = {"source_path": path, "inputs": inputs}
    if urls is not None:
        info["movies"] = {s: review_movies(reviews[s], urls, s, path) for s in SPLITS}
    return data, info


def _from_hf(arg: str | None, opts: dict[str, Any], timer: common.Timings) -> tuple[dict, dict]:
    with timer.stage("read"):
        raw, inputs, record = read_hf(arg, opts)
    data = {s: (raw[s][0], np.asarray(raw[s][1], dtype=np.int64)) for s in SPLITS}
    return data, {**record, "inputs": inputs}


def _generate(arg: str | None, opts: dict[str, Any], timer: common.Timings) -> tuple[dict, dict]:
    seed, seq_len = opts["seed"], opts["seq_len"]
    vocab_size = common.require_int(opts, "vocab_size", minimum=40)
    seeds = synthetic.split_seeds(seed, SPLITS)
    with timer.stage("read"):
        sizes = {s: common.require_int(opts, f"n_{s}", 2) for s in SPLITS}
        data = {s: synthetic.imdb_like(sizes[s], seq_len, vocab_size, seeds[s]) for s in SPLITS}
        generate = lambda n, at: synthetic.imdb_like(n, seq_len, vocab_size, at)  # noqa: E731
        extra, valid_entry = validation.synthetic_split(opts, SPLITS, data, generate, len(CLASS_NAMES))
    rule = (
        f"a negator flips the next sentiment word within {synthetic.NEGATION_SCOPE} tokens; after negation all "
        f"sentiment words agree with the label; {synthetic.NEGATION_RATE:.0%} of sentiment words are negated; "
        "stray negators are distractors"
    )
    record = common.synthetic_record("imdb_like", rule, seed=seed, test_seed=seeds["test"], vocab_size=vocab_size,
                                     **extra)
    return data, {**record, "inputs": [], **({"validation": valid_entry} if valid_entry else {})}


SOURCES = {"aclimdb": _from_aclimdb, "hf": _from_hf, "synthetic": _generate}


# ------------------------------------------------------------------------------------------------ prepare


def _settings(kind: str, opts: dict[str, Any]) -> dict[str, Any]:
    """Checks across options, and the settings derived from them."""
    max_vocab = opts["max_vocab"] or None
    if max_vocab is not None and max_vocab < 3:
        raise DataError(f"data option 'max_vocab' must be 0 (no cap) or at least 3, got {max_vocab}")
    if opts["vocab_size"] is not None and kind != "synthetic":
        raise DataError(
            "option vocab_size applies to the synthetic source only; use max_vocab to cap a real vocabulary"
        )
    use_glove = opts["glove"] is not None
    lowercase = (not use_glove) if opts["lowercase"] is None else bool(opts["lowercase"])
    return {"min_freq": opts["min_freq"], "max_vocab": max_vocab, "use_glove": use_glove, "lowercase": lowercase}


def _glove_vocabulary(counts: Counter, opts: dict[str, Any], settings: dict[str, Any]) -> tuple[list, bytes, dict]:
    """The vocabulary restricted to words GloVe knows, the ``embedding.pt`` bytes and the manifest record."""
    import torch

    min_freq, dim = settings["min_freq"], opts["glove_dim"]
    candidates = {w for w, c in counts.items() if c >= min_freq}
    glove_path = Path(opts["glove"])
    vectors = read_glove(glove_path, candidates, dim)
    vocab = build_vocabulary(counts, min_freq, settings["max_vocab"], allowed=set(vectors))
    matrix = np.zeros((len(vocab), dim), dtype=np.float32)  # <pad>, <unk>: zeros
    for i, w in enumerate(vocab[2:], start=2):
        matrix[i] = vectors[w]
    covered = sum(counts[w] for w in vocab[2:])
    info = {
        "name": "GloVe",
        "file": common.file_record(glove_path),
        "dim": dim,
        "words_found": len(vectors),
        "candidate_words": len(candidates),
        "train_token_coverage": round(covered / max(sum(counts.values()), 1), 6),
        "special_rows": "zeros for <pad> and <unk>",
    }
    return vocab, common.tensor_file_bytes({"vectors": torch.from_numpy(matrix)}), info


def prepare(
    kind: str, arg: str | None, opts: dict[str, Any], timer: common.Timings
) -> tuple[dict[str, bytes], dict[str, Any]]:
    with timer.stage("import"):
        import torch

    settings = _settings(kind, opts)
    valid = validation.valid_options(opts, len(CLASS_NAMES), "imdb")
    data, read_info = common.read_source("imdb", kind, arg, opts, timer, SOURCES, SOURCE_FORMS)
    movies = read_info.pop("movies", None)
    subsets: dict[str, Any] = {}
    valid_record = None
    if kind != "synthetic":
        if valid is not None:
            data, movies, valid_record = split_by_movie(data, movies, *valid, source=kind)
        data, movies, subsets = _subsets(data, movies, opts)
        if valid_record is not None:
            valid_record.update(movie_counts(movies))
    splits = tuple(s for s in ("train", validation.SPLIT, "test") if s in data)
    with timer.stage("tokenize"):
        token_lists = {
            s: [tokenize(t, settings["lowercase"]) for t in common.progress(data[s][0], desc=f"tokenize {s}")]
            for s in splits
        }
    with timer.stage("vocabulary"):
        counts: Counter = Counter()
        for toks in token_lists["train"]:
            counts.update(toks)
    files: dict[str, bytes] = {}
    embedding_info = None
    if settings["use_glove"]:
        with timer.stage("glove"):
            vocab, files["embedding.pt"], embedding_info = _glove_vocabulary(counts, opts, settings)
    else:
        vocab = build_vocabulary(counts, settings["min_freq"], settings["max_vocab"])
    stoi = {w: i for i, w in enumerate(vocab)}
    length_stats = {}
    for split in splits:
        with timer.stage("encode"):
            tokens, lengths, length_stats[split] = encode(
                token_lists[split], stoi, opts["seq_len"], opts["truncation"], opts["padding"]
            )
        with timer.stage("serialize"):
            arrays = {"tokens": tokens, "lengths": lengths, "labels": data[split][1]}
            files[f"{split}.pt"] = common.tensor_file_bytes({k: torch.from_numpy(v) for k, v in arrays.items()})
    files["vocab.json"] = common.json_list_bytes(vocab)
    manifest = {"task": "imdb", "source": kind, "synthetic": kind == "synthetic", **read_info, "subsets": subsets}
    manifest.update(_manifest_entries(splits, data, vocab, counts, settings, opts, embedding_info, length_stats))
    if valid_record is not None:
        manifest["validation"] = valid_record
    return files, manifest


def split_by_movie(data: dict, movies: dict | None, size: int, seed: int, source: str) -> tuple[dict, dict, dict]:
    """The validation split of the training reviews, by movie (:func:`astromorphic.data.validation.group_draw`):
    ``(data and movies per split with a valid split, the manifest's validation entry)``."""
    if movies is None:
        raise DataError(f"tasks.imdb.data.valid_size: the {source} source does not say which movie each review is "
                        "about, and a validation split must hold out whole movies; use --source aclimdb:PATH (the "
                        "official release, with its urls_pos.txt / urls_neg.txt) or set valid_size null")
    texts, labels = data["train"]
    idx = validation.group_draw(labels, movies["train"], size, len(CLASS_NAMES), seed, "imdb train reviews by movie")
    held, rest = validation.split_off(texts, labels, idx)
    held_movies, rest_movies = validation.split_off(movies["train"], labels, idx)
    out = {**data, "train": rest, validation.SPLIT: held}
    out_movies = {**movies, "train": rest_movies[0], validation.SPLIT: held_movies[0]}
    rule = ("whole movies (the IMDb title of each review's URL in urls_pos.txt / urls_neg.txt) in a random order, each "
            "taken while no class exceeds valid_size / 2 reviews, until both classes have exactly that many (the first "
            "order drawn with valid_seed that fills them); the training reviews are the others (n_train subsets are "
            "drawn from them)")
    return out, out_movies, validation.record(size, seed, held[1], len(CLASS_NAMES), validation.from_train(len(labels)),
                                              rule)


def movie_counts(movies: dict[str, list[str]]) -> dict[str, Any]:
    """The manifest's movie counts per split and the movies each pair of splits shares; a :class:`DataError` when
    the training and validation reviews share one (never, by construction: checked all the same)."""
    ordered = {s: movies[s] for s in ("train", validation.SPLIT, "test") if s in movies}
    shared = validation.shared_groups(ordered)
    if shared.get(f"train-{validation.SPLIT}"):
        raise DataError(f"imdb: {shared['train-valid']} movies are in both the training and the validation reviews")
    return {"movies": {s: len(set(m)) for s, m in ordered.items()}, "shared_movies": shared}


def _subsets(data: dict, movies: dict | None, opts: dict) -> tuple[dict, dict | None, dict]:
    """Options ``n_<split>`` (:func:`astromorphic.data.common.balanced_subsets`) applied to the reviews and their
    movies alike."""
    index = {s: (np.arange(len(labels)), labels) for s, (_, labels) in data.items()}
    picked, subsets = common.balanced_subsets(index, opts, len(CLASS_NAMES), "imdb", minimum=2)
    out = {s: ([data[s][0][i] for i in picked[s][0]], picked[s][1]) for s in data}
    if movies is not None:
        movies = {s: [movies[s][i] for i in picked[s][0]] for s in movies}
    return out, movies, subsets


def _manifest_entries(
    splits: tuple[str, ...], data: dict, vocab: list[str], counts: Counter, settings: dict, opts: dict,
    embedding: dict | None, lengths: dict,
) -> dict[str, Any]:
    lowercase, use_glove = settings["lowercase"], settings["use_glove"]
    return {
        "splits": list(splits),
        "counts": {s: {"examples": len(data[s][1])} for s in splits},
        "n_classes": 2,
        "class_names": list(CLASS_NAMES),
        "class_balance": {s: common.class_counts(data[s][1], 2) for s in splits},
        "vocab_size": len(vocab),
        "pad_id": PAD_ID,
        "unk_id": UNK_ID,
        "seq_len": opts["seq_len"],
        "truncation": opts["truncation"],
        "padding": opts["padding"],
        "tokenizer": "regex-words" + ("-lowercase" if lowercase else "-cased"),
        "tokenizer_info": {
            "pattern": _TOKEN.pattern,
            "removed": _BREAK.pattern,
            "lowercase": lowercase,
            "vocabulary_from": "train split" + (" words present in the GloVe file" if use_glove else ""),
            "min_freq": settings["min_freq"],
            "max_vocab": settings["max_vocab"],
            "distinct_train_words": len(counts),
            "vocab_file": "vocab.json (JSON list; entry i is the word of id i)",
        },
        "embedding_file": "embedding.pt" if use_glove else None,
        "embedding": embedding,
        "length_stats": lengths,
    }
