"""The tokenizers of the language-model data (:mod:`astromorphic.data.wikitext2`, option ``tokenizer``): one token
per word (``word``), a byte-level BPE trained on the training split (``bpe``), and GPT-2's byte-level BPE
(``gpt2``), looked for locally, then downloaded, and checked against known encodings. The module docstring of
:mod:`astromorphic.data.wikitext2` says which is chosen when.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from astromorphic.data import common
from astromorphic.data.common import DataError

EOS, UNK = "<eos>", "<unk>"
# known GPT-2 encodings: every GPT-2 tokenizer loaded here must reproduce them
GPT2_CHECKS = (("Hello world", [15496, 995]), (" Hello", [18435]), (" the", [262]))
GPT2_VOCAB_SIZE = 50257
GPT2_EOT = "<|endoftext|>"
GPT2_FILE_NAMES = (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt"))
# sha256 of the files as released with GPT-2 (encoder.json, vocab.bpe)
GPT2_RELEASE_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
GPT2_HF_REPOS = ("openai-community/gpt2", "gpt2")
_TIKTOKEN_GPT2_FILES = (
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
)
class _Tokenizer:
    name: str
    vocab_size: int
    info: dict[str, Any]
    files: dict[str, bytes]

    def encode_lines(self, lines: list[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class WordTokenizer(_Tokenizer):
    def __init__(self, train_lines: list[str]) -> None:
        counts: Counter = Counter()
        for line in train_lines:
            counts.update(line.split())
        words = sorted((w for w in counts if w not in (EOS, UNK)), key=lambda w: (-counts[w], w))
        self.itos = [EOS, UNK] + words
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.name = "word"
        self.vocab_size = len(self.itos)
        self.info = {
            "kind": "word",
            "is_gpt2_vocabulary": False,
            "stand_in": False,
            "vocabulary_from": "train split",
            "eos_id": 0,
            "unk_id": 1,
            "file": "vocab.json",
        }
        self.files = {"vocab.json": common.json_list_bytes(self.itos)}

    def encode_lines(self, lines: list[str]) -> np.ndarray:
        stoi, unk = self.stoi, self.stoi[UNK]
        ids: list[int] = []
        for line in common.progress(lines, desc="encode", unit=" lines"):
            ids.extend(stoi.get(w, unk) for w in line.split())
            ids.append(0)
        return np.asarray(ids, dtype=np.int64)


class HFTokenizer(_Tokenizer):
    """A ``tokenizers.Tokenizer``: a trained byte-level BPE or GPT-2's ``tokenizer.json``."""

    def __init__(self, tok, name: str, info: dict[str, Any]) -> None:
        self.tok = tok
        self.name = name
        self.vocab_size = tok.get_vocab_size(with_added_tokens=True)
        self.info = {**info, "vocab_size": self.vocab_size, "file": "tokenizer.json"}
        self.files = {"tokenizer.json": (tok.to_str(pretty=True) + "\n").encode("utf-8")}

    def encode_lines(self, lines: list[str]) -> np.ndarray:
        ids: list[int] = []
        step = 2000
        for i in common.progress(range(0, len(lines), step), desc="encode", unit=" k-lines"):
            for enc in self.tok.encode_batch(lines[i : i + step], add_special_tokens=False):
                ids.extend(enc.ids)
        return np.asarray(ids, dtype=np.int64)


class TiktokenGPT2(_Tokenizer):
    def __init__(self, enc, info: dict[str, Any]) -> None:
        self.enc = enc
        self.name = "gpt2"
        self.vocab_size = enc.n_vocab
        self.info = {**info, "vocab_size": enc.n_vocab}
        self.files = {}

    def encode_lines(self, lines: list[str]) -> np.ndarray:
        ids: list[int] = []
        for chunk in (lines[i : i + 2000] for i in range(0, len(lines), 2000)):
            for seq in self.enc.encode_ordinary_batch(chunk):
                ids.extend(seq)
        return np.asarray(ids, dtype=np.int64)


def train_bpe(train_lines: list[str], vocab_size: int, min_frequency: int) -> HFTokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=common.progress_enabled(),
    )
    tok.train_from_iterator(train_lines, trainer=trainer)
    import tokenizers

    return HFTokenizer(
        tok,
        f"bytelevel-bpe-{tok.get_vocab_size()}",
        {
            "kind": "bpe",
            "is_gpt2_vocabulary": False,
            "stand_in": True,
            "note": (
                "STAND-IN for the GPT-2 tokenizer (its files were not available locally): a byte-level BPE "
                "trained on this training split. Token-level perplexities are not comparable with GPT-2 "
                "numbers; word-level perplexities are."
            ),
            "trained_on": "train split",
            "bpe_vocab_size": vocab_size,
            "bpe_min_frequency": min_frequency,
            "library": f"tokenizers {tokenizers.__version__}",
        },
    )


def _tiktoken_cache_dir() -> Path:
    for env in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(env):
            return Path(os.environ[env])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def gpt2_files(folder: Path) -> tuple[Path, Path] | None:
    """The vocabulary and merges files of the released GPT-2 tokenizer in ``folder`` (``encoder.json`` and
    ``vocab.bpe``, or the same files under the Hugging Face names ``vocab.json`` and ``merges.txt``), or None."""
    for vocab, merges in GPT2_FILE_NAMES:
        if (folder / vocab).is_file() and (folder / merges).is_file():
            return folder / vocab, folder / merges
    return None


def find_gpt2_dir(folder: Path) -> Path | None:
    """Where the GPT-2 files sit for a local WikiText-2 folder: in it, in its ``gpt2/`` sub-folder, or in a
    ``gpt2/`` folder beside it (``<data_dir>/gpt2`` next to ``<data_dir>/wikitext2``); None when nowhere."""
    for candidate in (folder, folder / "gpt2", folder.parent / "gpt2"):
        if candidate.is_dir() and gpt2_files(candidate) is not None:
            return candidate
    return None


def _check_gpt2(tok, where: str) -> None:
    """A DataError unless ``tok`` has GPT-2's vocabulary size and encodes the known strings as GPT-2 does."""
    for text, expected in GPT2_CHECKS:
        ids = tok.encode(text, add_special_tokens=False).ids
        if ids != expected:
            raise DataError(f"{where}: not the GPT-2 vocabulary ({text!r} -> {ids}, expected {expected})")
    if tok.get_vocab_size() != GPT2_VOCAB_SIZE:
        size = tok.get_vocab_size()
        raise DataError(f"{where}: not the GPT-2 vocabulary ({size} tokens, expected {GPT2_VOCAB_SIZE})")


def gpt2_from_dir(folder: str | Path) -> HFTokenizer:
    """GPT-2's byte-level BPE built from its released files (``encoder.json``: token -> id, ``vocab.bpe``: the
    merges) with the ``tokenizers`` library: byte-level pre-tokenizer without a prefix space, as GPT-2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    folder = Path(folder)
    files = gpt2_files(folder) if folder.is_dir() else None
    if files is None:
        raise DataError(
            f"{folder}: no GPT-2 tokenizer files (option gpt2_dir); expected encoder.json and vocab.bpe "
            "(or vocab.json and merges.txt) as released with GPT-2"
        )
    vocab, merges = files
    try:
        tok = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    except Exception as exc:
        raise DataError(f"{folder}: cannot read {vocab.name} and {merges.name} as a BPE vocabulary ({exc})") from exc
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([GPT2_EOT])  # id 50256, already in the vocabulary, as in GPT-2's tokenizer.json
    _check_gpt2(tok, str(folder))
    records = [common.file_record(vocab), common.file_record(merges)]
    release = [GPT2_RELEASE_SHA256.get(name) for name in (r["name"] for r in records)]
    info = {
        "kind": "gpt2",
        "is_gpt2_vocabulary": True,
        "stand_in": False,
        "origin": f"gpt2_dir ({vocab.name}, {merges.name})",
        "source_files": records,
        "release_sha256_match": [r["sha256"] for r in records] == release,
    }
    return HFTokenizer(tok, "gpt2", info)


def _gpt2_from_json(path: Path, origin: str) -> HFTokenizer:
    """GPT-2 from a ``tokenizers`` tokenizer.json (a local file or the Hugging Face cache), checked."""
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise DataError(f"{path}: not a tokenizers tokenizer.json ({exc})") from exc
    _check_gpt2(tok, str(path))
    info = {
        "kind": "gpt2",
        "is_gpt2_vocabulary": True,
        "stand_in": False,
        "origin": origin,
        "source_file": common.file_record(path),
    }
    return HFTokenizer(tok, "gpt2", info)


def _gpt2_from_hf_cache(looked: list[str]) -> HFTokenizer | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of datasets
        return None
    for repo in GPT2_HF_REPOS:
        hit = try_to_load_from_cache(repo, "tokenizer.json")
        looked.append(f"Hugging Face cache {repo}/tokenizer.json")
        if isinstance(hit, str):
            return _gpt2_from_json(Path(hit), f"Hugging Face cache ({repo})")
    return None


def _gpt2_from_tiktoken(looked: list[str]) -> _Tokenizer | None:
    cache = _tiktoken_cache_dir()
    looked.append(f"tiktoken cache {cache}")
    keys = [hashlib.sha1(url.encode()).hexdigest() for url in _TIKTOKEN_GPT2_FILES]
    if not all((cache / k).is_file() for k in keys):
        return None
    try:
        import tiktoken
    except ImportError:
        looked[-1] += " (files present, tiktoken not installed: pip install tiktoken)"
        return None
    enc = tiktoken.get_encoding("gpt2")
    if enc.encode_ordinary(GPT2_CHECKS[0][0]) != GPT2_CHECKS[0][1]:
        raise DataError(f"{cache}: the cached tiktoken GPT-2 files do not give the GPT-2 encoding")
    info = {"kind": "gpt2", "is_gpt2_vocabulary": True, "stand_in": False, "origin": f"tiktoken {tiktoken.__version__}"}
    return TiktokenGPT2(enc, info)


def find_gpt2(opts: dict[str, Any]) -> tuple[_Tokenizer | None, list[str]]:
    """The GPT-2 tokenizer from local files only, or None and the places that were looked at. In this order:
    option ``gpt2_tokenizer_file`` (a tokenizer.json), option ``gpt2_dir`` (the released encoder.json and
    vocab.bpe), the Hugging Face cache, tiktoken's cache. A named file or folder that is missing or holds
    another vocabulary is an error, not a fall-back."""
    looked: list[str] = []
    if opts.get("gpt2_tokenizer_file"):
        path = Path(opts["gpt2_tokenizer_file"])
        if not path.is_file():
            raise DataError(
                f"{path}: GPT-2 tokenizer file not found (option gpt2_tokenizer_file; expected a tokenizer.json)"
            )
        return _gpt2_from_json(path, "gpt2_tokenizer_file"), looked
    if opts.get("gpt2_dir"):
        return gpt2_from_dir(opts["gpt2_dir"]), looked
    tok = _gpt2_from_hf_cache(looked)
    if tok is None:
        tok = _gpt2_from_tiktoken(looked)
    return tok, looked


def download_gpt2(opts: dict[str, Any], looked: list[str]) -> HFTokenizer | None:
    """GPT-2's tokenizer.json from the Hugging Face Hub (into its cache), or None when the Hub cannot be reached
    within ``network_timeout`` seconds or offline mode is set (the reason goes to ``looked``)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        import huggingface_hub.constants as hconst
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of datasets
        looked.append("Hugging Face Hub (huggingface_hub not installed)")
        return None
    reason = "offline mode is set (HF_HUB_OFFLINE)" if hconst.HF_HUB_OFFLINE else None
    reason = reason or common.check_reachable(endpoint, float(opts["network_timeout"]))
    if reason is not None:
        looked.append(f"Hugging Face Hub {GPT2_HF_REPOS[0]}: {reason}")
        return None
    try:
        path = hf_hub_download(GPT2_HF_REPOS[0], "tokenizer.json")
    except Exception as exc:
        raise DataError(
            f"tokenizer gpt2: downloading {GPT2_HF_REPOS[0]}/tokenizer.json failed ({type(exc).__name__}: {exc})"
        ) from exc
    return _gpt2_from_json(Path(path), f"Hugging Face Hub ({GPT2_HF_REPOS[0]}, downloaded)")


def make_tokenizer(choice: str, train_lines: list[str], opts: dict[str, Any]) -> _Tokenizer:
    """The tokenizer of option ``tokenizer``. ``gpt2`` and ``auto`` use local GPT-2 files first
    (:func:`find_gpt2`); then ``gpt2`` downloads from the Hugging Face Hub when it can be reached and fails
    with a one-line error when not, while ``auto`` trains the byte-level BPE stand-in."""
    if choice == "word":
        return WordTokenizer(train_lines)
    if choice in ("gpt2", "auto"):
        tok, looked = find_gpt2(opts)
        if tok is None and choice == "gpt2":
            tok = download_gpt2(opts, looked)
        if tok is not None:
            return tok
        if choice == "gpt2":
            raise DataError(
                "tokenizer gpt2: the GPT-2 tokenizer files are not available locally (looked in: "
                + "; ".join(looked)
                + "). Give the folder of GPT-2's encoder.json and vocab.bpe with gpt2_dir, a GPT-2 tokenizer.json "
                "with gpt2_tokenizer_file, or use tokenizer: bpe (a stand-in trained on the training split) or "
                "tokenizer: word."
            )
        print(
            "astromorphic prepare: GPT-2 tokenizer not available locally; training a byte-level BPE stand-in "
            "on the training split (recorded in the manifest)",
            file=sys.stderr,
        )
    vocab = common.require_int(opts, "bpe_vocab_size", minimum=257)
    return train_bpe(train_lines, vocab, common.require_int(opts, "bpe_min_frequency"))
