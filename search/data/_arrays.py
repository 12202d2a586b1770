"""Checks and conversions for in-memory images: uint8 pixels, int32 labels, colour mode, size."""

from __future__ import annotations

from typing import Final, Literal

import numpy as np

from search.data._errors import DataError, fail

ColorMode = Literal["grayscale", "rgb"]
COLOR_MODES: Final[tuple[ColorMode, ...]] = ("grayscale", "rgb")
#: ITU-R BT.601 luma, the weights of ``tf.image.rgb_to_grayscale`` and Pillow's ``convert("L")``.
LUMA: Final = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)

_RESIZE_CHUNK: Final = 1024


def as_images(x: np.ndarray, *, name: str) -> np.ndarray:
    """``x`` as uint8 ``(n, h, w, c)`` with c in 1 or 3; integer-valued data 0..255 of any dtype is accepted."""
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise fail(
            f"{name}: wrong shape",
            expected="images shaped (n, height, width) or (n, height, width, channels) with 1 or 3 channels",
            received=f"shape {x.shape}",
        )
    if x.dtype == np.uint8:
        return x
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise fail(f"{name}: wrong dtype", expected="uint8 pixels 0..255", received=f"dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.all(finite := np.isfinite(x)):
        raise _not_finite(x, finite, name=name)
    if x.size and (x.min() < 0 or x.max() > 255 or np.any(np.rint(x) != x)):
        low, high = float(x.min()), float(x.max())
        raise fail(
            f"{name}: pixel values out of range",
            expected="raw pixels, whole numbers 0..255 (uint8)",
            received=f"{x.dtype} values from {low:g} to {high:g}",
            hint="Scaled data (0..1) must be multiplied by 255 and rounded; the models rescale inside themselves.",
        )
    return x.astype(np.uint8)


def _not_finite(x: np.ndarray, finite: np.ndarray, *, name: str) -> DataError:
    """The error for float images holding NaN or infinite values: how many, of which kind, the first index."""
    bad = ~finite
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), x.shape))
    nan = int(np.count_nonzero(np.isnan(x)))
    inf = int(np.count_nonzero(bad)) - nan
    counts = ", ".join(f"{n:,} {k}" for k, n in (("NaN", nan), ("inf", inf)) if n)
    return fail(
        f"{name}: pixel values not finite (NaN or inf)",
        expected="finite values 0..255 (raw pixels, whole numbers)",
        received=f"{nan + inf:,} of {x.size:,} {x.dtype} values not finite ({counts}), the first at index "
        f"{list(first)} (image {first[0]})",
        hint="Drop or repair those images: np.isfinite(x).all(axis=(1, 2, 3)) marks the good ones.",
    )


def as_labels(y: np.ndarray, *, name: str, count: int) -> np.ndarray:
    """``y`` as int32 ``(n,)``: one whole-number class index per image."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise fail(
            f"{name}: wrong shape",
            expected="one integer class index per image, shaped (n,) or (n, 1)",
            received=f"shape {y.shape}",
            hint="One-hot labels can be turned into indices with y.argmax(axis=1)." if y.ndim == 2 else None,
        )
    if len(y) != count:
        raise fail(
            f"{name}: labels do not match the images",
            expected=f"one label per image ({count})",
            received=f"{len(y)} labels",
        )
    integral = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and bool(np.all(np.isfinite(y))) and bool(np.all(np.rint(y) == y))
    )
    if not integral:
        sample = [v.item() for v in y[:3]]
        raise fail(f"{name}: labels are not class indices", expected="integers 0..n-1", received=f"{y.dtype} {sample}")
    if y.size and (y.min() < 0 or y.max() > np.iinfo(np.int32).max):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise fail(f"{name}: label out of range", expected="class indices 0..n-1", received=str(bad))
    return y.astype(np.int64).astype(np.int32)


def check_label_range(labels: list[tuple[str, np.ndarray]], class_names: tuple[str, ...]) -> None:
    """Every label is an index into ``class_names`` and every class has at least one image."""
    n = len(class_names)
    seen = np.zeros(n, dtype=bool)
    for name, y in labels:
        if y.size and (y.min() < 0 or y.max() >= n):
            bad = int(y.max()) if y.max() >= n else int(y.min())
            raise fail(
                f"{name}: label out of range",
                expected=f"class indices 0..{n - 1} ({n} class names)",
                received=str(bad),
            )
        seen[np.unique(y)] = True
    empty = [class_names[i] for i in np.flatnonzero(~seen)]
    if empty:
        raise fail(
            "class without images",
            expected="at least one image of every class",
            received=f"no image of class {', '.join(repr(c) for c in empty)}",
        )
    if n < 2:
        raise fail("fewer than two classes", expected="at least 2 classes", received=f"{n} ({', '.join(class_names)})")


def convert_color(x: np.ndarray, color_mode: ColorMode) -> np.ndarray:
    """Grey to RGB by repetition, RGB to grey by luma (rounded)."""
    channels = 1 if color_mode == "grayscale" else 3
    if x.shape[-1] == channels:
        return x
    if channels == 3:
        return np.repeat(x, 3, axis=-1)
    grey = np.empty((*x.shape[:-1], 1), dtype=np.uint8)
    for start in range(0, len(x), _RESIZE_CHUNK):
        part = x[start : start + _RESIZE_CHUNK].astype(np.float32) @ LUMA
        grey[start : start + _RESIZE_CHUNK, ..., 0] = np.clip(np.rint(part), 0, 255)
    return grey


def color_note(mode: ColorMode, *, coloured: int, total: int, grey: int | None = None) -> str | None:
    """The line saying what ``color_mode`` ``mode`` changes in ``total`` images of which ``coloured`` have colour
    (and ``grey`` are stored with one channel; default: all the others), or None when nothing is converted:
    colour made grayscale loses it; grey images all made RGB only repeat their channel. Mixed folders made RGB
    by default are not said (that is the default's rule)."""
    grey = total - coloured if grey is None else grey
    if mode == "grayscale" and coloured:
        shown = "the images are" if coloured == total else f"{coloured:,} of {total:,} images are"
        return (
            f"{shown} RGB (3 channels); color_mode grayscale takes 1 channel: converted to grayscale (luma), "
            "their colour lost; leave color_mode unset (or rgb) to keep it"
        )
    if mode == "rgb" and grey == total:
        return (
            "the images are grayscale (1 channel); color_mode rgb takes 3 channels: the grey channel repeated "
            "(nothing lost, 3 times the input); leave color_mode unset to keep 1 channel"
        )
    return None


def resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear, anti-aliased resize to ``size`` (height, width), the same op as the folder pipeline."""
    if x.shape[1:3] == size:
        return x
    from search._backend import name

    if name() == "tensorflow":
        import tensorflow as tf

        def bilinear(chunk: np.ndarray) -> np.ndarray:
            return tf.image.resize(chunk, size, method="bilinear", antialias=True).numpy()

    else:  # Keras's own op on the backend (JAX's and PyTorch's anti-aliased bilinear)
        import keras

        def bilinear(chunk: np.ndarray) -> np.ndarray:
            part = keras.ops.image.resize(
                chunk.astype(np.float32), size, interpolation="bilinear", antialias=True, data_format="channels_last"
            )
            return keras.ops.convert_to_numpy(part)

    out = np.empty((len(x), *size, x.shape[-1]), dtype=np.uint8)
    for start in range(0, len(x), _RESIZE_CHUNK):
        out[start : start + _RESIZE_CHUNK] = np.clip(np.rint(bilinear(x[start : start + _RESIZE_CHUNK])), 0, 255)
    return out
