"""Fuzz: the files a user hands the package, cut, bit-flipped and random (issue 31; counts in docs/RELIABILITY.md).
Space YAML (mutations of every shipped space), ``.npz`` datasets and image files in a class folder: each
either loads, or is refused with a ``SearchError`` (a damaged image: skipped with its reason); never another
exception. Property-based with Hypothesis, in-process, real files."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search._errors import SearchError
from search.space import list_spaces, load_space
from search.space._registry import spaces_dir

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DAMAGE = dict(
    how=st.sampled_from(["cut", "flip", "random", "splice"]),
    at=st.integers(min_value=0),
    flips=st.lists(st.integers(min_value=0), min_size=1, max_size=6),
    junk=st.binary(max_size=300),
)


def _damaged(data: bytes, how: str, at: int, flips: list[int], junk: bytes) -> bytes:
    if how == "cut":
        return data[: at % (len(data) + 1)]
    if how == "flip":
        out = bytearray(data)
        for f in flips:
            out[f % len(out)] ^= 1 << (f % 8)
        return bytes(out)
    if how == "splice":  # junk put in the middle: a broken key, value or indentation
        i = at % (len(data) + 1)
        return data[:i] + junk + data[i:]
    return junk


def _fresh(tmp_path: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(dir=tmp_path)) / name


@FUZZ
@given(space=st.sampled_from(list_spaces()), **DAMAGE)
def test_a_damaged_space_file_loads_or_is_refused_cleanly(tmp_path, space, how, at, flips, junk):
    path = _fresh(tmp_path, "space.yaml")
    path.write_bytes(_damaged((spaces_dir() / f"{space}.yaml").read_bytes(), how, at, flips, junk))
    try:
        loaded = load_space(path)
    except SearchError as exc:
        assert str(exc).strip()
    else:
        assert loaded.name


@pytest.fixture(scope="module")
def npz_bytes() -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(buffer, x=rng.integers(0, 255, (60, 8, 8, 1), dtype=np.uint8), y=np.repeat(np.arange(3), 20))
    return buffer.getvalue()


@FUZZ
@given(**DAMAGE)
def test_a_damaged_npz_loads_or_is_refused_cleanly(tmp_path, npz_bytes, how, at, flips, junk):
    from search.data import load_dataset

    path = _fresh(tmp_path, "data.npz")
    path.write_bytes(_damaged(npz_bytes, how, at, flips, junk))
    try:
        bundle = load_dataset(path)
    except SearchError as exc:
        assert str(exc).strip()
    else:
        assert bundle.num_classes >= 2


@pytest.fixture(scope="module")
def image_bytes() -> dict[str, bytes]:
    from PIL import Image

    rng = np.random.default_rng(1)
    out = {}
    for fmt in ("PNG", "JPEG", "BMP", "GIF"):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(buffer, format=fmt)
        out[fmt] = buffer.getvalue()
    return out


@FUZZ
@given(fmt=st.sampled_from(["PNG", "JPEG", "BMP", "GIF"]), **DAMAGE)
def test_damaged_images_in_a_class_folder_are_skipped_with_a_reason(tmp_path, image_bytes, fmt, how, at, flips, junk):
    from search.data import load_dataset

    root = _fresh(tmp_path, "images")
    for name in ("ant", "bee"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            (root / name / f"ok{i}.{fmt.lower()}").write_bytes(image_bytes[fmt])
    bad = root / "ant" / f"bad.{fmt.lower()}"
    bad.write_bytes(_damaged(image_bytes[fmt], how, at, flips, junk))
    try:
        bundle = load_dataset(root)
    except SearchError as exc:
        assert str(exc).strip()
    else:
        reasons = dict(bundle.skipped)
        total = sum(sum(c.values()) for c in bundle.class_counts.values())
        assert total == 7 or (total == 6 and reasons.get(str(bad)))  # used, or skipped with its reason
