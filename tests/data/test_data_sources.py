"""Every source, built from real data: digits, shapes, .npz, a folder; the Keras datasets offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import SHAPES, DataError, load_dataset, make_shapes


def test_digits_are_the_1797_real_8x8_images_as_raw_pixels():
    bundle = load_dataset("digits")
    assert bundle.input_shape == (8, 8, 1)
    assert bundle.class_names == tuple("0123456789")
    assert sum(bundle.counts.values()) == 1797
    x, y = bundle.arrays("train")
    assert x.dtype == np.uint8 and y.dtype == np.int32
    everything = np.concatenate([bundle.arrays(s)[0] for s in ("train", "validation", "test")])
    assert everything.shape == (1797, 8, 8, 1)
    assert everything.max() == 255 and everything.min() == 0
    assert bundle.in_memory


def test_shapes_are_deterministic_for_a_seed():
    a = make_shapes(count=30, image_size=16, channels=3, num_classes=5, seed=7)
    b = make_shapes(count=30, image_size=16, channels=3, num_classes=5, seed=7)
    c = make_shapes(count=30, image_size=16, channels=3, num_classes=5, seed=8)
    assert a[0].tobytes() == b[0].tobytes() and np.array_equal(a[1], b[1])
    assert a[0].tobytes() != c[0].tobytes()
    assert a[0].shape == (30, 16, 16, 3) and a[0].dtype == np.uint8
    assert a[2] == SHAPES[:5]
    assert sorted(np.bincount(a[1]).tolist()) == [6, 6, 6, 6, 6]


def test_shapes_source_options():
    bundle = load_dataset("shapes", count=120, num_classes=3, image_size=20, color_mode="rgb", seed=1)
    assert bundle.input_shape == (20, 20, 3)
    assert bundle.class_names == ("circle", "square", "triangle")
    assert sum(bundle.counts.values()) == 120
    grey = load_dataset("shapes", count=40, num_classes=2)
    assert grey.input_shape == (32, 32, 1)
    # the classes really differ: a circle and a cross of the same size cover different areas
    x, _ = grey.arrays("train")
    assert x.std() > 20


@pytest.mark.parametrize("num_classes", [1, len(SHAPES) + 1])
def test_shapes_num_classes_out_of_range(num_classes: int):
    with pytest.raises(DataError, match=r"num_classes: wrong value; expected an integer from 2 to 8, received"):
        load_dataset("shapes", num_classes=num_classes)


def test_npz_with_x_and_y_and_class_names(save_npz):
    x, y, _ = make_shapes(count=60, image_size=12, channels=1, num_classes=3, seed=0)
    path = save_npz(x=x[..., 0], y=y.astype(np.int64), class_names=np.array(["zero", "one", "two"]))
    bundle = load_dataset(path)
    assert bundle.class_names == ("zero", "one", "two")
    assert bundle.input_shape == (12, 12, 1)
    assert bundle.counts == {"train": 36, "validation": 9, "test": 15}
    # every image is there once, with its own label
    got = np.concatenate([bundle.arrays(s)[0] for s in ("train", "validation", "test")])
    assert sorted(map(bytes, got)) == sorted(map(bytes, x))


def test_npz_with_its_own_test_split_keeps_it(save_npz):
    x, y, _ = make_shapes(count=80, image_size=12, channels=3, num_classes=4, seed=0)
    path = save_npz(x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    bundle = load_dataset(str(path), image_size=16, color_mode="grayscale")
    assert bundle.counts == {"train": 48, "validation": 12, "test": 20}
    assert bundle.input_shape == (16, 16, 1)
    assert np.array_equal(bundle.labels("test"), y[60:])
    assert bundle.class_names == ("0", "1", "2", "3")
    with pytest.raises(DataError, match=r"test_fraction: .* ships its own test split; expected no test_fraction"):
        load_dataset(path, test_fraction=0.3)


def test_folder_of_png_and_jpeg_classes_sorted_streamed(tmp_path: Path, write_image, colours):
    root = tmp_path / "pets"
    for name in ("dog", "ant", "cat"):  # created out of order: classes come sorted
        for i in range(5):
            write_image(root / name / f"{i}.png", colours[name])
    write_image(root / "ant" / "upper.PNG", colours["ant"])
    write_image(root / "cat" / "photo.JPG", colours["cat"])
    write_image(root / "cat" / "nested" / "deep.jpeg", colours["cat"])
    write_image(root / "dog" / ".hidden.png", colours["ant"])  # ignored: hidden
    (root / "dog" / "notes.txt").write_text("not an image")  # ignored: not an image extension
    bundle = load_dataset(root, image_size=(6, 5))
    assert bundle.class_names == ("ant", "cat", "dog")
    assert not bundle.in_memory and bundle.skipped == []
    assert bundle.input_shape == (6, 5, 3)
    assert [sum(bundle.class_counts[s][c] for s in bundle.counts) for c in bundle.class_names] == [6, 7, 5]
    # images travel with their labels through the streamed pipeline (flat colours, PNG and JPEG)
    seen = 0
    for images, labels in bundle.train(4):
        assert images.dtype.name == "uint8" and labels.dtype.name == "int32"
        for image, label in zip(images.numpy(), labels.numpy(), strict=True):
            expected = np.array(colours[bundle.class_names[label]])
            assert np.abs(image.astype(int) - expected).max() <= 4  # JPEG rounding
            seen += 1
    assert seen == bundle.counts["train"]


def test_folder_colour_mode_default_and_conversion(make_folder, write_image, colours):
    grey_root = make_folder({"ant": 4, "bee": 4}, grey=True)
    bundle = load_dataset(grey_root)
    assert bundle.input_shape == (12, 10, 1)
    x, _ = bundle.arrays("train")
    assert set(np.unique(x).tolist()) <= {30, 200}
    # one colour image among grey ones: the default becomes rgb, the grey images are converted
    write_image(grey_root / "bee" / "colour.png", colours["cat"])
    assert load_dataset(grey_root).input_shape == (12, 10, 3)
    forced = load_dataset(grey_root, color_mode="grayscale")
    assert forced.input_shape == (12, 10, 1)
    x, _ = forced.arrays("train")
    assert x.shape[1:] == (12, 10, 1)


def test_folder_default_size_is_the_most_common(make_folder, write_image, colours):
    root = make_folder({"ant": 6, "bee": 6})
    write_image(root / "ant" / "odd.png", colours["ant"], size=(20, 20))
    bundle = load_dataset(root)
    assert bundle.input_shape == (12, 10, 3)
    x, _ = bundle.arrays("test")
    assert x.shape[1:] == (12, 10, 3)


def test_mnist_without_cache_or_network_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """In a fresh process (Keras reads KERAS_HOME when imported) with an empty cache and no network."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    code = (
        "import socket; socket.setdefaulttimeout(10)\n"
        "from search.data import DataError, load_dataset\n"
        "try:\n    load_dataset('mnist')\n"
        "except DataError as exc:\n    print('DATAERROR', exc, 'CAUSE', exc.__cause__, exc.__suppress_context__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ)
    out = done.stdout
    if "DATAERROR" not in out and "Downloading" in out:
        pytest.skip("this machine has network access and downloaded mnist")  # pragma: no cover
    assert "DATAERROR mnist: the download failed and no cached copy was found" in out, done.stderr[-2000:]
    assert f"expected the file at {tmp_path / 'datasets' / 'mnist.npz'}" in out
    assert "Put the file there" in out and "--data path.npz" in out
    assert "CAUSE None True" in out  # raised `from None`: no network traceback chained
    assert "Traceback" not in done.stderr


def test_preview_png_is_valid(tmp_path: Path):
    from search.data import write_preview

    bundle = load_dataset("shapes", count=40, num_classes=4, image_size=16)
    out = write_preview(bundle, tmp_path / "grid.png", per_class=2)
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (8 * 72, 86)


def test_importing_the_package_and_its_cli_imports_no_tensorflow():
    code = (
        "import sys, search.data, search.data._cli\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
