"""Offline image-classification tasks for benchmarks/suite.py: procedural, deterministic from a seed, uint8.

Each task is a function of ``(seed, quick)`` that returns the arrays ``cnn-search run --data FILE.npz``
reads (``x_train``, ``y_train``, ``x_test``, ``y_test``, ``class_names``; images uint8 ``(n, h, w, c)``,
labels int32). Every contender sees the same test split; cnn-search splits its validation set off
``x_train`` itself, the hand-written loops take 20% of ``x_train`` (stratified, seed 0).

========  =====================  =======  ============  ============  =======================================
task      images                 classes  train / test  quick         what it tests
========  =====================  =======  ============  ============  =======================================
digits    8x8 grey               10       1347 / 450    same          scikit-learn's digits (tiny, easy)
shapes    32x32 grey             6        2400 / 800    480 / 160     cnn-search's own ``shapes`` source
textures  32x32 grey, 100..140   5        3000 / 1000   600 / 200     low contrast: noise-process textures
objects   64x64 RGB              4        2000 / 500    400 / 120     rotated letters on clutter, colour
fewshot   25x25 grey             3        150 / 50      same          very few images
photos    32x32 RGB              4        2000 / 800    400 / 200     report task: patches of real photographs
surfaces  24x24 grey             6        2400 / 900    480 / 240     report task: real grey signals, structure
========  =====================  =======  ============  ============  =======================================

Generation is NumPy (digits: scikit-learn's bundled file and its split; shapes: ``search.data.make_shapes``,
which draws with Pillow) and takes seconds. :func:`write_task` writes the ``.npz`` with fixed zip
timestamps, so the same seed gives the same file, byte for byte, and caches it.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Bumped whenever a generator changes, so a cached file from an older version is never reused.
VERSION = 1
#: The textures task's pixel band (grey levels) and the bound its test checks on the pixel std.
TEXTURE_BAND = (100, 140)
TEXTURE_MAX_STD = 12.0

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    sizes: tuple[int, int]  # train, test (full mode)
    quick_sizes: tuple[int, int]
    make: Callable[[int, int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self, quick: bool) -> tuple[int, int]:
        return self.quick_sizes if quick else self.sizes


# -- the generators: (n_train, n_test, seed) -> x_train, y_train, x_test, y_test ------------------------------------


def _digits(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """scikit-learn's 1,797 digits, ``round(images * 255 / 16)``, 75/25 stratified split (``random_state=seed``)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.round(digits.images * 255 / 16).astype(np.uint8)[..., None]
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=seed)
    return x_train, y_train, x_test, y_test


def _shapes(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """cnn-search's ``shapes`` source (6 shapes, random position, scale, rotation, grey levels, noise)."""
    from search.data import make_shapes

    x_train, y_train, _ = make_shapes(count=n_train, image_size=32, channels=1, num_classes=6, seed=seed)
    x_test, y_test, _ = make_shapes(count=n_test, image_size=32, channels=1, num_classes=6, seed=seed + 1_000_003)
    return x_train, y_train, x_test, y_test


def _balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % k).astype(np.int32)


def _smooth(noise: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (periodic) of the last two axes, by FFT."""
    h, w = noise.shape[-2:]
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    kernel = np.exp(-2 * (math.pi * sigma) ** 2 * (fx**2 + fy**2))
    return np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=(h, w))


def _unit(pattern: np.ndarray) -> np.ndarray:
    pattern = pattern - pattern.mean()
    return pattern / max(float(pattern.std()), 1e-6)


TEXTURES = ("stripes", "checker", "blobs", "dots", "rings")


def _texture(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    theta, phase = rng.uniform(0, math.pi), rng.uniform(0, 2 * math.pi)
    freq = rng.uniform(0.07, 0.18)  # cycles per pixel
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    name = TEXTURES[label]
    if name == "stripes":
        pattern = np.sin(2 * math.pi * freq * u + phase)
    elif name == "checker":
        pattern = np.tanh(3 * np.sin(2 * math.pi * freq * u + phase) * np.sin(2 * math.pi * freq * v))
    elif name == "blobs":
        pattern = _smooth(rng.normal(size=(size, size)), rng.uniform(1.5, 2.5))
    elif name == "dots":
        count = int(rng.integers(6, 15))
        cx, cy = rng.uniform(0, size, size=(2, count, 1, 1))
        pattern = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rng.uniform(0.8, 1.3) ** 2)).sum(axis=0)
    else:  # rings around a centre inside the image
        cx, cy = rng.uniform(size * 0.25, size * 0.75, size=2)
        pattern = np.sin(2 * math.pi * freq * np.hypot(xx - cx, yy - cy) + phase)
    return _unit(pattern)


def _textures(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """Five textures from noise processes, 32x32 grey, at low contrast: base level 112..128, pattern
    amplitude (std) 4..8 grey levels, Gaussian noise sigma 4, clipped to ``TEXTURE_BAND``."""
    rng = np.random.default_rng([seed, 3])
    out = []
    for n in (n_train, n_test):
        labels = _balanced_labels(n, len(TEXTURES), rng)
        images = np.empty((n, 32, 32, 1), np.uint8)
        for i, label in enumerate(labels):
            level = rng.uniform(112, 128) + rng.uniform(4, 8) * _texture(int(label), 32, rng)
            level += rng.normal(0, 4, size=level.shape)
            images[i, ..., 0] = np.clip(np.rint(level), *TEXTURE_BAND)
        out += [images, labels]
    return tuple(out)


#: Strokes of each glyph as rectangles (u0, u1, v0, v1) in a frame where the glyph spans [-1, 1] (v downwards).
GLYPHS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "L": ((-0.6, -0.2, -1, 1), (-0.6, 0.6, 0.6, 1)),
    "T": ((-0.8, 0.8, -1, -0.6), (-0.2, 0.2, -1, 1)),
    "U": ((-0.7, -0.3, -1, 1), (0.3, 0.7, -1, 1), (-0.7, 0.7, 0.6, 1)),
    "F": ((-0.6, -0.2, -1, 1), (-0.6, 0.7, -1, -0.6), (-0.6, 0.4, -0.2, 0.2)),
    "plus": ((-1, 1, -0.2, 0.2), (-0.2, 0.2, -1, 1)),
    "ring": (),  # drawn as an annulus
}


def _glyph_mask(
    glyph: str, xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, half: float, angle: float
) -> np.ndarray:
    """Where ``glyph`` (half-height ``half`` pixels, rotated by ``angle``, centred at cx, cy) covers the grid."""
    dx, dy = xx - cx, yy - cy
    u = (dx * math.cos(angle) + dy * math.sin(angle)) / half
    v = (-dx * math.sin(angle) + dy * math.cos(angle)) / half
    if glyph == "ring":
        r = np.hypot(u, v)
        return (r <= 1) & (r >= 0.62)
    mask = np.zeros(xx.shape, bool)
    for u0, u1, v0, v1 in GLYPHS[glyph]:
        mask |= (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)
    return mask


def _bar_mask(xx: np.ndarray, yy: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random rotated bar (a stroke-like distractor)."""
    cx, cy = rng.uniform(0, size, size=2)
    length, width, angle = (
        rng.uniform(size * 0.1, size * 0.35),
        rng.uniform(size * 0.03, size * 0.08),
        rng.uniform(0, math.pi),
    )
    dx, dy = xx - cx, yy - cy
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    return (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)


OBJECTS = ("L", "T", "U", "F")
_LUMA = np.array([0.299, 0.587, 0.114])


def _objects(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """Four letters (L, T, U, F; 24..36 pixels tall) at any rotation, position and colour, 64x64 RGB, drawn
    at 2x and averaged down, on a smooth colour background (std 25 a channel) with 2-5 random bars and discs
    of other colours; the letter's luminance differs from the background's mean by >= 90; noise sigma 6."""
    size, ss = 64, 2
    rng = np.random.default_rng([seed, 4])
    yy, xx = (np.mgrid[0 : size * ss, 0 : size * ss] + 0.5) / ss
    out = []
    for n in (n_train, n_test):
        labels = _balanced_labels(n, len(OBJECTS), rng)
        images = np.empty((n, size, size, 3), np.uint8)
        for i, label in enumerate(labels):
            base = rng.uniform(40, 215, size=3)
            field = _smooth(rng.normal(size=(3, size, size)), 6.0)
            field = base[:, None, None] + 25 * field / max(float(field.std()), 1e-6)
            canvas = np.repeat(np.repeat(field, ss, axis=1), ss, axis=2)  # (3, H, W)
            for _ in range(int(rng.integers(2, 6))):
                if rng.random() < 0.6:
                    mask = _bar_mask(xx, yy, size, rng)
                else:
                    cx, cy = rng.uniform(0, size, size=2)
                    mask = np.hypot(xx - cx, yy - cy) <= rng.uniform(2, 6)
                canvas[:, mask] = rng.uniform(0, 255, size=(3, 1))
            while True:  # a colour that stands out from the background's mean by luminance
                colour = rng.uniform(0, 255, size=3)
                if abs(float((colour - base) @ _LUMA)) >= 90:
                    break
            half = rng.uniform(12, 18)
            cx, cy = rng.uniform(half + 1, size - half - 1, size=2)
            mask = _glyph_mask(OBJECTS[label], xx, yy, cx, cy, half, rng.uniform(0, 2 * math.pi))
            canvas[:, mask] = colour[:, None]
            small = canvas.reshape(3, size, ss, size, ss).mean(axis=(2, 4)).transpose(1, 2, 0)
            images[i] = np.clip(np.rint(small + rng.normal(0, 6, size=small.shape)), 0, 255)
        out += [images, labels]
    return tuple(out)


FEWSHOT = ("plus", "ex", "ring")


def _fewshot(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """Three symbols (plus, the same turned 45 degrees, ring), +-15 degrees of jitter, random size and
    place, 25x25 grey, contrast 50..120 grey levels, one or two distractor bars, noise sigma 10."""
    size, ss = 25, 2
    rng = np.random.default_rng([seed, 5])
    yy, xx = (np.mgrid[0 : size * ss, 0 : size * ss] + 0.5) / ss
    out = []
    for n in (n_train, n_test):
        labels = _balanced_labels(n, len(FEWSHOT), rng)
        images = np.empty((n, size, size, 1), np.uint8)
        for i, label in enumerate(labels):
            back = rng.uniform(30, 225)
            fore = back + rng.choice([-1, 1]) * rng.uniform(50, 120)
            if not 0 <= fore <= 255:
                fore = back - (fore - back)
            canvas = np.full(xx.shape, back)
            for _ in range(int(rng.integers(1, 3))):
                canvas[_bar_mask(xx, yy, size, rng)] = rng.uniform(0, 255)
            name = FEWSHOT[label]
            angle = rng.uniform(-math.pi / 12, math.pi / 12) + (math.pi / 4 if name == "ex" else 0.0)
            half = rng.uniform(6, 10)
            cx, cy = rng.uniform(half, size - half, size=2)
            canvas[_glyph_mask("ring" if name == "ring" else "plus", xx, yy, cx, cy, half, angle)] = fore
            small = canvas.reshape(size, ss, size, ss).mean(axis=(1, 3))
            images[i, ..., 0] = np.clip(np.rint(small + rng.normal(0, 10, size=small.shape)), 0, 255)
        out += [images, labels]
    return tuple(out)


PHOTOS = ("china", "flower", "hopper", "packet")


def _photo_files() -> list[Path]:
    """Four real photographs that ship inside installed packages (no download): scikit-learn's
    ``china.jpg`` and ``flower.jpg``, Matplotlib's ``grace_hopper.jpg`` and ``Minduka_Present_Blue_Pack.png``."""
    import matplotlib
    import sklearn.datasets

    sk = Path(sklearn.datasets.__file__).parent / "images"
    mpl = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"
    return [sk / "china.jpg", sk / "flower.jpg", mpl / "grace_hopper.jpg", mpl / "Minduka_Present_Blue_Pack.png"]


def _scaled_photos(mode: str) -> list[np.ndarray]:
    """The four photographs at about the same scale (the longer side 320 pixels), in Pillow ``mode``."""
    from PIL import Image

    photos = []
    for path in _photo_files():
        with Image.open(path) as img:
            image = img.convert(mode)
            scale = 320 / max(image.size)
            photos.append(np.asarray(image.resize((round(image.width * scale), round(image.height * scale)))))
    return photos


def _patch(
    rng: np.random.Generator, source: np.ndarray, band: tuple[float, float], sides: tuple[int, int], size: int
) -> np.ndarray:
    """A square of ``sides[0]``..``sides[1] - 1`` pixels cut at a random place of ``source`` whose left edge
    lies in the ``band`` of its width (shares: 0.0-0.7 for training, 0.7-1.0 for test), resized to ``size``."""
    from PIL import Image

    h, w = source.shape[:2]
    lo, hi = band
    side = int(rng.integers(*sides))
    x0 = int(rng.integers(int(lo * w), max(int(lo * w) + 1, int(hi * w) - side)))
    y0 = int(rng.integers(0, h - side))
    cut = Image.fromarray(source[y0 : y0 + side, x0 : x0 + side])
    return np.asarray(cut.resize((size, size), Image.Resampling.BILINEAR))


def _photos(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """Which of four real photographs a 32x32 RGB patch comes from: patches cut at a random place and
    scale (a 32..96-pixel square, resized), flipped at random, from the left 70% of each photo for
    training and the right 30% for test (no test pixel was seen in training). Flat regions (sky,
    background) look alike across photos: there is headroom, the start points test well below 1.0."""
    rng = np.random.default_rng([seed, 6])
    photos = _scaled_photos("RGB")
    out = []
    for n, band in ((n_train, (0.0, 0.7)), (n_test, (0.7, 1.0))):
        labels = _balanced_labels(n, len(PHOTOS), rng)
        images = np.empty((n, 32, 32, 3), np.uint8)
        for i, label in enumerate(labels):
            array = _patch(rng, photos[label], band, (32, 97), 32)
            images[i] = array[:, ::-1] if rng.random() < 0.5 else array
        out += [images, labels]
    return tuple(out)


SURFACES = ("china", "flower", "hopper", "packet", "brain", "terrain")


def _surface_sources() -> list[np.ndarray]:
    """Six real 2-D signals that ship inside installed packages, as float grey images: the four photographs
    of ``photos`` in grey, Matplotlib's MRI slice (``s1045.ima.gz``, 256x256, 16-bit) and its elevation
    map of the Jacksboro fault (``jacksboro_fault_dem.npz``, 344x403)."""
    import gzip

    import matplotlib

    sources = [photo.astype(np.float32) for photo in _scaled_photos("L")]
    data = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"
    with gzip.open(data / "s1045.ima.gz") as f:
        brain = np.frombuffer(f.read(), np.uint16).astype(np.float32).reshape(256, 256)
    sources.append(brain)
    with np.load(data / "jacksboro_fault_dem.npz") as dem:
        sources.append(dem["elevation"].astype(np.float32))
    return sources


def _surfaces(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """Which of six real grey surfaces a 24x24 patch comes from (four photographs, an MRI slice, an
    elevation map): a 24..64-pixel square at a random place, resized, flipped and rotated by quarter turns
    at random, from the left 70% of each source for training and the right 30% for test. Each patch is then
    given a random brightness and contrast (mean 80..170, std 15..50), so that the class is in the patch's
    structure, not its grey level; flat patches (std under 1) are drawn again."""
    rng = np.random.default_rng([seed, 7])
    sources = _surface_sources()
    out = []
    for n, band in ((n_train, (0.0, 0.7)), (n_test, (0.7, 1.0))):
        labels = _balanced_labels(n, len(SURFACES), rng)
        images = np.empty((n, 24, 24, 1), np.uint8)
        for i, label in enumerate(labels):
            patch = _patch(rng, sources[label], band, (24, 65), 24)
            while patch.std() < 1.0:  # flat (background): another place
                patch = _patch(rng, sources[label], band, (24, 65), 24)
            patch = np.rot90(patch[:, ::-1] if rng.random() < 0.5 else patch, int(rng.integers(4)))
            patch = (patch - patch.mean()) / patch.std() * rng.uniform(15, 50) + rng.uniform(80, 170)
            images[i, ..., 0] = np.clip(np.rint(patch), 0, 255)
        out += [images, labels]
    return tuple(out)


#: Tuning tasks: the only ones any default of cnn-search (a start point, a learning rate, a pruner setting,
#: a filter range...) may be chosen on. Report tasks: never used for a choice; the published figures come
#: from them (../shared/BENCHMARKING.md). The first five were the suite's only tasks until issue 32 and
#: chose the defaults then (vgg.yaml's start points, its learning rate and batch size, the pruner's start):
#: they are tuning tasks now, and stay so. ``photos`` (real photographs, colour) and ``surfaces`` (real grey
#: signals: photographs, an MRI slice, an elevation map; grey level taken away) were added as report tasks.
TUNING = ("digits", "shapes", "textures", "objects", "fewshot")
REPORT = ("photos", "surfaces")

TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("digits", "scikit-learn's 8x8 digits", (8, 8, 1), tuple("0123456789"), (1347, 450), (1347, 450), _digits),
        Task(
            "shapes",
            "cnn-search's shapes, 6 classes",
            (32, 32, 1),
            ("circle", "square", "triangle", "cross", "star", "ring"),
            (2400, 800),
            (480, 160),
            _shapes,
        ),
        Task("textures", "low-contrast textures", (32, 32, 1), TEXTURES, (3000, 1000), (600, 200), _textures),
        Task("objects", "rotated letters on clutter, RGB", (64, 64, 3), OBJECTS, (2000, 500), (400, 120), _objects),
        Task("fewshot", "150 images, 3 symbols", (25, 25, 1), FEWSHOT, (150, 50), (150, 50), _fewshot),
        Task("photos", "patches of 4 real photos, RGB", (32, 32, 3), PHOTOS, (2000, 800), (400, 200), _photos),
        Task("surfaces", "patches of 6 real grey surfaces", (24, 24, 1), SURFACES, (2400, 900), (480, 240), _surfaces),
    )
}


def make_task(name: str, *, seed: int = 0, quick: bool = False) -> Arrays:
    """The arrays of task ``name``: ``x_train``, ``y_train``, ``x_test``, ``y_test``, ``class_names``."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    task = TASKS[name]
    x_train, y_train, x_test, y_test = task.make(*task.counts(quick), seed)
    return {
        "x_train": np.ascontiguousarray(x_train, dtype=np.uint8),
        "y_train": np.asarray(y_train, dtype=np.int32),
        "x_test": np.ascontiguousarray(x_test, dtype=np.uint8),
        "y_test": np.asarray(y_test, dtype=np.int32),
        "class_names": np.array(task.class_names),
    }


def save_npz(path: Path, arrays: Arrays) -> None:
    """``np.savez`` with fixed zip timestamps (same arrays, same bytes), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())
    os.replace(tmp, path)


def default_cache() -> Path:
    return Path(tempfile.gettempdir()) / "cnn-search-suite"


def write_task(name: str, directory: Path | None = None, *, seed: int = 0, quick: bool = False) -> Path:
    """``DIRECTORY/v{VERSION}-{full|quick}-seed{seed}/{name}.npz`` (the stem is the task's name, so
    cnn-search names its search ``SPACE-{name}``); reused when it exists."""
    path = (directory or default_cache()) / f"v{VERSION}-{'quick' if quick else 'full'}-seed{seed}" / f"{name}.npz"
    if not path.is_file():
        save_npz(path, make_task(name, seed=seed, quick=quick))
    return path
