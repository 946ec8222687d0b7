"""Full-size checks on the real data copies (``$ASTRO_DATA_DIR``, default ``../shared/data`` beside the
repository). They run in CI, where the copies are present, and are skipped elsewhere with a message
that says what they need."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import numpy as np

from astromorphic.data import imdb, load_prepared, prepare, source_from_dir

pytestmark = pytest.mark.shared_data
DATA_DIR_ENV = "ASTRO_DATA_DIR"

# $ASTRO_DATA_DIR, else ../shared/data relative to the repository root (the parent of tests/)
DATA = Path(os.environ.get(DATA_DIR_ENV) or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def need(*relative: str) -> Path:
    missing = [r for r in relative if not (DATA / r).is_file()]
    if missing:
        pytest.skip(
            f"needs the real data copies in {DATA} (set {DATA_DIR_ENV} to point elsewhere); missing: {', '.join(missing)}"
        )
    return DATA


def test_imdb_full_from_archives(tmp_path):
    data = need("imdb/aclImdb_train.tar.gz", "imdb/aclImdb_test.tar.gz")
    m = prepare("imdb", f"aclimdb:{data / 'imdb'}", tmp_path / "imdb")
    assert m["counts"] == {"train": {"examples": 25000}, "test": {"examples": 25000}}
    assert m["class_balance"] == {"train": [12500, 12500], "test": [12500, 12500]}
    assert m["vocab_size"] == 30000 and m["seq_len"] == 400
    by_name = {r["name"]: r["sha256"] for r in m["inputs"]}
    assert by_name["aclImdb_train.tar.gz"] == "28d60fdaf1b0d75cadd47bf3b2b4e0f73e2fd874dc6379bcc5b5b6b691415999"
    splits, _ = load_prepared(tmp_path / "imdb")
    assert tuple(splits["train"]["tokens"].shape) == (25000, 400)
    vocab = json.loads((tmp_path / "imdb" / "vocab.json").read_text())
    first = [vocab[i] for i in splits["train"]["tokens"][12500][:5].tolist()]  # train/pos/0_9.txt
    assert first == ["bromwell", "high", "is", "a", "cartoon"]


def test_imdb_validation_split_holds_out_whole_movies_of_the_release():
    data = need("imdb/aclImdb_train.tar.gz", "imdb/aclImdb_test.tar.gz")
    urls: dict = {}
    reviews, _ = imdb.read_aclimdb(data / "imdb", urls)
    movies = {s: imdb.review_movies(reviews[s], urls, s, "release") for s in imdb.SPLITS}
    texts = {s: ([r[3] for r in reviews[s]], np.array([r[0] for r in reviews[s]])) for s in imdb.SPLITS}
    out, out_movies, entry = imdb.split_by_movie(texts, movies, 2500, 0, "aclimdb")
    counts = imdb.movie_counts(out_movies)
    assert entry["class_counts"] == [1250, 1250] and len(out["train"][1]) == 22500
    assert counts["shared_movies"]["train-valid"] == 0 and counts["shared_movies"]["valid-test"] == 0
    assert counts["movies"] == {"train": 3113, "valid": 343, "test": 3581}
    assert len(set(movies["train"])) == 3113 + 343


def test_cifar10_full_from_jpeg_archives(tmp_path):
    data = need("cifar10/cifar10_jpg_train.tar.gz", "cifar10/cifar10_jpg_test.tar.gz")
    m = prepare("cifar10", f"imagefolder:{data / 'cifar10'}", tmp_path / "cifar10")
    assert m["counts"] == {"train": {"examples": 50000}, "test": {"examples": 10000}}
    assert m["class_balance"] == {"train": [5000] * 10, "test": [1000] * 10}
    assert m["class_names"][0] == "airplane" and m["class_names"][9] == "truck"
    # SOURCES.md: decoded train mean (125.27, 122.93, 113.86), std (62.5, 61.9, 66.5) in 0..255 units
    assert [round(x * 255, 2) for x in m["mean"]] == pytest.approx([125.27, 122.93, 113.86], abs=0.01)
    assert [round(x * 255, 1) for x in m["std"]] == pytest.approx([62.5, 61.9, 66.5], abs=0.1)
    assert m["lossy_copy"] is True


def test_wikitext2_valid_test_counts(tmp_path):
    data = need("wikitext2/wiki.valid.tokens", "wikitext2/wiki.test.tokens")
    m = prepare(
        "wikitext2", f"tokens:{data / 'wikitext2'}", tmp_path / "wt", tokenizer="word", split_map={"train": "valid"}
    )
    assert m["counts"]["valid"] == {"tokens": 217646, "words": 217646, "lines": 3760}
    assert m["counts"]["test"] == {"tokens": 245569, "words": 245569, "lines": 4358}
    assert m["split_map"] == {"train": "valid"} and m["warnings"]
    # the BPE stand-in keeps the word counts (they come from the text, not from the tokenizer)
    b = prepare(
        "wikitext2", f"tokens:{data / 'wikitext2'}", tmp_path / "bpe", split_map={"train": "valid"}, tokenizer="bpe"
    )
    assert b["counts"]["test"]["words"] == 245569 and b["counts"]["test"]["tokens"] > 245569
    assert b["tokenizer_info"]["stand_in"] is True


def test_source_from_dir_recognises_the_shared_copies():
    data = need("imdb/aclImdb_train.tar.gz", "cifar10/cifar10_jpg_train.tar.gz", "wikitext2/wiki.valid.tokens")
    assert source_from_dir("imdb", data / "imdb") == {"source": f"aclimdb:{data / 'imdb'}"}
    assert source_from_dir("cifar10", data / "cifar10") == {"source": f"imagefolder:{data / 'cifar10'}"}
    assert source_from_dir("wikitext2", data / "wikitext2") == {
        "source": f"tokens:{data / 'wikitext2'}",
        "split_map": {"train": "valid"},  # the copies hold no wiki.train.tokens
        "tokenizer": "gpt2",  # GPT-2's released files sit beside, in gpt2/
        "gpt2_dir": str(data / "gpt2"),
    }


# SOURCES.md: the sha256 of GPT-2's released files
GPT2_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


def test_gpt2_tokenizer_from_the_released_files():
    from astromorphic.data.tokenizers import gpt2_from_dir

    data = need("gpt2/encoder.json", "gpt2/vocab.bpe")
    tok = gpt2_from_dir(data / "gpt2")
    known = {
        "Hello world": [15496, 995],
        " Hello": [18435],
        "Hello": [15496],
        " the": [262],
        "<|endoftext|>": [50256],
        " = Robert <unk> = \n": [796, 5199, 1279, 2954, 29, 796, 220, 198],  # first line of wiki.test.tokens
    }
    for text, ids in known.items():
        assert tok.tok.encode(text, add_special_tokens=False).ids == ids, text
        assert tok.tok.decode(ids, skip_special_tokens=False) == text
    assert tok.vocab_size == 50257
    assert {r["name"]: r["sha256"] for r in tok.info["source_files"]} == GPT2_SHA256
    assert tok.info["release_sha256_match"] is True


def test_wikitext2_valid_test_with_gpt2_tokens(tmp_path):
    data = need("wikitext2/wiki.valid.tokens", "wikitext2/wiki.test.tokens", "gpt2/encoder.json", "gpt2/vocab.bpe")
    found = source_from_dir("wikitext2", data / "wikitext2")
    m = prepare("wikitext2", found.pop("source"), tmp_path / "wt", **found)
    assert m["tokenizer"] == "gpt2" and m["vocab_size"] == 50257
    assert {r["name"]: r["sha256"] for r in m["tokenizer_info"]["source_files"]} == GPT2_SHA256
    # GPT-2 tokens of the tokenized release, each line encoded on its own; the word counts stay the release's
    assert m["counts"]["valid"] == {"tokens": 258659, "words": 217646, "lines": 3760}
    assert m["counts"]["test"] == {"tokens": 295877, "words": 245569, "lines": 4358}
    splits, _ = load_prepared(tmp_path / "wt", verify=True)
    assert splits["test"]["tokens"][:10].tolist() == [220, 198, 796, 5199, 1279, 2954, 29, 796, 220, 198]
    assert int(splits["valid"]["tokens"].max()) < 50257
