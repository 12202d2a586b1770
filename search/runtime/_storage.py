"""Optuna storage from a URL, turned into an object once, at the boundary.

Default: a journal file ``runs/optuna.journal`` (Optuna's JournalStorage with a file lock), which is
safe for several local processes without a server; Optuna's FAQ advises against SQLite for that.
``sqlite:///...``, ``postgresql://...`` and ``mysql://...`` URLs go to RDBStorage; a path ending
in ``.journal`` (or ``journal:///path``) to a journal file.

A journal is one JSON record per line, appended under a lock. A process killed (or a disk filled)
mid-write leaves a torn last line without its newline; Optuna reads past it, but the next record
would be appended to it and the file would be broken for good. So before a journal is opened its
tail is checked under the journal's own lock: a torn last line is dropped (the whole file is first
copied to ``optuna.journal.torn-<time>``) and said; a last line that is a whole record and lost
only its newline is kept and its newline written (only what does not parse is dropped); a record
broken in the middle, or a file that is not a journal at all, is refused with the path, the line
and the fix. Nothing is ever appended to a broken line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError

log = logging.getLogger("search")

if TYPE_CHECKING:
    import optuna


def default_storage_url(runs_dir: Path) -> str:
    return str((runs_dir / "optuna.journal").resolve())


def get_storage(url: str) -> optuna.storages.BaseStorage:
    import optuna

    if url.startswith("journal:///"):
        url = url.removeprefix("journal://")
    if url.endswith(".journal") and "://" not in url:
        path = Path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        repair_journal(path)
        try:
            return optuna.storages.JournalStorage(_journal_backend(path))
        except Exception as exc:  # whole JSON records Optuna cannot replay (a flipped bit in a key or an id)
            raise SearchError(
                f"{path}: a record Optuna cannot replay ({type(exc).__name__}: {str(exc)[:80]}); expected the "
                f"records Optuna wrote. The file was left as it is: restore a backup, or move it away to start "
                f"a new store (mv {path} {path}.bad)"
            ) from None
    if url.split("://")[0].split("+")[0] in ("sqlite", "postgresql", "mysql"):
        return _rdb_storage(url)
    raise SearchError(
        f"--storage: unknown storage {url!r}; expected a .journal file path, sqlite:///..., "
        f"postgresql://... or mysql://..."
    )


def _rdb_storage(url: str, attempts: int = 5) -> optuna.storages.BaseStorage:
    """Optuna's RDBStorage on ``url``. The first process to open a new database creates Optuna's tables;
    two doing it at once (a search and its workers start together) make one fail on the other's
    tables or types (seen in CI on PostgreSQL: ``duplicate key ... (studydirection, 2200)``). That
    process opens the storage again a moment later, when the tables exist, up to ``attempts`` times.

    Before that, a PostgreSQL/MySQL server is reached once with a short connect timeout and its driver
    checked (:func:`search.tracking._reach.reach`), and every later connection has a connect timeout
    (``search.tracking._reach.CONNECT_TIMEOUT`` s: a server gone mid-search fails a call, it does not
    hang it); an SQLite file that holds MLflow's tables is refused (Optuna's tables in the tracking store
    wedge it)."""
    import optuna
    import sqlalchemy.exc

    from search.tracking._reach import CONNECT_TIMEOUT, reach, refuse_mlflow_database

    reach(url, what="--storage")
    refuse_mlflow_database(url)
    kwargs: dict[str, Any] = {}
    if not url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
    for attempt in range(attempts - 1):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            time.sleep(0.2 * (attempt + 1))
    return optuna.storages.RDBStorage(url, **kwargs)  # the last attempt's error, if any, is the caller's


def repair_journal(path: Path) -> str | None:
    """Drop a torn last line of the journal at ``path`` (after a backup), under the journal's lock;
    refuse a journal broken elsewhere. Returns the backup's path when something was dropped."""
    from optuna.storages.journal import JournalFileSymlinkLock
    from optuna.storages.journal._file import get_lock_file

    if path.exists() and (not path.is_file() or not os.access(path, os.R_OK | os.W_OK)):
        raise SearchError(
            f"{path}: not a file this user can read and write; expected the search's Optuna journal. Fix its "
            "permissions, or choose another --runs-dir / --storage"
        )
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with get_lock_file(JournalFileSymlinkLock(str(path))):  # the lock Optuna's writers take
        return _repair_locked(path, check=True)


def _repair_locked(path: Path, *, check: bool) -> str | None:
    """:func:`repair_journal`'s work, the journal's lock held; ``check``: every whole line is checked too."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # the end of the last complete line (0: none)
    if check:
        _check_records(path, data[:end])
    if end == len(data):
        return None
    torn = data[end:]
    if _is_record(torn):  # a whole record that lost only its line end: kept, the line end written
        with open(path, "ab") as f:
            f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
        log.warning(
            "%s: its last record was whole but had no line end (an append that lost only its newline); "
            "the line end was added, nothing dropped",
            path,
        )
        return None
    if end == 0 and not torn.lstrip().startswith(b"{"):
        _refuse(path, 1, torn)
    backup = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    shutil.copy2(path, backup)
    with open(path, "r+b") as f:
        f.truncate(end)
        f.flush()
        os.fsync(f.fileno())
    log.warning(
        "%s: its last line was cut mid-write (%d bytes without a line end, from a process killed or a full disk "
        "while writing); dropped it, the whole file is kept as %s",
        path,
        len(torn),
        backup,
    )
    return str(backup)


def _journal_backend(path: Path) -> Any:
    """Optuna's journal file, whose every append first drops a torn tail another process left.

    The check at start-up (:func:`repair_journal`) cannot see a line torn later: a worker killed (or a
    disk filled) mid-append while other workers go on. Optuna's readers skip an incomplete last line,
    but its next append would be written onto it, making one broken line of two records: every later
    read failed (``JSONDecodeError``) and the appended record was lost. So each append, under the
    journal's lock as Optuna's own, looks at the file's last byte (one ``pread``) and repairs a torn tail
    first, the same way. A reader that read the torn line meanwhile had not counted it: it reads on from
    the last whole line."""
    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal._file import get_lock_file

    class Backend(JournalFileBackend):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            with get_lock_file(self._lock):
                torn = False
                with contextlib.suppress(FileNotFoundError), open(self._file_path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    torn = size > 0 and os.pread(f.fileno(), 1, size - 1) != b"\n"
                if torn:
                    _repair_locked(Path(self._file_path), check=False)
                text = "\n".join(json.dumps(entry, separators=(",", ":")) for entry in logs) + "\n"
                with open(self._file_path, "ab") as f:
                    f.write(text.encode("utf-8"))
                    f.flush()
                    os.fsync(f.fileno())

    return Backend(str(path))


def _is_record(line: bytes) -> bool:
    """``line`` is one whole journal record (a JSON object with an ``op_code``)."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "op_code" in record


def _check_records(path: Path, data: bytes) -> None:
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            _refuse(path, number, line)
        if not isinstance(record, dict) or "op_code" not in record:
            _refuse(path, number, line)


def _refuse(path: Path, number: int, line: bytes) -> None:
    excerpt = line[:60].decode("utf-8", "replace") + ("..." if len(line) > 60 else "")
    raise SearchError(
        f"{path}: line {number} is not an Optuna journal record; expected one JSON record per line, received "
        f"{excerpt!r} ({len(line)} bytes). The file was left as it is: move it away to start a new store "
        f"(mv {path} {path}.bad), or delete that line from a copy to keep the records before it"
    )
