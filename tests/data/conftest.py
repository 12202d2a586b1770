"""Real image folders and .npz files written into tmp_path (no mocks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

#: One flat colour per class, so a decoded image tells its class (PNG is lossless).
COLOURS = {"ant": (200, 30, 30), "bee": (30, 200, 30), "cat": (30, 30, 200), "dog": (120, 120, 120)}

MakeFolder = Callable[..., Path]


def write_image(path: Path, colour: tuple[int, int, int] | int, *, size: tuple[int, int] = (10, 12)) -> Path:
    """A flat image of ``size`` (width, height); an int colour makes a grayscale ('L') image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if isinstance(colour, int) else "RGB"
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    Image.new(mode, size, colour).save(path, format=fmt)
    return path


@pytest.fixture(name="write_image")
def write_image_fixture() -> Callable[..., Path]:
    return write_image


@pytest.fixture(name="colours")
def colours_fixture() -> dict[str, tuple[int, int, int]]:
    return COLOURS


@pytest.fixture
def make_folder(tmp_path: Path) -> MakeFolder:
    """``make_folder({"ant": 8, "bee": 8})``: class folders of flat PNG images, in ``tmp_path / "images"``."""

    def make(counts: Mapping[str, int], *, grey: bool = False, ext: str = ".png") -> Path:
        root = tmp_path / "images"
        for name, count in counts.items():
            (root / name).mkdir(parents=True, exist_ok=True)
            colour = COLOURS[name]
            for i in range(count):
                write_image(root / name / f"{name}_{i:02d}{ext}", colour[1] if grey else colour)
        return root

    return make


@pytest.fixture
def save_npz(tmp_path: Path) -> Callable[..., Path]:
    def save(name: str = "data.npz", **arrays: np.ndarray) -> Path:
        path = tmp_path / name
        np.savez(path, **arrays)  # type: ignore[arg-type]
        return path

    return save
