"""A colour mode that converts the images is said (issue 31, item 12): RGB images made grayscale lose their colour,
grey images made RGB are repeated. No space takes a channel count (a model's input has the data's channels), so
``color_mode`` (``load_dataset``, ``cnn-search data --color-mode``, ``run_search(data_options=...)``) is the one
thing that converts. Real image files and ``.npz`` files in ``tmp_path``."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from search.data import load_dataset

from ..helpers import ENV, cnn_search

LOST = "RGB (3 channels); color_mode grayscale takes 1 channel: converted to grayscale (luma), their colour lost"
REPEATED = "the images are grayscale (1 channel); color_mode rgb takes 3 channels: the grey channel repeated"


def test_colour_images_made_grayscale_on_request_are_said_and_kept_on_the_bundle(make_folder, caplog):
    root = make_folder({"ant": 4, "bee": 4})
    with caplog.at_level(logging.WARNING, logger="search"):
        bundle = load_dataset(root, color_mode="grayscale")
    assert bundle.input_shape[-1] == 1
    assert f"{root}: the images are {LOST}" in caplog.text
    assert bundle.conversions == (f"the images are {LOST}; leave color_mode unset (or rgb) to keep it",)
    assert f"converted: the images are {LOST}" in bundle.summary()


def test_grey_images_made_rgb_are_said(make_folder, caplog):
    root = make_folder({"ant": 4, "bee": 4}, grey=True)
    with caplog.at_level(logging.WARNING, logger="search"):
        bundle = load_dataset(root, color_mode="rgb")
    assert bundle.input_shape[-1] == 3 and REPEATED in caplog.text
    assert bundle.conversions[0].startswith(REPEATED)


def test_arrays_converted_either_way_are_said(save_npz, caplog):
    """An .npz or a named source converted by color_mode was silent."""
    rng = np.random.default_rng(0)
    path = save_npz(x=rng.integers(0, 255, (40, 8, 8, 3), dtype=np.uint8), y=np.repeat([0, 1], 20))
    with caplog.at_level(logging.WARNING, logger="search"):
        grey = load_dataset(path, color_mode="grayscale")
        rgb = load_dataset("digits", color_mode="rgb", limit=100)
    assert grey.input_shape[-1] == 1 and grey.conversions[0].startswith(f"the images are {LOST}")
    assert rgb.input_shape[-1] == 3 and rgb.conversions[0].startswith(REPEATED)
    assert f"{path}: the images are {LOST}" in caplog.text and f"digits: {REPEATED}" in caplog.text


def test_some_colour_images_made_grayscale_are_counted(make_folder, write_image, caplog):
    root = make_folder({"ant": 4, "bee": 4}, grey=True)
    write_image(root / "ant" / "red.png", (220, 10, 10))
    bundle = load_dataset(root, color_mode="grayscale")
    assert bundle.conversions[0].startswith(f"1 of 9 images are {LOST}")


def test_nothing_converted_nothing_said(make_folder, save_npz, caplog):
    root = make_folder({"ant": 4, "bee": 4})
    with caplog.at_level(logging.WARNING, logger="search"):
        bundles = [load_dataset(root), load_dataset(root, color_mode="rgb"), load_dataset("digits", limit=100)]
        bundles.append(load_dataset("digits", color_mode="grayscale", limit=100))
        bundles.append(load_dataset("shapes", color_mode="rgb", count=40))  # made in colour, not converted
    assert [b.conversions for b in bundles] == [()] * 5
    assert "converted" not in caplog.text and "\nconverted:" not in bundles[0].summary()


def test_the_data_command_prints_the_conversion(make_folder):
    root = make_folder({"ant": 4, "bee": 4})
    out = cnn_search("data", str(root), "--color-mode", "grayscale")
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"converted: the images are {LOST}" in out.stdout


@pytest.mark.slow
def test_a_search_says_the_conversion_on_screen(make_folder, tmp_path):
    """A search whose data options make colour images grayscale says so before its first trial."""
    root = make_folder({"ant": 8, "bee": 8})
    code = (
        "import sys, search; search.run_search('tiny', sys.argv[1], trials=1, epochs=1, runs_dir=sys.argv[2], "
        "data_options={'color_mode': 'grayscale'})"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"{root}: the images are {LOST}" in " ".join(out.stderr.split())
