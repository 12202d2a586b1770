"""Stratified subsampling and train/validation/test splits, as index arrays into a pool of images.

The reference protocol: a stratified 75/25 train/test split, then 20% of train for validation.
A source that ships its own test split (MNIST, CIFAR, an ``.npz`` with ``x_test``) keeps it; only
validation is carved out of its train split.
The split is a NumPy port of scikit-learn's stratified ``train_test_split`` (identical output), so that
loading data does not import scikit-learn.
"""

from __future__ import annotations

from math import floor
from typing import Final, Literal

import numpy as np

from search.data._errors import fail

Split = Literal["train", "validation", "test"]
SPLITS: Final[tuple[Split, ...]] = ("train", "validation", "test")

VALIDATION_FRACTION: Final = 0.2
TEST_FRACTION: Final = 0.25


def check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise fail(f"{name}: out of range", expected="a fraction strictly between 0 and 1", received=repr(value))
    return float(value)


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise fail("seed: wrong value", expected="an integer >= 0", received=repr(seed))
    return seed


def stratified_take(labels: np.ndarray, size: int, *, seed: int) -> np.ndarray:
    """Sorted indices of a stratified sample of ``size`` of ``labels`` (all of them if fewer)."""
    if size >= len(labels):
        return np.arange(len(labels))
    picked, _ = _split(np.arange(len(labels)), labels, size, seed=seed, what=f"limit {size}")
    return np.sort(picked)


def split_indices(
    labels: np.ndarray, *, validation_fraction: float, test_fraction: float | None, seed: int
) -> dict[Split, np.ndarray]:
    """Sorted indices of each split. ``test_fraction=None``: the pool is train only (no test carved)."""
    pool = np.arange(len(labels))
    if test_fraction is not None:
        train, test = _split(pool, labels, 1 - test_fraction, seed=seed, what=f"test fraction {test_fraction}")
    else:
        train, test = pool, pool[:0]
    fit, validation = _split(
        train, labels[train], 1 - validation_fraction, seed=seed, what=f"validation fraction {validation_fraction}"
    )
    return {"train": np.sort(fit), "validation": np.sort(validation), "test": np.sort(test)}


def _split(
    indices: np.ndarray, labels: np.ndarray, train_size: float | int, *, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    classes, counts = np.unique(labels, return_counts=True)
    try:
        first, second = _train_test_split(indices, labels, train_size, seed)
    except ValueError as exc:
        raise fail(
            f"cannot split {len(labels)} images of {len(classes)} classes stratified ({what})",
            expected="at least 2 images per class and a share of at least one image per class on each side",
            received=f"{counts.min()} image(s) in the smallest class",
            hint=f"({exc}) Use more images, a larger limit, or other fractions.",
        ) from None
    return np.asarray(first), np.asarray(second)


# --- A NumPy port of scikit-learn's (1.9) stratified split --------------------------------------------
# ``_train_test_split(indices, labels, train_size, seed)`` returns exactly what
# ``sklearn.model_selection.train_test_split(indices, train_size=train_size, stratify=labels,
# random_state=seed)`` returns (same arrays, same order, same ValueErrors): the same size rules, the same
# draws from ``np.random.RandomState(seed)`` in the same order. tests/data/test_split_port.py checks it
# against scikit-learn itself.


def _train_test_split(
    indices: np.ndarray, labels: np.ndarray, train_size: float | int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    indices = np.asarray(indices)
    n_train, n_test = _shuffle_split_sizes(len(indices), train_size)
    train, test = _stratified_shuffle_split(np.asarray(labels), n_train, n_test, np.random.RandomState(seed))
    return indices[train], indices[test]


def _shuffle_split_sizes(n_samples: int, train_size: float | int) -> tuple[int, int]:
    """sklearn's ``_validate_shuffle_split`` with ``test_size=None``: the test set is the complement."""
    kind = np.asarray(train_size).dtype.kind
    if (kind == "i" and (train_size >= n_samples or train_size <= 0)) or (
        kind == "f" and (train_size <= 0 or train_size >= 1)
    ):
        raise ValueError(
            f"train_size={train_size} should be either positive and smaller than the number of samples "
            f"{n_samples} or a float in the (0, 1) range"
        )
    if kind not in ("i", "f"):
        raise ValueError(f"Invalid value for train_size: {train_size}")
    n_train = floor(train_size * n_samples) if kind == "f" else int(train_size)
    n_test = n_samples - n_train
    if n_train == 0:
        raise ValueError(
            f"With n_samples={n_samples}, test_size=None and train_size={train_size}, the resulting train set "
            "will be empty. Adjust any of the aforementioned parameters."
        )
    return n_train, n_test


def _stratified_shuffle_split(
    labels: np.ndarray, n_train: int, n_test: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """The first split of sklearn's ``StratifiedShuffleSplit._iter_indices`` (positions into ``labels``)."""
    classes, label_indices, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    n_classes = classes.shape[0]
    if np.min(class_counts) < 2:
        raise ValueError(
            "The least populated classes in y have only 1 member, which is too few. The minimum number of "
            "groups for any class cannot be less than 2. Classes with too few members are: "
            f"{classes[class_counts < 2].tolist()}"
        )
    if n_train < n_classes:
        raise ValueError(
            f"The train_size = {n_train} should be greater or equal to the number of classes = {n_classes}"
        )
    if n_test < n_classes:
        raise ValueError(f"The test_size = {n_test} should be greater or equal to the number of classes = {n_classes}")
    class_indices = np.split(np.argsort(label_indices.ravel(), kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for i in range(n_classes):
        permutation = rng.permutation(class_counts[i])
        in_class = class_indices[i].take(permutation, mode="clip")
        train.append(in_class[: n_i[i]])
        test.append(in_class[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """sklearn's ``utils.extmath._approximate_mode``: per-class draws, remainders handed out by size, ties at random."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)
