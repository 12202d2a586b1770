"""Two report pictures of what happens inside the winner, drawn from real validation images.

* ``filter_patches.png``: what each first-layer filter responds to. For each filter (up to
  :data:`FILTERS`), the :data:`PATCHES` validation-image patches that excite it most, each from
  another image: the patch is the filter's receptive field (its kernel's k×k pixels, at its stride),
  shown as the image shows it (in colour for RGB). Kernels of an RGB model drawn as weights look like
  noise; the patches say "a vertical edge", "green on the left", "a dark blob".
* ``pooling.png``: what pooling keeps. One validation image, the channel that responds to it most at
  the winner's first pooling layer, before and after the pooling (same colour scale), with both
  shapes: the map halves (or so) and keeps its strongest (max) or average responses.

>>> import numpy as np
>>> maps = np.zeros((3, 4, 4, 2), "float32"); maps[1, 2, 3, 0] = 5; maps[2, 0, 0, 0] = 4; maps[0, 1, 1, 1] = 9
>>> strongest(maps, filter=0, count=2)
[(1, 2, 3), (2, 0, 0)]
>>> receptive_box(2, 3, stride=1, kernel=3, padding="same")
(1, 2, 4, 5)
>>> receptive_box(1, 1, stride=2, kernel=3, padding="valid")
(2, 2, 5, 5)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Filters drawn (the most active first) and patches per filter.
FILTERS = 16
PATCHES = 6
#: Validation images searched for the strongest patches.
IMAGES = 512


def strongest(maps: Any, *, filter: int, count: int) -> list[tuple[int, int, int]]:
    """The ``count`` strongest positions ``(image, row, column)`` of channel ``filter`` in ``maps``
    (images, rows, columns, channels), at most one per image, strongest first."""
    import numpy as np

    channel = maps[..., filter]
    best_per_image = channel.reshape(len(channel), -1).max(axis=1)
    chosen = [int(i) for i in np.argsort(-best_per_image, kind="stable")[:count]]
    found = []
    for image in chosen:
        row, column = np.unravel_index(int(channel[image].argmax()), channel[image].shape)
        found.append((image, int(row), int(column)))
    return found


def receptive_box(row: int, column: int, *, stride: int, kernel: int, padding: str) -> tuple[int, int, int, int]:
    """The input pixels ``(top, left, bottom, right)`` (bottom and right excluded) that output position
    ``(row, column)`` of a convolution sees; with ``same`` padding they may reach outside the image."""
    offset = 0 if padding == "valid" else -(kernel - 1) // 2
    top, left = row * stride + offset, column * stride + offset
    return top, left, top + kernel, left + kernel


def _patch(image: Any, box: tuple[int, int, int, int]) -> Any:
    """The pixels of ``box`` in ``image`` (rows, columns, channels), padded with the image's mean outside it."""
    import numpy as np

    top, left, bottom, right = box
    pad = max(0, -top, -left, bottom - image.shape[0], right - image.shape[1])
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), constant_values=float(image.mean()))
    return padded[top + pad : bottom + pad, left + pad : right + pad]


def _shown(image: Any, span: tuple[float, float] | None = None) -> tuple[Any, str | None]:
    """An image as imshow takes it: 0-1 RGB, or one channel in grey; scaled over ``span`` (low, high:
    the images' own range, so patches keep their brightness) or, without it, its own range."""
    import numpy as np

    image = np.asarray(image, "float32")
    low, high = span or (float(image.min()), float(image.max()))
    scaled = np.clip((image - low) / (high - low), 0, 1) if high > low else np.zeros_like(image)
    return (scaled, None) if image.shape[-1] == 3 else (scaled[..., 0], "gray")


def patches_figure(images: Any, maps: Any, layer: Any) -> tuple[Any, int]:
    """The ``filter_patches.png`` picture (see the module docstring) and how many filters it shows."""
    import matplotlib.pyplot as plt
    import numpy as np

    kernel, stride = int(layer.kernel_size[0]), int(layer.strides[0])
    scale = images.shape[1] / max(1, int(layer.input.shape[1]))  # a resize before the convolution
    activity = maps.reshape(-1, maps.shape[-1]).max(axis=0)
    filters = [int(f) for f in np.argsort(-activity, kind="stable")[: min(FILTERS, maps.shape[-1])]]
    height = len(filters) * 0.95 + 0.7
    figure, axes = plt.subplots(len(filters), PATCHES, figsize=(PATCHES * 0.95 + 0.9, height), squeeze=False)
    figure.subplots_adjust(top=1 - 0.45 / height, bottom=0.02, hspace=0.15, wspace=0.1)
    span = (float(images.min()), float(images.max()))
    for row, f in enumerate(filters):
        found = strongest(maps, filter=f, count=PATCHES)
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(found):
                ax.axis("off")
                continue
            image, r, c = found[col]
            box = receptive_box(r, c, stride=stride, kernel=kernel, padding=str(layer.padding))
            box = (round(box[0] * scale), round(box[1] * scale), round(box[2] * scale), round(box[3] * scale))
            picture, cmap = _shown(_patch(images[image], box), span)
            ax.imshow(picture, cmap=cmap, interpolation="nearest")
        axes[row][0].set_ylabel(f"filter {f}", fontsize=7, rotation=0, ha="right", va="center")
    figure.suptitle(
        f"{layer.name}: the {PATCHES} validation patches ({kernel}x{kernel} pixels) that excite each filter most, "
        f"{len(filters)} most active filters",
        fontsize=8.5,
    )
    return figure, len(filters)


def pooling_figure(image: Any, before: Any, after: Any, pool: Any, channel: int) -> Any:
    """The ``pooling.png`` picture: ``image``, then channel ``channel`` of the maps ``before`` and
    ``after`` the pooling layer ``pool``, on one colour scale."""
    import matplotlib.pyplot as plt

    kind = "max" if "Max" in type(pool).__name__ else "average"
    size = "x".join(str(int(s)) for s in pool.pool_size)
    figure, axes = plt.subplots(1, 3, figsize=(8.2, 3.2))
    picture, cmap = _shown(image)
    axes[0].imshow(picture, cmap=cmap, interpolation="nearest")
    axes[0].set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=8)
    low, high = float(before.min()), float(before.max())
    for ax, values, what in ((axes[1], before, "before"), (axes[2], after, "after")):
        ax.imshow(values, cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
        ax.set_title(f"channel {channel} {what} {pool.name}: {values.shape[0]}x{values.shape[1]}", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(
        f"What {kind} pooling {size} keeps: each output is the {'largest' if kind == 'max' else 'mean'} of a "
        f"{size} window, so the map shrinks and keeps "
        + ("its strongest responses" if kind == "max" else "their average"),
        fontsize=8.5,
    )
    return figure


def inside_pictures(model: Any, layer: Any, data: Any, folder: Path, report: Any) -> None:
    """Draw ``filter_patches.png`` (for the first convolution ``layer``) and ``pooling.png`` (the first
    pooling layer) from ``data``'s validation images into ``folder``; a picture that cannot be made is
    listed in ``report.missing`` with the reason."""
    import keras
    import numpy as np

    from search.report._files import save as _save

    x, _ = data.arrays("validation")
    images = np.asarray(x[:IMAGES], "float32")
    maps = np.asarray(keras.Model(model.inputs[0], layer.output)(images, training=False))
    figure, shown = patches_figure(images, maps, layer)
    report.captions["filter_patches.png"] = (
        f"What the winner's first-layer filters respond to: for each of its {shown} most active filters "
        f"({layer.name}), the {PATCHES} patches of {len(images)} validation images that excite it most, one per image."
    )
    _save(figure, folder / "filter_patches.png", report)
    pools = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    pool = next((lyr for lyr in model.layers if isinstance(lyr, pools)), None)
    if pool is None:
        report.missing["pooling.png"] = "the winner has no pooling layer (it shrinks its maps with strides or none)"
        return
    probe = keras.Model(model.inputs[0], [pool.input, pool.output])
    before, after = (np.asarray(t) for t in probe(images[:64], training=False))
    image = int(before.reshape(len(before), -1).max(axis=1).argmax())
    channel = int(before[image].reshape(-1, before.shape[-1]).max(axis=0).argmax())
    report.captions["pooling.png"] = (
        f"One validation image and the channel that responds to it most, before and after {pool.name}: "
        f"{'x'.join(map(str, before.shape[1:3]))} -> {'x'.join(map(str, after.shape[1:3]))}."
    )
    _save(pooling_figure(images[image], before[image, ..., channel], after[image, ..., channel], pool, channel),
          folder / "pooling.png", report)  # fmt: skip
