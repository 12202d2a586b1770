"""Paths with odd characters in a data folder (issue 31, item 11): names that are not UTF-8, spaces, newlines.
Real files written by their bytes into ``tmp_path``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from search.data import DataError, load_dataset

from ..helpers import cnn_search
from .conftest import COLOURS


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 12), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _odd_folder(root: Path) -> Path:
    """Classes ``ant``, ``c\\xe9t`` (a Latin-1 name, not UTF-8) and ``bee hive``; files named with a byte
    that is not UTF-8, a newline, spaces."""
    base = os.fsencode(root)
    for name, colour in ((b"ant", COLOURS["ant"]), (b"c\xe9t", COLOURS["cat"]), (b"bee hive", COLOURS["bee"])):
        os.makedirs(base + b"/" + name)
        for i, file in enumerate((b"x\xff.png", b"new\nline.png", b"a b.png", b"\xe9t\xe9.png", b"ok.png", b"z.png")):
            with open(base + b"/" + name + b"/" + file, "wb") as out:
                out.write(_png((colour[0], colour[1], i)))
    return root


def test_names_that_are_not_utf8_are_read_and_trained_on(tmp_path):
    """TensorFlow could not turn such a path into a tf.string: a ValueError traceback at the first batch."""
    root = _odd_folder(tmp_path / "odd")
    bundle = load_dataset(root)
    assert bundle.class_names == ("ant", "bee hive", "c\\xe9t")  # the byte escaped: printable, recordable
    assert sum(bundle.counts.values()) == 18 and bundle.skipped == []
    images, labels = next(iter(bundle.train(18)))
    assert images.shape[1:] == (12, 10, 3) and len(labels) == bundle.counts["train"]
    x, _ = bundle.arrays("test")
    assert x.shape == (bundle.counts["test"], 12, 10, 3)


def test_two_class_folders_that_would_share_a_name_are_refused(tmp_path):
    base = os.fsencode(tmp_path / "two")
    for name in (b"c\xe9t", b"c\\xe9t"):  # the second is named with the escape the first is shown as
        os.makedirs(base + b"/" + name)
        for i in range(4):
            with open(base + b"/" + name + b"/" + b"%d.png" % i, "wb") as out:
                out.write(_png((i, 2, 3)))
    with pytest.raises(DataError, match=r"two class folders named 'c\\\\xe9t'; .* Rename one of them"):
        load_dataset(tmp_path / "two")


def test_a_data_root_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    """MLflow could not record it: a traceback after the data had loaded."""
    root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/r\xffot"))
    _odd_folder(root)
    with pytest.raises(DataError, match=r"r\\xffot: the path is not UTF-8 text; expected a dataset path whose name"):
        load_dataset(root)
    out = cnn_search("data", str(root))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "the path is not UTF-8 text" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_file_or_a_device_given_as_the_data_folder_is_refused_in_one_line(tmp_path):
    image = tmp_path / "one.png"
    image.write_bytes(_png((1, 2, 3)))
    for data in (image, Path("/dev/null")):
        out = cnn_search("data", str(data))
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert f"error: {data}: not a dataset; expected one of digits" in out.stderr


@pytest.mark.slow
def test_a_search_on_odd_names_trains_and_reports(tmp_path):
    """The report's pictures failed on a class name holding a surrogate (matplotlib cannot draw one)."""
    root = _odd_folder(tmp_path / "odd")
    runs = tmp_path / "runs"
    out = cnn_search("run", "tiny", "--data", str(root), "--trials", "1", "--epochs", "1", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "not made" not in out.stderr, out.stderr[-3000:]


@pytest.fixture
def as_nobody():
    """A context in which this process's effective user is ``nobody`` (root ignores permission bits; CI runs as
    root): entered only when the tests run as root, which can switch back."""
    import contextlib

    if os.geteuid() != 0:
        return contextlib.nullcontext

    @contextlib.contextmanager
    def nobody():
        os.seteuid(65534)
        try:
            yield
        finally:
            os.seteuid(0)

    return nobody


def _open_folder(tmp_path: Path) -> Path:
    """A folder in /tmp that user nobody can reach (pytest's tmp_path is readable by root only)."""
    import tempfile

    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="cnn-search-perm-"))
    root.chmod(0o755)
    return root


def test_a_class_folder_that_cannot_be_listed_is_said_so_not_empty(tmp_path, as_nobody):
    """An unreadable class folder was a PermissionError traceback (then "empty class folder"); one inside a
    class is skipped with its reason."""
    import shutil

    from .conftest import write_image

    root = _open_folder(tmp_path) / "images"
    try:
        for name in ("ant", "bee", "cat"):
            for i in range(8):
                write_image(root / name / f"{i}.png", COLOURS[name])
        write_image(root / "bee" / "locked" / "x.png", COLOURS["bee"])
        for folder in (root, *root.rglob("*")):
            folder.chmod(0o755 if folder.is_dir() else 0o644)
        (root / "bee" / "locked").chmod(0)
        load_dataset(root)  # as root: every module the scan needs is imported before the user changes
        with as_nobody():
            inside = load_dataset(root)
        (root / "cat").chmod(0)
        with as_nobody(), pytest.raises(DataError) as info:
            load_dataset(root)
        assert dict(inside.skipped)[str(root / "bee" / "locked")] == "cannot read this folder (Permission denied)"
        assert str(info.value) == (
            f"{root / 'cat'}: class folder 'cat' cannot be read; expected a class folder whose images can be "
            "listed, received cannot read this folder (Permission denied). Check its permissions (the user "
            "running the search must be able to list it)."
        )
    finally:
        for folder in (root / "cat", root / "bee" / "locked"):
            if folder.exists():
                folder.chmod(0o755)
        shutil.rmtree(root.parent)
