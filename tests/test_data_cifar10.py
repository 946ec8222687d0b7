"""CIFAR-10 preparation from tiny fixtures in the official formats: class folders of PNG/JPEG files (plain
and .tar.gz), and the python-pickle release (extracted folder and cifar-10-python.tar.gz)."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from astromorphic.data import DataError, SourceUnavailableError, cifar10, load_prepared, prepare

CLASSES = ("cat", "airplane", "truck")  # not all ten: sorted order applies


def _image(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def make_image_tree(root: Path, classes=CLASSES, n=(3, 2), fmt="png") -> Path:
    from PIL import Image

    for split, count in zip(("train", "test"), n, strict=True):
        for c, cls in enumerate(classes):
            folder = root / "cifar10" / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(_image(1000 * c + 10 * i + (split == "test"))).save(folder / f"{i:04d}.{fmt}")
    return root


def test_png_folder_exact_pixels_and_sorted_classes(tmp_path):
    make_image_tree(tmp_path / "src")
    m = prepare("cifar10", f"imagefolder:{tmp_path / 'src'}", tmp_path / "o")
    splits, manifest = load_prepared(tmp_path / "o", verify=True)
    assert manifest["class_names"] == sorted(CLASSES) and manifest["n_classes"] == 3
    assert manifest["counts"] == {"train": {"examples": 9}, "test": {"examples": 6}}
    assert manifest["class_balance"] == {"train": [3, 3, 3], "test": [2, 2, 2]}
    assert manifest["lossy_copy"] is False and manifest["image_files"] == {"png": 15}
    images, labels = splits["train"]["images"], splits["train"]["labels"]
    assert images.shape == (9, 3, 32, 32) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    # first train image of "airplane" (sorted first) is cat index 1 in CLASSES, file 0000
    expected = _image(1000 * CLASSES.index("airplane") + 0)
    assert np.array_equal(images[0].permute(1, 2, 0).numpy(), expected)
    all_train = np.stack([_image(1000 * c + 10 * i) for c in range(3) for i in range(3)]).astype(np.float64) / 255
    assert m["mean"] == pytest.approx(all_train.mean(axis=(0, 1, 2)), abs=1e-6)
    assert m["std"] == pytest.approx(all_train.std(axis=(0, 1, 2)), abs=1e-6)


def test_jpeg_archives_official_class_order(tmp_path):
    make_image_tree(tmp_path / "src", classes=cifar10.CLASS_NAMES, n=(2, 1), fmt="jpg")
    arch = tmp_path / "arch"
    arch.mkdir()
    for split in ("train", "test"):
        with tarfile.open(arch / f"cifar10_jpg_{split}.tar.gz", "w:gz") as tf:
            tf.add(tmp_path / "src" / "cifar10" / split, arcname=f"cifar10/{split}")
    m = prepare("cifar10", f"imagefolder:{arch}", tmp_path / "a")
    prepare("cifar10", f"imagefolder:{tmp_path / 'src'}", tmp_path / "b")
    assert m["class_names"] == list(cifar10.CLASS_NAMES)
    assert m["class_balance"] == {"train": [2] * 10, "test": [1] * 10}
    assert m["lossy_copy"] is True and "lossy" in m["caveat"]
    assert {r["name"] for r in m["inputs"]} == {"cifar10_jpg_train.tar.gz", "cifar10_jpg_test.tar.gz"}
    for name in ("train.pt", "test.pt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_decoders_agree_on_jpeg(tmp_path):
    from PIL import Image

    items = []
    for i in range(20):
        buf = io.BytesIO()
        Image.fromarray(_image(i)).save(buf, format="JPEG", quality=75)
        items.append((f"{i}.jpg", buf.getvalue()))
    fast, used = cifar10.decode_images(items, "t")
    assert used["torchvision.io"] == 20
    slow = np.stack([cifar10._decode_pil(n, b) for n, b in items])
    assert np.array_equal(fast, slow)


def test_twice_identical_bytes(tmp_path):
    make_image_tree(tmp_path / "src")
    for out in ("1", "2"):
        prepare("cifar10", f"imagefolder:{tmp_path / 'src'}", tmp_path / out)
    for name in ("manifest.json", "train.pt", "test.pt"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


def test_class_folder_without_images(tmp_path):
    make_image_tree(tmp_path / "src")
    empty = tmp_path / "src" / "cifar10" / "test" / "truck"
    for f in empty.iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"test/truck: class folder with no images; expected PNG or JPEG"):
        prepare("cifar10", f"imagefolder:{tmp_path / 'src'}", tmp_path / "o")
    assert not (tmp_path / "o").exists()
    # the same inside an archive (the folder entry is there, its files are not)
    with tarfile.open(tmp_path / "a.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "src" / "cifar10", arcname="cifar10")
    with pytest.raises(DataError, match=r"a\.tar\.gz: cifar10/test/truck: class folder with no images"):
        prepare("cifar10", f"imagefolder:{tmp_path / 'a.tar.gz'}", tmp_path / "o")


def test_missing_split_folder_and_class(tmp_path):
    make_image_tree(tmp_path / "src")
    import shutil

    shutil.rmtree(tmp_path / "src" / "cifar10" / "test" / "cat")
    with pytest.raises(DataError, match=r"test has no folder for class\(es\) cat"):
        prepare("cifar10", f"imagefolder:{tmp_path / 'src'}", tmp_path / "o")
    shutil.rmtree(tmp_path / "src" / "cifar10" / "test")
    with pytest.raises(DataError, match=r"cifar10/test: folder missing"):
        prepare("cifar10", f"imagefolder:{tmp_path / 'src'}", tmp_path / "o")


def test_bad_images_named(tmp_path):
    from PIL import Image

    make_image_tree(tmp_path / "src")
    big = tmp_path / "src" / "cifar10" / "train" / "cat" / "0001.png"
    Image.fromarray(_image(5, size=40)).save(big)
    with pytest.raises(DataError, match=r"0001\.png: image is 40x40, expected 32x32"):
        prepare("cifar10", f"imagefolder:{tmp_path / 'src'}", tmp_path / "o")
    big.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"0001\.png: cannot decode as PNG/JPEG"):
        prepare("cifar10", f"imagefolder:{tmp_path / 'src'}", tmp_path / "o")


def test_truncated_image_archive(tmp_path):
    make_image_tree(tmp_path / "src")
    target = tmp_path / "t.tar.gz"
    with tarfile.open(target, "w:gz") as tf:
        tf.add(tmp_path / "src" / "cifar10", arcname="cifar10")
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t\.tar\.gz: truncated or corrupted archive"):
        prepare("cifar10", f"imagefolder:{target}", tmp_path / "o")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------ torchvision


def _batch(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"fixture batch",
        b"labels": [int(x) for x in rng.integers(0, 10, size=n)],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def make_batches_folder(root: Path, n: int = 4) -> Path:
    """cifar-10-batches-py/ in the official python-pickle layout, with n random images per batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(_batch(n, i), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(_batch(n, 99), protocol=2))
    meta = {b"label_names": [c.encode() for c in cifar10.CLASS_NAMES], b"num_vis": 3072, b"num_cases_per_batch": n}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def make_python_archive(root: Path) -> Path:
    folder = make_batches_folder(root / "src")
    archive = root / "dl" / "cifar-10-python.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname="cifar-10-batches-py")
    return archive


def test_extracted_folder_read_without_md5(tmp_path):
    make_batches_folder(tmp_path)
    m = prepare("cifar10", f"torchvision:{tmp_path}", tmp_path / "o", verify_md5=False, download=False)
    splits, _ = load_prepared(tmp_path / "o")
    assert m["md5_verified"] is False and m["counts"] == {"train": {"examples": 20}, "test": {"examples": 4}}
    first = _batch(4, 1)
    # official layout: 1024 red, then 1024 green, then 1024 blue values, row-major
    assert np.array_equal(splits["train"]["images"][0].numpy(), first[b"data"][0].reshape(3, 32, 32))
    assert splits["train"]["labels"][:4].tolist() == first[b"labels"]
    assert m["class_names"] == list(cifar10.CLASS_NAMES)
    assert {r["name"] for r in m["inputs"]} >= {"cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"}


def test_extracted_folder_rejected_by_md5_check(tmp_path):
    make_batches_folder(tmp_path)
    with pytest.raises(
        DataError, match=r"data_batch_1: MD5 [0-9a-f]{32} differs from the official c99cafc152244af753f735de768cd75f"
    ):
        prepare("cifar10", f"torchvision:{tmp_path}", tmp_path / "o", download=False)
    assert not (tmp_path / "o").exists()


def test_md5_check_accepts_matching_files(tmp_path, monkeypatch):
    """The check itself: with torchvision's expected sums set to the fixture's sums, verification passes."""
    from torchvision.datasets import CIFAR10

    folder = make_batches_folder(tmp_path)

    def md5(name):
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(n)] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[n, md5(n)] for n, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5("batches.meta")})
    m = prepare("cifar10", f"torchvision:{tmp_path}", tmp_path / "o", download=False)
    assert m["md5_verified"] is True


def test_tampered_archive_rejected_by_name(tmp_path):
    archive = make_python_archive(tmp_path)
    with pytest.raises(DataError) as exc:
        prepare("cifar10", f"torchvision:{archive.parent}", tmp_path / "o", download=False)
    msg = str(exc.value)
    assert "cifar-10-python.tar.gz: MD5" in msg and "c58f30108f718f92721af3b95e74349a" in msg
    assert not (tmp_path / "o").exists()
    m = prepare("cifar10", f"torchvision:{archive.parent}", tmp_path / "o", verify_md5=False, download=False)
    assert m["counts"]["train"]["examples"] == 20 and m["inputs"][0]["name"] == "cifar-10-python.tar.gz"


def test_pickle_with_code_is_refused(tmp_path):
    folder = make_batches_folder(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("should never run",))

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(
        DataError, match=r"data_batch_3: not a CIFAR-10 python batch .*refusing to load (builtins|__builtin__)\.print"
    ):
        prepare("cifar10", f"torchvision:{tmp_path}", tmp_path / "o", verify_md5=False, download=False)


def test_download_fails_fast_offline(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    t0 = time.monotonic()
    with pytest.raises(SourceUnavailableError) as exc:
        prepare("cifar10", f"torchvision:{tmp_path / 'empty'}", tmp_path / "o", network_timeout=2)
    assert time.monotonic() - t0 < 15
    msg = str(exc.value)
    assert "source 'torchvision'" in msg and "imagefolder:PATH" in msg and "synthetic" in msg
    with pytest.raises(SourceUnavailableError, match="download is off"):
        prepare("cifar10", f"torchvision:{tmp_path / 'empty'}", tmp_path / "o", download=False)
    assert not (tmp_path / "o").exists()


def test_real_subset_is_balanced(tmp_path):
    make_image_tree(tmp_path / "src")
    m = prepare("cifar10", f"imagefolder:{tmp_path / 'src'}", tmp_path / "o", n_train=6)
    assert m["class_balance"]["train"] == [2, 2, 2] and m["subsets"]["train"]["of"] == 9
