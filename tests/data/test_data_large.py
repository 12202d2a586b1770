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


def test_a_size_whose_smallest_candidate_cannot_fit_in_memory_is_refused_in_one_line_before_any_trial(tmp_path: Path):
    """The memory there is (this machine's real ``MemAvailable``) against a space whose candidates train batches
    of 1024 with 256 filters on 512x512 photos (~1 TB of activations): refused before the stores are made, in
    one line that names the need, the memory and a side at which the space's smallest candidate fits; the same
    space resizing in the model (``input.image_size``) is told to change that instead."""
    from search._run import available_mib
    from search.model._memory import SIDES, training_mib
    from search.space import load_space
    from tests.helpers import cnn_search

    root = _photos(tmp_path / "photos", (512, 512), per_class=6)
    space = tmp_path / "huge.yaml"
    space.write_text("name: huge\nblocks: {depth: 1, filters: [256]}\ntraining: {batch_size: 1024, epochs: 1}\n")
    runs = tmp_path / "runs"
    done = cnn_search("run", str(space), "--data", str(root), "--trials", "1", "--runs-dir", str(runs))
    assert done.returncode == 1
    [line] = [text for text in done.stderr.splitlines() if text.startswith("error:")]
    assert "images of 256x256x3: the smallest candidate of space 'huge' needs ~" in line, done.stderr
    need = int(line.split("needs ~")[1].split(" MiB")[0].replace(",", ""))
    memory = available_mib()
    assert memory is not None and need == training_mib(load_space(space), (256, 256, 3), 2)[0] > memory
    side = int(line.split("{image_size: ")[1].split("}")[0])
    assert training_mib(load_space(space), (side, side, 3), 2)[0] <= memory
    larger = [s for s in SIDES if side < s < 256]
    assert all(training_mib(load_space(space), (s, s, 3), 2)[0] > memory for s in larger)
    assert line.endswith(f"or image_size={side} in Python) or a smaller training.batch_size.")
    assert not (runs / "mlflow.db").exists()

    space.write_text(space.read_text() + "input: {image_size: [1024, 1024]}\n")
    done = cnn_search("run", str(space), "--data", str(root), "--trials", "1", "--runs-dir", str(runs))
    [line] = [text for text in done.stderr.splitlines() if text.startswith("error:")]
    assert done.returncode == 1 and line.startswith(
        "error: images resized to 1024x1024 by the input.image_size of space 'huge'"
    )
    assert line.endswith("set a smaller input.image_size or training.batch_size in the space.")
    assert not (runs / "mlflow.db").exists()


_STATS = """
import json, sys
import numpy as np
from search.data import load_dataset

def peak():
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]) * 1024

bundle = load_dataset(sys.argv[1])
x = bundle.store.images("train", [0])  # the pixel cache built, the runtime started
before = peak()
mean, std = bundle.pixel_stats
grown = peak() - before
x = bundle.arrays("train")[0].astype(np.float64)
print(json.dumps({"grown": grown, "stats": [mean, std], "whole": [x.mean(), x.std()], "values": x.size}))
"""


def test_the_pixel_statistics_of_large_images_are_summed_a_chunk_at_a_time(tmp_path: Path):
    """The standardisation's mean and std over ~60 M pixel values of 256x256 photos: the same figures as over
    one float64 array of them all (which, with std's temporary, took 5.4 GB twice over per process on 4,096
    images of 214x256), with the process's peak grown by a few chunks only."""
    import json
    import subprocess
    import sys

    root = _photos(tmp_path / "photos", (256, 256), per_class=250)
    done = subprocess.run([sys.executable, "-c", _STATS, str(root)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["values"] > 55e6
    assert np.allclose(found["stats"], found["whole"], rtol=1e-9)
    assert found["grown"] < 0.4 * 8 * found["values"], found  # one float64 copy of them all: 8 bytes a value
