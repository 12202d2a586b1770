"""Stratified subsampling and train/validation/test splits, as index arrays into a pool of images.

The reference protocol: a stratified 75/25 train/test split, then 20% of train for validation.
A source that ships its own test split (MNIST, CIFAR, an ``.npz`` with ``x_test``) keeps it; only
validation is carved out of its train split.
"""

from __future__ import annotations

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
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(labels, return_counts=True)
    try:
        first, second = train_test_split(indices, train_size=train_size, stratify=labels, random_state=seed)
    except ValueError as exc:
        raise fail(
            f"cannot split {len(labels)} images of {len(classes)} classes stratified ({what})",
            expected="at least 2 images per class and a share of at least one image per class on each side",
            received=f"{counts.min()} image(s) in the smallest class",
            hint=f"({exc}) Use more images, a larger limit, or other fractions.",
        ) from None
    return np.asarray(first), np.asarray(second)
