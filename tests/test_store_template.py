"""A new MLflow store is a copy of an empty one kept per MLflow version after the first migration
(search/tracking/_store.py), with the Default experiment made as MLflow makes it here and now; a
template that cannot be used, or a cache that cannot be written, never fails a store (real MLflow,
real SQLite files)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from search.tracking._store import ensure_store, template_path


def _schema(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'marker%' ORDER BY name")
        return [(name, sql) for name, sql in rows]


def _default_experiment(db: Path) -> tuple[str, int]:
    with sqlite3.connect(db) as connection:
        row = connection.execute("SELECT artifact_location, creation_time FROM experiments WHERE experiment_id = 0")
        location, created = row.fetchone()
        return location, created


def test_the_first_store_is_migrated_and_kept_and_the_next_one_is_a_localised_copy(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("CNN_SEARCH_CACHE", str(tmp_path / "cache"))
    template = template_path()
    assert template is not None and template.parent == tmp_path / "cache" and "mlflow-" in template.name
    first = tmp_path / "a" / "mlflow.db"
    monkeypatch.chdir(tmp_path)
    ensure_store(f"sqlite:///{first}")
    assert template.is_file() and _schema(template) == _schema(first)
    _, template_created = _default_experiment(template)

    with sqlite3.connect(template) as connection:  # a marker only a copy of this very file can carry
        connection.execute("CREATE TABLE marker (x INTEGER)")
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "b")
    second = tmp_path / "b" / "runs" / "mlflow.db"
    ensure_store(f"sqlite:///{second}")
    with sqlite3.connect(second) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "marker" in tables  # copied, not migrated again
    assert _schema(second) == _schema(first)
    location, created = _default_experiment(second)
    assert location == (tmp_path / "b" / "runs" / "mlartifacts" / "0").as_uri() and created >= template_created
    assert _default_experiment(first)[0] == (tmp_path / "a" / "mlartifacts" / "0").as_uri()  # never the cwd's
    client = MlflowClient(tracking_uri=f"sqlite:///{second}")  # MLflow takes the copy as its own store
    experiment = client.create_experiment("copied", artifact_location=str(tmp_path / "art"))
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "val_accuracy", 0.5)
    assert client.get_run(run.info.run_id).data.metrics == {"val_accuracy": 0.5}
    assert not list(second.parent.glob(".mlflow.db.creating-*"))


@pytest.mark.parametrize("bad", ["random bytes", "a store holding a run"])
def test_a_template_that_is_not_an_empty_store_is_not_copied_and_is_replaced(tmp_path, monkeypatch, bad):
    from mlflow import MlflowClient

    monkeypatch.setenv("CNN_SEARCH_CACHE", str(tmp_path / "cache"))
    template = template_path()
    assert template is not None
    if bad == "random bytes":
        template.parent.mkdir(parents=True)
        template.write_bytes(b"\x00\x01not a database" * 100)
    else:
        ensure_store(f"sqlite:///{tmp_path / 'used' / 'mlflow.db'}")
        client = MlflowClient(tracking_uri=f"sqlite:///{template}")
        client.create_run(client.create_experiment("someone's"))
    db = tmp_path / "new" / "mlflow.db"
    ensure_store(f"sqlite:///{db}")
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)
        assert connection.execute("SELECT COUNT(*) FROM experiments").fetchone() == (1,)  # Default only
    if bad == "random bytes":  # replaced by the freshly migrated store
        assert template.read_bytes().startswith(b"SQLite format 3\x00") and _schema(template) == _schema(db)


def test_a_cache_that_cannot_be_written_never_fails_a_store(tmp_path, monkeypatch):
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CNN_SEARCH_CACHE", str(blocker))
    db = tmp_path / "runs" / "mlflow.db"
    ensure_store(f"sqlite:///{db}")
    assert db.is_file() and any(name == "runs" for name, _ in _schema(db))
    assert blocker.read_text() == "not a folder" and not list(tmp_path.glob("**/.*.tmp"))
