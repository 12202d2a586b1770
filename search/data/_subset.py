"""A bundle whose training split is a stratified sample of another's: a cheap first judgement of a trial.

Data size as a fidelity (as Hyperband allows any resource, and as "Fast Bayesian optimization of machine
learning hyperparameters on large datasets", Klein et al. 2017, trains on subsets): a trial's first epoch
on a fraction of the training images costs that fraction of an epoch, and the pruner judges it there. The
validation and test splits are the base bundle's, whole, so every judgement is on the same images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from search.data._split import Split, stratified_take
from search.data._store import Store, gathered_batches

if TYPE_CHECKING:
    import tensorflow as tf


class SubsetStore(Store):
    """``base`` with its training split cut to ``rows`` (sorted indices into it); the other splits whole."""

    def __init__(self, base: Store, rows: np.ndarray) -> None:
        super().__init__(base.image_shape)
        self.base = base
        self.rows = np.asarray(rows, dtype=np.int64)
        self.in_memory = base.in_memory

    def labels(self, split: Split) -> np.ndarray:
        labels = self.base.labels(split)
        return labels[self.rows] if split == "train" else labels

    def images(self, split: Split, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        if split != "train":
            return self.base.images(split, indices)
        rows = self.rows if indices is None else self.rows[np.asarray(indices, dtype=np.int64)]
        return self.base.images(split, rows)

    def elements(self, split: Split, *, shuffle_seed: int | None, cache: bool) -> tf.data.Dataset:
        if split != "train":
            return self.base.elements(split, shuffle_seed=shuffle_seed, cache=cache)
        return self.batches(split, 256, shuffle_seed=shuffle_seed, cache=cache).unbatch()

    def batches(self, split: Split, batch_size: int, *, shuffle_seed: int | None, cache: bool) -> tf.data.Dataset:
        """The sample's batches, reshuffled each epoch: shuffled indices, batched, each batch read from the base
        store by its rows (memory-mapped or in memory: nothing more is held)."""
        if split != "train":
            return self.base.batches(split, batch_size, shuffle_seed=shuffle_seed, cache=cache)
        labels = self.labels(split)
        return gathered_batches(
            lambda i: (self.images(split, i), labels[i]), len(labels), self.image_shape, batch_size,
            shuffle_seed=shuffle_seed,
        )  # fmt: skip


def subset_rows(labels: np.ndarray, fraction: float, *, seed: int) -> np.ndarray:
    """Sorted indices of a stratified ``fraction`` of ``labels``: at least two images of every class (as
    the validation split asks), all of them when that is most.

    >>> labels = np.repeat(np.arange(4), 25)
    >>> rows = subset_rows(labels, 0.2, seed=0)
    >>> len(rows), np.bincount(labels[rows]).tolist()
    (20, [5, 5, 5, 5])
    >>> len(subset_rows(labels, 0.01, seed=0))  # two of each class at least
    8
    """
    classes = len(np.unique(labels))
    size = min(len(labels), max(2 * classes, round(fraction * len(labels))))
    return stratified_take(labels, size, seed=seed)
