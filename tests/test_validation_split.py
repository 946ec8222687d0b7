"""The classifiers' validation split at preparation time: IMDB held out by movie (tiny releases with their url
files), CIFAR-10 class-balanced, the synthetic stand-ins, the manifest, and the checks that keep data prepared
without one unchanged."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from astromorphic.config import ConfigError, resolve_task_config, run_section, validate_config
from astromorphic.data import DataError, check_prepared, load_prepared, prepare, validation

# Movie of each training review, per class (review id i is line i of urls_<label>.txt). Movie 0 has both classes.
TRAIN_MOVIES = {"pos": [0, 0, 1, 2, 2, 2, 3, 4, 5, 6], "neg": [0, 1, 1, 3, 4, 4, 5, 6, 6, 7]}
TEST_MOVIES = {"pos": [10, 10, 11], "neg": [11, 12, 12]}


def _url(movie: int) -> str:
    return f"http://www.imdb.com/title/tt{movie:07d}/usercomments"


def make_movie_release(root: Path, with_urls: bool = True) -> Path:
    """aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt naming their movie in the text, and the url files."""
    acl = root / "aclImdb"
    for split, movies in (("train", TRAIN_MOVIES), ("test", TEST_MOVIES)):
        for label, ids in movies.items():
            folder = acl / split / label
            folder.mkdir(parents=True)
            word = "great" if label == "pos" else "awful"
            for i, movie in enumerate(ids):
                rating = 9 if label == "pos" else 2
                (folder / f"{i}_{rating}.txt").write_text(f"tt{movie:07d} was {word} .", encoding="utf-8")
            if with_urls:
                (acl / split / f"urls_{label}.txt").write_text("".join(_url(m) + "\n" for m in ids))
    return acl


def make_archives(tmp_path: Path, with_urls: bool = True) -> Path:
    """The layout of the shared copies: one archive per split (url files inside it)."""
    acl = make_movie_release(tmp_path / "src", with_urls)
    out = tmp_path / "archives"
    out.mkdir()
    for split in ("train", "test"):
        with tarfile.open(out / f"aclImdb_{split}.tar.gz", "w:gz") as tf:
            tf.add(acl / split, arcname=f"aclImdb/{split}")
    return out


def first_words(out: Path, split: str) -> list[str]:
    """The first word of each prepared review of ``split`` (its movie; decoded through vocab.json)."""
    vocab = json.loads((out / "vocab.json").read_text())
    splits, _ = load_prepared(out)
    return [vocab[int(row[0])] for row in splits[split]["tokens"]]


def assert_movies_disjoint(out: Path) -> set[str]:
    """Every training movie is in the vocabulary (built from the training reviews, min_freq 1), so a validation
    review of a training movie would start with a known word: all of them start with <unk>. The training movies."""
    assert set(first_words(out, "valid")) == {"<unk>"}
    train = set(first_words(out, "train"))
    assert all(w.startswith("tt") for w in train)
    return train


def test_imdb_validation_split_holds_out_whole_movies(tmp_path):
    m = prepare("imdb", f"aclimdb:{make_archives(tmp_path)}", tmp_path / "out", seq_len=4, min_freq=1, valid_size=4)
    assert m["splits"] == ["train", "valid", "test"]
    assert m["counts"] == {"train": {"examples": 16}, "valid": {"examples": 4}, "test": {"examples": 6}}
    assert m["class_balance"]["valid"] == [2, 2] and m["class_balance"]["train"] == [8, 8]
    v = m["validation"]
    assert (v["size"], v["seed"], v["class_counts"]) == (4, 0, [2, 2])
    assert v["shared_movies"] == {"train-valid": 0, "train-test": 0, "valid-test": 0}
    train_movies = assert_movies_disjoint(tmp_path / "out")  # read from the reviews themselves
    assert v["movies"] == {"train": len(train_movies), "valid": 8 - len(train_movies), "test": 3}
    assert m["options"]["valid_size"] == 4 and m["options"]["valid_seed"] is None


def test_imdb_validation_split_is_fixed_by_its_seed(tmp_path):
    source = f"aclimdb:{make_archives(tmp_path)}"
    common = {"seq_len": 4, "min_freq": 1, "valid_size": 4}
    prepare("imdb", source, tmp_path / "a", **common)
    prepare("imdb", source, tmp_path / "b", **common)
    assert (tmp_path / "a" / "valid.pt").read_bytes() == (tmp_path / "b" / "valid.pt").read_bytes()
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    drawn = set()
    for seed in range(6):
        prepare("imdb", source, tmp_path / f"s{seed}", valid_seed=seed, **common)
        drawn.add(frozenset(first_words(tmp_path / f"s{seed}", "train")))
    assert len(drawn) > 1  # another seed, other movies held out


def test_imdb_folder_tree_and_n_train_drawn_from_the_rest(tmp_path):
    acl = make_movie_release(tmp_path)
    m = prepare("imdb", f"aclimdb:{acl}", tmp_path / "out", seq_len=4, min_freq=1, valid_size=4, n_train=8)
    assert m["counts"]["train"] == {"examples": 8} and m["class_balance"]["train"] == [4, 4]
    assert m["subsets"]["train"]["of"] == 16  # the reviews left after the validation split
    assert m["validation"]["shared_movies"]["train-valid"] == 0
    assert_movies_disjoint(tmp_path / "out")
    assert {"aclImdb/train/urls_pos.txt", "aclImdb/train/urls_neg.txt"} <= {r["name"] for r in m["inputs"]}


def test_imdb_without_url_files_or_with_a_bad_size_is_refused_naming_the_fix(tmp_path):
    source = f"aclimdb:{make_archives(tmp_path, with_urls=False)}"
    with pytest.raises(DataError, match="urls_neg.txt.*valid_size null"):
        prepare("imdb", source, tmp_path / "o", seq_len=4, valid_size=4)
    with pytest.raises(DataError, match="tasks.imdb.data.valid_size: .*multiple of 2"):
        prepare("imdb", source, tmp_path / "o", seq_len=4, valid_size=5)
    with pytest.raises(DataError, match="whole groups fill only"):
        prepare("imdb", f"aclimdb:{make_archives(tmp_path / 'w')}", tmp_path / "o", seq_len=4, valid_size=22)
    assert not (tmp_path / "o").exists()


def test_group_draw_fills_each_class_exactly_or_says_how_far_it_got():
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    groups = ["a", "a", "a", "b", "c", "c", "d", "e"]
    for seed in range(10):
        idx = validation.group_draw(labels, groups, 4, 2, seed, "x")
        assert np.bincount(labels[idx], minlength=2).tolist() == [2, 2]
        held = {groups[i] for i in idx}
        assert held.isdisjoint({groups[i] for i in range(8) if i not in set(idx.tolist())})
    with pytest.raises(DataError, match="takes every group"):
        validation.group_draw(labels, groups, 8, 2, 0, "x")
    with pytest.raises(DataError, match=r"whole groups fill only \[0, 0\] of the 1 .* in 100 random orders"):
        validation.group_draw(np.array([0, 0, 1, 1]), ["a", "a", "b", "b"], 2, 2, 0, "x")


def test_without_valid_size_the_manifest_is_the_one_made_before(tmp_path):
    m = prepare("imdb", f"aclimdb:{make_archives(tmp_path)}", tmp_path / "out", seq_len=4, min_freq=1)
    assert m["splits"] == ["train", "test"] and "validation" not in m
    assert "valid_size" not in m["options"] and "valid_seed" not in m["options"]
    inputs = {r["name"]: r for r in m["inputs"]}
    assert inputs["aclImdb_train.tar.gz"]["reviews"] == 20  # the url files are not counted as reviews


def make_images(root: Path, classes=("cat", "airplane", "truck"), n_train: int = 4) -> Path:
    from PIL import Image

    for split, count in (("train", n_train), ("test", 2)):
        for c, cls in enumerate(classes):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.random.default_rng(1000 * c + 10 * i + (split == "test")).integers(0, 256, (32, 32, 3))
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root


def test_cifar10_validation_split_is_class_balanced_and_disjoint(tmp_path):
    source = f"imagefolder:{make_images(tmp_path / 'src')}"
    m = prepare("cifar10", source, tmp_path / "o", valid_size=3, n_train=6)
    assert m["splits"] == ["train", "valid", "test"]
    assert m["class_balance"] == {"train": [2, 2, 2], "valid": [1, 1, 1], "test": [2, 2, 2]}
    assert m["validation"]["class_counts"] == [1, 1, 1] and m["subsets"]["train"]["of"] == 9
    splits, _ = load_prepared(tmp_path / "o")
    seen = {bytes(img.numpy()) for img in splits["train"]["images"]}
    assert not seen & {bytes(img.numpy()) for img in splits["valid"]["images"]}
    again = prepare("cifar10", source, tmp_path / "p", valid_size=3, n_train=6)
    assert again == m
    assert (tmp_path / "o" / "valid.pt").read_bytes() == (tmp_path / "p" / "valid.pt").read_bytes()
    with pytest.raises(DataError, match="leaves nothing"):
        prepare("cifar10", source, tmp_path / "q", valid_size=12)


@pytest.mark.parametrize("task,options", [("imdb", {"seq_len": 32, "vocab_size": 200}), ("cifar10", {})])
def test_synthetic_validation_split_comes_from_the_generator(task, options, tmp_path):
    sizes = {"n_train": 40, "n_test": 20}
    prepare(task, "synthetic", tmp_path / "plain", **sizes, **options)
    m = prepare(task, "synthetic", tmp_path / "valid", **sizes, **options, valid_size=20)
    assert m["counts"]["valid"] == {"examples": 20} and m["validation"]["size"] == 20
    assert m["validation"]["seed"] == m["generator"]["valid_seed"]
    for split in ("train", "test"):  # the other splits keep their seeds and their bytes
        assert (tmp_path / "plain" / f"{split}.pt").read_bytes() == (tmp_path / "valid" / f"{split}.pt").read_bytes()
    splits, _ = load_prepared(tmp_path / "valid")
    assert splits["valid"]["labels"].shape == (20,)


def test_prepared_data_must_have_the_validation_split_the_configuration_asks_for(tmp_path):
    prepare("cifar10", "synthetic", tmp_path / "plain", n_train=20, n_test=10)
    prepare("cifar10", "synthetic", tmp_path / "valid", n_train=20, n_test=10, valid_size=10)
    check_prepared(tmp_path / "plain", "cifar10", {"valid_size": None})
    check_prepared(tmp_path / "valid", "cifar10", {"valid_size": 10, "valid_seed": 0})
    with pytest.raises(DataError, match="no validation split but tasks.cifar10.data asks for valid_size=10"):
        check_prepared(tmp_path / "plain", "cifar10", {"valid_size": 10})
    with pytest.raises(DataError, match="valid_size=10, valid_seed=0 but .* asks for no validation split"):
        check_prepared(tmp_path / "valid", "cifar10", {"valid_size": None})


def test_the_new_keys_stay_out_of_the_run_section_until_set():
    plain = resolve_task_config(validate_config({"tasks": {"cifar10": {}}}), "cifar10")
    section = run_section(plain)
    assert "valid_size" not in section["data"] and "valid_seed" not in section["data"]
    assert "early_stopping" not in section["train"]
    used = {"tasks": {"cifar10": {"data": {"valid_size": 1000}, "train": {"early_stopping": 5}}}}
    section = run_section(resolve_task_config(validate_config(used), "cifar10"))
    assert section["data"]["valid_size"] == 1000 and section["train"]["early_stopping"] == 5
    with pytest.raises(ConfigError, match="early_stopping .*set data.valid_size"):
        validate_config({"tasks": {"imdb": {"train": {"early_stopping": 3}}}})


def test_loaded_splits_are_tensors_like_train(tmp_path):
    prepare("imdb", "synthetic", tmp_path / "d", n_train=20, n_test=10, seq_len=32, valid_size=10)
    splits, _ = load_prepared(tmp_path / "d")
    assert set(splits["valid"]) == set(splits["train"]) == {"tokens", "lengths", "labels"}
    assert splits["valid"]["tokens"].dtype == torch.int64 and splits["valid"]["tokens"].shape == (10, 32)
