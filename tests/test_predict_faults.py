"""`predict` on hostile files (issue 31 items 7, 10, 11, 12; docs/RELIABILITY.md rows 33-35): damaged model
files and bundles, special files as images. One real bundle, made once by a tiny real search and a real
export, is copied and damaged per test; the fuzz cases (Hypothesis) run the package in-process, where a
crash would fail the whole test run: the child-process check of a bare .tflite is what keeps it alive."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search._errors import SearchError

from .helpers import cnn_search, digit_pngs

NAME = "tiny-digits"
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    out = cnn_search("run", "tiny", "--trials", "1", "--epochs", "1", "--seed", "0", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-3000:]
    out = cnn_search("export", NAME, "--runs-dir", str(runs), "--format", "keras,tflite,onnx")
    assert out.returncode == 0, out.stderr[-3000:]
    return runs / "exports" / NAME


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> str:
    return digit_pngs(tmp_path_factory.mktemp("images"), 1)[1][0]


def _one_line_error(out) -> str:
    assert out.returncode == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, out.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped", "random"])
def test_a_damaged_bare_tflite_is_not_a_valid_model_and_the_process_survives(tmp_path, bundle, image, damage):
    """A truncated or bit-flipped .tflite used to kill predict with a segmentation fault (exit 139)."""
    data = bytearray((bundle / "model.tflite").read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 3]
    elif damage == "bit-flipped":
        for i in range(64, len(data), max(1, len(data) // 40)):
            data[i] ^= 0xFF
    else:
        data = bytearray(os.urandom(len(data)))
    model = tmp_path / "model.tflite"
    model.write_bytes(bytes(data))
    line = _one_line_error(cnn_search("predict", str(model), image, timeout=120))
    assert f"{model}: not a valid TFLite model" in line


def test_a_bundle_whose_files_do_not_match_their_sums_is_refused_before_loading(tmp_path, bundle, image):
    """A bundle's SHA256SUMS was never checked: a broken labels.json gave a traceback, files of two exports
    were mixed silently."""
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    (broken / "labels.json").write_text("{not json")
    line = _one_line_error(cnn_search("predict", str(broken), image))
    assert "1 file(s) differ from its SHA256SUMS (labels.json)" in line and "export it again" in line

    mixed = tmp_path / "mixed"
    shutil.copytree(bundle, mixed)
    shutil.copyfile(bundle / "model.onnx", mixed / "model.keras")  # a file of another export in its place
    line = _one_line_error(cnn_search("predict", str(mixed), image))
    assert "(model.keras)" in line and "copied from another export" in line

    unlisted = tmp_path / "unlisted"
    shutil.copytree(bundle, unlisted)
    sums = unlisted / "SHA256SUMS"
    sums.write_text("".join(x + "\n" for x in sums.read_text().splitlines() if not x.endswith("model.tflite")))
    line = _one_line_error(cnn_search("predict", str(unlisted), image, "--runtime", "tflite"))
    assert "model.tflite is not listed in its SHA256SUMS" in line


def test_a_corrupt_keras_file_is_said_to_be_one_not_missing(tmp_path, bundle, image):
    """A corrupt .keras said "File not found" of a file that was there."""
    model = tmp_path / "model.keras"
    model.write_bytes((bundle / "model.keras").read_bytes()[:2000])
    line = _one_line_error(cnn_search("predict", str(model), image))
    assert "not a valid .keras file; expected a zip archive holding config.json" in line
    assert "File not found" not in line


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_an_image_that_is_not_a_regular_file_is_refused_at_once(tmp_path, bundle, kind):
    """`predict MODEL pipe.png` on a FIFO waited forever."""
    path = {"fifo": tmp_path / "pipe.png", "folder": tmp_path / "dir.png", "device": Path("/dev/zero")}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    line = _one_line_error(cnn_search("predict", str(bundle), str(path), timeout=60))  # a hang fails on the timeout
    assert f"{path}: expected a regular image file, received" in line


# -- fuzz: model files and bundle files, in-process ------------------------------------------------
def _damaged(data: bytes, how: str, cut: int, flips: list[int], junk: bytes) -> bytes:
    if how == "cut":
        return data[: cut % max(1, len(data))]
    if how == "flip":
        out = bytearray(data)
        for f in flips:
            out[f % len(out)] ^= 1 << (f % 8)
        return bytes(out)
    return junk


DAMAGE = dict(
    how=st.sampled_from(["cut", "flip", "random"]),
    cut=st.integers(min_value=0),
    flips=st.lists(st.integers(min_value=0), min_size=1, max_size=8),
    junk=st.binary(max_size=4096),
)


@pytest.mark.parametrize("suffix", [".tflite", ".onnx", ".keras"])
def test_fuzzed_model_files_give_a_clean_error_or_a_prediction(tmp_path, bundle, image, suffix):
    from search.export import predict

    original = (bundle / f"model{suffix}").read_bytes()

    @FUZZ
    @given(**DAMAGE)
    def check(how, cut, flips, junk):
        model = Path(tempfile.mkdtemp(dir=tmp_path)) / f"model{suffix}"
        model.write_bytes(_damaged(original, how, cut, flips, junk))
        try:
            (result,) = predict(model, [image])
        except SearchError as exc:
            assert "\n" not in str(exc) and str(model) in str(exc)
        else:  # a flip the format does not notice (padding, a weight): a prediction, as for a valid file
            assert result["top"]

    check()


def test_fuzzed_bundle_files_are_refused_by_their_sums(tmp_path, bundle, image):
    from search.export import predict

    names = ["SHA256SUMS", "labels.json", "input.json", "model.keras"]

    @FUZZ
    @given(name=st.sampled_from(names), **DAMAGE)
    def check(name, how, cut, flips, junk):
        copy = Path(tempfile.mkdtemp(dir=tmp_path)) / "bundle"
        shutil.copytree(bundle, copy)
        original = (copy / name).read_bytes()
        damaged = _damaged(original, how, cut, flips, junk)
        (copy / name).write_bytes(damaged)
        try:
            (result,) = predict(copy, [image])
        except SearchError as exc:
            assert "\n" not in str(exc)
        else:
            assert damaged == original or name == "SHA256SUMS"  # only an unchanged file, or sums still right
            assert result["top"]

    check()
