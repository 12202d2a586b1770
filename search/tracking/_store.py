"""The local MLflow store (``runs/mlflow.db``): created whole or not at all, checked before a search starts.

MLflow creates an SQLite store by running some 50 alembic migrations in place on first use. Two
processes doing that at once, or a kill in the middle, used to leave a half-made database that every
later run failed on ("table ... already exists"). Decisions:

* **Created once, atomically.** :func:`ensure_store` takes an exclusive lock (``mlflow.db.lock``
  beside the store, ``fcntl.flock``: released by the kernel when a process dies) and, if the store
  does not exist, lets MLflow create it under a temporary name in the same folder, then renames it
  into place. A second process waits on the lock and finds the store made; a kill mid-creation
  leaves only a temporary file, removed by the next creation.
* **Made from a template after the first time.** The migrations cost about 2 s of CPU, paid by every
  new ``--runs-dir`` while the workers import TensorFlow on the same cores. The first store a given
  MLflow version makes on a machine is copied, empty, to ``~/.cache/cnn-search/mlflow-VERSION-store.db``
  (``$CNN_SEARCH_CACHE`` or ``$XDG_CACHE_HOME/cnn-search`` if set); later new stores are copies of it
  with the Default experiment's times rewritten (now) and its artifact location, there and in a store
  migrated afresh, the store's own ``mlartifacts/0`` (MLflow's default is the current folder's
  ``mlruns/0``). A template that is missing, unreadable, not an empty store of
  that version, or a cache folder that cannot be written, means migrations as before, never an error.
* **Checked before any trial.** :func:`check_store` (no MLflow import, milliseconds) refuses a file
  that is not an SQLite database, or a folder the store cannot be written in, with the path and the
  fix. A half-made store left by an older version (tables but no ``alembic_version``, and no run
  recorded in it) is moved aside to ``mlflow.db.broken-<time>`` and made again; one that holds runs is
  never touched: the message names ``mlflow db upgrade``.

* **Moved with its folder.** A store whose runs dir was moved or copied has its artifact locations
  rewritten to point inside it when it is opened (:mod:`search.tracking._moved`).

Only ``sqlite:///`` stores are handled here; a tracking server or another database is the server's
business (MLflow migrates those with ``mlflow db upgrade``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from search._errors import SearchError
from search.tracking._moved import moved_roots, relocate

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger("search")

_SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of an ``sqlite:///`` tracking URI, else None."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri.removeprefix("sqlite:///")
    return None if path in ("", ":memory:") else Path(path)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the file ``path`` (made if missing), held by this process until the block
    ends or the process dies (``fcntl.flock``). Local: processes on other machines do not see it."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def store_lock(db: Path) -> contextlib.AbstractContextManager[None]:
    """The lock beside the store ``db`` (``mlflow.db.lock``) under which it is created or repaired."""
    return file_lock(db.with_name(db.name + ".lock"))


def search_lock(runs_dir: Path, name: str) -> contextlib.AbstractContextManager[None]:
    """The lock of search ``name`` (``runs/.locks/NAME.lock``): two processes of one search on this
    machine create its parent run, and evaluate and register its winner, one after the other."""
    return file_lock(Path(runs_dir) / ".locks" / f"{name}.lock")


def check_writable(folder: Path, *, what: str, fix: str) -> None:
    """Refuse ``folder`` if a file cannot be created in it (creating it first)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SearchError(
            f"{what} {folder}: cannot write there ({type(exc).__name__}: {exc.strerror or exc}); expected a "
            f"folder this user can write; {fix}"
        ) from None


def _header(db: Path) -> bytes:
    """The first bytes of ``db``: :data:`_SQLITE_HEADER` for an SQLite database."""
    with open(db, "rb") as f:
        return f.read(len(_SQLITE_HEADER))


def _tables(db: Path) -> tuple[set[str], str | None, int | None]:
    """(tables, alembic revision, number of runs) of the SQLite file ``db``, read-only."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        revision = None
        if "alembic_version" in tables:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        runs = connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0] if "runs" in tables else None
        return tables, revision, runs
    finally:
        connection.close()


def check_store(tracking_uri: str) -> None:
    """Refuse, before anything starts, a local store that cannot be used; repair a half-made empty one.
    Nothing for a store that does not exist yet (it is created by :func:`ensure_store`)."""
    db = sqlite_path(tracking_uri)
    if db is None:
        return
    check_writable(db.parent, what="the MLflow store's folder", fix="choose another --runs-dir or fix its permissions")
    if not db.exists() or db.stat().st_size == 0:
        return
    if db.is_dir() or not os.access(db, os.R_OK | os.W_OK):
        raise SearchError(
            f"MLflow store {db}: not a file this user can read and write; expected the store cnn-search made there. "
            f"Fix its permissions, or choose another --runs-dir"
        )
    header = _header(db)
    if header != _SQLITE_HEADER:
        raise SearchError(
            f"MLflow store {db}: not an SQLite database (it starts with {header[:8]!r}); expected the store "
            f"cnn-search made there. It was left as it is: move it away (mv {db} {db}.bad) and run again to "
            "start an empty store, or choose another --runs-dir"
        )
    with store_lock(db):
        try:
            tables, revision, runs = _tables(db)
        except sqlite3.DatabaseError as exc:
            raise SearchError(
                f"MLflow store {db}: cannot be read ({exc}); expected the store cnn-search made there. It was left "
                f"as it is: move it away (mv {db} {db}.bad) and run again to start an empty store"
            ) from None
        if revision is not None and "runs" in tables:
            return
        if runs:  # half-made but holding runs: never thrown away
            raise SearchError(
                f"MLflow store {db}: its schema is incomplete (no alembic_version) but it holds {runs} runs; "
                f"expected a complete store. Try: mlflow db upgrade sqlite:///{db}"
            )
        broken = db.with_name(f"{db.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(db, broken)
    log.warning(
        "MLflow store %s was half-made (a process stopped while creating it) and held no run: moved to %s, "
        "a new one is made",
        db,
        broken,
    )


def ensure_store(tracking_uri: str) -> None:
    """Create a local store whole (see the module docstring); nothing when it exists or is not local."""
    db = sqlite_path(tracking_uri)
    if db is None:
        return
    if db.exists() and db.stat().st_size > 0:
        if moved_roots(db):  # a runs dir moved or copied: made to write inside itself (search.tracking._moved)
            with store_lock(db):
                relocate(db)
        return
    with store_lock(db):
        if db.exists() and db.stat().st_size > 0:  # made by another process while this one waited
            return
        from mlflow import MlflowClient

        for old in db.parent.glob(f".{db.name}.creating-*"):  # left by a process killed mid-creation
            old.unlink(missing_ok=True)
        tmp = db.with_name(f".{db.name}.creating-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        template = template_path()
        if template is not None and _empty_store(template):
            shutil.copyfile(template, tmp)
        else:
            client = MlflowClient(tracking_uri=f"sqlite:///{tmp}")
            client.search_experiments(max_results=1)  # runs MLflow's migrations on the temporary file
            client.search_registered_models(max_results=1)
            if template is not None:
                _keep_template(tmp, template)
        _localise(tmp, db.parent)
        os.replace(tmp, db)


def installed_mlflow() -> tuple[str, str] | None:
    """(distribution, version) of the installed MLflow: ``mlflow``, or ``mlflow-skinny`` (the small wheel a GPU
    machine without network is given, benchmarks/gpu_wheels.sh); None when neither is installed."""
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("mlflow", "mlflow-skinny"):
        try:
            return distribution, version(distribution)
        except PackageNotFoundError:
            continue
    return None


def template_path() -> Path | None:
    """Where the empty store of the installed MLflow version is kept (None: MLflow's version unknown)."""
    installed = installed_mlflow()
    if installed is None:
        return None
    mlflow_version = installed[1]
    from search._cache import cache_root

    return cache_root() / f"mlflow-{mlflow_version}-store.db"


def _empty_store(db: Path) -> bool:
    """``db`` is a whole MLflow store (an alembic revision, the runs table) holding no run."""
    try:
        if _header(db) != _SQLITE_HEADER:
            return False
        tables, revision, runs = _tables(db)
    except (OSError, sqlite3.Error):
        return False
    return revision is not None and "runs" in tables and runs == 0


def _keep_template(db: Path, template: Path) -> None:
    """Copy the freshly migrated ``db`` to ``template`` (whole or not at all; a failure is only logged)."""
    partial = template.with_name(f".{template.name}.{os.getpid()}.tmp")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        for old in template.parent.glob(f".{template.name}.*.tmp"):  # left by a process killed mid-copy
            old.unlink(missing_ok=True)
        shutil.copyfile(db, partial)
        os.replace(partial, template)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        log.debug("MLflow store template not kept at %s: %s", template, exc)


def _localise(db: Path, runs_dir: Path) -> None:
    """The Default experiment of a new store, its artifacts in the store's own ``mlartifacts/0`` (MLflow
    would put them in the current folder's ``mlruns/0``: a run made there through the UI's REST API, with
    ``ui --allow-writes``, wrote into whatever folder the store was first made from), created now."""
    now = int(time.time() * 1000)
    connection = sqlite3.connect(db, timeout=30)
    try:
        with connection:
            connection.execute(
                "UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? "
                "WHERE experiment_id = 0",
                ((runs_dir / "mlartifacts" / "0").resolve().as_uri(), now, now),
            )
    finally:
        connection.close()


def open_client(tracking_uri: str) -> MlflowClient:
    """An MlflowClient on ``tracking_uri``, its local store created whole first."""
    from mlflow import MlflowClient

    ensure_store(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri)
