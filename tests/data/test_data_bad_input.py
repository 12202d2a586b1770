"""RELIABILITY row 11 and the rest of the bad input: found before training, reported by path, messages pinned."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from search.data import DataError, load_dataset


@pytest.fixture
def damaged(make_folder, write_image, colours) -> Path:
    """Three good classes and, among them, a 0-byte file, a truncated JPEG and a text file named .png."""
    root = make_folder({"ant": 6, "bee": 6, "cat": 6})
    (root / "ant" / "empty.png").write_bytes(b"")
    jpeg = write_image(root / "bee" / "whole.jpg", colours["bee"], size=(64, 64)).read_bytes()
    (root / "bee" / "whole.jpg").unlink()
    (root / "bee" / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "cat" / "notes.png").write_text("these are not pixels\n")
    return root


def test_bad_files_are_skipped_with_their_reason_and_counted(damaged: Path):
    bundle = load_dataset(damaged)
    assert bundle.skipped == [
        (str(damaged / "ant" / "empty.png"), "empty file (0 bytes)"),
        (str(damaged / "bee" / "cut.jpg"), "corrupt or truncated image (Truncated File Read)"),
        (str(damaged / "cat" / "notes.png"), "not an image (no known image format in its bytes)"),
    ]
    assert sum(bundle.counts.values()) == 18
    assert "skipped: 3 file(s)" in bundle.summary()
    assert f"  {damaged / 'ant' / 'empty.png'}: empty file (0 bytes)" in bundle.summary()


def test_strict_refuses_the_folder_listing_every_path(damaged: Path):
    with pytest.raises(DataError) as info:
        load_dataset(damaged, strict=True)
    message = str(info.value)
    assert message.startswith(f"{damaged}: 3 unusable file(s), refused under strict mode; expected readable PNG, ")
    assert "received:\n" in message
    for name in ("ant/empty.png", "bee/cut.jpg", "cat/notes.png"):
        assert str(damaged / name) in message
    assert info.value.paths == tuple(str(damaged / n) for n in ("ant/empty.png", "bee/cut.jpg", "cat/notes.png"))


def test_jpeg_truncated_after_its_header_is_caught_by_the_full_load(make_folder, write_image):
    root = make_folder({"ant": 6, "bee": 6})
    rng = np.random.default_rng(0)
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "ant" / "noisy.jpg", quality=95)
    data = (root / "ant" / "noisy.jpg").read_bytes()
    (root / "ant" / "noisy.jpg").write_bytes(data[: int(len(data) * 0.8)])  # header intact, scan data cut
    [(path, reason)] = load_dataset(root).skipped
    assert path == str(root / "ant" / "noisy.jpg")
    assert reason.startswith("corrupt or truncated image (image file is truncated")


def test_empty_class_folder_is_an_error_naming_it(make_folder):
    root = make_folder({"ant": 6, "bee": 6})
    (root / "cat").mkdir()
    (root / "cat" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError) as info:
        load_dataset(root)
    assert str(info.value) == (
        f"{root / 'cat'}: empty class folder 'cat'; expected at least one image (.png .jpg .jpeg .bmp .gif) in "
        "every class folder, received none. Remove the folder or add images to it."
    )


def test_a_class_whose_every_file_is_bad_is_an_error(make_folder):
    root = make_folder({"ant": 6, "bee": 6})
    (root / "cat").mkdir()
    (root / "cat" / "a.png").write_bytes(b"")
    with pytest.raises(DataError) as info:
        load_dataset(root)
    assert str(info.value) == (
        f"{root / 'cat'}: class 'cat' has no readable image; expected at least one readable image per class, "
        "received 1 file(s), all skipped (a.png: empty file (0 bytes))."
    )


def test_a_single_class_is_an_error(make_folder, write_image, colours):
    root = make_folder({"ant": 6})
    write_image(root / "loose.png", colours["bee"])
    with pytest.raises(DataError) as info:
        load_dataset(root)
    assert str(info.value) == (
        f"{root}: fewer than two classes; expected at least 2 class sub-folders, each holding the images of one "
        "class, received 1 class folder(s) ('ant') and 1 image(s) directly in the root."
    )


def test_symlink_outside_the_root_is_refused(make_folder, write_image, colours, tmp_path: Path):
    root = make_folder({"ant": 6, "bee": 6})
    outside = write_image(tmp_path / "elsewhere" / "secret.png", colours["ant"])
    os.symlink(outside, root / "ant" / "link.png")
    os.symlink(root / "bee" / "bee_00.png", root / "ant" / "inside.png")  # inside the root: fine
    bundle = load_dataset(root)
    assert bundle.skipped == [
        (str(root / "ant" / "link.png"), f"symbolic link resolves outside the dataset root (to {outside})")
    ]
    assert sum(counts["ant"] for counts in bundle.class_counts.values()) == 7
    with pytest.raises(DataError, match="1 unusable file") as info:
        load_dataset(root, strict=True)
    assert str(root / "ant" / "link.png") in str(info.value)


def test_image_that_tensorflow_cannot_decode_is_skipped(make_folder):
    from PIL import Image

    root = make_folder({"ant": 6, "bee": 6})
    Image.new("RGB", (10, 12)).save(root / "ant" / "really.png", format="TIFF")
    Image.new("1", (10, 12)).save(root / "bee" / "bits.bmp", format="BMP")
    assert load_dataset(root).skipped == [
        (
            str(root / "ant" / "really.png"),
            "TIFF data, which TensorFlow cannot decode (expected PNG, JPEG, BMP or GIF)",
        ),
        (str(root / "bee" / "bits.bmp"), "a BMP variant (mode 1) that TensorFlow cannot decode"),
    ]


def test_gif_and_bmp_and_rgba_are_read(make_folder):
    from PIL import Image

    root = make_folder({"ant": 6, "bee": 6})
    Image.new("RGB", (10, 12), (200, 30, 30)).save(root / "ant" / "a.gif")
    Image.new("RGB", (10, 12), (200, 30, 30)).save(root / "ant" / "a.bmp")
    Image.new("RGBA", (10, 12), (30, 200, 30, 128)).save(root / "bee" / "a.png")
    bundle = load_dataset(root)
    assert bundle.skipped == [] and sum(bundle.counts.values()) == 15
    x = np.concatenate([bundle.arrays(s)[0] for s in ("train", "validation", "test")])
    assert x.shape == (15, 12, 10, 3)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"x": np.zeros((10, 4, 4), np.uint8), "y": np.zeros(9, np.int64)},
            "F: y: labels do not match the images; expected one label per image (10), received 9 labels.",
        ),
        (
            {"x": np.zeros((10, 4, 4), np.uint8), "y": np.arange(10) % 2, "class_names": np.array(["a"])},
            "F: y: label out of range; expected class indices 0..0 (1 class names), received 1.",
        ),
        (
            {"x": np.zeros((10, 4, 4), np.uint8), "y": np.arange(10) - 1},
            "F: y: label out of range; expected class indices 0..n-1, received -1.",
        ),
        (
            {"x": np.zeros((10, 4, 4), np.uint8), "y": np.linspace(0, 1, 10)},
            "F: y: labels are not class indices; expected integers 0..n-1, received float64 [0.0, 0.1111111111111111, "
            "0.2222222222222222].",
        ),
        (
            {"x": np.zeros((10, 4, 4), np.uint8), "y": np.eye(2)[np.arange(10) % 2]},
            "F: y: wrong shape; expected one integer class index per image, shaped (n,) or (n, 1), received shape "
            "(10, 2). One-hot labels can be turned into indices with y.argmax(axis=1).",
        ),
        (
            {"x": np.full((10, 4, 4), 0.5), "y": np.arange(10) % 2},
            "F: x: pixel values out of range; expected raw pixels, whole numbers 0..255 (uint8), received float64 "
            "values from 0.5 to 0.5. Scaled data (0..1) must be multiplied by 255 and rounded; the models rescale "
            "inside themselves.",
        ),
        (
            {"x": np.zeros((10, 4), np.uint8), "y": np.arange(10) % 2},
            "F: x: wrong shape; expected images shaped (n, height, width) or (n, height, width, channels) with 1 or "
            "3 channels, received shape (10, 4).",
        ),
        (
            {"x": np.zeros((10, 4, 4), np.uint8), "y": np.arange(10) % 3 * 2},
            "class without images; expected at least one image of every class, received no image of class '1', '3'.",
        ),
        (
            {"images": np.zeros((10, 4, 4), np.uint8), "y": np.arange(10) % 2},
            "F: unknown array 'images'; expected arrays x, y, x_train, y_train, x_test, y_test, class_names, "
            "received arrays images, y.",
        ),
        (
            {"x_train": np.zeros((10, 4, 4), np.uint8), "y_train": np.arange(10) % 2, "x_test": np.zeros((4, 4, 4))},
            "F: wrong arrays; expected x and y, or x_train and y_train (optionally x_test and y_test), and optionally "
            "class_names, received arrays x_test, x_train, y_train.",
        ),
    ],
    ids=["length", "above-range", "negative", "non-integer", "one-hot", "scaled", "shape", "gap", "key", "missing"],
)
def test_npz_mismatches_are_refused(save_npz, arrays, message):
    path = save_npz(**arrays)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    assert str(info.value).replace(str(path), "F") == message


def test_npz_with_pickled_objects_is_refused(tmp_path: Path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([object()] * 3, dtype=object), y=np.arange(3))
    with pytest.raises(DataError, match=r"objects\.npz: cannot read; expected plain numeric arrays \(no pickled "):
        load_dataset(path)


def test_unknown_source_suggests_the_names(tmp_path: Path):
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist")
    assert str(info.value) == (
        "unknown dataset 'fashion-mnist'; expected one of digits, shapes, mnist, fashion_mnist, cifar10, cifar100, "
        "a folder of class sub-folders, or an .npz file, received 'fashion-mnist'. Did you mean 'fashion_mnist'?"
    )
    with pytest.raises(DataError, match=r"no such folder '.*missing'; expected one of digits"):
        load_dataset(str(tmp_path / "missing"))
    with pytest.raises(DataError, match=r"missing\.npz: no such file; expected an \.npz file"):
        load_dataset(tmp_path / "missing.npz")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image_size": 0}, "image_size: wrong value; expected an integer 1..4096 or (height, width), received 0."),
        (
            {"color_mode": "rbg"},
            "unknown color_mode 'rbg'; expected one of grayscale, rgb, received 'rbg'. Did you mean 'rgb'?",
        ),
        (
            {"test_fraction": 1.0},
            "test_fraction: out of range; expected a fraction strictly between 0 and 1, received 1.0.",
        ),
        ({"limit": 0}, "limit: wrong value; expected an integer >= 1, received 0."),
        ({"count": 10}, "count: only for the shapes source; expected no value, received 10."),
        (
            {"limit": 12},
            "cannot split 12 images of 10 classes stratified (test fraction 0.25); expected at least 2 "
            "images per class and a share of at least one image per class on each side, received 1 "
            "image(s) in the smallest class.",
        ),
    ],
)
def test_options_are_checked(options, message):
    with pytest.raises(DataError) as info:
        load_dataset("digits", **options)
    assert str(info.value).startswith(message)


@pytest.mark.slow
def test_run_says_which_files_it_skipped_on_screen_and_in_mlflow(damaged: Path, tmp_path: Path):
    """Issue 13: `run` used to skip unreadable files silently (only `data` listed them)."""
    import json

    from tests.helpers import cnn_search, mlflow_client, runs_of

    runs = tmp_path / "runs"
    args = ("run", "tiny", "--data", str(damaged), "--trials", "1", "--epochs", "1", "--runs-dir", str(runs))
    out = cnn_search(*args, "--name", "damaged")
    said = " ".join(out.stderr.split())
    assert f"3 unusable file(s) in {damaged} skipped (empty.png: empty file (0 bytes);" in said, out.stderr[-2000:]
    assert f"cnn-search data {damaged} lists them all" in said
    (parent,), _ = runs_of(runs, "damaged")
    assert parent.data.tags["skipped_files"] == "3"
    listed = mlflow_client(runs).download_artifacts(parent.info.run_id, "skipped_files.json", str(tmp_path))
    skipped = json.loads(Path(listed).read_text())["skipped"]
    assert {Path(s["path"]).name for s in skipped} == {"empty.png", "cut.jpg", "notes.png"}


def test_a_large_jpeg_is_checked_at_a_smaller_dct_scale_yet_keeps_its_size_colour_and_damage(make_folder):
    """The first scan decodes JPEGs at 1/2-1/8 scale (``_DRAFT_SIDE``: here 1/8): the size recorded is still
    the file's own, a 32x32 patch of colour is still seen, and a cut in the scan data is still caught."""
    from PIL import Image

    from search.data._folder import scan_folder

    root = make_folder({"ant": 6, "bee": 6})
    rng = np.random.default_rng(1)
    grey = np.repeat(rng.integers(0, 256, (768, 1024, 1), dtype=np.uint8), 3, axis=2)
    Image.fromarray(grey).save(root / "ant" / "grey.jpg", quality=90)
    spot = grey.copy()
    spot[100:132, 200:232] = (230, 20, 20)
    Image.fromarray(spot).save(root / "ant" / "spot.jpg", quality=90)
    Image.fromarray(spot).save(root / "bee" / "cut.jpg", quality=90)
    data = (root / "bee" / "cut.jpg").read_bytes()
    (root / "bee" / "cut.jpg").write_bytes(data[: int(len(data) * 0.9)])
    scan = scan_folder(root)
    found = {Path(f.path).name: f for f in scan.files}
    assert found["grey.jpg"].size == found["spot.jpg"].size == (768, 1024)
    assert (found["grey.jpg"].color, found["spot.jpg"].color) == (False, True)
    [(path, reason)] = scan.skipped
    assert path == str(root / "bee" / "cut.jpg")
    assert reason.startswith("corrupt or truncated image (image file is truncated")
