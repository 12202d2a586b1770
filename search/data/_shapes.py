"""A seeded synthetic source: simple shapes at random position, scale and rotation, with noise.

Each image is drawn with Pillow at 4x the target size and reduced (anti-aliased), on a random
background with a random foreground that differs from it by at least 96 grey levels, then
Gaussian noise (sigma 8) is added. The same arguments give the same bytes on every run.

>>> x, y, names = make_shapes(count=6, image_size=16, channels=1, num_classes=3, seed=0)
>>> x.shape, x.dtype.name, names
((6, 16, 16, 1), 'uint8', ('circle', 'square', 'triangle'))
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from search.data._errors import fail

#: The shapes, in class order. ``num_classes=k`` uses the first k.
SHAPES: Final = ("circle", "square", "triangle", "cross", "star", "ring", "hexagon", "bar")

_SUPERSAMPLE: Final = 4
_NOISE_SIGMA: Final = 8.0


def make_shapes(
    *, count: int = 1000, image_size: int = 32, channels: int = 1, num_classes: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``count`` images ``(count, image_size, image_size, channels)`` uint8, int32 labels, class names.

    Classes are balanced (``count // num_classes`` each, the remainder to the first classes).
    """
    _check_int("count", count, low=1)
    _check_int("image_size", image_size, low=8, high=1024)
    _check_int("num_classes", num_classes, low=2, high=len(SHAPES))
    if channels not in (1, 3) or isinstance(channels, bool):
        raise fail("channels: wrong value", expected="1 (grayscale) or 3 (rgb)", received=repr(channels))
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % num_classes).astype(np.int32)
    images = np.empty((count, image_size, image_size, channels), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i] = _draw(SHAPES[label], image_size, channels, rng)
    return images, labels, SHAPES[:num_classes]


def _check_int(name: str, value: object, *, low: int, high: int | None = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if not ok:
        expected = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise fail(f"{name}: wrong value", expected=expected, received=repr(value))


def _draw(shape: str, size: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    big = size * _SUPERSAMPLE
    radius = big * rng.uniform(0.22, 0.42)
    cx, cy = rng.uniform(radius, big - radius, size=2)
    angle = rng.uniform(0, 2 * math.pi)
    background, foreground = _colours(channels, rng)
    mode = "L" if channels == 1 else "RGB"
    canvas = Image.new(mode, (big, big), background)
    draw = ImageDraw.Draw(canvas)
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        draw.ellipse(box, fill=foreground)
    elif shape == "ring":
        draw.ellipse(box, outline=foreground, width=max(1, round(radius * 0.3)))
    else:
        draw.polygon(_outline(shape, cx, cy, radius, angle), fill=foreground)
    small = np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    noisy = small + rng.normal(0.0, _NOISE_SIGMA, size=small.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8).reshape(size, size, channels)


def _outline(shape: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    """Polygon vertices: unit-circle points (radius fractions and angles), rotated and placed."""
    if shape == "square":
        points = [(1.0, math.pi / 4 + k * math.pi / 2) for k in range(4)]
    elif shape == "triangle":
        points = [(1.0, k * 2 * math.pi / 3) for k in range(3)]
    elif shape == "hexagon":
        points = [(1.0, k * math.pi / 3) for k in range(6)]
    elif shape == "star":
        points = [(1.0 if k % 2 == 0 else 0.42, k * math.pi / 5) for k in range(10)]
    elif shape in ("cross", "bar"):
        arm, half = (1.0, 0.3) if shape == "cross" else (1.0, 0.18)
        xy = [
            (half, half),
            (arm, half),
            (arm, -half),
            (half, -half),
            (half, -arm),
            (-half, -arm),
            (-half, -half),
            (-arm, -half),
            (-arm, half),
            (-half, half),
            (-half, arm),
            (half, arm),
        ]
        if shape == "bar":
            xy = [(arm, half), (arm, -half), (-arm, -half), (-arm, half)]
        points = [(math.hypot(x, y), math.atan2(y, x)) for x, y in xy]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return [(cx + radius * r * math.cos(a + angle), cy + radius * r * math.sin(a + angle)) for r, a in points]


def _colours(channels: int, rng: np.random.Generator) -> tuple[int | tuple[int, ...], int | tuple[int, ...]]:
    """A background and a foreground at least 96 grey levels apart (by luminance for colour)."""
    while True:
        back = rng.integers(0, 256, size=channels)
        fore = rng.integers(0, 256, size=channels)
        weights = np.array([1.0]) if channels == 1 else np.array([0.299, 0.587, 0.114])
        if abs(float((back - fore) @ weights)) >= 96:
            break
    if channels == 1:
        return int(back[0]), int(fore[0])
    return tuple(int(v) for v in back), tuple(int(v) for v in fore)
