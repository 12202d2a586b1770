"""The kept checks of a folder's images (search/data/_scan_cache.py), on real files: reused for the
files unchanged since the last scan, refreshed for those that changed, never trusted when corrupt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import search.data._folder as folder_module
from search.data._folder import scan_folder
from search.data._scan_cache import cache_dir


@pytest.fixture
def opened(monkeypatch):
    """The paths the scan opens and checks (a spy on the real check: every call still runs it)."""
    seen: list[str] = []
    real = folder_module._check_image

    def spy(path: str, label: int):
        seen.append(path)
        return real(path, label)

    monkeypatch.setattr(folder_module, "_check_image", spy)
    return seen


def _cached(root: Path) -> dict:
    (kept,) = [json.loads(p.read_text()) for p in cache_dir().glob("*.json") if str(root) in p.read_text()]
    return kept["files"]


def test_a_rescan_opens_only_what_changed_and_finds_the_same(make_folder, opened, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_SEARCH_CACHE", str(tmp_path / "cache"))
    root = make_folder({"ant": 4, "bee": 4})
    first = scan_folder(root)
    assert len(opened) == 8 and len(_cached(root)) == 8
    opened.clear()
    again = scan_folder(root)
    assert opened == [] and again == first  # nothing opened; the same classes, files, digests and order
    # one file truncated, one added, one removed: only the first two are opened again
    changed = root / "ant" / "ant_00.png"
    data = changed.read_bytes()
    changed.write_bytes(data[: len(data) * 2 // 3])
    added = root / "bee" / "bee_99.png"
    added.write_bytes((root / "bee" / "bee_00.png").read_bytes())
    (root / "ant" / "ant_03.png").unlink()
    opened.clear()
    third = scan_folder(root)
    assert sorted(opened) == sorted([str(changed), str(added)])
    assert [path for path, _ in third.skipped] == [str(changed)] and third.skipped[0][1].startswith(
        "corrupt or truncated image"
    )
    assert len(third.files) == 8 - 1 + 1 - 1 and str(added) in {f.path for f in third.files}
    assert set(_cached(root)) == {f.path for f in third.files} | {str(changed)}  # the removed file forgotten


def test_a_corrupt_cache_is_ignored_and_the_cache_can_be_turned_off(make_folder, opened, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_SEARCH_CACHE", str(tmp_path / "cache"))
    root = make_folder({"ant": 3, "bee": 3})
    first = scan_folder(root)
    for kept in cache_dir().glob("*.json"):
        kept.write_text("{not json")
    opened.clear()
    assert scan_folder(root) == first and len(opened) == 6  # checked again, and the cache written whole
    assert len(_cached(root)) == 6
    monkeypatch.setenv("CNN_SEARCH_SCAN_CACHE", "off")
    monkeypatch.setenv("CNN_SEARCH_CACHE", str(tmp_path / "other"))
    opened.clear()
    assert scan_folder(root) == first and len(opened) == 6
    assert not (tmp_path / "other").exists()
