"""Folders of large images (real files): the size a search feeds them at when none is asked for."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from search.data import load_dataset


def _photos(root: Path, size: tuple[int, int], per_class: int = 4) -> Path:
    """Two classes of noisy JPEG photos of ``size`` (width, height), one brighter than the other."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("dark", "light")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (size[1], size[0], 3)) + 100 * label
            Image.fromarray(pixels.astype("uint8")).save(root / name / f"{i}.jpg", quality=60)
    return root


def test_large_images_are_fed_at_256_a_side_and_it_is_said(tmp_path: Path, caplog):
    """600x400 photos (no size asked for) are fed at 256 pixels on their longer side, the aspect kept, and
    the search says so at load time: at native size a folder of 4000x4000 photos built a first model the
    kernel killed at 6.7 GB."""
    root = _photos(tmp_path / "photos", (600, 400))
    with caplog.at_level(logging.WARNING, logger="search"):
        bundle = load_dataset(str(root))
    assert bundle.input_shape == (171, 256, 3)
    said = "most images are 400x600, over 256 pixels a side: every image is resized to 171x256"
    assert any(said in note for note in bundle.conversions), bundle.conversions
    assert any(said in record.getMessage() for record in caplog.records)
    x, _ = bundle.arrays("train")
    assert x.shape[1:] == (171, 256, 3) and x.dtype == np.uint8
    assert load_dataset(str(root)).fingerprint == bundle.fingerprint  # reloaded as recorded: the same size


def test_a_size_asked_for_or_small_images_are_left_as_they_are(tmp_path: Path):
    large = _photos(tmp_path / "large", (600, 400))
    asked = load_dataset(str(large), image_size=(300, 450))
    assert asked.input_shape == (300, 450, 3) and not asked.conversions
    small = _photos(tmp_path / "small", (200, 120))
    native = load_dataset(str(small))
    assert native.input_shape == (120, 200, 3) and not native.conversions
