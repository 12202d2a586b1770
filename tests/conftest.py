from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The empty MLflow store copied for new stores (search/tracking/_store.py) is kept per test process,
# not in the user's cache; the processes the tests start inherit it.
os.environ.setdefault("CNN_SEARCH_CACHE", tempfile.mkdtemp(prefix="cnn-search-cache-"))

ROOT = Path(__file__).resolve().parents[1]
SPACES = ROOT / "spaces"


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a YAML text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "space.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
