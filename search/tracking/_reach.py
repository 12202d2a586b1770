"""Servers and databases reached once, before anything starts; a storage that is the MLflow store refused.

A search, a worker or a read command used to find out that its tracking server or database was down
only when MLflow's client gave up, after retrying for some four minutes (its defaults: 7 retries, a
backoff factor of 2, 120 s a request), then print a traceback. Decisions:

* **Reached once, up front.** :func:`reach` is called where every command passes before it creates
  anything: the command line's ``--tracking-uri`` and ``--storage`` options (their callback, in
  ``search/cli/_app.py``), ``run_search`` (:func:`check_servers`) and Optuna's SQL storage (``_rdb_storage``).
  An ``http(s)://`` tracking URI gets
  one ``GET /health`` with a :data:`CONNECT_TIMEOUT_S` timeout; any answer, even an HTTP error or a TLS
  complaint, means a server is there (its meaning is left to MLflow), except 502/503/504 (a proxy whose
  server is down). A ``postgresql://`` or ``mysql://`` ``--storage`` or ``--tracking-uri`` gets its
  driver imported (a missing one names the package to install: ``pip install "cnn-search[postgres]"``)
  and one connection with a :data:`CONNECT_TIMEOUT_S` connect timeout. Each failure is one line naming
  the address (its password hidden), what happened and the fix. Each address is checked once a process.
* **Later outages bounded.** Unless the user set them, MLflow's client is given
  ``MLFLOW_HTTP_REQUEST_MAX_RETRIES=3``, ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=1`` and
  ``MLFLOW_HTTP_REQUEST_TIMEOUT=30`` (:data:`MLFLOW_LIMITS`): a request to a server that went down
  fails after 3 retries, some 10 s of backoff (0 + 2 + 4 s, plus up to 1 s of jitter each); to one that
  accepts and never answers, after 4 x 30 s; the error then is one line (:func:`unreachable`). A
  signal during such a wait is not held that long: see :class:`search.runtime._signals.Signals`. Each
  later connection to a PostgreSQL/MySQL Optuna storage has a :data:`CONNECT_TIMEOUT` s connect timeout.
* **A storage that is the tracking database is refused.** Optuna and MLflow both keep their alembic
  revision in a table ``alembic_version``: Optuna's tables in MLflow's database (``--storage
  sqlite:///runs/mlflow.db``) wedge MLflow's store. The two URLs are compared as databases: a file by its
  resolved path (any spelling of it), a server's database by backend, host, port and name; an SQLite
  ``--storage`` file that holds MLflow's tables is refused too (:func:`refuse_mlflow_database`).
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from search._errors import SearchError, option

#: Seconds to wait for a server's first answer before a command is refused.
CONNECT_TIMEOUT_S = 3
#: Seconds each later connection to a PostgreSQL/MySQL Optuna storage may take to open.
CONNECT_TIMEOUT = 10
#: MLflow's HTTP client limits set when the user has not set them (see the module docstring).
MLFLOW_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
#: The package that brings each database driver SQLAlchemy may ask for.
DRIVERS = {
    "psycopg": 'pip install "cnn-search[postgres]"',
    "psycopg2": 'pip install psycopg2-binary (or use postgresql+psycopg://: pip install "cnn-search[postgres]")',
    "MySQLdb": "pip install mysqlclient",
    "pymysql": "pip install pymysql",
}
_SERVER_DATABASES = ("postgresql", "mysql")
_checked: set[str] = set()


def is_remote(url: str | None) -> bool:
    """``url`` is reached over the network: an ``http(s)://`` tracking server or a database server."""
    return url is not None and (url.startswith(("http://", "https://")) or _backend(url) in _SERVER_DATABASES)


def check_servers(storage: str | None, tracking_uri: str) -> None:
    """Refuse, in one line, a ``storage`` that is the tracking store's database, then a tracking server or
    database that does not answer, or a missing database driver."""
    if storage is not None:
        check_not_the_tracking_store(storage, tracking_uri)
    reach(tracking_uri, what=option("tracking_uri"))
    reach(storage, what=option("storage"))


def reach(url: str | None, *, what: str) -> None:
    """Reach ``url`` once a process if it is a server (``what``: the option it came from); a path or an
    ``sqlite:///`` URL is left to the store's own checks."""
    if url is None or not is_remote(url) or url in _checked:
        return
    if url.startswith(("http://", "https://")):
        bound_mlflow_retries()
        _check_server(url, what)
    else:
        _check_database(url, what)
    _checked.add(url)


def bound_mlflow_retries() -> None:
    """:data:`MLFLOW_LIMITS` in the environment (inherited by worker processes), where not set already."""
    for key, value in MLFLOW_LIMITS.items():
        os.environ.setdefault(key, value)


def _shown(url: str) -> str:
    """``url`` with its password hidden."""
    if "://" not in url or "@" not in url.partition("://")[2].partition("/")[0]:
        return url
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.partition("@")
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{host}"


def _check_server(url: str, what: str) -> None:
    address = _shown(url)
    fix = f"start the server (mlflow server --host ... --port ...), or check {what}"
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=CONNECT_TIMEOUT_S):
            return
    except urllib.error.HTTPError as exc:  # a server answered
        if exc.code not in (502, 503, 504):
            return
        why = f"it answered HTTP {exc.code} ({exc.reason})"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if "ssl" in type(reason).__module__.lower():  # something answered; TLS settings are MLflow's business
            return
        why = _network_error(reason)
    except (OSError, ValueError) as exc:
        why = _network_error(exc)
    raise SearchError(
        f"{what} {address}: the MLflow tracking server does not answer ({why}); expected a server "
        f"answering within {CONNECT_TIMEOUT_S} s; {fix}"
    )


def _network_error(exc: object) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"no answer in {CONNECT_TIMEOUT_S} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens there"
    if isinstance(exc, socket.gaierror):
        return f"unknown host: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"


def _backend(url: str) -> str:
    return url.partition("://")[0].partition("+")[0] if "://" in url else ""


def _check_database(url: str, what: str) -> None:
    """The driver of ``url`` importable, and one connection made within :data:`CONNECT_TIMEOUT_S`."""
    import sqlalchemy
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as exc:
        raise SearchError(
            f"{what} {_shown(url)}: not a database URL ({exc}); expected postgresql://USER@HOST/DB"
        ) from None
    address = parsed.render_as_string(hide_password=True)
    dialect = parsed.get_dialect()
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = (getattr(exc, "name", None) or str(exc)).partition(".")[0]
        install = DRIVERS.get(module, f"pip install {module}")
        raise SearchError(
            f"{what} {address}: the database driver {module} is not installed ({exc}); expected it importable "
            f"to reach {parsed.get_backend_name()}; install it: {install}"
        ) from None
    connect_args = (
        {"connect_timeout": CONNECT_TIMEOUT_S}
        if dialect.driver in ("psycopg", "psycopg2", "mysqldb", "pymysql")
        else {}
    )
    engine = sqlalchemy.create_engine(parsed, connect_args=connect_args, poolclass=NullPool)
    try:
        with engine.connect():
            return
    except sqlalchemy.exc.SQLAlchemyError as exc:
        cause = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None else exc
        why = " ".join(str(cause).split())[:200] or type(cause).__name__
        raise SearchError(
            f"{what} {address}: cannot connect to the database ({why}); expected a {parsed.get_backend_name()} "
            f"server that answers within {CONNECT_TIMEOUT_S} s and holds database {parsed.database!r}; start it "
            f"or create the database, or check {what}"
        ) from None
    finally:
        engine.dispose()


def _database(url: str) -> tuple[str, ...] | None:
    """What identifies the database of ``url``: ('file', resolved path) or (backend, host, port, name)."""
    from search.tracking._store import sqlite_path

    if url.startswith("sqlite:///"):
        db = sqlite_path(url)
        return None if db is None else ("file", str(db.expanduser().resolve()))
    backend = _backend(url)
    if backend in _SERVER_DATABASES:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        port = parsed.port or {"postgresql": 5432, "mysql": 3306}[backend]
        host = parsed.host or "localhost"
        return backend, "localhost" if host in ("127.0.0.1", "::1") else host, str(port), parsed.database or ""
    if "://" not in url or url.startswith("journal:///"):  # a journal file
        return "file", str(Path(url.removeprefix("journal://")).expanduser().resolve())
    return None


def check_not_the_tracking_store(storage: str, tracking_uri: str) -> None:
    """Refuse a ``storage`` that is the database of the MLflow store ``tracking_uri`` (see the module docstring)."""
    ours, theirs = _database(storage), _database(tracking_uri)
    if ours is None or ours != theirs:
        return
    suggestion = (
        f"sqlite:///{Path(ours[1]).with_name('optuna.db')}, or leave {option('storage')} out (the runs dir's "
        "optuna.journal)"
        if ours[0] == "file"
        else "a database of its own (createdb optuna)"
    )
    raise SearchError(
        f"{option('storage')} {_shown(storage)}: the same database as the MLflow store ({option('tracking_uri')} "
        f"{_shown(tracking_uri)}); expected a database of its own: Optuna's tables and MLflow's (both keep an "
        f"alembic_version) cannot share one. Use {suggestion}"
    )


def unreachable(exc: BaseException) -> str | None:
    """The one line for an error a server that stopped answering mid-command raised (MLflow's REST client
    after its bounded retries, an SQL database's lost connection), else None. For the command line's last
    resort (``search.cli.main``), as :func:`search.tracking._disk.disk_full`."""
    seen: BaseException | None = exc
    for _ in range(12):  # the exception, its cause and context
        if seen is None:
            return None
        text = str(seen).strip()
        name = type(seen).__name__
        if name == "MlflowException" and text.startswith("API request to ") and " failed with exception " in text:
            url = text.removeprefix("API request to ").split(" ", 1)[0]
            base = url.split("/api/", 1)[0]
            retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "?")
            timeout = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "?")
            return (
                f"the MLflow tracking server {base} stopped answering ({_cause(text)}; {retries} retries of at most "
                f"{timeout} s each, MLFLOW_HTTP_REQUEST_MAX_RETRIES and MLFLOW_HTTP_REQUEST_TIMEOUT); what was "
                "recorded is kept: run the same command again once it answers"
            )
        if name == "OperationalError" and type(seen).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "psycopg2"):
            return (
                f"the database server stopped answering ({_said(getattr(seen, 'orig', None) or seen)}); what was "
                "recorded is kept: run the same command again once it answers"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def _said(why: object) -> str:
    return " ".join(str(why).split())[:160] or type(why).__name__


def _cause(text: str) -> str:
    for why in ("Read timed out", "Connection refused", "Max retries exceeded", "timed out"):
        if why in text:
            return why.lower()
    return text.split(" failed with exception ", 1)[1][:120]


def refuse_mlflow_database(storage: str) -> None:
    """Refuse an ``sqlite:///`` storage whose file holds MLflow's tables (``experiments`` and ``runs``):
    another search's tracking store, or this one's when the tracking store was not named."""
    import contextlib
    import sqlite3

    from search.tracking._store import sqlite_path

    path = sqlite_path(storage.split("?", 1)[0])
    if path is None or not path.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        return  # not a database: Optuna's storage says so
    if {"experiments", "runs"} <= tables:
        raise SearchError(
            f"{option('storage')} {storage}: an MLflow tracking store (it holds MLflow's experiments and runs); "
            "expected a database of its own: Optuna's tables and MLflow's (both keep an alembic_version) cannot "
            f"share one. Use sqlite:///{path.with_name('optuna.db')}, or leave {option('storage')} out (the runs "
            "dir's optuna.journal)"
        )
