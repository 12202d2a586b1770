"""Where a bundle's images live: NumPy arrays in memory, or files on disk read by ``tf.data``.

Both give the same thing per split: int32 labels, uint8 images ``(h, w, c)``, and an unbatched
``tf.data`` pipeline of ``(image, label)``. The file store decodes with ``tf.io`` (first frame of
an animation, alpha dropped), resizes bilinearly with anti-aliasing, converts the colour mode, once,
into an array file on disk that every process of a search memory-maps (:mod:`search.data._pixel_cache`);
with that cache off, the pipeline decodes each epoch and never holds more than a few batches unless it
is cached in memory.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from search.data._split import Split

if TYPE_CHECKING:
    import tensorflow as tf


class Store(ABC):
    """The images and labels of the three splits."""

    #: True when the images are NumPy arrays in memory.
    in_memory: bool

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        self.image_shape = image_shape

    @abstractmethod
    def labels(self, split: Split) -> np.ndarray:
        """int32 class indices of ``split``."""

    @abstractmethod
    def images(self, split: Split, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """uint8 images ``(n, h, w, c)`` of ``split`` (all, or those at ``indices``)."""

    @abstractmethod
    def elements(self, split: Split, *, shuffle_seed: int | None, cache: bool) -> tf.data.Dataset:
        """An unbatched pipeline of ``(image, label)``, shuffled each epoch when a seed is given."""

    def batches(self, split: Split, batch_size: int, *, shuffle_seed: int | None, cache: bool) -> tf.data.Dataset:
        """A batched pipeline of ``(images, labels)``."""
        return self.elements(split, shuffle_seed=shuffle_seed, cache=cache).batch(batch_size)

    def nbytes(self, split: Split) -> int:
        """Decoded size of ``split`` in bytes."""
        return len(self.labels(split)) * int(np.prod(self.image_shape))


class ArrayStore(Store):
    """Images already decoded, one array per split."""

    in_memory = True

    def __init__(self, splits: dict[Split, tuple[np.ndarray, np.ndarray]]) -> None:
        super().__init__(tuple(splits["train"][0].shape[1:]))
        self.splits = splits
        self._tensors: dict[Split, Any] = {}

    def labels(self, split: Split) -> np.ndarray:
        return self.splits[split][1]

    def images(self, split: Split, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        x = self.splits[split][0]
        return x if indices is None else x[np.asarray(indices, dtype=np.int64)]

    def elements(self, split: Split, *, shuffle_seed: int | None, cache: bool) -> tf.data.Dataset:
        import tensorflow as tf

        if split not in self._tensors:  # one tensor copy per split, shared by every pipeline
            x, y = self.splits[split]
            self._tensors[split] = (tf.convert_to_tensor(x), tf.convert_to_tensor(y))
        x_t, y_t = self._tensors[split]
        n = len(self.labels(split))
        order = tf.data.Dataset.range(n)
        if shuffle_seed is not None:  # shuffle indices, not images: no second copy in a buffer
            order = order.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=True)
        return order.map(lambda i: (tf.gather(x_t, i), tf.gather(y_t, i)), num_parallel_calls=tf.data.AUTOTUNE)

    def batches(self, split: Split, batch_size: int, *, shuffle_seed: int | None, cache: bool) -> tf.data.Dataset:
        """Shuffled indices, batched, then one gather per batch: the same batches as
        ``elements(...).batch(batch_size)``, with one op per batch instead of one per image."""
        import tensorflow as tf

        self.elements(split, shuffle_seed=None, cache=False)  # makes the split's tensors once
        x_t, y_t = self._tensors[split]
        order = tf.data.Dataset.range(len(self.labels(split)))
        if shuffle_seed is not None:
            order = order.shuffle(len(self.labels(split)), seed=shuffle_seed, reshuffle_each_iteration=True)
        return order.batch(batch_size).map(
            lambda i: (tf.gather(x_t, i), tf.gather(y_t, i)), num_parallel_calls=tf.data.AUTOTUNE
        )


class FileStore(Store):
    """Image files on disk, decoded by the pipeline (streamed; cached in memory only when asked)."""

    in_memory = False

    def __init__(
        self,
        splits: dict[Split, tuple[list[str], np.ndarray]],
        image_shape: tuple[int, int, int],
        *,
        digests: dict[Split, list[str]],
    ) -> None:
        super().__init__(image_shape)
        self.splits = splits
        self._digests = digests
        self._pixels: Any = None  # the PixelCache, made at first use
        self._rows: dict[Split, np.ndarray] = {}

    def digests(self, split: Split) -> list[str]:
        """SHA-256 of each file's bytes, in the split's order (for the fingerprint)."""
        return self._digests[split]

    def labels(self, split: Split) -> np.ndarray:
        return self.splits[split][1]

    def paths(self, split: Split) -> list[str]:
        return self.splits[split][0]

    def pixels(self) -> tuple[np.ndarray, dict[Split, np.ndarray]] | None:
        """The decoded images of every split, memory-mapped from the on-disk cache (built once, shared by the
        search's processes: :mod:`search.data._pixel_cache`), and each split's rows in it; None when off."""
        if self._pixels is None:
            from search._backend import name
            from search.data._pixel_cache import PixelCache

            pairs = (zip(self._digests[split], self.paths(split), strict=True) for split in self.splits)
            files = {d: p for pair in pairs for d, p in pair}
            self._pixels = PixelCache(files, self.image_shape, decoder=name())
        array = self._pixels.array(self.decode_into)
        if array is None:
            return None
        if not self._rows:
            self._rows = {split: self._pixels.rows(self._digests[split]) for split in self.splits}
        return array, self._rows

    def images(self, split: Split, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        paths = self.paths(split)
        cached = self.pixels()
        if cached is not None:
            array, rows = cached
            chosen_rows = rows[split] if indices is None else rows[split][np.asarray(indices, dtype=np.int64)]
            return np.asarray(array[chosen_rows])
        chosen = paths if indices is None else [paths[int(i)] for i in indices]
        out = np.empty((len(chosen), *self.image_shape), dtype=np.uint8)
        self.decode_into(out, chosen)
        return out

    def decode_into(self, out: np.ndarray, paths: list[str]) -> None:
        """Decode the files ``paths`` into ``out`` (uint8, ``(len(paths), *image_shape)``), in order."""
        from search._backend import name

        if name() != "tensorflow":  # no tf.data: Pillow decodes (first frame, RGB), Keras resizes
            for i, path in enumerate(paths):
                out[i] = decode_with_pillow(path, self.image_shape)
            return
        import tensorflow as tf

        decode = _decoder(self.image_shape)
        ds = tf.data.Dataset.from_tensor_slices(tf.constant(_as_bytes(paths), dtype=tf.string))
        for i, image in enumerate(ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)):
            out[i] = image.numpy()

    def batches(self, split: Split, batch_size: int, *, shuffle_seed: int | None, cache: bool) -> tf.data.Dataset:
        """From the on-disk cache when there is one (``cache`` then moot: nothing is held in memory): shuffled
        indices, batched, each batch one copy of its rows; else decoded by the pipeline (:meth:`elements`)."""
        cached = self.pixels()
        if cached is None:
            return super().batches(split, batch_size, shuffle_seed=shuffle_seed, cache=cache)
        array, rows = cached
        split_rows, labels = rows[split], self.labels(split)
        return gathered_batches(
            lambda i: (np.asarray(array[split_rows[i]]), labels[i]), len(labels), self.image_shape, batch_size,
            shuffle_seed=shuffle_seed,
        )  # fmt: skip

    def elements(self, split: Split, *, shuffle_seed: int | None, cache: bool) -> tf.data.Dataset:
        import tensorflow as tf

        if self.pixels() is not None:
            return self.batches(split, 256, shuffle_seed=shuffle_seed, cache=False).unbatch()
        paths, labels = self.splits[split]
        n = len(labels)
        decode = _decoder(self.image_shape)
        ds = tf.data.Dataset.from_tensor_slices((tf.constant(_as_bytes(paths), dtype=tf.string), tf.constant(labels)))
        if cache:  # decode once, then shuffle the decoded images
            ds = ds.map(lambda p, y: (decode(p), y), num_parallel_calls=tf.data.AUTOTUNE).cache()
            return ds.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=True) if shuffle_seed is not None else ds
        if shuffle_seed is not None:  # shuffle the paths (a few bytes each), then decode: memory stays bounded
            ds = ds.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds.map(lambda p, y: (decode(p), y), num_parallel_calls=tf.data.AUTOTUNE)


def gathered_batches(
    take: Any, n: int, image_shape: tuple[int, int, int], batch_size: int, *, shuffle_seed: int | None
) -> tf.data.Dataset:
    """Batches of ``n`` images read by ``take(indices) -> (uint8 images, int32 labels)`` in NumPy: the indices
    shuffled each epoch when a seed is given, batched, one ``take`` per batch (a memory-mapped file's or a
    subset's rows: nothing is held but the batches in flight)."""
    import tensorflow as tf

    order = tf.data.Dataset.range(n)
    if shuffle_seed is not None:
        order = order.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=True)

    def gather(i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = tf.numpy_function(take, [i], (tf.uint8, tf.int32), stateful=False)
        return tf.ensure_shape(x, [None, *image_shape]), tf.ensure_shape(y, [None])

    return order.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE)


def _as_bytes(paths: Sequence[str]) -> list[bytes]:
    """The paths as the file system's bytes (``os.fsencode``): a name that is not UTF-8 (its bytes kept as
    surrogates by Python) cannot become a ``tf.string`` as text, but its bytes open the same file."""
    return [os.fsencode(path) for path in paths]


def decode_with_pillow(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """One image file as ``image_shape`` uint8, without TensorFlow: its first frame in RGB (Pillow), resized
    bilinear and anti-aliased (:func:`search.data._arrays.resize`, Keras's op), grey by luma. As the
    ``tf.data`` decoder does; a resized image may differ from TensorFlow's by a grey level."""
    from PIL import Image

    from search.data._arrays import convert_color, resize

    height, width, channels = image_shape
    with Image.open(path) as image:
        image.seek(0)
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)[None]
    rgb = resize(rgb, (height, width))
    return convert_color(rgb, "grayscale" if channels == 1 else "rgb")[0]


def _decoder(image_shape: tuple[int, int, int]) -> Any:
    """A ``tf.function``-friendly ``path -> uint8 image`` of ``image_shape``."""
    import tensorflow as tf

    height, width, channels = image_shape

    def decode(path: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False, dtype=tf.uint8)
        image.set_shape([None, None, 3])
        pixels = tf.cast(image, tf.float32)
        size = tf.shape(image)[:2]
        pixels = tf.cond(
            tf.reduce_all(size == [height, width]),
            lambda: pixels,
            lambda: tf.image.resize(pixels, (height, width), method="bilinear", antialias=True),
        )
        if channels == 1:
            pixels = tf.image.rgb_to_grayscale(pixels)
        pixels = tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)
        return tf.ensure_shape(pixels, image_shape)

    return decode
