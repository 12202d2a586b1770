"""The decoded images of a folder kept on disk and memory-mapped (search/data/_pixel_cache.py), on real
files and real processes: the same pixels as decoding, one build shared by processes started together,
nothing held in a process's own memory, and a clear fallback when there is no room."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import load_dataset


def _noisy(root: Path, per_class: int, size: int, classes: int = 3) -> Path:
    """Class folders of distinct random JPEGs (every file its own content digest)."""
    rng = np.random.default_rng(7)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size + i % 5, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"c{c}" / f"{i:03d}.jpg", quality=90)
    return root


def _kept(cache: Path) -> list[Path]:
    return sorted((cache / "pixels").glob("[!.]*.npy"))


def test_the_kept_images_are_the_decoded_ones_and_serve_every_split(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CNN_SEARCH_CACHE", str(tmp_path / "cache"))
    root = _noisy(tmp_path / "images", 12, 20)
    monkeypatch.setenv("CNN_SEARCH_PIXEL_CACHE", "off")
    plain = load_dataset(root, image_size=16)
    decoded = {split: plain.arrays(split) for split in ("train", "validation", "test")}
    assert _kept(tmp_path / "cache") == []
    monkeypatch.delenv("CNN_SEARCH_PIXEL_CACHE")
    bundle = load_dataset(root, image_size=16)
    for split, (x, y) in decoded.items():
        got_x, got_y = bundle.arrays(split)
        np.testing.assert_array_equal(got_x, x)
        np.testing.assert_array_equal(got_y, y)
    (kept,) = _kept(tmp_path / "cache")
    assert np.load(kept, mmap_mode="r").shape == (36, 16, 16, 3)
    batches = [(x.numpy(), y.numpy()) for x, y in bundle.validation(4)]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), decoded["validation"][0])
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), decoded["validation"][1])
    pipeline = bundle.train(5)
    epochs = [np.concatenate([y.numpy() for _, y in pipeline]) for _ in range(2)]
    assert sorted(epochs[0]) == sorted(decoded["train"][1]) and not np.array_equal(epochs[0], epochs[1])
    other_seed = load_dataset(root, image_size=16, seed=3)  # another split of the same images: the same file
    other_seed.arrays("train")
    assert _kept(tmp_path / "cache") == [kept]
    load_dataset(root, image_size=12).arrays("test")  # another size: another file
    assert len(_kept(tmp_path / "cache")) == 2


_WORKER = textwrap.dedent(
    """
    import json, sys
    from search.data import load_dataset
    bundle = load_dataset(sys.argv[1], image_size=24)
    x, _ = bundle.arrays("train")
    print(json.dumps({"built": bundle.store._pixels.built, "sum": int(x.sum(dtype="int64"))}))
    """
)


def test_processes_started_together_decode_the_folder_once(tmp_path: Path):
    root = _noisy(tmp_path / "images", 40, 48)
    env = {**os.environ, "CNN_SEARCH_CACHE": str(tmp_path / "cache")}
    from search.data._folder import scan_folder

    os.environ["CNN_SEARCH_CACHE"], saved = env["CNN_SEARCH_CACHE"], os.environ["CNN_SEARCH_CACHE"]
    try:  # the scan kept first, so both processes reach the build at about the same time
        scan_folder(root)
    finally:
        os.environ["CNN_SEARCH_CACHE"] = saved
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(root)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=240)[0].strip().splitlines()[-1]) for p in procs]
    assert sorted(r["built"] for r in results) == [False, True]
    assert results[0]["sum"] == results[1]["sum"]
    assert len(_kept(tmp_path / "cache")) == 1
    assert list((tmp_path / "cache" / "pixels").glob(".*.npy")) == []  # no temporary file left


_MEMORY = textwrap.dedent(
    """
    import json, sys
    from search.data import load_dataset

    def anon():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024

    bundle = load_dataset(sys.argv[1], image_size=160)
    for _ in bundle.validation(16).take(2):  # the runtime started (another split: nothing of train read)
        pass
    before = anon()
    pipeline = bundle.train(16)
    for _ in range(3):
        for _ in pipeline:
            pass
    print(json.dumps({"growth": anon() - before, "split": bundle.store.nbytes("train")}))
    """
)


def _growth(root: Path, cache: Path, **env: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY, str(root)],
        env={**os.environ, "CNN_SEARCH_CACHE": str(cache), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_process_holds_no_copy_of_the_images_it_trains_on(tmp_path: Path):
    """Three epochs over a training split of ~100 MB: memory-mapped, the process's own (anonymous) memory grows
    by the pipeline's few batches in flight (14-22 MB measured, whatever the split's size); the same run
    without the cache (the decoded split cached in memory by ``tf.data``, as before) grows by at least the
    split, so the figure measures what it should."""
    root = _noisy(tmp_path / "images", 720, 160)
    mapped = _growth(root, tmp_path / "cache")
    held = _growth(root, tmp_path / "cache", CNN_SEARCH_PIXEL_CACHE="off")
    assert mapped["split"] > 95e6
    assert held["growth"] > 0.9 * held["split"], held
    assert mapped["growth"] < 0.4 * mapped["split"], mapped


def test_no_room_is_said_and_the_images_are_decoded_as_before(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.setenv("CNN_SEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CNN_SEARCH_PIXEL_CACHE_GB", "0.00001")  # ~10 kB: less than the images
    root = _noisy(tmp_path / "images", 8, 20)
    with caplog.at_level(logging.WARNING, logger="search"):
        x, _y = load_dataset(root, image_size=16).arrays("train")
    assert "decoded-image cache: no room for" in caplog.text and "CNN_SEARCH_PIXEL_CACHE_GB" in caplog.text
    assert _kept(tmp_path / "cache") == []
    monkeypatch.setenv("CNN_SEARCH_PIXEL_CACHE", "off")
    np.testing.assert_array_equal(load_dataset(root, image_size=16).arrays("train")[0], x)


def test_the_least_recently_used_file_makes_room(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CNN_SEARCH_CACHE", str(tmp_path / "cache"))
    root = _noisy(tmp_path / "images", 10, 20)
    load_dataset(root, image_size=16).arrays("test")
    (first,) = _kept(tmp_path / "cache")
    os.utime(first, (1, 1))  # used long ago
    size = first.stat().st_size
    monkeypatch.setenv("CNN_SEARCH_PIXEL_CACHE_GB", str(1.5 * size / 2**30))  # room for one file only
    load_dataset(root, image_size=15).arrays("test")
    (second,) = _kept(tmp_path / "cache")
    assert second != first and not first.exists()


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_a_damaged_kept_file_is_built_again(tmp_path: Path, monkeypatch, damage: str):
    monkeypatch.setenv("CNN_SEARCH_CACHE", str(tmp_path / "cache"))
    root = _noisy(tmp_path / "images", 6, 20)
    x = load_dataset(root, image_size=16).arrays("train")[0]
    (kept,) = _kept(tmp_path / "cache")
    if damage == "truncated":
        kept.write_bytes(kept.read_bytes()[:200])
    else:
        np.save(kept, np.zeros((3, 2), dtype=np.float32))
    bundle = load_dataset(root, image_size=16)
    np.testing.assert_array_equal(bundle.arrays("train")[0], x)
    assert bundle.store._pixels.built
