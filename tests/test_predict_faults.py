"""`predict` on hostile files (issue 31 items 7, 10, 11, 12; docs/RELIABILITY.md rows 33-35): damaged model
files and bundles, special files as images, models that load but are not image classifiers. One real bundle,
made once by a tiny real search and a real export, is copied and damaged per test (the CLI in a subprocess
where the message the user sees matters). The fuzz cases are in ``tests/test_predict_fuzz.py``."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from search._errors import SearchError

from .helpers import cnn_search, digit_pngs

NAME = "tiny-digits"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A real bundle (keras, tflite, onnx) of a tiny real search: one per test module that uses it."""
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


def test_a_bundle_listing_a_file_outside_itself_is_refused(tmp_path, bundle, image):
    """A name in SHA256SUMS that leaves the bundle (``..``, absolute) was hashed wherever it pointed."""
    from search.export import predict
    from search.export._out import sha256

    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the bundle")
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    with (copy / "SHA256SUMS").open("a") as f:
        f.write(f"{sha256(outside)}  ../outside.txt\n")
    with pytest.raises(SearchError, match=r"line \d+ is not 'SHA256  FILE' \(a file inside the bundle\).*export it"):
        predict(copy, [image])


def test_a_labels_file_beside_a_bare_model_must_name_each_class(tmp_path, bundle, image):
    """A labels.json naming 3 classes beside a 10-class model was an IndexError (or wrong names)."""
    from search.export import predict

    model = tmp_path / "model.keras"
    shutil.copyfile(bundle / "model.keras", model)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(["a", "b", "c"]))
    with pytest.raises(SearchError, match=r"gives 10 classes but its labels\.json names 3; expected one name per"):
        predict(model, [image])
    labels.write_bytes(b'["\xff"]')
    with pytest.raises(SearchError, match=r"labels\.json: expected UTF-8 text, received bytes that are not"):
        predict(model, [image])
    labels.write_text(json.dumps(["x" * 100] * 20_000))  # 2 MB
    with pytest.raises(SearchError, match=r"labels\.json: expected at most 1024 KiB, received more"):
        predict(model, [image])


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ("rank", r"the model's input is not an image; expected \(height, width, 1 or 3 channels\).*received \(64,\)"),
        ("channels", r"the model's input is not an image.*received \(8, 8, 2\)"),
        ("unfixed", r"the model's input is not an image.*received \(-1, -1, 1\) \(-1: a size it does not fix\)"),
        ("output", r"expected one row of class probabilities per image \(1, classes\), received an output of shape"),
    ],
)
def test_a_model_that_is_not_an_image_classifier_is_one_line(tmp_path, image, layers, expected):
    """Real Keras models saved as .keras: another input rank, 2 channels, an unfixed size or a 4-D output went
    on to a ValueError, an IndexError or a TypeError."""
    import keras

    from search.export import predict

    shape = {"rank": (64,), "channels": (8, 8, 2), "unfixed": (None, None, 1), "output": (8, 8, 1)}[layers]
    inputs = keras.Input(shape)
    head = keras.layers.Conv2D(3, 1) if layers == "output" else keras.layers.Dense(3, activation="softmax")
    path = tmp_path / f"{layers}.keras"
    keras.Model(inputs, head(inputs)).save(path)
    with pytest.raises(SearchError, match=expected) as caught:
        predict(path, [image])
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_damaged_onnx_is_one_line_without_onnxruntimes_banner(tmp_path, bundle, image):
    """A name in the ONNX graph that is not UTF-8 made onnxruntime print an "EP Error" banner on stdout (and
    retry) before its error."""
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[data.index(b"rescaling")] ^= 0x80
    model = tmp_path / "model.onnx"
    model.write_bytes(bytes(data))
    out = cnn_search("predict", str(model), image, "--format", "json")
    assert f"{model}: not a valid ONNX model" in _one_line_error(out)
    assert out.stdout == ""


def test_the_child_trying_a_bare_tflite_is_bounded_in_time_and_memory(tmp_path, bundle):
    """The child that tries a bare .tflite: one still running after the timeout is killed and said (a model that
    loops, a fork that deadlocked), and one that claims more memory than allowed fails there. The loaders are
    real code run in the real child; the model file is the bundle's."""
    import numpy as np

    from search.export._checks import check_tflite

    def hangs(path):
        time.sleep(60)

    def claims_6_gib(path):
        return np.zeros(6 << 30, "uint8")  # lazily mapped when not capped: the cap is what refuses it

    model = bundle / "model.tflite"
    started = time.monotonic()
    with pytest.raises(SearchError, match=r"not a valid TFLite model: loading and running it once took over 2 s"):
        check_tflite(model, hangs, timeout=2)
    assert time.monotonic() - started < 20
    with pytest.raises(SearchError, match=r"not a valid TFLite model \(MemoryError"):
        check_tflite(model, claims_6_gib)
