"""Issue 13 (cases 8 and 9), the data side: an image over Pillow's pixel limit in a folder, NaN/inf
pixels and a file that is not an .npz archive, and the bundle's list of skipped files. Real files
in tmp_path; the CLI in a subprocess where it is the message the user sees that matters."""

from __future__ import annotations

import pickle
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import DataError, load_dataset

from ..helpers import cnn_search


def huge_png(path: Path, width: int = 20_000, height: int = 20_000) -> Path:
    """A valid 1-bit PNG of ``width`` x ``height`` written by hand, row by row: a few tens of KB on disk
    and a few MB of memory to make (Pillow's ``Image.new`` would allocate one byte per pixel)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


LIMIT = f"{Image.MAX_IMAGE_PIXELS:,} pixels (PIL.Image.MAX_IMAGE_PIXELS)"


# -- 1. an image over the pixel limit in a dataset folder ---------------------------------------------
def test_an_image_over_the_pixel_limit_is_skipped_with_its_size_and_the_limit(make_folder):
    root = make_folder({"ant": 6, "bee": 6})
    huge_png(root / "ant" / "huge.png")  # 400 M pixels: Pillow raises DecompressionBombError
    huge_png(root / "bee" / "large.png", 10_000, 10_000)  # 100 M: Pillow only warns, and would decode it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning leaks out of the scan either
        bundle = load_dataset(root)
    assert bundle.skipped == [
        (
            str(root / "ant" / "huge.png"),
            f"image too large: 20000x20000 = 400,000,000 pixels, over the limit of {LIMIT}",
        ),
        (
            str(root / "bee" / "large.png"),
            f"image too large: 10000x10000 = 100,000,000 pixels, over the limit of {LIMIT}",
        ),
    ]
    assert sum(bundle.counts.values()) == 12
    with pytest.raises(DataError, match=r"2 unusable file\(s\), refused under strict mode") as info:
        load_dataset(root, strict=True)
    assert f"huge.png: image too large: 20000x20000 = 400,000,000 pixels, over the limit of {LIMIT}" in str(info.value)


@pytest.mark.parametrize(
    ("limit", "pillow_does"),
    [(1000, "warns"), (500, "raises"), (1600, "accepts")],
)
def test_the_pixel_limit_is_pillows_setting_and_its_warning_counts(
    make_folder, write_image, monkeypatch, limit, pillow_does
):
    """A 40x40 image (1,600 pixels) against Image.MAX_IMAGE_PIXELS: between the limit and twice it
    Pillow only warns (refused here all the same), above twice it raises, at the limit it is kept."""
    root = make_folder({"ant": 4, "bee": 4})  # 10x12 = 120 pixels each, under every limit tried
    write_image(root / "ant" / "big.png", (1, 2, 3), size=(40, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    bundle = load_dataset(root, image_size=10)
    if pillow_does == "accepts":
        assert bundle.skipped == [] and sum(bundle.counts.values()) == 9
    else:
        reason = (
            f"image too large: 40x40 = 1,600 pixels, over the limit of {limit:,} pixels (PIL.Image.MAX_IMAGE_PIXELS)"
        )
        assert bundle.skipped == [(str(root / "ant" / "big.png"), reason)]


# -- 3. NaN / inf pixels, and a file that is not an .npz archive ------------------------------------
def test_nan_and_inf_pixels_are_named_with_their_count_and_first_index(save_npz):
    x = np.zeros((20, 4, 4), dtype=np.float32)
    x[3, 0, 1] = np.nan
    x[5, 1, 1] = np.inf
    x[7, 2, 2] = np.nan
    path = save_npz(x=x, y=np.arange(20) % 2)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    assert str(info.value) == (
        f"{path}: x: pixel values not finite (NaN or inf); expected finite values 0..255 (raw pixels, whole numbers), "
        "received 3 of 320 float32 values not finite (2 NaN, 1 inf), the first at index [3, 0, 1, 0] (image 3). "
        "Drop or repair those images: np.isfinite(x).all(axis=(1, 2, 3)) marks the good ones."
    )
    only_inf = save_npz("inf.npz", x_train=np.full((4, 2, 2), -np.inf), y_train=np.array([0, 1, 0, 1]))
    with pytest.raises(
        DataError, match=r"x_train: pixel values not finite .* \(16 inf\), the first at index \[0, 0, 0, 0\]"
    ):
        load_dataset(only_inf)


def _npy(path: Path) -> None:
    with path.open("wb") as f:
        np.save(f, np.zeros(3))


@pytest.mark.parametrize(
    ("write", "received"),
    [
        (
            lambda p: p.write_text("hello, this is not an archive\n"),
            "a text file starting with 'hello, this is not an archive'",
        ),
        (lambda p: p.write_bytes(b""), "an empty file (0 bytes)"),
        (_npy, "a single-array .npy file (np.save), not an .npz archive"),
        (lambda p: p.write_bytes(pickle.dumps({"x": 1})), "a Python pickle"),
        (lambda p: p.write_bytes(bytes(range(32))), "binary data starting with bytes 00 01 02 03 04 05 06 07"),
    ],
    ids=["text", "empty", "npy", "pickle", "binary"],
)
def test_a_file_that_is_not_an_npz_archive_is_said_so(tmp_path, write, received):
    path = tmp_path / "data.npz"
    write(path)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    assert str(info.value) == (
        f"{path}: not an .npz (zip) archive; expected a zip archive of NumPy arrays, as np.savez or "
        f"np.savez_compressed write, received {received}. Save the arrays with np.savez(path, x=images, y=labels)."
    )
    assert "pickled" not in str(info.value)


def test_a_truncated_npz_is_said_damaged(save_npz):
    path = save_npz(x=np.zeros((10, 4, 4), np.uint8), y=np.arange(10) % 2)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError) as info:
        load_dataset(path)
    assert str(info.value) == (
        f"{path}: cannot read; expected a complete NumPy .npz file, received a damaged zip archive (File is not a zip file)."
    )


def test_the_cli_says_a_text_file_is_not_an_npz(tmp_path):
    path = tmp_path / "something.npz"
    path.write_text("label,pixels\n0,1 2 3\n")
    out = cnn_search("data", str(path))
    assert out.returncode == 1, out.stdout[-2000:]
    assert "Traceback" not in out.stderr
    assert (
        f"error: {path}: not an .npz (zip) archive; expected a zip archive of NumPy arrays, as np.savez or "
        "np.savez_compressed write, received a text file starting with 'label,pixels'." in out.stderr
    )


# -- 5. what the caller needs to say which files were skipped ---------------------------------------
def test_the_bundle_carries_the_skipped_files_of_a_folder_and_none_for_arrays(make_folder, save_npz):
    root = make_folder({"ant": 4, "bee": 4})
    (root / "bee" / "zero.png").write_bytes(b"")
    assert load_dataset(root).skipped == [(str(root / "bee" / "zero.png"), "empty file (0 bytes)")]
    npz = save_npz(x=np.zeros((8, 4, 4), np.uint8), y=np.arange(8) % 2)
    assert load_dataset(npz).skipped == []
    assert load_dataset("digits", limit=100).skipped == []


def test_a_search_s_data_is_reloaded_only_as_it_was_recorded():
    """Workers, export and report reload a search's data through one function that checks its fingerprint."""
    from search.data import reload_recorded

    recorded = load_dataset("digits", seed=0).fingerprint
    assert reload_recorded("digits", 0, recorded, search="s", fix="").fingerprint == recorded
    other = load_dataset("digits", seed=1).fingerprint
    with pytest.raises(DataError) as caught:
        reload_recorded("digits", 1, recorded, search="tiny-digits", fix="Pass --data with the search's data.")
    assert str(caught.value) == (
        f"the data of search 'tiny-digits' cannot be reloaded as it was: expected fingerprint {recorded} "
        f"('digits', seed 1), received {other}. Pass --data with the search's data."
    )
