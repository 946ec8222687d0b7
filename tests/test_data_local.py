"""Local copies in the official formats: which source a folder names (astromorphic.data.source_from_dir, the
workflow's data_dir), `astromorphic prepare --from-dir`, and the --set / --split-map flags. Tiny self-made
folders only; the real copies are checked in test_data_shared.py."""

from __future__ import annotations

import json
import zipfile

import pytest
from test_data_cifar10 import make_batches_folder, make_image_tree, make_python_archive
from test_data_imdb import make_acl_archives, make_acl_tree
from test_data_wikitext2 import make_fake_gpt2_dir, make_tokens_dir

from astromorphic.data import DataError, main, prepare, source_from_dir

# ------------------------------------------------------------------------------------------------ detection


def test_imdb_folder_tree_and_archives(tmp_path):
    make_acl_tree(tmp_path / "a")  # a/aclImdb/{train,test}/...
    assert source_from_dir("imdb", tmp_path / "a") == {"source": f"aclimdb:{tmp_path / 'a'}"}
    acl = tmp_path / "a" / "aclImdb"  # the aclImdb folder itself
    assert source_from_dir("imdb", acl) == {"source": f"aclimdb:{acl}"}
    archives = make_acl_archives(tmp_path / "b")
    assert source_from_dir("imdb", archives) == {"source": f"aclimdb:{archives}"}


def test_cifar10_prefers_the_python_batches(tmp_path):
    make_image_tree(tmp_path / "both")
    assert source_from_dir("cifar10", tmp_path / "both") == {"source": f"imagefolder:{tmp_path / 'both'}"}
    make_batches_folder(tmp_path / "both")  # cifar-10-batches-py/ beside the image folders: it wins
    assert source_from_dir("cifar10", tmp_path / "both") == {"source": f"torchvision:{tmp_path / 'both'}"}
    archive = make_python_archive(tmp_path / "py")
    assert source_from_dir("cifar10", archive.parent) == {"source": f"torchvision:{archive.parent}"}


def test_cifar10_image_archives_and_one_subfolder(tmp_path):
    make_image_tree(tmp_path / "tree")  # tree/cifar10/{train,test}/<class>/
    assert source_from_dir("cifar10", tmp_path / "tree")["source"] == f"imagefolder:{tmp_path / 'tree'}"
    (tmp_path / "arch").mkdir()
    (tmp_path / "arch" / "cifar10_jpg_train.tar.gz").write_bytes(b"")
    assert source_from_dir("cifar10", tmp_path / "arch")["source"] == f"imagefolder:{tmp_path / 'arch'}"


def test_wikitext2_split_map_only_without_the_train_file(tmp_path):
    full = make_tokens_dir(tmp_path / "full")
    assert source_from_dir("wikitext2", full) == {"source": f"tokens:{full}"}
    part = make_tokens_dir(tmp_path / "part", splits=("valid", "test"))
    assert source_from_dir("wikitext2", part) == {"source": f"tokens:{part}", "split_map": {"train": "valid"}}
    make_tokens_dir(tmp_path / "outer" / "wikitext-2")  # the files in a wikitext-2/ sub-folder
    assert source_from_dir("wikitext2", tmp_path / "outer") == {"source": f"tokens:{tmp_path / 'outer'}"}


def test_wikitext2_finds_the_gpt2_files_beside_or_inside(tmp_path):
    data = tmp_path / "data"  # <data_dir>/wikitext2 and <data_dir>/gpt2, as in the shared copies
    wt = make_tokens_dir(data / "wikitext2", splits=("valid", "test"))
    assert "tokenizer" not in source_from_dir("wikitext2", wt)
    (data / "gpt2").mkdir()
    (data / "gpt2" / "encoder.json").write_text("{}")
    assert "tokenizer" not in source_from_dir("wikitext2", wt)  # both files are needed
    (data / "gpt2" / "vocab.bpe").write_text("#version: 0.2\n")
    assert source_from_dir("wikitext2", wt) == {
        "source": f"tokens:{wt}", "split_map": {"train": "valid"}, "tokenizer": "gpt2", "gpt2_dir": str(data / "gpt2"),
    }  # fmt: skip
    inside = make_tokens_dir(tmp_path / "inside")  # a gpt2/ sub-folder wins over a folder beside
    for name in ("vocab.json", "merges.txt"):  # the same files under the Hugging Face names
        (inside / "gpt2").mkdir(exist_ok=True)
        (inside / "gpt2" / name).write_text("x")
    assert source_from_dir("wikitext2", inside)["gpt2_dir"] == str(inside / "gpt2")
    flat = make_tokens_dir(tmp_path / "flat")  # the files in the task folder itself
    for name in ("encoder.json", "vocab.bpe"):
        (flat / name).write_text("x")
    expected = {"source": f"tokens:{flat}", "tokenizer": "gpt2", "gpt2_dir": str(flat)}
    assert source_from_dir("wikitext2", flat) == expected


def test_cli_from_dir_prepares_gpt2_tokens(tmp_path):
    data = tmp_path / "data"
    wt = make_tokens_dir(data / "wikitext2", splits=("valid", "test"))
    make_fake_gpt2_dir(data / "gpt2")
    assert main(["wikitext2", "--from-dir", str(wt), "--out", str(tmp_path / "o")]) == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["tokenizer"] == "gpt2" and m["vocab_size"] == 50257 and m["split_map"] == {"train": "valid"}
    assert m["options"]["gpt2_dir"] == str(data / "gpt2") and m["tokenizer_info"]["origin"].startswith("gpt2_dir")
    # a tokenizer given on the command line wins over the detected one
    assert main(["wikitext2", "--from-dir", str(wt), "--out", str(tmp_path / "w"), "--tokenizer", "word"]) == 0
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["tokenizer"] == "word"


def test_wikitext2_zip(tmp_path):
    files = make_tokens_dir(tmp_path / "src", splits=("valid", "test"))
    folder = tmp_path / "z"
    folder.mkdir()
    with zipfile.ZipFile(folder / "wikitext-2-v1.zip", "w") as zf:
        for f in sorted(files.iterdir()):
            zf.write(f, f"wikitext-2/{f.name}")
    found = source_from_dir("wikitext2", folder)
    assert found == {"source": f"tokens:{folder / 'wikitext-2-v1.zip'}", "split_map": {"train": "valid"}}
    m = prepare("wikitext2", found["source"], tmp_path / "o", tokenizer="word", split_map=found["split_map"])
    assert m["split_map"] == {"train": "valid"}


@pytest.mark.parametrize(
    "task,expected",
    [("imdb", "aclImdb"), ("cifar10", "cifar-10-python.tar.gz"), ("wikitext2", "wiki.{train,valid,test}.tokens")],
)
def test_nothing_recognised_is_one_line_naming_folder_and_formats(tmp_path, task, expected):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing here\n")
    with pytest.raises(DataError) as exc:
        source_from_dir(task, folder)
    msg = str(exc.value)
    assert msg.startswith(f"{folder}: no {task} data in an official format; expected") and expected in msg
    assert "\n" not in msg
    with pytest.raises(DataError, match=f"{tmp_path / 'missing'}: no such folder"):
        source_from_dir(task, tmp_path / "missing")
    with pytest.raises(DataError, match="unknown task"):
        source_from_dir("mnist", folder)


# ------------------------------------------------------------------------------------------------ command line


def test_cli_from_dir(tmp_path, capsys):
    make_acl_tree(tmp_path / "imdb")
    assert main(["imdb", "--from-dir", str(tmp_path / "imdb"), "--out", str(tmp_path / "o"), "--seq-len", "8"]) == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["source_spec"] == f"aclimdb:{tmp_path / 'imdb'}" and m["seq_len"] == 8
    part = make_tokens_dir(tmp_path / "wt", splits=("valid", "test"))
    assert main(["wikitext2", "--from-dir", str(part), "--out", str(tmp_path / "w"), "--tokenizer", "word"]) == 0
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["split_map"] == {"train": "valid"}
    assert main(["cifar10", "--from-dir", str(tmp_path / "wt"), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'wt'}: no cifar10 data in an official format" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit):  # one place to read from
        main(["imdb", "--from-dir", str(tmp_path / "imdb"), "--source", "synthetic", "--out", str(tmp_path / "y")])


def test_cli_set_and_split_map_are_read_as_yaml(tmp_path, capsys):
    d = make_tokens_dir(tmp_path / "wt", splits=("valid", "test"))
    out = tmp_path / "o"
    argv = ["wikitext2", "--source", f"tokens:{d}", "--out", str(out), "--split-map", "train=valid"]
    assert main(argv + ["--set", "tokenizer=word", "--set", "n_test=30"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["split_map"] == {"train": "valid"} and m["options"]["n_test"] == 30 and m["tokenizer"] == "word"
    assert main(argv + ["--set", "tokenizer"]) == 1
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert main(["wikitext2", "--source", f"tokens:{d}", "--out", str(out), "--split-map", "train"]) == 1
    assert "--split-map expects SPLIT=FROM" in capsys.readouterr().err
    assert main(argv + ["--set", "n_test=many"]) == 1
    assert "tasks.wikitext2.data.n_test" in capsys.readouterr().err
    assert main(argv + ["--split-map", "dev=valid"]) == 1
    assert "tasks.wikitext2.data.split_map" in capsys.readouterr().err
