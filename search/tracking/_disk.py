"""A full disk, and a store deleted under a search, said in one line (docs/RELIABILITY.md, issue 31 item 5).

A search writes to four places under its runs dir: the Optuna journal, MLflow's ``mlflow.db``, its
artifacts and its models. When the disk fills, each fails in its own words (``OSError: [Errno 28]``,
SQLite's ``database or disk is full`` wrapped by SQLAlchemy and by MLflow, which also logs the whole
SQL statement); the search then stops at the first one, before another trial starts, and
:func:`disk_full` turns the error, whichever it is, into one line naming the folder and the fix.
Nothing recorded is lost: a trial whose record could not be written is left running in the study and
retried on the next run (a torn journal line is repaired first, ``search.runtime._storage``).

Decided:

* Before a search starts, its runs dir's device must have :data:`MIN_FREE_MIB` free (a new store is
  1 MB, a trial's record about 0.1-0.5 MB, the winner's model and report a few MB): below that it is
  refused at once instead of failing at the first record. The figure is printed with the fix.
* A study (or tuner state) that records an MLflow parent run whose SQLite store file is gone is refused
  before any trial starts (:func:`check_store_kept`): its trials could not be recorded under their
  search. Restoring the file continues the search; another ``--name`` starts a new one.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import sqlite3
from pathlib import Path

from search._errors import SearchError

#: Free space a search needs on its runs dir's device before it starts.
MIN_FREE_MIB = 32

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_SQLITE_FULL = "database or disk is full"


def _existing(folder: Path) -> Path:
    """``folder`` or its nearest parent that exists (a runs dir not made yet is on its parent's device)."""
    folder = folder.resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_mib(folder: Path) -> float:
    """MiB free to this user on the device holding ``folder``."""
    return shutil.disk_usage(_existing(folder)).free / 2**20


def check_free_space(folder: Path, *, what: str) -> None:
    """Refuse ``folder`` when its device has less than :data:`MIN_FREE_MIB` free."""
    free = free_mib(folder)
    if free < MIN_FREE_MIB:
        raise SearchError(
            f"{what} {folder}: {free:.1f} MiB free on its device; expected at least {MIN_FREE_MIB} MiB for a "
            "search's records (its MLflow store, trials and models). Free some space (df -h shows it) or "
            f"choose another {what}"
        )


def disk_full(exc: BaseException) -> str | None:
    """The one line that says ``exc`` (or an error it was raised from) is a full disk, else ``None``.

    >>> disk_full(OSError(28, "No space left on device", "/runs/mlflow.db")).split(":")[0]
    'no space left on the device (writing /runs/mlflow.db)'
    >>> disk_full(ValueError("x")) is None
    True
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        path = _full_path(current)
        if path is not None:
            where = f"writing {path}" if path else "writing an SQLite database"
            return (
                f"no space left on the device ({where}): the search stopped before another trial started, and "
                "everything recorded so far is kept. Free some space (df -h shows it) and run the same command "
                "again: the search continues where it stopped"
            )
        current = current.__cause__ or current.__context__
    return None


def _full_path(exc: BaseException) -> str | None:
    """The path ``exc`` failed to write because the disk is full ('' when it does not say), else ``None``."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return str(exc.filename2 or exc.filename or "")
    if isinstance(exc, sqlite3.DatabaseError) and _SQLITE_FULL in str(exc):  # OperationalError among them
        return ""
    if type(exc).__name__ in ("MlflowException", "OperationalError") and _SQLITE_FULL in str(exc):
        return ""
    return None


class _DropDiskFull(logging.Filter):
    """MLflow logs a failed SQL statement in full before raising; a full disk is said once, by us."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _SQLITE_FULL not in record.getMessage()


def quiet_disk_full() -> None:
    """Keep MLflow's database logger from printing a full disk's SQL (idempotent)."""
    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _DropDiskFull) for f in logger.filters):
        logger.addFilter(_DropDiskFull())


def check_store_kept(tracking_uri: str, parent_run_id: str | None, name: str) -> None:
    """Refuse a search whose own record knows MLflow parent run ``parent_run_id`` while its SQLite store
    (``tracking_uri``) is gone, or was replaced by one that does not hold that run (read-only, one query):
    the search's trials could not be recorded under it."""
    from search.tracking._store import sqlite_path

    db = sqlite_path(tracking_uri)
    if parent_run_id is None or db is None or (db.exists() and _holds_run(db, parent_run_id)):
        return
    what = "is gone (deleted or moved?)" if not db.exists() else "does not hold it (deleted and made again?)"
    raise SearchError(
        f"search {name!r}: its study records MLflow parent run {parent_run_id}, but the MLflow store {db} {what}; "
        f"expected the store its trials were recorded in. Put that {db.name} back to continue the search, or start "
        "it afresh with another --name"
    )


def _holds_run(db: Path, run_id: str) -> bool:
    """Whether SQLite store ``db`` has run ``run_id`` (a store it cannot read is left to ``check_store``)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as con:
            return con.execute("SELECT 1 FROM runs WHERE run_uuid = ?", (run_id,)).fetchone() is not None
    except sqlite3.OperationalError as exc:
        return "no such table" not in str(exc)
    except sqlite3.DatabaseError:
        return True
