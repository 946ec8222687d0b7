"""IMDB preparation from tiny fixtures in the official formats (folder tree, .tar.gz archives, a local
Hugging Face dataset folder, a GloVe text file); nothing here reads ../shared."""

from __future__ import annotations

import json
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import torch

from astromorphic.config import ImdbData
from astromorphic.data import DataError, SourceUnavailableError, imdb, load_embedding, load_prepared, prepare

REVIEWS = {
    ("train", "pos"): [
        "A great film.<br /><br />Great acting, great story!",
        "Great fun; I loved it.",
        "Simply great.",
    ],
    ("train", "neg"): ["A bad film.<br />Bad acting, awful story.", "Awful. Just bad.", "Bad, bad, bad."],
    ("test", "pos"): ["Great movie, loved the acting.", "great great", "Loved it."],
    ("test", "neg"): ["Awful movie, bad acting.", "bad awful", "Zzyzx is a word nobody wrote before."],
}


def make_acl_tree(root: Path) -> Path:
    """aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, plus an unsup folder that must be ignored."""
    acl = root / "aclImdb"
    for (split, label), texts in REVIEWS.items():
        folder = acl / split / label
        folder.mkdir(parents=True)
        for i, text in enumerate(texts):
            rating = 8 + (i % 3) if label == "pos" else 1 + (i % 3)
            (folder / f"{i}_{rating}.txt").write_text(text, encoding="utf-8")
    unsup = acl / "train" / "unsup"
    unsup.mkdir()
    (unsup / "0_0.txt").write_text("unlabelled text must not be read", encoding="utf-8")
    (acl / "README").write_text("Large Movie Review Dataset v1.0\n")
    return acl


def make_tar_gz(src_root: Path, members: list[Path], target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tf:
        for m in members:
            tf.add(m, arcname=m.relative_to(src_root).as_posix())
    return target


def make_acl_archives(tmp_path: Path) -> Path:
    """The layout of the shared copies: one archive per split plus a meta archive."""
    acl = make_acl_tree(tmp_path / "src")
    out = tmp_path / "archives"
    out.mkdir()
    make_tar_gz(acl.parent, [acl / "train"], out / "aclImdb_train.tar.gz")
    make_tar_gz(acl.parent, [acl / "test"], out / "aclImdb_test.tar.gz")
    make_tar_gz(acl.parent, [acl / "README"], out / "aclImdb_meta.tar.gz")
    return out


def test_tokenize_strips_breaks_and_keeps_contractions():
    assert imdb.tokenize("Don't<br />stop!<br/>OK", lowercase=True) == ["don't", "stop", "!", "ok"]
    assert imdb.tokenize("Don't stop", lowercase=False) == ["Don't", "stop"]


def test_folder_tree(tmp_path):
    acl = make_acl_tree(tmp_path)
    m = prepare("imdb", f"aclimdb:{acl}", tmp_path / "out", seq_len=8, min_freq=1)
    splits, manifest = load_prepared(tmp_path / "out", verify=True)
    assert manifest == m
    assert manifest["synthetic"] is False and manifest["source"] == "aclimdb"
    assert manifest["counts"] == {"train": {"examples": 6}, "test": {"examples": 6}}
    assert manifest["class_balance"] == {"train": [3, 3], "test": [3, 3]}
    tr = splits["train"]
    assert tr["tokens"].shape == (6, 8) and tr["tokens"].dtype == torch.int64
    assert tr["lengths"].dtype == torch.int64 and tr["labels"].tolist() == [0, 0, 0, 1, 1, 1]
    assert int(tr["lengths"].max()) == 8  # the long reviews are truncated to seq_len
    vocab = json.loads((tmp_path / "out" / "vocab.json").read_text())
    assert vocab[:2] == ["<pad>", "<unk>"] and len(vocab) == manifest["vocab_size"]
    assert "br" not in vocab and "great" in vocab and "Great" not in vocab  # lower-cased, <br /> removed
    # padding is 0 after the length, tokens before it are not 0
    for row, n in zip(tr["tokens"], tr["lengths"], strict=True):
        assert (row[n:] == 0).all() and (row[:n] != 0).all()
    # a test word never seen in training is <unk>
    assert manifest["length_stats"]["test"]["unk_fraction_of_kept_tokens"] > 0


def test_archives_match_folder_and_are_hashed(tmp_path):
    archives = make_acl_archives(tmp_path)
    a = prepare("imdb", f"aclimdb:{archives}", tmp_path / "a", seq_len=8, min_freq=1)
    b = prepare("imdb", f"aclimdb:{tmp_path / 'src'}", tmp_path / "b", seq_len=8, min_freq=1)
    for name in ("train.pt", "test.pt", "vocab.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    names = {rec["name"]: rec for rec in a["inputs"]}
    assert set(names) == {"aclImdb_train.tar.gz", "aclImdb_test.tar.gz", "aclImdb_meta.tar.gz"}
    assert names["aclImdb_train.tar.gz"]["reviews"] == 6 and len(names["aclImdb_test.tar.gz"]["sha256"]) == 64
    assert b["inputs"][0]["name"].startswith("aclImdb/")


def test_single_official_archive(tmp_path):
    acl = make_acl_tree(tmp_path / "src")
    archive = make_tar_gz(acl.parent, [acl], tmp_path / "aclImdb_v1.tar.gz")
    m = prepare("imdb", f"aclimdb:{archive}", tmp_path / "out", seq_len=8)
    assert m["counts"]["train"]["examples"] == 6


def test_truncation_padding_options(tmp_path):
    acl = make_acl_tree(tmp_path)
    prepare("imdb", f"aclimdb:{acl}", tmp_path / "o", seq_len=4, truncation="tail", padding="left", min_freq=1)
    splits, manifest = load_prepared(tmp_path / "o")
    vocab = json.loads((tmp_path / "o" / "vocab.json").read_text())
    row = splits["train"]["tokens"][3]  # train/pos/0: "... great acting, great story!" (negatives come first)
    assert [vocab[i] for i in row] == [",", "great", "story", "!"]
    short = splits["test"]["tokens"][1]  # test/neg/1 "bad awful": two tokens, padded on the left
    assert short[:2].tolist() == [0, 0] and (short[2:] != 0).all()
    assert manifest["truncation"] == "tail" and manifest["padding"] == "left"


def test_prepare_twice_identical_bytes(tmp_path):
    archives = make_acl_archives(tmp_path)
    prepare("imdb", f"aclimdb:{archives}", tmp_path / "1", seq_len=8)
    prepare("imdb", f"aclimdb:{archives}", tmp_path / "2", seq_len=8)
    for name in ("manifest.json", "train.pt", "test.pt", "vocab.json"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    assert (tmp_path / "1" / "prepare_timing.json").is_file()


def test_balanced_subset(tmp_path):
    acl = make_acl_tree(tmp_path)
    m = prepare("imdb", f"aclimdb:{acl}", tmp_path / "o", seq_len=8, n_train=4, n_test=2)
    assert m["class_balance"] == {"train": [2, 2], "test": [1, 1]}
    assert m["subsets"]["train"]["of"] == 6


# ------------------------------------------------------------------------------------------------ errors


def _assert_no_output(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir())


def test_truncated_archive_names_file(tmp_path):
    archives = make_acl_archives(tmp_path)
    target = archives / "aclImdb_train.tar.gz"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"aclImdb_train\.tar\.gz: truncated or corrupted archive") as exc:
        prepare("imdb", f"aclimdb:{archives}", out)
    assert "expected a complete" in str(exc.value)
    _assert_no_output(out)


def test_corrupted_archive_names_file(tmp_path):
    archives = make_acl_archives(tmp_path)
    target = archives / "aclImdb_test.tar.gz"
    data = bytearray(target.read_bytes())
    for i in range(40, len(data) - 20, 7):  # damage the deflate stream but keep the header and size
        data[i] ^= 0x5A
    target.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"aclImdb_test\.tar\.gz: truncated or corrupted archive"):
        prepare("imdb", f"aclimdb:{archives}", tmp_path / "out")
    _assert_no_output(tmp_path / "out")


def test_missing_folder_names_it(tmp_path):
    acl = make_acl_tree(tmp_path)
    for f in (acl / "test" / "neg").iterdir():
        f.unlink()
    (acl / "test" / "neg").rmdir()
    with pytest.raises(DataError, match=r"test/neg: folder missing"):
        prepare("imdb", f"aclimdb:{acl}", tmp_path / "out")
    _assert_no_output(tmp_path / "out")


def test_archive_without_a_split(tmp_path):
    archives = make_acl_archives(tmp_path)
    (archives / "aclImdb_test.tar.gz").unlink()
    with pytest.raises(DataError, match=r"no reviews for test/neg; expected files aclImdb/test/neg/"):
        prepare("imdb", f"aclimdb:{archives}", tmp_path / "out")


def test_missing_path_and_unknown_source(tmp_path):
    with pytest.raises(DataError, match="not found; expected the aclImdb folder"):
        prepare("imdb", f"aclimdb:{tmp_path / 'nope'}", tmp_path / "out")
    with pytest.raises(
        DataError, match="unknown source 'kaggle' for task imdb; expected hf, aclimdb:PATH or synthetic"
    ):
        prepare("imdb", "kaggle", tmp_path / "out")
    with pytest.raises(DataError, match=r"tasks\.imdb\.data\.seqlen: unknown key.*known options: .*seq_len"):
        prepare("imdb", "synthetic", tmp_path / "out", seqlen=3)
    _assert_no_output(tmp_path / "out")


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("seq_len", "long", r"tasks\.imdb\.data\.seq_len: .*integer"),
        ("seq_len", 0, r"tasks\.imdb\.data\.seq_len: .*greater than or equal to 1"),
        ("padding", "middle", r"tasks\.imdb\.data\.padding: .*'right' or 'left'"),
        ("lowercase", "yes", r"tasks\.imdb\.data\.lowercase: .*boolean"),
        ("network_timeout", -1, r"tasks\.imdb\.data\.network_timeout: must be > 0"),
    ],
)
def test_bad_option_types_name_the_key(tmp_path, option, value, message):
    with pytest.raises(DataError, match=message):
        prepare("imdb", "synthetic", tmp_path / "out", **{option: value})
    _assert_no_output(tmp_path / "out")


def test_defaults_come_from_the_config_model(tmp_path):
    from astromorphic.config import ImdbData

    from astromorphic.data import VALIDATION_OPTIONS

    m = prepare("imdb", "synthetic", tmp_path / "o", n_train=20, n_test=10)
    defaults = {k: v for k, v in ImdbData.defaults_for("synthetic").items() if k not in VALIDATION_OPTIONS}
    assert m["options"] == {**defaults, "n_train": 20, "n_test": 10}  # no validation split: its options left out
    assert ImdbData.defaults_for("aclimdb")["hf_revision"] == ImdbData.REAL["hf_revision"]


def test_failed_rewrite_keeps_previous_output(tmp_path):
    archives = make_acl_archives(tmp_path)
    out = tmp_path / "out"
    prepare("imdb", f"aclimdb:{archives}", out, seq_len=8)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "prepare_timing.json"}
    (archives / "aclImdb_train.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError):
        prepare("imdb", f"aclimdb:{archives}", out, seq_len=8)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "prepare_timing.json"}
    assert after == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------------ GloVe


def _glove_lines() -> list[str]:
    return [
        "great 0.1 0.2 0.3",
        "Great 9 9 9",  # GloVe 840B is cased: "Great" and "great" are different rows
        "bad -0.1 -0.2 -0.3",
        "film 1 0 0",
        ". 0 0 1",
        "great 5 5 5",  # a duplicate: the first row wins
        "unused 7 7 7",
    ]


@pytest.mark.parametrize("form", ["txt", "zip"])
def test_glove_vocabulary_and_embedding(tmp_path, form):
    acl = make_acl_tree(tmp_path)
    text = "\n".join(_glove_lines()) + "\n"
    if form == "txt":
        glove = tmp_path / "glove.fake.3d.txt"
        glove.write_text(text)
    else:
        glove = tmp_path / "glove.fake.3d.zip"
        with zipfile.ZipFile(glove, "w") as zf:
            zf.writestr("glove.fake.3d.txt", text)
    m = prepare("imdb", f"aclimdb:{acl}", tmp_path / "o", seq_len=8, glove=str(glove), glove_dim=3, min_freq=1)
    assert m["embedding_file"] == "embedding.pt" and m["tokenizer_info"]["lowercase"] is False
    vocab = json.loads((tmp_path / "o" / "vocab.json").read_text())
    assert set(vocab[2:]) == {"great", "Great", "bad", "film", "."}  # training words that GloVe knows
    vectors = load_embedding(tmp_path / "o")
    assert vectors.shape == (len(vocab), 3) and vectors.dtype == torch.float32
    assert vectors[:2].abs().sum() == 0
    assert vectors[vocab.index("great")].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert vectors[vocab.index("Great")].tolist() == [9, 9, 9]
    assert 0 < m["embedding"]["train_token_coverage"] < 1
    assert m["embedding"]["file"]["name"] == glove.name


def test_glove_wrong_dimension(tmp_path):
    acl = make_acl_tree(tmp_path)
    glove = tmp_path / "g.txt"
    glove.write_text("great 1 2\n")
    with pytest.raises(DataError, match=r"g\.txt: line 1 has 2 values, expected 3"):
        prepare("imdb", f"aclimdb:{acl}", tmp_path / "o", glove=str(glove), glove_dim=3, min_freq=1)


# ------------------------------------------------------------------------------------------------ Hugging Face


def make_hf_folder(root: Path) -> Path:
    """A local folder laid out like the Hub repository stanfordnlp/imdb (plain_text/<split>-*.parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / "imdb_hub" / "plain_text"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        texts = REVIEWS[(split, "neg")] + REVIEWS[(split, "pos")]
        labels = [0] * 3 + [1] * 3
        pq.write_table(
            pa.table({"text": texts, "label": pa.array(labels, pa.int64())}), folder / f"{split}-00000-of-00001.parquet"
        )
    return folder.parent


def test_hf_local_dataset_matches_aclimdb(tmp_path):
    hub = make_hf_folder(tmp_path)
    m = prepare("imdb", f"hf:{hub}", tmp_path / "hf", seq_len=8, min_freq=1, hf_cache_dir=str(tmp_path / "cache"))
    assert m["source"] == "hf" and m["revision"] is None
    assert {r["name"] for r in m["inputs"]} == {
        "plain_text/train-00000-of-00001.parquet",
        "plain_text/test-00000-of-00001.parquet",
    }
    acl = make_acl_tree(tmp_path / "acl")
    prepare("imdb", f"aclimdb:{acl}", tmp_path / "acl_out", seq_len=8, min_freq=1)
    a, _ = load_prepared(tmp_path / "hf")
    b, _ = load_prepared(tmp_path / "acl_out")
    for split in ("train", "test"):
        for key in ("tokens", "lengths", "labels"):
            assert torch.equal(a[split][key], b[split][key])


def test_hf_offline_fails_fast_with_alternatives(tmp_path, monkeypatch):
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    t0 = time.monotonic()
    with pytest.raises(SourceUnavailableError) as exc:
        prepare("imdb", "hf", tmp_path / "out", hf_cache_dir=str(tmp_path / "cache"), network_timeout=2)
    assert time.monotonic() - t0 < 30
    msg = str(exc.value)
    assert "source 'hf'" in msg and "stanfordnlp/imdb" in msg and ImdbData.REAL["hf_revision"] in msg
    assert "aclimdb:PATH" in msg and "synthetic" in msg
    _assert_no_output(tmp_path / "out")


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_with_config_and_flags(tmp_path, capsys):
    from astromorphic.data import main

    acl = make_acl_tree(tmp_path)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"tasks:\n  imdb:\n    data:\n      source: aclimdb:{acl}\n      seq_len: 16\n      min_freq: 1\n")
    assert (
        main(["imdb", "--config", str(cfg), "--out", str(tmp_path / "o"), "--seq-len", "8", "--set", "padding=left"])
        == 0
    )
    _, manifest = load_prepared(tmp_path / "o")
    assert manifest["seq_len"] == 8 and manifest["padding"] == "left" and manifest["options"]["min_freq"] == 1
    assert "prepared imdb" in capsys.readouterr().out
    assert main(["imdb", "--source", "nonsense", "--out", str(tmp_path / "x")]) == 1
    assert "unknown source 'nonsense'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
