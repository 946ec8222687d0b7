"""The synthetic stand-ins: deterministic, small, labelled as synthetic, and built so that the answer
depends on relations between tokens or patches."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from astromorphic.data import load_prepared, main, prepare, synthetic


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    out = {}
    for task in ("imdb", "cifar10", "wikitext2"):
        prepare(task, "synthetic", root / task)
        out[task] = load_prepared(root / task, verify=True)
    return root, out


def test_every_output_says_synthetic(prepared):
    _, out = prepared
    for _, manifest in out.values():
        assert manifest["synthetic"] is True and manifest["source"] == "synthetic"
        assert manifest["note"].startswith("SYNTHETIC STAND-IN")
        assert manifest["generator"]["version"] == synthetic.GENERATOR_VERSION
        assert manifest["inputs"] == []


def test_imdb_like_shapes_and_balance(prepared):
    _, out = prepared
    splits, m = out["imdb"]
    assert splits["train"]["tokens"].shape == (2000, 64) and splits["test"]["tokens"].shape == (1000, 64)
    assert m["class_balance"] == {"train": [1000, 1000], "test": [500, 500]}
    assert 150 <= m["vocab_size"] <= 210 and m["pad_id"] == 0 and m["seq_len"] == 64
    assert int(splits["train"]["lengths"].min()) >= 32


def test_imdb_like_rule_and_negation_matter():
    texts, labels = synthetic.imdb_like(400, 64, 200, seed=3)
    words = [t.split() for t in texts]
    assert [synthetic.imdb_rule_label(w) for w in words] == labels.tolist()
    # counting surface polarity ignores negation: right often, but far from always
    pos, neg = set(synthetic.POSITIVE_WORDS), set(synthetic.NEGATIVE_WORDS)
    surface = np.array([int(sum((x in pos) - (x in neg) for x in w) > 0) for w in words])
    assert 0.55 < (surface == labels).mean() < 0.85
    negators = set(synthetic.NEGATORS)
    assert np.mean([any(x in negators for x in w) for w in words]) > 0.4


def test_imdb_rule_details():
    r = synthetic.imdb_rule_label
    assert r(["good"]) == 1 and r(["not", "x", "good"]) == 0
    assert r(["not"] + ["x"] * 7 + ["good"]) == 1  # out of scope
    assert r(["not", "bad", "good"]) == 1  # the negator is used up by the first sentiment word
    assert r(["good", "bad"]) is None


def test_cifar_like_is_learnable_from_layout(prepared):
    _, out = prepared
    splits, m = out["cifar10"]
    assert splits["train"]["images"].shape == (2000, 3, 32, 32) and splits["train"]["images"].dtype == torch.uint8
    assert m["class_balance"]["train"] == [200] * 10 and m["class_names"][0] == "top-row"
    assert len(m["mean"]) == 3 and all(0 < s < 1 for s in m["std"])

    # brightness pooled over the 3x3 grid cells separates the classes with a nearest-centroid rule
    def cells(x):
        x = x.float().amax(dim=1)[:, :30, :30]
        return x.reshape(-1, 3, 10, 3, 10).mean(dim=(2, 4)).reshape(len(x), 9)

    tr, te = cells(splits["train"]["images"]), cells(splits["test"]["images"])
    centroids = torch.stack([tr[splits["train"]["labels"] == c].mean(0) for c in range(10)])
    pred = torch.cdist(te, centroids).argmin(1)
    assert (pred == splits["test"]["labels"]).float().mean() > 0.8
    # colour alone says nothing: mean colour per class is about the same
    colour = splits["train"]["images"].float().mean(dim=(2, 3))
    by_class = torch.stack([colour[splits["train"]["labels"] == c].mean(0) for c in range(10)])
    assert (by_class.max(0).values - by_class.min(0).values).max() < 15


def test_wikitext_like_grammar(prepared):
    _, out = prepared
    splits, m = out["wikitext2"]
    assert m["tokenizer"] == "word" and 100 <= m["vocab_size"] <= 300
    assert 100_000 <= m["counts"]["train"]["words"] < 101_000 and m["counts"]["valid"]["words"] >= 10_000
    for split in ("train", "valid", "test"):
        assert m["counts"][split]["tokens"] == m["counts"][split]["words"] == splits[split]["tokens"].numel()
    lines = synthetic.wikitext_like(3000, seed=1)
    assert lines[0].startswith(" = ") and lines[1] == " \n"
    # number agreement: "it" is followed by a singular verb, "they" by a plural one
    singular = {a for a, _ in synthetic._INTRANSITIVE + synthetic._TRANSITIVE}
    plural = {b for _, b in synthetic._INTRANSITIVE + synthetic._TRANSITIVE}
    words = " ".join(lines).split()
    pairs = [(w, words[i + 1]) for i, w in enumerate(words[:-1]) if w in ("it", "they")]
    assert pairs and all((v in singular) if w == "it" else (v in plural) for w, v in pairs)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    for task in ("imdb", "cifar10", "wikitext2"):
        prepare(task, "synthetic", tmp_path / f"{task}1", n_train=40, n_test=20)
        prepare(task, "synthetic", tmp_path / f"{task}2", n_train=40, n_test=20)
        prepare(task, "synthetic", tmp_path / f"{task}3", n_train=40, n_test=20, seed=1)
        for name in ("manifest.json", "train.pt", "test.pt"):
            assert (tmp_path / f"{task}1" / name).read_bytes() == (tmp_path / f"{task}2" / name).read_bytes()
        assert (tmp_path / f"{task}1" / "train.pt").read_bytes() != (tmp_path / f"{task}3" / "train.pt").read_bytes()


def test_bytes_identical_in_a_fresh_process(tmp_path):
    """torch.save output does not depend on the process (nor on the file name written to)."""
    prepare("imdb", "synthetic", tmp_path / "here", n_train=20, n_test=10)
    code = (
        "import sys; from astromorphic.data import prepare; "
        "prepare('imdb', 'synthetic', sys.argv[1], n_train=20, n_test=10)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], check=True)
    for name in ("manifest.json", "train.pt", "test.pt", "vocab.json"):
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes()


def test_cli_synthetic_options(tmp_path, capsys):
    assert main(["wikitext2", "--source", "synthetic", "--out", str(tmp_path / "w"), "--n-train", "2000",
                 "--n-valid", "500", "--n-test", "500", "--tokenizer", "bpe", "--bpe-vocab-size", "300"]) == 0  # fmt: skip
    m = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert m["tokenizer_info"]["kind"] == "bpe" and m["synthetic"] is True
    assert "[SYNTHETIC STAND-IN]" in capsys.readouterr().out
    assert main(["imdb", "--source", "synthetic", "--out", str(tmp_path / "i"), "--vocab-size", "100", "--seq-len", "32",
                 "--n-train", "20", "--n-test", "10"]) == 0  # fmt: skip
    m = json.loads((tmp_path / "i" / "manifest.json").read_text())
    assert m["vocab_size"] <= 100 and m["seq_len"] == 32
