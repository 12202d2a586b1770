"""The wheel ships the ready-made spaces inside the package, where load_space finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_spaces_and_typed_marker(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    [wheel] = tmp_path.glob("cnn_search-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"search/spaces/{p.name}" for p in (ROOT / "spaces").glob("*.yaml")}
    assert shipped and shipped <= names
    assert "search/spaces/schema.json" in names and "search/py.typed" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "cnn-search = search.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    # installed from the wheel, load_space reads the packaged copy
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    code = "import search.space as s; print(s.spaces_dir()); print(s.load_space('vgg').name)"
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(target), "PATH": ""},
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [str(target / "search" / "spaces"), "vgg"]
