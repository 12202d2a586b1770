"""A runs dir that was moved or copied: its MLflow store made to write inside itself again.

MLflow stores absolute ``file://`` artifact locations: each experiment's (``runs/mlartifacts/NAME``,
set by :class:`search.tracking.Tracker`), each run's, each logged model's and each model version's.
A runs dir moved elsewhere, or copied, kept writing its models and pictures into the original folder
(or failed when that was gone). A store is a folder a user may back up, move and hand over, so
each time a local store is opened (:func:`search.tracking._store.ensure_store`), its experiments'
locations are compared with where the store is now:

* an experiment whose location is ``file://OLD/mlartifacts/NAME`` while the store is ``NEW/mlflow.db``
  (``OLD`` ≠ ``NEW``) and whose artifacts are here (``NEW/mlartifacts/NAME`` exists: they moved with the
  store) is a moved store: every location under ``file://OLD/mlartifacts/`` in the database (experiments,
  runs, logged models, model versions, tags) is rewritten to ``file://NEW/mlartifacts/``, under the
  store's lock, in one transaction, and said once;
* where the artifacts are not here (a ``--tracking-uri`` store kept apart from its ``--runs-dir``),
  nothing is changed.

MLflow cannot keep locations relative to the store (a relative location is read relative to the
current folder), hence the rewrite. The check is one read-only query (milliseconds) when nothing moved.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger("search")

ROOT = "mlartifacts"


def moved_roots(db: Path) -> list[str]:
    """The artifact roots (``file://OLD/mlartifacts``) the store ``db`` points at that are not its own
    folder's, for experiments whose artifacts are in its own folder."""
    here = (db.parent / ROOT).resolve()
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute(
            "SELECT name, artifact_location FROM experiments WHERE artifact_location LIKE 'file://%'"
        ).fetchall()
    except sqlite3.DatabaseError:  # not a whole store: check_store says so
        return []
    finally:
        connection.close()
    roots = set()
    for name, location in rows:
        root, _, last = str(location).rstrip("/").rpartition("/")
        if root.endswith(f"/{ROOT}") and root != here.as_uri() and (here / name).is_dir() and last:
            roots.add(root)
    return sorted(roots)


def _text_columns(connection: sqlite3.Connection) -> list[tuple[str, str]]:
    """(table, column) of every text column of the store."""
    found = []
    for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        for row in connection.execute(f'PRAGMA table_info("{table}")'):
            kind = str(row[2]).upper()
            if any(word in kind for word in ("CHAR", "TEXT", "CLOB")):
                found.append((table, row[1]))
    return found


def relocate(db: Path) -> int:
    """Rewrite the locations of a moved store (module docstring), the caller holding the store's lock;
    returns the number of values changed."""
    roots = moved_roots(db)
    if not roots:
        return 0
    new = (db.parent / ROOT).resolve().as_uri()
    changed = 0
    connection = sqlite3.connect(db, timeout=30)
    try:
        with connection:
            for old in roots:
                prefix = old + "/"
                for table, column in _text_columns(connection):
                    cursor = connection.execute(
                        f'UPDATE "{table}" SET "{column}" = ? || substr("{column}", ?) '
                        f'WHERE substr("{column}", 1, ?) = ?',
                        (new, len(old) + 1, len(prefix), prefix),
                    )
                    changed += cursor.rowcount
    finally:
        connection.close()
    log.warning(
        "the runs dir %s was moved or copied from %s: %d artifact location(s) in its MLflow store rewritten to "
        "point inside it",
        db.parent,
        ", ".join(r.removeprefix("file://").removesuffix(f"/{ROOT}") for r in roots),
        changed,
    )
    return changed
