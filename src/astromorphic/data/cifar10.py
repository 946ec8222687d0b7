"""CIFAR-10 (Krizhevsky 2009): 50,000 train and 10,000 test 32x32 RGB images in 10 classes.

Sources:

- ``torchvision`` or ``torchvision:ROOT``: the official python-pickle release in ``ROOT`` (default
  ``~/.cache/astromorphic/torchvision``), either extracted (``cifar-10-batches-py/``) or as the archive
  ``cifar-10-python.tar.gz``. When neither is there it is downloaded with
  ``torchvision.datasets.CIFAR10(download=True)``. The MD5 sums are torchvision's own constants and are
  checked (``verify_md5``) before anything is read: a changed file is rejected by name. The batches are
  read with a restricted unpickler that accepts nothing but numpy arrays, lists, strings and numbers.
- ``imagefolder:PATH``: ``train/<class>/*.png|jpg|jpeg`` and ``test/<class>/...`` (directly in PATH or in
  one sub-folder of it), or ``.tar.gz`` archives of such trees, or one archive. Classes named like the
  official ones take the official label order (airplane = 0 ... truck = 9); other names are sorted.
  Images must be 32x32; they are converted to RGB. JPEG copies are lossy, and the manifest says so.
- ``synthetic``: the spatial-arrangement stand-in of :mod:`astromorphic.data.synthetic`.

Output per split: ``images`` (n, 3, 32, 32) uint8 and ``labels`` (n,) int64, ordered by class and then by
file name (training shuffles). The manifest holds per-channel ``mean`` and ``std`` of the train images in
[0, 1] units, computed from exact integer sums. Augmentation belongs to training, not here.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from astromorphic.data import common, synthetic, validation
from astromorphic.data.common import DataError, SourceUnavailableError

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")
IMAGE_SIZE = 32
DEFAULT_ROOT = "~/.cache/astromorphic/torchvision"
PYTHON_RELEASE = ("cifar-10-python.tar.gz", "cifar-10-batches-py")  # torchvision's CIFAR10.filename, .base_folder
SOURCE_FORMS = "torchvision[:ROOT], imagefolder:PATH or synthetic"
ALTERNATIVES = (
    "Alternatives: --source imagefolder:PATH (class folders of PNG/JPEG images, or .tar.gz archives of them), "
    "--source torchvision:ROOT with the official cifar-10-python.tar.gz copied into ROOT, "
    "or --source synthetic (offline stand-in)."
)
IMAGES_EXPECTED = "train/<class>/*.png|jpg and test/<class>/*.png|jpg (a folder, or .tar.gz archives of it)"
LOCAL_FORMATS = (
    "the official python release (cifar-10-python.tar.gz or cifar-10-batches-py/), or train/ and test/ folders "
    "of class folders of PNG/JPEG images, or .tar.gz archives of them"
)

_IMAGE = re.compile(r"(?:^|/)(train|test)/([^/]+)/([^/]+\.(?:png|jpe?g))$", re.IGNORECASE)
_CLASS_DIR = re.compile(r"(?:^|/)(train|test)/([^/]+)/?$")


# ------------------------------------------------------------------------------------------------ image folders


def _decode_pil(name: str, data: bytes) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.size != (IMAGE_SIZE, IMAGE_SIZE):
                raise DataError(f"{name}: image is {im.size[0]}x{im.size[1]}, expected {IMAGE_SIZE}x{IMAGE_SIZE}")
            return np.asarray(im.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
    except DataError:
        raise
    except Exception as exc:  # PIL raises many types for broken files
        raise DataError(f"{name}: cannot decode as PNG/JPEG ({type(exc).__name__}: {exc})") from exc


def decode_images(items: list[tuple[str, bytes]], desc: str) -> tuple[np.ndarray, dict[str, int]]:
    """Decode (name, bytes) pairs in order into (n, 3, 32, 32) uint8, and count files per decoder.

    torchvision.io (libjpeg-turbo, libpng) decodes a 32x32 JPEG in about 50 microseconds against 200-400 for
    Pillow's open/convert path, with identical pixels on all 10,000 CIFAR-10 test JPEGs; Pillow decodes
    whatever torchvision.io rejects and names a file that neither can read.
    """
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchvision.io import ImageReadMode, decode_image
    except ImportError:  # a torchvision without image decoding: Pillow does all of it
        decode_image = None

    out = np.empty((len(items), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    used = {"torchvision.io": 0, "Pillow": 0}
    with warnings.catch_warnings():
        # torchvision 0.29 flags its image codecs as deprecated in favour of torchcodec; they still work.
        warnings.simplefilter("ignore", DeprecationWarning)
        for i, (name, data) in enumerate(common.progress(items, desc=desc, unit=" images")):
            img = None
            if decode_image is not None:
                try:
                    img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
                except Exception:
                    img = None
            if img is None:
                out[i] = _decode_pil(name, data)
                used["Pillow"] += 1
                continue
            if tuple(img.shape) != (3, IMAGE_SIZE, IMAGE_SIZE):
                raise DataError(f"{name}: image is {img.shape[2]}x{img.shape[1]}, expected {IMAGE_SIZE}x{IMAGE_SIZE}")
            out[i] = img.numpy()
            used["torchvision.io"] += 1
    return out, used


def _folder_root(path: Path) -> Path | None:
    if (path / "train").is_dir() or (path / "test").is_dir():
        return path
    subdirs = [p for p in sorted(path.iterdir()) if p.is_dir() and ((p / "train").is_dir() or (p / "test").is_dir())]
    return subdirs[0] if len(subdirs) == 1 else None


def local_source(folder: Path) -> dict[str, Any] | None:
    """Data options for a local folder in an official format (see :func:`astromorphic.data.source_from_dir`):
    the python batches when they are there, else image folders or archives of them."""
    if any((folder / name).exists() for name in PYTHON_RELEASE):
        return {"source": f"torchvision:{folder}"}
    if _folder_root(folder) is not None or any(common.is_archive(p) for p in folder.iterdir()):
        return {"source": f"imagefolder:{folder}"}
    return None


def read_imagefolder(path: str | Path) -> tuple[dict[str, dict[str, list[tuple[str, bytes]]]], list[dict[str, Any]]]:
    """Files per split and class: ``{split: {class: [(name, bytes), ...]}}`` (sorted), plus input records."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found; expected {IMAGES_EXPECTED}")
    root = _folder_root(path) if path.is_dir() else None
    if root is not None:
        tree, record = _read_image_tree(root)
        inputs = [record]
    else:
        tree, inputs = _read_image_archives(path, _image_archives(path))
    classes = set(tree["train"]) | set(tree["test"])
    for split in SPLITS:
        missing = sorted(classes - set(tree[split]))
        if missing:
            raise DataError(
                f"{path}: {split} has no folder for class(es) {', '.join(missing)}; "
                f"expected {split}/<class>/ for every class"
            )
    return tree, inputs


def _read_image_tree(root: Path) -> tuple[dict[str, dict[str, list[tuple[str, bytes]]]], dict[str, Any]]:
    tree: dict[str, dict[str, list[tuple[str, bytes]]]] = {s: {} for s in SPLITS}
    digest = common.TreeDigest(root)
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            raise DataError(f"{split_dir}: folder missing; expected {split}/<class>/ folders of PNG/JPEG images")
        class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir())
        if not class_dirs:
            raise DataError(f"{split_dir}: no class folders; expected {split}/<class>/ folders of PNG/JPEG images")
        for cdir in class_dirs:
            files = sorted(
                (p for p in cdir.iterdir() if p.is_file() and _IMAGE.search(p.relative_to(root).as_posix())),
                key=lambda p: common.natural_key(p.name),
            )
            if not files:
                raise DataError(f"{cdir}: class folder with no images; expected PNG or JPEG files")
            tree[split][cdir.name] = [
                (str(p), digest.read(p)[1]) for p in common.progress(files, desc=f"read {split}/{cdir.name}")
            ]
    return tree, digest.record("image files")


def _image_archives(path: Path) -> list[Path]:
    if path.is_file():
        if not common.is_archive(path):
            raise DataError(f"{path}: not a .tar.gz/.tgz/.tar archive; expected {IMAGES_EXPECTED}")
        return [path]
    archives = sorted(p for p in path.iterdir() if common.is_archive(p))
    if not archives:
        raise DataError(f"{path}: no train/ or test/ folder and no .tar.gz archive here; expected {IMAGES_EXPECTED}")
    return archives


def _read_image_archives(
    path: Path, archives: list[Path]
) -> tuple[dict[str, dict[str, list[tuple[str, bytes]]]], list[dict[str, Any]]]:
    tree: dict[str, dict[str, list[tuple[str, bytes]]]] = {s: {} for s in SPLITS}
    inputs: list[dict[str, Any]] = []
    class_dirs: dict[tuple[str, str], str] = {}
    what = "gzip'd tar archive of {train,test}/<class>/ image files"
    for archive in archives:
        members, record = common.read_archive(archive, lambda n: bool(_IMAGE.search(n)), what, "images")
        for name, data in members:
            if data is None:
                m = _CLASS_DIR.search(name)
                if m:
                    class_dirs.setdefault((m.group(1), m.group(2)), f"{archive}: {name}")
                continue
            m = _IMAGE.search(name)
            assert m is not None
            tree[m.group(1)].setdefault(m.group(2), []).append((f"{archive}: {name}", data))
        inputs.append(record)
    for (split, cls), where in sorted(class_dirs.items()):
        if cls not in tree[split]:
            raise DataError(f"{where}: class folder with no images; expected PNG or JPEG files")
    for split in SPLITS:
        if not tree[split]:
            raise DataError(f"{path}: no {split} images; expected archive members {split}/<class>/*.png|jpg")
        for cls in tree[split]:
            tree[split][cls].sort(key=lambda e: common.natural_key(e[0]))
    return tree, inputs


def class_order(names: set[str]) -> list[str]:
    return list(CLASS_NAMES) if set(names) == set(CLASS_NAMES) else sorted(names)


# ------------------------------------------------------------------------------------------------ torchvision


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles the official batches: numpy arrays, lists, dicts, bytes, numbers; refuses anything else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        import importlib

        return getattr(importlib.import_module(module), name)


def _load_batch(data: bytes, name: str) -> dict:
    try:
        obj = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:
        raise DataError(f"{name}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{name}: not a CIFAR-10 python batch (expected a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _torchvision_cifar10() -> Any:
    try:
        from torchvision.datasets import CIFAR10
    except ImportError as exc:  # pragma: no cover - torchvision is a dependency
        raise SourceUnavailableError(f"source 'torchvision' needs torchvision ({exc}). {ALTERNATIVES}") from exc
    return CIFAR10


def read_torchvision(
    root: Path, opts: dict[str, Any]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str], list[dict[str, Any]], bool]:
    """Images and labels per split, class names, input records, and whether MD5 sums were checked."""
    cifar = _torchvision_cifar10()
    verify = bool(opts["verify_md5"])
    folder = root / cifar.base_folder
    archive = root / cifar.filename
    expected_md5 = dict(cifar.train_list + cifar.test_list)
    expected_md5[cifar.meta["filename"]] = cifar.meta["md5"]
    if not folder.is_dir() and not archive.is_file():
        _download(cifar, root, folder, archive, opts)
    if folder.is_dir():
        contents, inputs = _read_batches_folder(folder, expected_md5, verify)
    else:
        contents, inputs = _read_batches_archive(archive, cifar, list(expected_md5), verify)
    data, class_names = _decode_batches(contents, cifar)
    return data, class_names, inputs, verify


def _download(cifar: Any, root: Path, folder: Path, archive: Path, opts: dict[str, Any]) -> None:
    if not opts["download"]:
        raise SourceUnavailableError(
            f"source 'torchvision': neither {folder} nor {archive} exists and download is off. {ALTERNATIVES}"
        )
    reason = common.check_reachable(cifar.url, float(opts["network_timeout"]))
    if reason is not None:
        raise SourceUnavailableError(
            f"source 'torchvision': cannot download {cifar.url}: {reason}; no local copy in {root}. {ALTERNATIVES}"
        )
    try:
        cifar(str(root), train=True, download=True)  # downloads, checks the archive MD5, extracts
    except Exception as exc:
        raise SourceUnavailableError(
            f"source 'torchvision': download of {cifar.url} failed ({type(exc).__name__}: {exc}). {ALTERNATIVES}"
        ) from exc


def _md5_mismatch(where: str | Path, got: str, official: str, what: str) -> DataError:
    return DataError(
        f"{where}: MD5 {got} differs from the official {official}; the {what} is corrupted or not the official "
        "CIFAR-10 python release (delete it to download again, or set verify_md5: false for a copy you trust)"
    )


def _read_batches_folder(
    folder: Path, expected_md5: dict[str, str], verify: bool
) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    missing = [n for n in expected_md5 if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"{folder}: missing {', '.join(missing)}; expected the extracted official cifar-10-batches-py folder"
        )
    contents: dict[str, bytes] = {}
    inputs: list[dict[str, Any]] = []
    for name, official in expected_md5.items():
        data = (folder / name).read_bytes()
        if verify and _md5(data) != official:
            raise _md5_mismatch(folder / name, _md5(data), official, "file")
        contents[name] = data
        record = {"name": f"{folder.name}/{name}", "sha256": common.sha256_bytes(data), "bytes": len(data)}
        inputs.append({**record, "md5": _md5(data)})
    return contents, inputs


def _read_batches_archive(
    archive: Path, cifar: Any, names: list[str], verify: bool
) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    if verify:
        got = _md5_file(archive)
        if got != cifar.tgz_md5:
            raise _md5_mismatch(archive, got, cifar.tgz_md5, "archive")
    wanted = {f"{cifar.base_folder}/{n}" for n in names}
    what = "cifar-10-python.tar.gz (cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta)"
    contents: dict[str, bytes] = {}
    for member, data in common.iter_archive(archive, lambda n: n in wanted, what):
        if data is not None:
            contents[member.split("/")[-1]] = data
    missing = [n for n in names if n not in contents]
    if missing:
        raise DataError(f"{archive}: members {', '.join(missing)} missing; expected {what}")
    record = common.file_record(archive)
    record["md5"] = _md5_file(archive)
    return contents, [record]


def _decode_batches(contents: dict[str, bytes], cifar: Any) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list]:
    meta_name = cifar.meta["filename"]
    meta = _load_batch(contents[meta_name], meta_name)
    class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", [])]
    if len(class_names) != 10:
        raise DataError(f"{meta_name}: expected 10 label_names, found {len(class_names)}")
    out = {}
    for split, batch_list in (("train", cifar.train_list), ("test", cifar.test_list)):
        parts = [_batch_arrays(contents[name], name) for name, _ in batch_list]
        images = np.ascontiguousarray(np.concatenate([images for images, _ in parts]))
        out[split] = (images, np.concatenate([labels for _, labels in parts]))
    return out, class_names


def _batch_arrays(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _load_batch(raw, name)
    data = np.asarray(batch.get("data"))
    lab = np.asarray(batch.get("labels"), dtype=np.int64)
    n_values = 3 * IMAGE_SIZE * IMAGE_SIZE
    if not (data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == n_values and len(lab) == len(data)):
        raise DataError(
            f"{name}: expected 'data' uint8 (n, 3072) and n 'labels', got {data.dtype} {data.shape} and {lab.shape}"
        )
    if lab.size and (lab.min() < 0 or lab.max() > 9):
        raise DataError(f"{name}: labels outside 0..9")
    return data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE), lab


# ------------------------------------------------------------------------------------------------ statistics


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) std in [0, 1] units, from exact integer sums (order-independent)."""
    n_pix = images.shape[0] * images.shape[2] * images.shape[3]
    means, stds = [], []
    for c in range(images.shape[1]):
        total, total_sq = 0, 0
        for i in range(0, images.shape[0], 5000):
            x = images[i : i + 5000, c].astype(np.int64)
            total += int(x.sum())
            total_sq += int((x * x).sum())
        mean = total / n_pix
        var = total_sq / n_pix - mean * mean
        means.append(round(mean / 255.0, 6))
        stds.append(round(float(np.sqrt(max(var, 0.0))) / 255.0, 6))
    return means, stds


# ------------------------------------------------------------------------------------------------ sources
# Each reader returns ({split: (images uint8 (n, 3, 32, 32), labels int64)}, manifest entries including "inputs"
# and "class_names").


def _from_imagefolder(arg: str | None, opts: dict[str, Any], timer: common.Timings) -> tuple[dict, dict]:
    path = common.need_path("imagefolder", arg, "class folders of PNG/JPEG images, or .tar.gz archives of them")
    with timer.stage("read"):
        tree, inputs = read_imagefolder(path)
    class_names = class_order(set(tree["train"]))
    data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    formats: dict[str, int] = {}
    decoders = {"torchvision.io": 0, "Pillow": 0}
    with timer.stage("decode"):
        for split in SPLITS:
            items = [item for cls in class_names for item in tree[split][cls]]
            labels = [label for label, cls in enumerate(class_names) for _ in tree[split][cls]]
            for name, _ in items:
                ext = name.rsplit(".", 1)[-1].lower().replace("jpeg", "jpg")
                formats[ext] = formats.get(ext, 0) + 1
            images, used = decode_images(items, f"decode {split}")
            for k, v in used.items():
                decoders[k] += v
            data[split] = (images, np.asarray(labels, dtype=np.int64))
    import torchvision
    from PIL import __version__ as pil_version

    info = {"source_path": path, "inputs": inputs, "class_names": class_names}
    info["image_files"] = dict(sorted(formats.items()))
    versions = {"torchvision": torchvision.__version__.split("+")[0], "Pillow": pil_version}
    info["decoder"] = {"files": decoders, "versions": versions}
    info["lossy_copy"] = bool(formats.get("jpg"))
    if formats.get("jpg"):
        info["caveat"] = "JPEG copies are lossy: pixels differ slightly from the official CIFAR-10 batches"
    return data, info


def _from_torchvision(arg: str | None, opts: dict[str, Any], timer: common.Timings) -> tuple[dict, dict]:
    root = Path(os.path.expanduser(arg or opts["root"] or DEFAULT_ROOT))
    with timer.stage("read"):
        data, class_names, inputs, verified = read_torchvision(root, opts)
    return data, {"md5_verified": verified, "class_names": class_names, "inputs": inputs}


def _generate(arg: str | None, opts: dict[str, Any], timer: common.Timings) -> tuple[dict, dict]:
    seed = opts["seed"]
    seeds = synthetic.split_seeds(seed, SPLITS)
    sizes = {s: common.require_int(opts, f"n_{s}") for s in SPLITS}
    with timer.stage("generate"):
        data = {s: synthetic.cifar_like(sizes[s], seeds[s]) for s in SPLITS}
        extra, valid_entry = validation.synthetic_split(opts, SPLITS, data, synthetic.cifar_like,
                                                        len(synthetic.CIFAR_LIKE_CLASSES))
    rule = "class = arrangement of three bright blobs of random colours on a 3x3 grid (row, column, diagonal, ...)"
    record = common.synthetic_record("cifar_like", rule, seed=seed, test_seed=seeds["test"], **extra)
    return data, {**record, "inputs": [], "class_names": list(synthetic.CIFAR_LIKE_CLASSES),
                  **({"validation": valid_entry} if valid_entry else {})}


SOURCES = {"imagefolder": _from_imagefolder, "torchvision": _from_torchvision, "synthetic": _generate}


# ------------------------------------------------------------------------------------------------ prepare


def prepare(
    kind: str, arg: str | None, opts: dict[str, Any], timer: common.Timings
) -> tuple[dict[str, bytes], dict[str, Any]]:
    with timer.stage("import"):
        import torch

    data, read_info = common.read_source("cifar10", kind, arg, opts, timer, SOURCES, SOURCE_FORMS)
    class_names = list(read_info["class_names"])
    n_classes = len(class_names)
    valid = validation.valid_options(opts, n_classes, "cifar10")
    subsets: dict[str, Any] = {}
    valid_record = None
    if kind != "synthetic":
        if valid is not None:
            data, valid_record = split_valid(data, *valid, n_classes)
        data, subsets = common.balanced_subsets(data, opts, n_classes, "cifar10")
    splits = tuple(s for s in ("train", validation.SPLIT, "test") if s in data)
    with timer.stage("statistics"):
        mean, std = channel_stats(data["train"][0])
    files = {}
    with timer.stage("serialize"):
        for split in splits:
            images, labels = data[split]
            files[f"{split}.pt"] = common.tensor_file_bytes(
                {"images": torch.from_numpy(images), "labels": torch.from_numpy(labels)}
            )
    manifest = {"task": "cifar10", "source": kind, "synthetic": kind == "synthetic", **read_info}
    manifest.update(
        {
            "splits": list(splits),
            "counts": {s: {"examples": len(data[s][1])} for s in splits},
            "subsets": subsets,
            "n_classes": n_classes,
            "class_names": class_names,
            "class_balance": {s: common.class_counts(data[s][1], n_classes) for s in splits},
            "image_shape": [3, IMAGE_SIZE, IMAGE_SIZE],
            "mean": mean,
            "std": std,
            "stats_of": "train split, per channel, [0, 1] units, population std",
        }
    )
    if valid_record is not None:
        manifest["validation"] = valid_record
    return files, manifest


def split_valid(data: dict, size: int, seed: int, n_classes: int) -> tuple[dict, dict]:
    """The validation split: a class-balanced random draw of the training images
    (:func:`astromorphic.data.validation.balanced_draw`); the data with it, and the manifest's validation entry."""
    images, labels = data["train"]
    idx = validation.balanced_draw(labels, size, n_classes, seed, "cifar10 train")
    held, rest = validation.split_off(images, labels, idx)
    rule = ("a class-balanced random draw of valid_size / 10 training images per class; the training images are the "
            "others (n_train subsets are drawn from them)")
    entry = validation.record(size, seed, held[1], n_classes, validation.from_train(len(labels)), rule)
    return {**data, "train": rest, validation.SPLIT: held}, entry
