"""``data_command`` through a small typer app, the way ``cnn-search data`` registers it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from search.data._cli import data_command


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("data")(data_command)

    @app.callback()
    def main() -> None:
        """A group, so the command is called by name as in cnn-search."""

    return app


def test_summary_of_a_folder_with_a_skipped_file(app, make_folder):
    root = make_folder({"ant": 6, "bee": 6})
    (root / "bee" / "zero.png").write_bytes(b"")
    result = CliRunner().invoke(app, ["data", str(root), "--image-size", "8", "--seed", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == [f"source: {root}", "images: 8x8x3 uint8 (rgb), streamed from disk", "classes: 2"]
    assert lines[3].startswith("fingerprint: ") and len(lines[3].split()[1]) == 16
    assert "ant                   3          1          2" in lines
    assert "total                 7          2          3" in lines
    assert lines[-2:] == ["skipped: 1 file(s)", f"  {root / 'bee' / 'zero.png'}: empty file (0 bytes)"]


def test_preview_writes_a_png_grid(app, tmp_path: Path):
    out = tmp_path / "preview.png"
    result = CliRunner().invoke(app, ["data", "digits", "--limit", "100", "--color-mode", "rgb", "--preview", str(out)])
    assert result.exit_code == 0, result.output
    assert "images: 8x8x3 uint8 (rgb), in memory" in result.stdout
    assert result.stdout.rstrip().endswith(f"preview: {out}")
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (8 * 72, 5 * 86)  # 10 classes x 4 images, 8 per row
        pixels = np.asarray(image.convert("L"))
    assert pixels.min() == 0 and pixels.max() == 255  # digits and labels drawn on white


def test_bad_data_prints_one_error_line_and_exits_1(app, make_folder):
    root = make_folder({"ant": 6, "bee": 6})
    (root / "bee" / "zero.png").write_bytes(b"")
    result = CliRunner().invoke(app, ["data", str(root), "--strict"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {root}: 1 unusable file(s), refused under strict mode; expected ")
    assert str(root / "bee" / "zero.png") in result.stderr
    assert "Traceback" not in result.output


def test_unknown_name_and_bad_option(app):
    result = CliRunner().invoke(app, ["data", "cifar"])
    assert result.exit_code == 1
    assert "error: unknown dataset 'cifar'; expected one of digits, shapes, mnist" in result.stderr
    result = CliRunner().invoke(app, ["data", "digits", "--color-mode", "greyscale"])
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("received 'greyscale'. Did you mean 'grayscale'?")


def test_data_on_a_folder_prints_no_tensorflow_start_up_lines(make_folder, tmp_path: Path):
    """In a fresh process as a user runs it: a folder is read through TensorFlow, whose C++ start-up lines
    (oneDNN, cuda drivers, the CPU feature guard) were printed before the summary."""
    from tests.helpers import cnn_search

    root = make_folder({"ant": 6, "bee": 6})
    out = cnn_search("data", str(root), "--preview", str(tmp_path / "p.png"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f"source: {root}\n")
    noise = ("oneDNN", "cuda drivers", "absl::InitializeLog", "cpu_feature_guard", "rebuild TensorFlow")
    assert [line for line in out.stderr.splitlines() if any(n in line for n in noise)] == [], out.stderr
