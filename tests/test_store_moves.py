"""Issue 31, items 2-3: a runs dir is a folder a user may move, copy and hand over; a store whose Optuna study
is gone is not mixed with a new search. Real searches, a real MLflow store, real moves and copies."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from .helpers import cnn_search, runs_of

pytestmark = pytest.mark.slow
NAME = "tiny-digits"


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _locations(runs: Path) -> list[str]:
    """Every artifact location the store holds (experiments of the search, runs, logged models, versions)."""
    connection = sqlite3.connect(runs / "mlflow.db")
    try:
        rows = connection.execute(
            "SELECT artifact_location FROM experiments WHERE experiment_id > 0 UNION ALL SELECT artifact_uri FROM runs "
            "UNION ALL SELECT artifact_location FROM logged_models UNION ALL SELECT storage_location FROM model_versions"
        ).fetchall()
    finally:
        connection.close()
    return [r[0] for r in rows]


def test_a_moved_then_copied_runs_dir_writes_only_inside_itself(tmp_path):
    """MLflow keeps absolute artifact locations: a moved store failed (the old folder gone) and a copy wrote its
    models and pictures into the original."""
    first = tmp_path / "a" / "runs"
    args = ["run", "tiny", "--epochs", "1", "--seed", "0"]
    out = cnn_search(*args, "--trials", "2", "--no-report", "--runs-dir", str(first))
    assert out.returncode == 0, out.stderr[-2000:]

    moved = tmp_path / "b" / "runs"
    moved.parent.mkdir()
    first.rename(moved)
    shutil.rmtree(tmp_path / "a")
    out = cnn_search(*args, "--trials", "3", "--no-report", "--runs-dir", str(moved))
    assert out.returncode == 0, out.stderr[-2000:]
    said = " ".join(out.stderr.split())
    assert f"the runs dir {moved} was moved or copied from {first}" in said
    assert not (tmp_path / "a").exists()  # nothing written where it was
    here = (moved / "mlartifacts").as_uri() + "/"
    assert all(loc.startswith(here) for loc in _locations(moved)), _locations(moved)

    copy = tmp_path / "c" / "runs"
    shutil.copytree(moved, copy)
    before = _tree(moved)
    out = cnn_search(*args, "--trials", "4", "--runs-dir", str(copy))  # with the report: pictures are artifacts
    assert out.returncode == 0, out.stderr[-2000:]
    exported = cnn_search("export", NAME, "--format", "keras", "--runs-dir", str(copy))
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert _tree(moved) == before  # the original untouched by the copy's search, report and export
    inside = (copy / "mlartifacts").as_uri() + "/"
    assert all(loc.startswith(inside) for loc in _locations(copy)), _locations(copy)
    parents, children = runs_of(copy, NAME)
    assert len(parents) == 1 and len(children) == 4
    artifacts = [Path(r.info.artifact_uri.removeprefix("file://")) for r in [*parents, *children]]
    assert all(copy in p.parents for p in artifacts)
    assert any(p.is_dir() and any(p.iterdir()) for p in artifacts)  # the copy's own artifacts are in the copy
