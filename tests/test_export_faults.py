"""Issue 13 (cases 8 and 9), the predict and export side: an image over Pillow's pixel limit, a
colour conversion said like a resize, an ``--out`` that cannot be written. Tiny untrained Keras
models saved as ``.keras`` files (predict takes a single file; no search needed); the real CLI in
subprocesses where it is the message the user sees that matters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from search._errors import SearchError

from .data.test_data_faults import huge_png
from .helpers import cnn_search


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[int, Path]:
    """``{channels: path}``: 8x8 grayscale and 8x8 RGB input, three classes."""
    import keras

    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for channels in (1, 3):
        model = keras.Sequential(
            [keras.Input((8, 8, channels)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
        )
        paths[channels] = folder / f"c{channels}.keras"
        model.save(paths[channels])
    return paths


# -- 1. an image over the pixel limit ----------------------------------------------------------------
def test_predict_refuses_an_image_over_the_pixel_limit_naming_its_size(models, tmp_path):
    big = huge_png(tmp_path / "big.png")  # 20000x20000: Pillow's DecompressionBombError, a traceback before
    out = cnn_search("predict", str(models[1]), str(big))
    assert out.returncode == 1, out.stdout[-2000:]
    assert "Traceback" not in out.stderr
    assert (
        f"error: {big}: image too large to open safely (Pillow's decompression-bomb guard); expected at most "
        f"{Image.MAX_IMAGE_PIXELS:,} pixels (PIL.Image.MAX_IMAGE_PIXELS), received 20000x20000 = 400,000,000 "
        "pixels. Shrink it first: the model takes 8x8." in out.stderr
    )


def test_predict_refuses_an_image_pillow_only_warns_about(models, tmp_path):
    """10000x10000 (100 M pixels): over the limit but under twice it, where Pillow only warns and decodes."""
    from search.export import predict

    big = huge_png(tmp_path / "large.png", 10_000, 10_000)
    with pytest.raises(SearchError, match=r"large\.png: image too large .* received 10000x10000 = 100,000,000 pixels"):
        predict(models[1], [big])


# -- 2. a colour conversion is said, like a resize -------------------------------------------------------
def test_predict_says_a_colour_image_was_made_grey_in_its_table(models, tmp_path):
    colour = tmp_path / "colour.png"
    Image.new("RGB", (8, 8), (200, 30, 30)).save(colour)
    grey_rgb = tmp_path / "grey_rgb.png"  # an RGB file of grey pixels: nothing is lost, nothing to say
    Image.new("RGB", (8, 8), (90, 90, 90)).save(grey_rgb)
    grey_big = tmp_path / "grey_big.png"
    Image.new("L", (16, 16), 90).save(grey_big)
    out = cnn_search("predict", str(models[1]), str(colour), str(grey_rgb), str(grey_big))
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert f"{colour}  [keras]  (converted from colour (mode RGB) to grayscale)" in lines
    assert f"{grey_rgb}  [keras]" in lines
    assert f"{grey_big}  [keras]  (resized from 16x16 to 8x8)" in lines


def test_predict_notes_grey_made_rgb_and_dropped_transparency(models, tmp_path):
    from search.export import predict

    grey = tmp_path / "grey.png"
    Image.new("L", (4, 4), 90).save(grey)
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (10, 200, 10, 0)).save(clear)
    opaque = tmp_path / "opaque.png"
    Image.new("RGBA", (8, 8), (10, 200, 10, 255)).save(opaque)
    notes = [r["note"] for r in predict(models[3], [grey, clear, opaque])]
    assert notes == ["converted from grayscale (mode L) to RGB; resized from 4x4 to 8x8", "transparency dropped", ""]


# -- 4. an --out that cannot be written ----------------------------------------------------------------
# Tests run as root in CI, and root ignores permission bits (a chmod 555 folder is writable to it),
# so the cases below fail for root too: a file where a folder is expected, and /proc, where nobody
# can create a folder. A chmod case runs as well when the tests do not run as root.
def _unwritable_cases(tmp_path: Path) -> list[tuple[Path, str]]:
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    cases = [
        (
            afile / "sub",
            f"--out {afile / 'sub'}: cannot create the bundle folder, {afile} is a file; expected a path whose parents "
            f"are folders, received a file at {afile}. Pass --out a folder you can write to.",
        ),
        (
            afile,
            f"--out {afile}: not a folder; expected a folder for the bundle (existing or to be created), received a "
            "file. Pass --out a folder you can write to, or move the file away.",
        ),
    ]
    if Path("/proc/self").is_dir():
        cases.append(
            (
                Path("/proc/cnn-search-bundle/deeper"),
                "--out /proc/cnn-search-bundle/deeper: cannot write there; expected a folder where the bundle can be "
                "created, received an error creating a folder in /proc: ",
            )
        )
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        cases.append(
            (
                locked / "bundle",
                f"--out {locked / 'bundle'}: cannot write there; expected a folder where the bundle can be created, "
                f"received an error creating a folder in {locked}: Permission denied. Pass --out a folder you can "
                f"write to, or make {locked} writable (chmod u+w, or a read-write mount).",
            )
        )
    return cases


def test_an_unwritable_out_is_refused_before_any_work(tmp_path):
    """The search does not even exist: --out is checked first, so nothing is looked up, loaded or written."""
    from search.export import export_search

    cases = _unwritable_cases(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    for out, message in cases:
        with pytest.raises(SearchError) as info:
            export_search("no-such-search", out=out, runs_dir=tmp_path / "runs", formats=["keras"])
        assert str(info.value).startswith(message), (out, str(info.value))
    assert sorted(tmp_path.rglob("*")) == before  # nothing made: no runs folder, no partial bundle, no probe
    assert not Path("/proc/cnn-search-bundle").exists()


def test_a_writable_out_with_missing_parents_passes_the_check_and_leaves_nothing(tmp_path):
    from search.export._out import _check_writable

    _check_writable(tmp_path / "a" / "b" / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_the_cli_refuses_an_unwritable_out_in_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    out = cnn_search("export", "tiny-digits", "--out", str(afile / "sub"), "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 1, out.stdout[-2000:]
    assert "Traceback" not in out.stderr
    assert f"error: --out {afile / 'sub'}: cannot create the bundle folder, {afile} is a file;" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
