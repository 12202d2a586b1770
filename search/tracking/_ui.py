"""`cnn-search ui`: the MLflow UI as a child process group that lives and dies with us.

``mlflow ui`` is a tree of processes: the ``mlflow`` CLI, the ``uvicorn`` supervisor it spawns, that
supervisor's workers and its multiprocessing resource tracker. :func:`serve_ui` makes that tree
end when the ``ui`` process ends:

* the tree runs in its own session, hence its own process group (``start_new_session=True``): a
  Ctrl+C at the terminal reaches only us, and we stop the whole group at once, whoever its members
  are (SIGTERM, up to ``grace`` seconds for a clean shutdown, then SIGKILL);
* SIGINT, SIGTERM and SIGHUP to the ``ui`` process stop the group; the exit code is then
  ``128 + signal`` (130 for SIGINT, 143 for SIGTERM), as for ``cnn-search run``;
* while it runs we are, on Linux, the child subreaper of our descendants: the group's orphans are
  ours to reap, so we return only once every one is gone, even where PID 1 reaps nothing;
* a ``ui`` process killed outright (SIGKILL, which nothing can catch) cannot stop the group itself.
  On Linux the ``mlflow`` process is asked to receive SIGTERM when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``); ``mlflow`` forwards SIGTERM to ``uvicorn``, which stops its
  workers, so the server still goes away. Elsewhere (or if ``serve_ui`` is called from a thread
  that ends before the server: the death signal follows the thread that started it), a SIGKILLed
  ``ui`` leaves the group running; ``kill -- -PGID`` stops it.

A port already taken is an error found before anything starts: we try to ``bind`` the address the
way ``uvicorn`` will, with ``SO_REUSEADDR`` on, as uvicorn sets it. On Linux that fails exactly when
a socket already listens on the port (on that address or a wildcard one, IPv4 or IPv6), and does not
fail for the TIME_WAIT leftovers of a server stopped a moment ago (a bind without ``SO_REUSEADDR``
would, and would call a port free for uvicorn taken). A ``connect`` probe was not chosen: it misses
listeners that do not accept from this address and says nothing of addresses we cannot bind.

The banner goes out only once the server answers HTTP (any status), polled every 0.2 s; the
server's own exit before that (a race for the port, a bad store) ends ``ui`` with a one-line error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from types import FrameType

from search._errors import SearchError

READY_TIMEOUT = 180.0  # seconds for the server to answer (about 10 s on a laptop, slower on a busy CI box)
POLL_EVERY = 0.2
GRACE = 5.0  # seconds between SIGTERM and SIGKILL
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_IN_USE = {errno.EADDRINUSE, 10048}  # 10048: WSAEADDRINUSE


class UIError(SearchError):
    """``cnn-search ui`` could not serve; ``exit_code`` is what the command exits with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port(host: str, port: int) -> None:
    """Raise :class:`UIError` unless ``uvicorn`` could listen on ``host:port`` now (see the module
    docstring for why a ``bind`` with ``SO_REUSEADDR``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn chooses it
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if os.name == "posix":  # on Windows SO_REUSEADDR would let us bind over a listener
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            where = _hostport(host, port)
            if isinstance(exc, socket.gaierror) or exc.errno not in _IN_USE:
                raise UIError(f"cannot listen on {where}: {exc.strerror or exc}") from None
            raise UIError(f"{where} is already in use; choose another port with --port N") from None


def _local_url(host: str, port: int) -> str:
    """Where to reach a server listening on ``host`` from this machine."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://{_hostport(host, port)}/"


def _answers(url: str, timeout: float) -> bool:
    """Whether an HTTP server answers ``url`` (any status). No proxy: the server is local."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _prctl() -> Callable[..., int] | None:
    """Linux's ``prctl``, or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send SIGTERM to the child when we die, or None elsewhere."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # we died before the prctl: nobody would send the signal
            os._exit(1)

    return preexec


@contextlib.contextmanager
def _subreaper() -> Iterator[None]:
    """Make us, on Linux, the reaper of our orphaned descendants (uvicorn once ``mlflow`` exits, its
    workers once uvicorn does) while the server runs, so that we can wait for them to be gone: where
    PID 1 does not reap (some containers), they would otherwise stay zombies of the group."""
    import ctypes

    prctl = _prctl()
    was = ctypes.c_int(0)
    if prctl is None or prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(was)) != 0:
        yield
        return
    prctl(_PR_SET_CHILD_SUBREAPER, 1)
    try:
        yield
    finally:
        prctl(_PR_SET_CHILD_SUBREAPER, was.value)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether the group of ``proc`` is gone within ``seconds``, reaping its members that are ours."""
    pgid = proc.pid
    end = time.monotonic() + seconds
    while True:
        proc.poll()
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-pgid, os.WNOHANG)[0]:  # the group's orphans, handed to us as subreaper
                pass
        if not _group_alive(pgid):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    """End the server's process group: SIGTERM, up to ``grace`` s, then SIGKILL; reap what is ours."""
    if os.name != "posix":
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return
    # proc is the leader of its own session, hence of its own group: pgid == proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    if not _wait_gone(proc, grace):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _wait_gone(proc, 5.0)
    proc.wait()


def serve_ui(
    uri: str,
    host: str = "127.0.0.1",
    port: int = 5000,
    *,
    on_ready: Callable[[str], object],
    env: Mapping[str, str] | None = None,
    ready_timeout: float = READY_TIMEOUT,
    grace: float = GRACE,
) -> int:
    """Serve the MLflow UI on the store ``uri`` at ``host:port`` until a signal or the server ends.

    Calls ``on_ready(url)`` once the server answers HTTP at ``url``. Returns the exit code for the
    command: ``128 + signal`` when stopped by SIGINT/SIGTERM/SIGHUP, else the server's own code.
    Raises :class:`UIError` (its ``exit_code`` set) when the port is taken or the address unusable
    (nothing started then), or when the server exits or stays silent ``ready_timeout`` s before it
    answers. Whatever the way out, the server's whole process group is gone on return. Signal
    handlers are installed only when called from the main thread.
    """
    check_port(host, port)
    from search.tracking._store import check_store, ensure_store

    check_store(uri)  # a store that cannot be used is said here, not by a server that never answers
    ensure_store(uri)  # made whole under the store's lock, never by the server's own migrations beside a search
    url = _local_url(host, port)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    child_env = dict(os.environ if env is None else env)
    child_env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no GenAI job workers (~1.6 GB)

    caught: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not caught:
            caught.append(signum)

    previous: dict[int, object] = {}
    try:
        for signum in _STOP_SIGNALS:
            previous[signum] = signal.signal(signum, on_signal)
    except ValueError:  # not the main thread: the caller handles its signals
        pass
    try:
        with _subreaper():
            proc = subprocess.Popen(cmd, env=child_env, start_new_session=True, preexec_fn=_die_with_parent())
            try:
                return _watch(proc, url, caught, on_ready, ready_timeout)
            finally:
                _stop(proc, grace)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _watch(
    proc: subprocess.Popen[bytes], url: str, caught: list[int], on_ready: Callable[[str], object], ready_timeout: float
) -> int:
    """Wait for the server to answer (then call ``on_ready``), and then for a signal or its end."""
    deadline = time.monotonic() + ready_timeout
    ready = False
    while not caught:
        code = proc.poll()
        if code is not None:
            if ready:
                return code
            raise UIError(f"the MLflow server exited with code {code} before answering on {url}; see above", code or 1)
        if not ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UIError(f"the MLflow server did not answer on {url} in {ready_timeout:g} s; stopped it")
            if _answers(url, timeout=min(1.0, remaining)):
                ready = True
                if not caught:
                    on_ready(url)
                continue
        time.sleep(POLL_EVERY)
    return 128 + caught[0]
