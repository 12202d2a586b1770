"""A grid of sample images with their class names, written as a PNG (Pillow only)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from search.data._errors import fail
from search.data._split import Split

if TYPE_CHECKING:
    from search.data._bundle import DataBundle

_CELL = 72
_LABEL_HEIGHT = 14
_COLUMNS = 8


def write_preview(bundle: DataBundle, path: Path, *, split: Split = "train", per_class: int = 4) -> Path:
    """Write up to ``per_class`` images of each class of ``split`` (at most 64 cells), labelled, to ``path``."""
    from PIL import Image, ImageDraw

    labels = bundle.labels(split)
    rng = np.random.default_rng(bundle.seed)
    picked: list[int] = []
    for label in range(bundle.num_classes):
        where = np.flatnonzero(labels == label)
        picked += sorted(rng.choice(where, size=min(per_class, len(where)), replace=False).tolist())
    picked = picked[:64]
    images = bundle.store.images(split, picked)
    rows = max(1, -(-len(picked) // _COLUMNS))
    columns = min(_COLUMNS, max(1, len(picked)))
    sheet = Image.new("RGB", (columns * _CELL, rows * (_CELL + _LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    for cell, (index, image) in enumerate(zip(picked, images, strict=True)):
        top, left = (cell // _COLUMNS) * (_CELL + _LABEL_HEIGHT), (cell % _COLUMNS) * _CELL
        tile = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert("RGB")
        if max(tile.size) > _CELL - 4:
            tile.thumbnail((_CELL - 4, _CELL - 4))
        else:  # small images (8x8 digits) are enlarged by a whole factor, pixels kept sharp
            scale = (_CELL - 4) // max(tile.size)
            tile = tile.resize((tile.width * scale, tile.height * scale), Image.Resampling.NEAREST)
        sheet.paste(tile, (left + (_CELL - tile.width) // 2, top + (_CELL - tile.height) // 2))
        draw.text((left + 3, top + _CELL), bundle.class_names[labels[index]][:11], fill="black")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise fail(f"{path}: preview file", expected="a path ending in .png", received=repr(path.suffix or path.name))
    sheet.save(path, format="PNG")
    return path
