"""WikiText-2 preparation from tiny fixtures in the official formats (wiki.*.tokens files, the zip, a local
Hugging Face dataset folder) and the tokenizer choices; nothing here reads ../shared."""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from pathlib import Path

import pytest
import torch

from astromorphic.config import WikiText2Data
from astromorphic.data import DataError, SourceUnavailableError, load_prepared, prepare

ARTICLE = [
    " \n",
    " = Homarus gammarus = \n",
    " \n",
    " Homarus gammarus , known as the European lobster , is a species of <unk> lobster . \n",
    " It may grow to a length of 60 cm ( 24 in ) . \n",
    " \n",
    " = = Description = = \n",
    " \n",
    " The lobster is blue above , with spots that coalesce . \n",
]


def make_tokens_dir(root: Path, splits=("train", "valid", "test")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for k, split in enumerate(splits):
        lines = ARTICLE * (k + 2) + [f" A line only in {split} . \n"]
        (root / f"wiki.{split}.tokens").write_text("".join(lines), encoding="utf-8")
    return root


def expected_words(path: Path) -> int:
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    return sum(len(line.split()) for line in lines) + len(lines)


def test_word_tokenizer_counts_as_release(tmp_path):
    d = make_tokens_dir(tmp_path / "wt")
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="word")
    splits, _ = load_prepared(tmp_path / "o", verify=True)
    for split in ("train", "valid", "test"):
        words = expected_words(d / f"wiki.{split}.tokens")
        assert m["counts"][split]["words"] == words
        assert m["counts"][split]["tokens"] == words == splits[split]["tokens"].numel()
        assert splits[split]["tokens"].dtype == torch.int64 and splits[split]["tokens"].dim() == 1
    vocab = json.loads((tmp_path / "o" / "vocab.json").read_text())
    assert vocab[:2] == ["<eos>", "<unk>"] and m["vocab_size"] == len(vocab)
    # the line unique to test is unknown to the training vocabulary
    assert vocab.index("train") > 1 and "test" not in vocab
    assert m["tokenizer"] == "word" and m["tokenizer_info"]["is_gpt2_vocabulary"] is False
    assert m["synthetic"] is False and m["warnings"] == []
    # end-of-line tokens: one per line
    assert int((splits["valid"]["tokens"] == 0).sum()) == m["counts"]["valid"]["lines"]


def test_bpe_stand_in_is_deterministic_and_labelled(tmp_path):
    d = make_tokens_dir(tmp_path / "wt")
    for out in ("1", "2"):
        prepare("wikitext2", f"tokens:{d}", tmp_path / out, tokenizer="bpe", bpe_vocab_size=300, bpe_min_frequency=1)
    for name in ("manifest.json", "train.pt", "valid.pt", "test.pt", "tokenizer.json"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    splits, m = load_prepared(tmp_path / "1")
    info = m["tokenizer_info"]
    assert info["stand_in"] is True and info["is_gpt2_vocabulary"] is False and "STAND-IN" in info["note"]
    assert any("STAND-IN" in w for w in m["warnings"])
    assert m["tokenizer"].startswith("bytelevel-bpe-") and m["vocab_size"] <= 300
    # the stream decodes back to the text, line by line
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tmp_path / "1" / "tokenizer.json"))
    assert tok.decode(splits["valid"]["tokens"].tolist()) == (d / "wiki.valid.tokens").read_text()
    assert m["counts"]["valid"]["tokens"] == splits["valid"]["tokens"].numel()


def test_missing_train_needs_explicit_mapping(tmp_path):
    d = make_tokens_dir(tmp_path / "wt", splits=("valid", "test"))
    with pytest.raises(DataError) as exc:
        prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="word")
    assert "wiki.train.tokens: missing" in str(exc.value) and "--split-map train=valid" in str(exc.value)
    assert not (tmp_path / "o").exists()
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="word", split_map={"train": "valid"})
    assert m["split_map"] == {"train": "valid"}
    assert m["counts"]["train"] == m["counts"]["valid"]
    assert any("copy of 'valid'" in w for w in m["warnings"])
    with pytest.raises(DataError, match="split_map train=train"):
        prepare("wikitext2", f"tokens:{d}", tmp_path / "x", split_map={"train": "train"})


def _articles(titles) -> list[str]:
    """One short article per title, each with words of its own."""
    lines = []
    for title in titles:
        lines += [" \n", f" = {title} = \n", " \n", f" The {title.lower()} story , told in {len(title)} words . \n"]
        lines += [" \n", " = = Notes = = \n", " \n", f" More about {title.lower()} here . \n"]
    return lines


def test_held_out_keeps_whole_articles_of_the_copied_split_out_of_its_copy(tmp_path):
    d = tmp_path / "wt"
    d.mkdir()
    valid = _articles([f"Article{k}" for k in range(10)])
    (d / "wiki.valid.tokens").write_text("".join(valid), encoding="utf-8")
    (d / "wiki.test.tokens").write_text("".join(_articles(["Other"])), encoding="utf-8")
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="word", split_map={"train": "valid"},
                held_out=0.25)  # fmt: skip
    total = expected_words(d / "wiki.valid.tokens")
    words = {split: m["counts"][split]["words"] for split in ("train", "valid")}
    assert words["train"] + words["valid"] == total  # the two parts cover the split, and nothing twice
    # The held-out end starts at an article heading at or after 75 % of the words: the last 2 or 3 of the 10
    # articles, without the blank line before the first heading (one word by the release's rule).
    per_article = total // 10
    assert words["valid"] in (2 * per_article - 1, 3 * per_article - 1) and words["valid"] <= 0.25 * total
    assert m["held_out"]["valid"]["words"] == words["valid"] and m["held_out"]["valid"]["of_words"] == total
    assert m["held_out"]["valid"]["rest_to"] == "train" and m["counts"]["train"] != m["counts"]["valid"]
    assert any("held-out end" in w for w in m["warnings"]) and not any("copy of" in w for w in m["warnings"])
    again = prepare("wikitext2", f"tokens:{d}", tmp_path / "o2", tokenizer="word", split_map={"train": "valid"},
                    held_out=0.25)  # fmt: skip
    assert again["counts"] == m["counts"]
    with pytest.raises(DataError, match="held_out: only with split_map"):
        prepare("wikitext2", f"tokens:{make_tokens_dir(tmp_path / 'full')}", tmp_path / "x", tokenizer="word",
                held_out=0.1)  # fmt: skip
    assert not (tmp_path / "x").exists()


def test_a_compacted_vocabulary_renumbers_the_training_ids_and_pools_the_rest(tmp_path):
    d = tmp_path / "wt"
    d.mkdir()
    (d / "wiki.train.tokens").write_text("".join(_articles(["Lobster", "Crab"]) * 3), encoding="utf-8")
    (d / "wiki.valid.tokens").write_text("".join(_articles(["Lobster"])), encoding="utf-8")
    (d / "wiki.test.tokens").write_text("".join(_articles(["Zyxwvq"])) + " ~ @ # $ ^ \n", encoding="utf-8")
    opts = dict(tokenizer="bpe", bpe_vocab_size=300, bpe_min_frequency=1)
    full = prepare("wikitext2", f"tokens:{d}", tmp_path / "full", **opts)
    compact = prepare("wikitext2", f"tokens:{d}", tmp_path / "compact", compact_vocab=True, **opts)
    a, _ = load_prepared(tmp_path / "full", verify=True)
    b, _ = load_prepared(tmp_path / "compact", verify=True)
    kept = sorted(set(a["train"]["tokens"].tolist()))  # the naive reference: the ids the training text uses
    rank = {token: k for k, token in enumerate(kept)}
    assert compact["vocab_size"] == len(kept) + 1 < full["vocab_size"]
    assert compact["output_vocab"]["unk_id"] == len(kept) and compact["output_vocab"]["of"] == full["vocab_size"]
    for split in ("train", "valid", "test"):
        want = [rank.get(token, len(kept)) for token in a[split]["tokens"].tolist()]
        assert b[split]["tokens"].tolist() == want
        assert compact["output_vocab"]["unknown_tokens"][split] == want.count(len(kept))
    assert compact["output_vocab"]["unknown_tokens"]["train"] == 0
    assert compact["output_vocab"]["unknown_tokens"]["test"] > 0  # characters the training text never has
    saved = torch.load(tmp_path / "compact" / "output_vocab.pt")["token_ids"]
    assert saved.tolist() == kept and full["output_vocab"] is None


def test_zip_archive_source(tmp_path):
    d = make_tokens_dir(tmp_path / "wt")
    z = tmp_path / "wikitext-2-v1.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted(d.iterdir()):
            zf.write(f, f"wikitext-2/{f.name}")
    a = prepare("wikitext2", f"tokens:{z}", tmp_path / "a", tokenizer="word")
    b = prepare("wikitext2", f"tokens:{d}", tmp_path / "b", tokenizer="word")
    assert a["counts"] == b["counts"] and a["inputs"][0]["name"] == "wikitext-2-v1.zip"
    z.write_bytes(z.read_bytes()[:50])
    with pytest.raises(DataError, match=r"wikitext-2-v1\.zip: truncated or corrupted zip"):
        prepare("wikitext2", f"tokens:{z}", tmp_path / "c", tokenizer="word")


def test_real_prefix_subset(tmp_path):
    d = make_tokens_dir(tmp_path / "wt")
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="word", n_train=40)
    assert 40 <= m["counts"]["train"]["words"] < 40 + 30 and m["subsets"]["train"]["of_words"] > 40


# ------------------------------------------------------------------------------------------------ GPT-2


def fake_gpt2_vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A BPE vocabulary (token -> id) and merges with GPT-2's size and its ids for the strings every GPT-2
    tokenizer is checked against ("Hello world" -> [15496, 995], " Hello" -> [18435], " the" -> [262]).

    Only the loading code paths are under test here; the real files are checked in test_data_shared.py.
    """
    from tokenizers import pre_tokenizers

    merges = [("H", "e"), ("He", "l"), ("Hel", "l"), ("Hell", "o"), ("Ġ", "Hello"), ("Ġ", "w"), ("Ġw", "o"),
              ("Ġwo", "r"), ("Ġwor", "l"), ("Ġworl", "d"), ("Ġ", "t"), ("Ġt", "h"), ("Ġth", "e")]  # fmt: skip
    fixed = {"Hello": 15496, "Ġworld": 995, "ĠHello": 18435, "Ġthe": 262, "<|endoftext|>": 50256}
    parts = ["He", "Hel", "Hell", "Ġw", "Ġwo", "Ġwor", "Ġworl", "Ġt", "Ġth"]
    tokens = sorted(pre_tokenizers.ByteLevel.alphabet()) + parts
    vocab, next_id = dict(fixed), 0
    for t in tokens + [f"<filler{i}>" for i in range(50257)]:
        if len(vocab) == 50257:
            break
        while next_id in fixed.values():
            next_id += 1
        vocab[t] = next_id
        next_id += 1
    return vocab, merges


def make_fake_gpt2(path: Path) -> Path:
    """The fake GPT-2 vocabulary as a tokenizers tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab, merges = fake_gpt2_vocabulary()
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.save(str(path))
    return path


def make_fake_gpt2_dir(folder: Path) -> Path:
    """The fake GPT-2 vocabulary laid out as GPT-2's release: encoder.json (token -> id) and vocab.bpe (merges)."""
    vocab, merges = fake_gpt2_vocabulary()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "encoder.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "vocab.bpe").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_gpt2_from_local_file_and_hf_cache(tmp_path, monkeypatch):
    d = make_tokens_dir(tmp_path / "wt")
    fake = make_fake_gpt2(tmp_path / "tokenizer.json")
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="gpt2", gpt2_tokenizer_file=str(fake))
    assert m["tokenizer"] == "gpt2" and m["vocab_size"] == 50257
    assert m["tokenizer_info"]["is_gpt2_vocabulary"] is True and m["tokenizer_info"]["stand_in"] is False
    # the Hugging Face cache layout: models--<org>--<name>/snapshots/<rev>/tokenizer.json and refs/main
    import huggingface_hub.constants as hc

    repo = tmp_path / "hub" / "models--openai-community--gpt2"
    snap = repo / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    (snap / "tokenizer.json").write_bytes(fake.read_bytes())
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "o2", tokenizer="auto")
    assert m["tokenizer"] == "gpt2" and "Hugging Face cache" in m["tokenizer_info"]["origin"]


def _no_gpt2_anywhere(tmp_path, monkeypatch):
    """Empty Hugging Face and tiktoken caches, and a Hub that refuses connections at once."""
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-tiktoken"))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")


def test_gpt2_from_released_files(tmp_path, monkeypatch):
    d = make_tokens_dir(tmp_path / "wt")
    folder = make_fake_gpt2_dir(tmp_path / "gpt2")
    runs = [prepare("wikitext2", f"tokens:{d}", tmp_path / out, tokenizer="gpt2", gpt2_dir=str(folder))
            for out in ("a", "b")]  # fmt: skip
    m = runs[0]
    assert m["tokenizer"] == "gpt2" and m["vocab_size"] == 50257 and m["options"]["gpt2_dir"] == str(folder)
    info = m["tokenizer_info"]
    assert info["kind"] == "gpt2" and info["is_gpt2_vocabulary"] is True and info["stand_in"] is False
    assert [r["name"] for r in info["source_files"]] == ["encoder.json", "vocab.bpe"]
    assert info["source_files"][0]["sha256"] == hashlib.sha256((folder / "encoder.json").read_bytes()).hexdigest()
    assert info["release_sha256_match"] is False  # a self-made vocabulary, not the released files
    for name in ("manifest.json", "tokenizer.json", "train.pt", "valid.pt", "test.pt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tmp_path / "a" / "tokenizer.json"))  # the written tokenizer encodes the same
    assert tok.encode("Hello world Hello the").ids == [15496, 995, 18435, 262]
    # auto prefers the named folder over the Hugging Face cache; a tokenizer.json named as well wins
    _no_gpt2_anywhere(tmp_path, monkeypatch)
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "c", tokenizer="auto", gpt2_dir=str(folder))
    assert m["tokenizer"] == "gpt2" and m["tokenizer_info"]["origin"].startswith("gpt2_dir")
    fake = make_fake_gpt2(tmp_path / "tokenizer.json")
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "c", gpt2_dir=str(folder), gpt2_tokenizer_file=str(fake))
    assert m["tokenizer_info"]["origin"] == "gpt2_tokenizer_file"


def test_gpt2_folder_missing_or_wrong(tmp_path):
    d = make_tokens_dir(tmp_path / "wt")
    with pytest.raises(DataError, match="no GPT-2 tokenizer files \\(option gpt2_dir\\); expected encoder.json"):
        prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="auto", gpt2_dir=str(tmp_path / "none"))
    folder = make_fake_gpt2_dir(tmp_path / "gpt2")
    encoder = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    encoder["Ġthe"], encoder["<filler0>"] = encoder["<filler0>"], encoder["Ġthe"]
    (folder / "encoder.json").write_text(json.dumps(encoder), encoding="utf-8")
    with pytest.raises(DataError, match="not the GPT-2 vocabulary \\(' the' -> "):
        prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="gpt2", gpt2_dir=str(folder))
    assert not (tmp_path / "o").exists()


def test_gpt2_download_when_the_hub_answers(tmp_path, monkeypatch):
    import huggingface_hub

    from astromorphic.data import common

    _no_gpt2_anywhere(tmp_path, monkeypatch)
    fake = make_fake_gpt2(tmp_path / "tokenizer.json")
    asked = []
    monkeypatch.setattr(common, "check_reachable", lambda url, timeout: None)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo, name: asked.append((repo, name)) or str(fake))
    d = make_tokens_dir(tmp_path / "wt")
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="gpt2")
    assert asked == [("openai-community/gpt2", "tokenizer.json")]
    assert m["tokenizer"] == "gpt2" and "downloaded" in m["tokenizer_info"]["origin"]
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="auto", bpe_vocab_size=300)
    assert len(asked) == 1 and m["tokenizer_info"]["kind"] == "bpe"  # auto never downloads


def test_gpt2_unavailable_or_wrong(tmp_path, monkeypatch):
    _no_gpt2_anywhere(tmp_path, monkeypatch)
    d = make_tokens_dir(tmp_path / "wt")
    t0 = time.monotonic()
    with pytest.raises(DataError, match="GPT-2 tokenizer files are not available locally.*tokenizer: bpe") as exc:
        prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="gpt2")
    assert time.monotonic() - t0 < 30
    msg = str(exc.value)  # one line: every place looked at, the Hub's refusal, and the options that help
    assert "\n" not in msg and "cannot connect to 127.0.0.1" in msg and "gpt2_dir" in msg
    from tokenizers import Tokenizer, models

    other = tmp_path / "other.json"
    Tokenizer(models.BPE()).save(str(other))
    with pytest.raises(DataError, match="not the GPT-2 vocabulary"):
        prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="gpt2", gpt2_tokenizer_file=str(other))
    # auto falls back to the BPE stand-in, and says so
    m = prepare("wikitext2", f"tokens:{d}", tmp_path / "o", tokenizer="auto", bpe_vocab_size=300)
    assert m["tokenizer_info"]["kind"] == "bpe" and m["tokenizer_info"]["stand_in"] is True


# ------------------------------------------------------------------------------------------------ Hugging Face


def make_hf_folder(root: Path) -> Path:
    """A local folder laid out like Salesforce/wikitext: wikitext-2-raw-v1/<split>-00000-of-00001.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / "wikitext_hub" / "wikitext-2-raw-v1"
    folder.mkdir(parents=True)
    for k, split in enumerate(("train", "validation", "test")):
        rows = ["" if line == " \n" else line for line in ARTICLE * (k + 2)]  # blank lines are empty rows
        pq.write_table(pa.table({"text": rows}), folder / f"{split}-00000-of-00001.parquet")
    return folder.parent


def test_hf_local_dataset(tmp_path):
    hub = make_hf_folder(tmp_path)
    m = prepare("wikitext2", f"hf:{hub}", tmp_path / "o", tokenizer="word", hf_cache_dir=str(tmp_path / "cache"))
    assert m["hf_config"] == "wikitext-2-raw-v1" and m["revision"] is None
    assert m["counts"]["valid"]["lines"] == len(ARTICLE) * 3
    assert m["counts"]["valid"]["words"] == sum(len(line.split()) for line in ARTICLE) * 3 + len(ARTICLE) * 3
    assert all(r["name"].startswith("wikitext-2-raw-v1/") for r in m["inputs"])


def test_hf_offline_fails_fast_with_alternatives(tmp_path, monkeypatch):
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    t0 = time.monotonic()
    with pytest.raises(SourceUnavailableError) as exc:
        prepare("wikitext2", "hf", tmp_path / "o", hf_cache_dir=str(tmp_path / "cache"), network_timeout=2)
    assert time.monotonic() - t0 < 30
    msg = str(exc.value)
    assert "Salesforce/wikitext" in msg and "wikitext-2-raw-v1" in msg and WikiText2Data.REAL["hf_revision"] in msg
    assert "tokens:PATH" in msg and "synthetic" in msg
    assert not (tmp_path / "o").exists()
