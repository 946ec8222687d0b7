"""The classifiers' validation split: examples held out of the training split, drawn once at preparation time.

Options ``valid_size`` (examples, class-balanced; null = no validation split) and ``valid_seed`` (the draw; null =
0) of ``tasks.<task>.data``. The draw is made on the whole training split before any ``n_train`` subset, which is
then drawn from the remaining examples only, so the two never overlap; the test split is never touched.

* :func:`balanced_draw`: a class-balanced random subset (CIFAR-10's images).
* :func:`group_draw`: whole groups drawn at random until every class has its share (IMDB's movies: the reviews of
  one movie share its plot, names and vocabulary, so a validation split drawn review by review shares movies with
  the training reviews and flatters validation accuracy; the official train and test splits share no movie).

Each returns the indices (sorted) of the validation examples; :func:`split_off` cuts them out of a split and
:func:`record` writes what the manifest says about the split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from astromorphic.data import synthetic
from astromorphic.data.common import DataError, balanced_subset, class_counts

DEFAULT_SEED = 0
SPLIT = "valid"
GROUP_ORDERS = 100  # random orders of the groups tried for an exact fill (group_draw)


def valid_options(opts: dict[str, Any], n_classes: int, task: str) -> tuple[int, int] | None:
    """``(valid_size, valid_seed)`` of the data options, or None without a validation split; a size that is not
    a multiple of the number of classes is a :class:`DataError` naming the key."""
    size = opts.get("valid_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < n_classes or size % n_classes:
        raise DataError(f"tasks.{task}.data.valid_size: a class-balanced validation split needs a positive multiple "
                        f"of {n_classes} examples (one share per class), got {size!r}")
    seed = opts.get("valid_seed")
    return size, DEFAULT_SEED if seed is None else int(seed)


def balanced_draw(labels: Any, size: int, n_classes: int, seed: int, what: str) -> np.ndarray:
    """Indices (sorted) of ``size`` examples, ``size / n_classes`` of each class, drawn with ``seed``."""
    labels = np.asarray(labels)
    if size >= len(labels):
        raise DataError(f"{what}: valid_size {size} leaves nothing of the {len(labels)} training examples to train on; "
                        "choose a smaller valid_size")
    return balanced_subset(labels, size, n_classes, seed, f"{what} validation split")


def group_draw(labels: Any, groups: list[str], size: int, n_classes: int, seed: int, what: str) -> np.ndarray:
    """Indices (sorted) of the examples of whole groups, drawn in a random order (``seed``) and taken while they fit:
    a group is taken when none of its classes would exceed ``size / n_classes``, until every class has exactly that
    many. Where an order ends short of an exact fill, the next order drawn from the same generator is tried (up to
    :data:`GROUP_ORDERS`); a :class:`DataError` says how far the groups went when none fills."""
    labels = np.asarray(labels)
    if len(groups) != len(labels):
        raise DataError(f"{what}: {len(groups)} group names for {len(labels)} examples")
    per_class = size // n_classes
    names, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    counts = np.zeros((len(names), n_classes), dtype=np.int64)
    np.add.at(counts, (inverse, labels), 1)
    rng = np.random.default_rng(seed)
    closest = np.zeros(n_classes, dtype=np.int64)
    for _ in range(GROUP_ORDERS):
        need = np.full(n_classes, per_class, dtype=np.int64)
        taken = np.zeros(len(names), dtype=bool)
        for g in rng.permutation(len(names)):
            if np.all(counts[g] <= need):
                taken[g] = True
                need -= counts[g]
                if not need.any():
                    break
        if not need.any():
            if taken.all():
                raise DataError(f"{what}: valid_size {size} takes every group; choose a smaller valid_size")
            return np.flatnonzero(taken[inverse])
        if (per_class - need).sum() > closest.sum():
            closest = per_class - need
    raise DataError(f"{what}: whole groups fill only {closest.tolist()} of the {per_class} validation examples per "
                    f"class asked for (valid_size {size}) in {GROUP_ORDERS} random orders; choose a smaller valid_size")


def split_off(items: Any, labels: Any, idx: np.ndarray) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """``((items, labels) of idx, (items, labels) of the rest)``, each in the original order."""
    labels = np.asarray(labels)
    keep = np.ones(len(labels), dtype=bool)
    keep[idx] = False
    rest = np.flatnonzero(keep)
    pick = lambda which: [items[i] for i in which] if isinstance(items, list) else items[which]  # noqa: E731
    return (pick(idx), labels[idx]), (pick(rest), labels[rest])


def record(
    size: int, seed: int, labels: Any, n_classes: int, drawn_from: str, rule: str, **extra: Any
) -> dict[str, Any]:
    """The manifest's ``validation`` entry: size, seed, what it was drawn from, the rule and its class counts."""
    return {"split": SPLIT, "size": size, "seed": seed, "drawn_from": drawn_from, "rule": rule,
            "class_counts": class_counts(labels, n_classes), **extra}  # fmt: skip


def from_train(of: int) -> str:
    """``drawn_from`` of a split held out of ``of`` training examples."""
    return f"the train split ({of} examples), before any n_train subset"


def shared_groups(groups: dict[str, list[str]]) -> dict[str, int]:
    """The number of groups each pair of splits has in common (``"train-valid"``, ...)."""
    names = list(groups)
    sets = {s: set(groups[s]) for s in names}
    return {f"{a}-{b}": len(sets[a] & sets[b]) for i, a in enumerate(names) for b in names[i + 1 :]}


def synthetic_split(
    opts: dict[str, Any], splits: tuple[str, ...], data: dict, generate, n_classes: int
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A synthetic stand-in's validation split: with option ``valid_size``, that many examples from the generator
    (``generate(n, seed)``, seeded one step after the last of ``splits``, so the other splits keep their seeds),
    added to ``data`` as ``valid``. Returns the generator setting it adds (``valid_seed``) and the manifest's
    validation entry (None without a validation split)."""
    if opts.get("valid_size") is None:
        return {}, None
    seed = synthetic.split_seeds(opts["seed"], (*splits, SPLIT))[SPLIT]
    data[SPLIT] = generate(opts["valid_size"], seed)
    entry = record(opts["valid_size"], seed, data[SPLIT][1], n_classes, "the generator (examples of its own)",
                   "generated like the other splits, with the generator seed valid_seed")
    return {"valid_seed": seed}, entry
