"""The NumPy stratified split in search/data/_split.py gives exactly scikit-learn's ``train_test_split`` output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from search.data import DataError
from search.data._split import _train_test_split, split_indices, stratified_take

FLOAT_TRAIN_SIZES = (0.8, 0.75, 0.5, 0.9, 0.6, 0.25, 0.333)


def _sklearn(indices: np.ndarray, labels: np.ndarray, train_size: float | int, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(indices, train_size=train_size, stratify=labels, random_state=seed)


def _labels(rng: np.random.Generator, n: int, n_classes: int, *, imbalanced: bool) -> np.ndarray:
    """``n`` labels of ``n_classes`` classes (at least 2 of each), balanced or skewed, with gaps in the values."""
    weights = rng.dirichlet(np.full(n_classes, 0.3 if imbalanced else 50.0))
    labels = np.concatenate([np.repeat(np.arange(n_classes), 2), rng.choice(n_classes, n - 2 * n_classes, p=weights)])
    values = np.sort(rng.choice(1000, n_classes, replace=False)) - 50  # not 0..k-1, some negative
    return values[rng.permutation(labels)]


def _cases():
    rng = np.random.default_rng(20240601)
    for n in (10, 24, 37, 60, 101, 250, 512, 999, 1797, 3000):
        for n_classes in (2, 3, 5, 7, 10, 12):
            if 2 * n_classes > n:
                continue
            for imbalanced in (False, True):
                labels = _labels(rng, n, n_classes, imbalanced=imbalanced)
                train_size = FLOAT_TRAIN_SIZES[int(rng.integers(len(FLOAT_TRAIN_SIZES)))]
                yield labels, train_size
                yield labels, int(rng.integers(n_classes, n - n_classes + 1))  # an int, as stratified_take passes


def _compare(indices: np.ndarray, labels: np.ndarray, train_size: float | int, seed: int) -> bool:
    """Both give the same arrays in the same order, or both raise ValueError; True if they split."""
    try:
        expected = _sklearn(indices, labels, train_size, seed)
    except ValueError:
        with pytest.raises(ValueError):
            _train_test_split(indices, labels, train_size, seed)
        return False
    first, second = _train_test_split(indices, labels, train_size, seed)
    np.testing.assert_array_equal(first, expected[0])
    np.testing.assert_array_equal(second, expected[1])
    assert first.dtype == expected[0].dtype and second.dtype == expected[1].dtype
    return True


@pytest.mark.parametrize("seed", [0, 1, 7, 42, 12345])
def test_port_matches_sklearn_on_many_random_cases(seed: int):
    split = 0
    for labels, train_size in _cases():
        split += _compare(np.arange(len(labels)), labels, train_size, seed)
    assert split > 150  # the cases mostly split, not just raise


@pytest.mark.parametrize("seed", [0, 3, 99])
def test_port_matches_sklearn_on_every_float_train_size(seed: int):
    rng = np.random.default_rng(seed)
    split = 0
    for n, n_classes in ((40, 4), (333, 10), (1500, 12), (2999, 7)):
        labels = _labels(rng, n, n_classes, imbalanced=True)
        for train_size in FLOAT_TRAIN_SIZES:
            split += _compare(np.arange(n), labels, train_size, seed)
            split += _compare(np.arange(n), labels, 1 - train_size, seed)
    assert split >= 50


def test_port_matches_sklearn_on_a_subset_of_indices():
    """split_indices splits the train part again: the indices are a sorted subset, not 0..n-1."""
    rng = np.random.default_rng(5)
    labels = _labels(rng, 1200, 9, imbalanced=False)
    for seed in range(6):
        train, _ = _sklearn(np.arange(1200), labels, 0.75, seed)
        train = np.sort(train)
        assert _compare(train, labels[train], 0.8, seed)


def test_port_matches_sklearn_with_ties_in_the_class_shares():
    """Equal class counts tie in the remainders, which are broken by random draws: the draws must match too."""
    split = 0
    for n_classes in (2, 3, 6, 11):
        labels = np.repeat(np.arange(n_classes), 7)
        for train_size in (0.5, 0.8, 0.9, n_classes + 1, len(labels) - n_classes - 1):
            for seed in range(8):
                split += _compare(np.arange(len(labels)), labels, train_size, seed)
    assert split >= 140  # 0.9 of 6 or 11 classes leaves fewer test images than classes: both raise


@pytest.mark.parametrize(
    ("labels", "train_size"),
    [
        (np.array([0, 0, 1, 1, 2]), 0.6),  # a class of 1
        (np.repeat(np.arange(10), 2), 0.75),  # 5 test images for 10 classes
        (np.repeat(np.arange(10), 2), 0.3),  # 6 train images for 10 classes
        (np.repeat(np.arange(3), 4), 2),  # an int share below the class count
        (np.repeat(np.arange(3), 4), 12),  # an int share of all the images
        (np.repeat(np.arange(3), 4), 0.05),  # an empty train set
    ],
)
def test_port_raises_where_sklearn_raises(labels: np.ndarray, train_size: float | int):
    with pytest.raises(ValueError):
        _sklearn(np.arange(len(labels)), labels, train_size, 0)
    with pytest.raises(ValueError):
        _train_test_split(np.arange(len(labels)), labels, train_size, 0)


def test_too_few_images_per_class_give_the_project_error():
    with pytest.raises(DataError) as info:
        split_indices(np.array([0, 0, 0, 1, 1, 1, 2]), validation_fraction=0.2, test_fraction=0.25, seed=0)
    assert str(info.value).startswith(
        "cannot split 7 images of 3 classes stratified (test fraction 0.25); expected at least 2 images per "
        "class and a share of at least one image per class on each side, received 1 image(s) in the smallest class."
    )
    assert "The least populated classes in y have only 1 member" in str(info.value)


def test_a_share_smaller_than_the_class_count_gives_the_project_error():
    with pytest.raises(DataError) as info:
        split_indices(np.repeat(np.arange(10), 2), validation_fraction=0.2, test_fraction=0.25, seed=0)
    assert str(info.value).startswith(
        "cannot split 20 images of 10 classes stratified (test fraction 0.25); expected at least 2 images per "
        "class and a share of at least one image per class on each side, received 2 image(s) in the smallest class."
    )
    assert "The test_size = 5 should be greater or equal to the number of classes = 10" in str(info.value)
    with pytest.raises(DataError, match=r"^cannot split 30 images of 10 classes stratified \(limit 5\)"):
        stratified_take(np.repeat(np.arange(10), 3), 5, seed=0)


def test_split_indices_and_stratified_take_match_sklearn():
    rng = np.random.default_rng(11)
    labels = _labels(rng, 1797, 10, imbalanced=False)
    parts = split_indices(labels, validation_fraction=0.2, test_fraction=0.25, seed=3)
    train, test = _sklearn(np.arange(1797), labels, 0.75, 3)
    fit, validation = _sklearn(train, labels[train], 0.8, 3)
    np.testing.assert_array_equal(parts["train"], np.sort(fit))
    np.testing.assert_array_equal(parts["validation"], np.sort(validation))
    np.testing.assert_array_equal(parts["test"], np.sort(test))
    picked, _ = _sklearn(np.arange(1797), labels, 500, 3)
    np.testing.assert_array_equal(stratified_take(labels, 500, seed=3), np.sort(picked))


def test_loading_an_npz_does_not_import_sklearn(tmp_path: Path):
    """In a fresh process, so that no other test's imports count."""
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.integers(0, 256, (300, 8, 8), dtype=np.uint8), y=np.arange(300) % 5)
    code = (
        "import sys\n"
        "from search.data import load_dataset\n"
        f"bundle = load_dataset({str(path)!r}, limit=200)\n"
        "assert len(bundle.labels('train')) > 0\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'sklearn'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
