"""Who may reach `cnn-search ui`, and what they may do there (docs/RELIABILITY.md row 40).

MLflow's server has no authentication of its own (only the separate ``--app-name basic-auth`` app):
whoever reaches its port reads and, through its REST API, changes every run. :func:`mlflow_server`
builds the command that starts it, decided as follows.

* **Host names.** ``--allowed-hosts`` is always passed (MLflow's own default also accepts every
  private address, ``10.*``, ``192.168.*``..., and a ``MLFLOW_SERVER_ALLOWED_HOSTS=*`` or
  ``MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE`` inherited from the shell would turn the check off;
  both variables are dropped from the server's environment). Accepted: ``localhost``,
  ``127.0.0.1``, ``[::1]``; beyond loopback also the host given (unless a wildcard address), the
  machine's names (``gethostname``, ``getfqdn``) and the addresses they resolve to; and whatever
  ``--allowed-hosts`` adds (names, addresses, MLflow's ``*`` patterns; ``*`` alone is refused). Each
  with and without ``:PORT``. Any other ``Host`` header is answered 403 (DNS rebinding).
* **Origins.** ``--cors-allowed-origins`` is ``http://NAME:PORT`` for each non-loopback name above,
  and also ``https://NAME`` for each added one (a reverse proxy with TLS); loopback origins MLflow
  allows itself. A state-changing request from any other origin is answered 403.
* **Beyond loopback** (any host that is not 127.0.0.0/8, ``::1`` or ``localhost``) a warning goes
  to stderr before the server starts: no authentication, who can read (and, with
  ``--allow-writes``, change) what, how to add a login (a reverse proxy that authenticates; or
  MLflow's ``mlflow server --app-name basic-auth``, which needs a secret key, an admin password and
  a users database of its own, so ``ui`` offers no flag for it), and the host names accepted.
* **Artifacts** come from the store: ``--default-artifact-root`` is the runs dir's ``mlartifacts``
  (where searches put theirs); MLflow's default, ``./mlartifacts`` of the current directory, is
  never used.
* **Read-only unless ``--allow-writes``.** The server runs ``--no-serve-artifacts`` (MLflow's
  artifact proxy, its PUT/POST uploads, answers 503) and its app is :mod:`search.tracking._ui_app`,
  MLflow's own app behind a filter that answers 403 to every request that would change the store
  (run and experiment creation, tags, deletions, ``upload-artifact``...). MLflow finds that app by
  its plugin entry point (group ``mlflow.app``, ``--app-name``): the entry point is declared by a
  two-file distribution written to a temporary folder on the server's ``PYTHONPATH`` for its life.
  With ``--allow-writes``, MLflow's plain app, and its artifact proxy serving the store's
  ``mlartifacts`` (``--serve-artifacts --artifacts-destination``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from search._errors import SearchError

LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
WILDCARDS = ("", "0.0.0.0", "::", "[::]")
APP_NAME = "cnn-search-read-only"
APP = "search.tracking._ui_app:app"
#: What the shell may set that would open MLflow's checks; never passed on to the server.
_OPENING_ENV = (
    "MLFLOW_SERVER_ALLOWED_HOSTS",
    "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS",
    "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE",
)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bracket(name: str) -> str:
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def _added(allowed: Sequence[str]) -> list[str]:
    """The host names of ``--allowed-hosts`` (repeated, or comma-separated), checked."""
    names = [n.strip() for value in allowed for n in value.split(",") if n.strip()]
    for name in names:
        if name == "*":
            raise SearchError(
                "--allowed-hosts: '*' would accept any Host header, which is what DNS rebinding needs; expected "
                "the names people type to reach the UI (e.g. --allowed-hosts mlflow.lan,192.168.1.20)"
            )
        if "/" in name or any(c.isspace() for c in name):
            raise SearchError(
                f"--allowed-hosts: {name!r} is not a host name; expected a name or address without scheme or "
                "path, optionally with :PORT or * patterns (e.g. --allowed-hosts mlflow.lan,192.168.*)"
            )
    return names


def _machine_names(host: str) -> list[str]:
    """The host given (unless a wildcard), the machine's names and the addresses they resolve to."""
    names = [] if host in WILDCARDS else [host.strip("[]")]
    names += [socket.gethostname(), socket.getfqdn()]
    for name in list(names):
        with contextlib.suppress(OSError, UnicodeError):
            names += [str(info[4][0]) for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)]
    return [_bracket(n.split("%")[0]) for n in dict.fromkeys(names) if n and n not in WILDCARDS]


def _has_port(name: str) -> bool:
    return re.fullmatch(r"(\[[^]]*\]|[^:\[\]]*):(\d+|\*)", name) is not None


@dataclass(frozen=True)
class Exposure:
    """What `ui` lets through: the ``Host`` headers and origins accepted (``names``: the hosts
    without their ports, as said in the warning)."""

    host: str
    port: int
    names: tuple[str, ...]
    hosts: tuple[str, ...]
    origins: tuple[str, ...]
    allow_writes: bool

    @property
    def beyond_loopback(self) -> bool:
        return not is_loopback(self.host)

    def warning(self) -> str:
        """The warning printed before a server listening beyond loopback starts."""
        where = f"{_bracket(self.host) or '0.0.0.0'}:{self.port}"
        what = "every run, experiment and model in the store"
        rights = f"read and change {what}" if self.allow_writes else f"read {what} (changes need --allow-writes)"
        return (
            f"warning: cnn-search ui listens on {where}, beyond this machine, and MLflow has no authentication: "
            f"everyone who can reach this port can {rights}.\n"
            "  To require a login, keep --host 127.0.0.1 and put a reverse proxy that authenticates in front "
            "(then --allowed-hosts its name), or serve the store with MLflow's own "
            "`mlflow server --app-name basic-auth` (pip install 'mlflow[auth]').\n"
            f"  Host names accepted: {', '.join(self.names)}; add the one people type with --allowed-hosts NAME."
        )


def exposure(host: str, port: int, allowed: Sequence[str] = (), *, allow_writes: bool = False) -> Exposure:
    """The names and origins `ui` accepts on ``host:port`` (see the module docstring), or a
    :class:`SearchError` naming a bad ``--allowed-hosts`` value."""
    added = [_bracket(n) if not _has_port(n) else n for n in _added(allowed)]
    outside = [] if is_loopback(host) else _machine_names(host)
    names = tuple(dict.fromkeys([*LOOPBACK, *outside, *added]))
    hosts = [h for n in names for h in ([n] if _has_port(n) else [n, f"{n}:{port}"])]
    origins = [f"http://{n}:{port}" for n in outside if not is_loopback(n.strip("[]"))]
    for name in added:
        origins += [f"http://{name}" if _has_port(name) else f"http://{name}:{port}", f"https://{name}"]
    return Exposure(host, port, names, tuple(dict.fromkeys(hosts)), tuple(dict.fromkeys(origins)), allow_writes)


def _plugin(folder: Path) -> None:
    """A distribution in ``folder`` that declares :data:`APP` as MLflow app :data:`APP_NAME`."""
    info = folder / "cnn_search_ui_app-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cnn-search-ui-app\nVersion: 0\n")
    (info / "entry_points.txt").write_text(f"[mlflow.app]\n{APP_NAME} = {APP}\n")


#: What ``ui`` keeps of MLflow's server output unless ``--verbose``: its warnings and errors. Its
#: uvicorn start-up, worker and access lines go (``--log-level warning --no-access-log``), the
#: registry line goes (the registry is named: it is the store), Starlette's deprecation warning of
#: MLflow's own import goes (``PYTHONWARNINGS``), and the lines below, which the ``mlflow`` CLI prints
#: whatever the log level, are dropped from its stderr (what they say, the banner says).
QUIET_UVICORN = "--log-level warning --no-access-log"
QUIET_WARNINGS = "ignore:starlette.middleware.wsgi is deprecated"
DROPPED_LINES = ("[MLflow] Security middleware enabled",)


def forward_stderr(stream: IO[bytes], to: IO[str] | None = None) -> threading.Thread:
    """Copy a server's stderr to ours line by line, without the :data:`DROPPED_LINES`, in a daemon
    thread that ends when the server's last process closes it."""

    def copy() -> None:
        out = to or sys.stderr
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            if not line.startswith(DROPPED_LINES):
                out.write(line)
                out.flush()
        stream.close()

    thread = threading.Thread(target=copy, name="ui-stderr", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def mlflow_server(
    uri: str, seen: Exposure, *, artifacts: Path, env: Mapping[str, str], verbose: bool = False
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The command and the environment that start MLflow's server on the store ``uri`` as ``seen``
    allows, artifacts from ``artifacts``, quiet unless ``verbose`` (:data:`QUIET_UVICORN`); what they
    need on disk is removed on exit."""
    root = artifacts.resolve().as_uri()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        seen.host,
        "--port",
        str(seen.port),
    ]
    cmd += ["--allowed-hosts", ",".join(seen.hosts), "--default-artifact-root", root]
    if seen.origins:
        cmd += ["--cors-allowed-origins", ",".join(seen.origins)]
    child_env = {k: v for k, v in env.items() if k not in _OPENING_ENV}
    if not verbose:
        cmd += ["--registry-store-uri", uri, "--uvicorn-opts", QUIET_UVICORN]
        child_env["PYTHONWARNINGS"] = ",".join(w for w in (env.get("PYTHONWARNINGS", ""), QUIET_WARNINGS) if w)
    if seen.allow_writes:
        yield [*cmd, "--serve-artifacts", "--artifacts-destination", root], child_env
        return
    with tempfile.TemporaryDirectory(prefix="cnn-search-ui-") as folder:
        _plugin(Path(folder))
        child_env["PYTHONPATH"] = os.pathsep.join(p for p in (folder, env.get("PYTHONPATH", "")) if p)
        yield [*cmd, "--no-serve-artifacts", "--app-name", APP_NAME], child_env
