"""``DataBundle``: a dataset split three ways, as ``tf.data`` pipelines and (for any source) NumPy arrays."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from search.data._errors import fail
from search.data._split import SPLITS, Split
from search.data._store import ArrayStore, FileStore, Store

if TYPE_CHECKING:
    import tensorflow as tf

#: A file source's split is cached in memory (decoded once) when it is at most this big.
CACHE_BYTES: Final = 256 * 2**20
#: Training images that :attr:`DataBundle.pixel_stats` reads at most.
STATS_IMAGES: Final = 4096
#: Pixel values :attr:`DataBundle.pixel_stats` holds at once (as float64: 64 MiB), whatever the images' size.
STATS_CHUNK_VALUES: Final = 8 * 2**20


@dataclass(frozen=True, eq=False)
class DataBundle:
    """Train, validation and test splits of one image-classification dataset.

    Images are uint8 ``(h, w, c)`` raw pixels (0..255; the models rescale inside themselves),
    labels int32 class indices ``0..num_classes-1``. ``fingerprint`` identifies the content and the
    split (16 hex digits of a SHA-256), ``skipped`` lists the files left out, as ``(path, reason)``;
    ``conversions`` says, one line each, what loading changed in the images' colour (RGB images made
    grayscale by ``color_mode``, or the reverse), empty when nothing was converted.
    """

    source: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    fingerprint: str
    store: Store = field(repr=False)
    seed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    conversions: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_memory(self) -> bool:
        """True when the images are NumPy arrays in memory; False for a folder, streamed from disk."""
        return self.store.in_memory

    @property
    def counts(self) -> dict[str, int]:
        """Number of images per split."""
        return {split: len(self.store.labels(split)) for split in SPLITS}

    @property
    def class_counts(self) -> dict[str, dict[str, int]]:
        """Number of images per split and class, classes in order."""
        return {
            split: dict(
                zip(self.class_names, np.bincount(self.labels(split), minlength=self.num_classes).tolist(), strict=True)
            )
            for split in SPLITS
        }

    @cached_property
    def pixel_stats(self) -> tuple[float, float]:
        """Mean and standard deviation of the raw training pixels (all channels together), from at most
        :data:`STATS_IMAGES` training images spread over the split: what the models standardise their
        input with. Constant images get a standard deviation of 1 (nothing to scale)."""
        n = len(self.store.labels("train"))
        picked = np.linspace(0, n - 1, min(n, STATS_IMAGES)).astype(np.int64)
        # read and summed a chunk at a time: 4096 images of 214x256 were 5.4 GB as one float64 array (and as
        # much again for std's temporary) in every process of a search, 21 GB over a 2-worker search
        rows = max(1, STATS_CHUNK_VALUES // int(np.prod(self.input_shape)))
        total = squares = 0.0
        for start in range(0, len(picked), rows):
            chunk = self.store.images("train", picked[start : start + rows]).astype(np.float64)
            total += float(chunk.sum())
            squares += float(np.square(chunk).sum())
        count = len(picked) * int(np.prod(self.input_shape))
        mean = total / count
        std = math.sqrt(max(squares / count - mean * mean, 0.0))
        return mean, std if std > 1e-6 else 1.0

    def labels(self, split: Split) -> np.ndarray:
        """int32 labels of ``split`` (cheap for every source)."""
        return self.store.labels(_check_split(split))

    def arrays(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` NumPy arrays of ``split``. For a folder source this decodes the whole split into memory."""
        split = _check_split(split)
        return self.store.images(split), self.store.labels(split)

    def dataset(
        self,
        split: Split,
        batch_size: int = 32,
        *,
        shuffle: bool | None = None,
        augment: Mapping[str, Any] | None = None,
        cache: bool | None = None,
    ) -> tf.data.Dataset:
        """A batched, prefetched pipeline of ``(images, labels)``.

        ``shuffle`` (default: for train only) reshuffles each epoch from ``seed``. ``augment`` applies
        :func:`augmentation_layers` to each batch (images stay uint8). ``cache`` (default: when the
        decoded split fits in :data:`CACHE_BYTES`) keeps a folder's decoded images in memory after
        the first epoch; in-memory sources need no cache.
        """
        import tensorflow as tf

        split = _check_split(split)
        _check_batch_size(batch_size)
        shuffle = split == "train" if shuffle is None else shuffle
        cache = self.store.nbytes(split) <= CACHE_BYTES if cache is None else cache
        ds = self.store.batches(split, batch_size, shuffle_seed=self.seed if shuffle else None, cache=cache)
        if augment:
            ds = ds.map(_augmenter(augment, seed=self.seed), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def batches(
        self,
        split: Split,
        batch_size: int = 32,
        *,
        shuffle: bool | None = None,
        augment: Mapping[str, Any] | None = None,
    ) -> Any:
        """The split as a ``keras.utils.PyDataset`` of NumPy ``(images, labels)`` batches, for a Keras backend
        without ``tf.data`` (JAX, PyTorch): reshuffled each epoch from ``seed`` (default: for train only),
        images decoded batch by batch when the split is on disk, ``augment`` applied to each batch by the same
        Keras layers as the pipeline's (images stay uint8). Measured against ``tf.data`` in
        ``benchmarks/data_paths.py``."""
        split = _check_split(split)
        _check_batch_size(batch_size)
        return _numpy_batches(self, split, batch_size, split == "train" if shuffle is None else shuffle, augment)

    def subset(self, fraction: float) -> DataBundle:
        """This bundle with its training split a stratified ``fraction`` of its own, drawn from ``seed`` (at
        least two images a class); the same validation and test splits (:mod:`search.data._subset`)."""
        from dataclasses import replace

        from search.data._subset import SubsetStore, subset_rows

        return replace(self, store=SubsetStore(self.store, subset_rows(self.labels("train"), fraction, seed=self.seed)))

    def train(
        self, batch_size: int = 32, *, augment: Mapping[str, Any] | None = None, cache: bool | None = None
    ) -> tf.data.Dataset:
        """The training pipeline: shuffled each epoch, optionally augmented."""
        return self.dataset("train", batch_size, augment=augment, cache=cache)

    def validation(self, batch_size: int = 32, *, cache: bool | None = None) -> tf.data.Dataset:
        """The validation pipeline, in a fixed order."""
        return self.dataset("validation", batch_size, cache=cache)

    def test(self, batch_size: int = 32, *, cache: bool | None = None) -> tf.data.Dataset:
        """The held-out test pipeline, in a fixed order (for the final model only)."""
        return self.dataset("test", batch_size, cache=cache)

    def summary(self) -> str:
        """Shape, classes, images per split and per class, fingerprint, skipped files."""
        h, w, c = self.input_shape
        counts = self.counts
        per_class = self.class_counts
        mode = "grayscale" if c == 1 else "rgb"
        where = "in memory" if self.in_memory else "streamed from disk"
        lines = [
            f"source: {self.source}",
            f"images: {h}x{w}x{c} uint8 ({mode}), {where}",
            f"classes: {self.num_classes}",
            f"fingerprint: {self.fingerprint}",
        ]
        width = max(12, *(len(name) for name in self.class_names))
        lines.append(f"{'class':<{width}} " + " ".join(f"{s:>10}" for s in SPLITS))
        for name in self.class_names:
            lines.append(f"{name:<{width}} " + " ".join(f"{per_class[s][name]:>10}" for s in SPLITS))
        lines.append(f"{'total':<{width}} " + " ".join(f"{counts[s]:>10}" for s in SPLITS))
        lines += [f"converted: {line}" for line in self.conversions]
        lines.append(f"skipped: {len(self.skipped)} file(s)")
        lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


def _check_batch_size(batch_size: object) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise fail("batch_size: wrong value", expected="an integer >= 1", received=repr(batch_size))


def _check_split(split: str) -> Split:
    if split not in SPLITS:
        raise fail(f"unknown split {split!r}", expected="one of " + ", ".join(SPLITS), received=repr(split))
    return split


def _numpy_batches(
    bundle: DataBundle, split: Split, batch_size: int, shuffle: bool, augment: Mapping[str, Any] | None
) -> Any:
    import keras

    from search.data._augment import augmentation_layers

    store, labels, seed = bundle.store, bundle.labels(split), bundle.seed
    images = store.images(split) if store.in_memory else None
    layers = augmentation_layers(augment, seed=seed) if augment else []

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(labels)) if shuffle else np.arange(len(labels))

        def __len__(self) -> int:
            return -(-len(labels) // batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            chosen = self.order[index * batch_size : (index + 1) * batch_size]
            x = images[chosen] if images is not None else store.images(split, chosen)
            if layers:
                pixels = x.astype(np.float32)
                for layer in layers:
                    pixels = layer(pixels, training=True)
                x = np.clip(np.rint(keras.ops.convert_to_numpy(pixels)), 0, 255).astype(np.uint8)
            return x, labels[chosen]

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = self.rng.permutation(len(labels))

    return Batches()


def _augmenter(config: Mapping[str, Any], *, seed: int) -> Any:
    import tensorflow as tf

    from search.data._augment import augmentation_layers

    layers = augmentation_layers(config, seed=seed)

    def apply(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels = tf.cast(images, tf.float32)
        for layer in layers:
            pixels = layer(pixels, training=True)
        return tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8), labels

    return apply


def fingerprint(store: Store, class_names: tuple[str, ...]) -> str:
    """16 hex digits of a SHA-256 over the class names, the image shape, and each split's content in order.

    Arrays contribute their pixel bytes and labels; files their content digests and labels (the
    decoded pixels follow from the bytes, the image size and the colour mode, which are hashed too).
    """
    digest = hashlib.sha256()
    digest.update(repr((class_names, store.image_shape)).encode())
    for split in SPLITS:
        digest.update(f"|{split}|".encode())
        labels = np.ascontiguousarray(store.labels(split), dtype="<i4")
        digest.update(labels.tobytes())
        if isinstance(store, ArrayStore):
            digest.update(np.ascontiguousarray(store.images(split)).tobytes())
        elif isinstance(store, FileStore):
            for item in store.digests(split):
                digest.update(item.encode())
        else:  # pragma: no cover
            raise TypeError(f"unknown store {type(store).__name__}")
    return digest.hexdigest()[:16]
