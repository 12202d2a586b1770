"""The benchmark suite's tasks (benchmarks/_tasks.py): what cnn-search reads, shapes, classes, seeds, contrast.

No training: each task is generated (quick sizes, plus full sizes where generation takes under a
second) and loaded the way ``cnn-search run --data TASK.npz`` loads it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import search

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"  # the sdist carries it too (pyproject.toml)
_spec = importlib.util.spec_from_file_location("suite_tasks", BENCHMARKS / "_tasks.py")
assert _spec is not None and _spec.loader is not None
tasks = importlib.util.module_from_spec(_spec)
sys.modules["suite_tasks"] = tasks  # dataclasses look the module up by name
_spec.loader.exec_module(tasks)

NAMES = list(tasks.TASKS)
#: Tasks whose full-size generation is cheap enough for a unit test (objects takes ~5 s).
FULL_CHECKED = ["digits", "shapes", "textures", "fewshot", "surfaces"]
EXPECTED = {  # name: (image shape, classes, full train/test, quick train/test)
    "digits": ((8, 8, 1), 10, (1347, 450), (1347, 450)),
    "shapes": ((32, 32, 1), 6, (2400, 800), (480, 160)),
    "textures": ((32, 32, 1), 5, (3000, 1000), (600, 200)),
    "objects": ((64, 64, 3), 4, (2000, 500), (400, 120)),
    "fewshot": ((25, 25, 1), 3, (150, 50), (150, 50)),
    "photos": ((32, 32, 3), 4, (2000, 800), (400, 200)),
    "surfaces": ((24, 24, 1), 6, (2400, 900), (480, 240)),
}


@pytest.fixture(scope="module")
def quick_arrays():
    return {name: tasks.make_task(name, quick=True) for name in NAMES}


def test_at_least_five_tasks_of_the_stated_kinds():
    assert set(EXPECTED) <= set(tasks.TASKS)
    for name, (shape, k, full, quick) in EXPECTED.items():
        task = tasks.TASKS[name]
        assert (task.shape, task.num_classes, task.sizes, task.quick_sizes) == (shape, k, full, quick)
        assert len(set(task.class_names)) == k


def _check(arrays, name, sizes):
    shape, k, _, _ = EXPECTED[name]
    assert set(arrays) == {"x_train", "y_train", "x_test", "y_test", "class_names"}
    for split, n in zip(("train", "test"), sizes, strict=True):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        assert x.shape == (n, *shape), (name, split, x.shape)
        assert x.dtype == np.uint8
        assert y.shape == (n,) and y.dtype == np.int32
        counts = np.bincount(y, minlength=k)
        assert len(counts) == k and counts.min() > 0, f"{name} {split}: a class is missing: {counts}"
        assert counts.max() - counts.min() <= max(2, n // 20), f"{name} {split}: unbalanced {counts}"
        assert x.std() > 2, f"{name} {split}: blank images"
    assert tuple(arrays["class_names"].tolist()) == tasks.TASKS[name].class_names


@pytest.mark.parametrize("name", NAMES)
def test_quick_arrays_shape_dtype_and_classes(quick_arrays, name):
    _check(quick_arrays[name], name, EXPECTED[name][3])


@pytest.mark.parametrize("name", FULL_CHECKED)
def test_full_arrays_shape_dtype_and_classes(name):
    _check(tasks.make_task(name), name, EXPECTED[name][2])


@pytest.mark.parametrize("name", NAMES)
def test_npz_loads_as_cnn_search_reads_it(tmp_path, name):
    shape, k, _, (n_train, n_test) = EXPECTED[name]
    path = tasks.write_task(name, tmp_path, quick=True)
    assert path.name == f"{name}.npz"  # cnn-search names its search SPACE-<stem>
    bundle = search.load_dataset(path)
    assert bundle.input_shape == shape
    assert bundle.num_classes == k
    assert bundle.class_names == tasks.TASKS[name].class_names
    counts = bundle.counts
    assert counts["test"] == n_test  # the file's own test split is kept: everyone is scored on it
    assert counts["train"] + counts["validation"] == n_train
    x, y = bundle.arrays("test")
    assert x.dtype == np.uint8 and x.shape == (n_test, *shape)
    with np.load(path) as raw:
        np.testing.assert_array_equal(np.sort(y), np.sort(raw["y_test"]))
    for split in ("train", "validation", "test"):
        assert min(bundle.class_counts[split].values()) > 0, f"{name}: a class missing from {split}"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes_other_seed_other_images(tmp_path, name):
    a = tasks.write_task(name, tmp_path / "a", seed=0, quick=True)
    b = tasks.write_task(name, tmp_path / "b", seed=0, quick=True)
    c = tasks.write_task(name, tmp_path / "c", seed=1, quick=True)
    assert a != b and a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    with np.load(a) as x0, np.load(c) as x1:
        assert x0["x_train"].shape == x1["x_train"].shape
        assert not np.array_equal(x0["x_train"], x1["x_train"])
        assert not np.array_equal(x0["x_test"], x1["x_test"])


def test_write_task_reuses_the_cached_file(tmp_path):
    path = tasks.write_task("fewshot", tmp_path, quick=True)
    path.write_bytes(path.read_bytes())  # same content, new mtime
    stamp = path.stat().st_mtime_ns
    assert tasks.write_task("fewshot", tmp_path, quick=True) == path
    assert path.stat().st_mtime_ns == stamp
    assert tasks.write_task("fewshot", tmp_path, quick=False) != path  # full and quick never share a file


def test_textures_are_low_contrast(quick_arrays):
    """Every pixel in 100..140 (of 0..255) and the pixel std below 12 grey levels, in each split."""
    low, high = tasks.TEXTURE_BAND
    assert (low, high) == (100, 140) and tasks.TEXTURE_MAX_STD == 12.0
    for split in ("x_train", "x_test"):
        x = quick_arrays["textures"][split]
        assert x.min() >= low and x.max() <= high
        assert 2 < x.std() < tasks.TEXTURE_MAX_STD, x.std()
        # and no class stands out by its brightness or its contrast alone
        y = quick_arrays["textures"][split.replace("x_", "y_")]
        means = [x[y == c].mean() for c in range(5)]
        assert max(means) - min(means) < 4, means
    others = [quick_arrays[n]["x_train"].std() for n in NAMES if n != "textures"]
    assert min(others) > 3 * tasks.TEXTURE_MAX_STD  # the other tasks use the whole range


def test_unknown_task_is_refused():
    with pytest.raises(KeyError, match="unknown task 'cifar'"):
        tasks.make_task("cifar")


def test_report_tasks_are_real_images_apart_from_the_tuning_tasks():
    assert set(tasks.REPORT) == {"photos", "surfaces"} and not set(tasks.REPORT) & set(tasks.TUNING)
    assert set(tasks.REPORT) | set(tasks.TUNING) == set(tasks.TASKS)
    assert all(path.is_file() for path in tasks._photo_files())  # shipped inside installed packages


def test_surfaces_carry_no_class_in_their_grey_level(quick_arrays):
    x, y = quick_arrays["surfaces"]["x_train"].astype(float), quick_arrays["surfaces"]["y_train"]
    means = [x[y == k].mean() for k in range(6)]
    stds = [x[y == k].std() for k in range(6)]
    assert max(means) - min(means) < 15 and max(stds) - min(stds) < 10, (means, stds)
    per_image = x.reshape(len(x), -1).std(axis=1)
    assert per_image.min() > 5  # no flat patch
