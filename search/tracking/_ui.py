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
With ``optuna`` (``cnn-search ui --optuna``) Optuna's own dashboard (``optuna-dashboard``, the optional
extra ``cnn-search[dashboard]``) is served beside it on the next port, on the search's Optuna storage,
in a process group of its own handled the same way: both start, both are watched, both are stopped.

Where to look (read from MLflow 3.17's UI bundle, ``mlflow/server/js/build/static/js``):

* ``/#/experiments/<id>/runs`` alone lands in the GenAI view: which of the GenAI and "Model training"
  views the UI shows follows its ``workflowType`` (the address's ``?workflowType=``, else the switch's
  last choice kept in the browser, default ``genai``). The experiment tag ``mlflow.experimentKind``
  that MLflow 3.0-3.x read is no longer consulted by 3.17 (its ``useExperimentKind`` reads the tag only
  when the workflow switch is off, and the switch is on); we set it all the same
  (``custom_model_development``), it says what the experiment is to any reader, and
  ``workflowType=machine_learning`` goes in every address we print.
* The runs table nests trial runs under a collapsed parent when sorted by creation time and unfiltered;
  sorted by a metric it lists every run flat. Its URL state is ``searchFilter``, ``orderByKey``
  (``metrics.`KEY```), ``orderByAsc``, ``startTime``, ``lifecycleFilter``, ``modelVersionFilter``,
  ``datasetsFilter``; the columns shown are not URL state (the browser keeps them per experiment).
* A saved view is an experiment tag ``mlflow.sharedViewState.<id>`` (``{"name", "createdAt",
  "updatedAt", "state"}``, ``state`` the JSON of the sort, filter and table state: ``selectedColumns``,
  ``columnOrder``, ...), listed in the runs page's "Views" menu and opened by ``?viewStateShareKey=<id>``
  (which the UI ignores when the address also holds a sort or filter). Every search's experiment carries
  one, ``cnn-search``: trials flat, sorted by ``best_val_accuracy`` descending, the key metrics as
  columns. The page says it shows a shared view (your own column changes are kept once you choose
  "Override saved view").
* The compare page is ``/#/compare-runs?runs=[ids]&experiments=[ids]`` (JSON lists); its parallel
  coordinates plot starts with the first three differing parameters and the first shared metric in
  name order (``accuracy``, the training accuracy): component state, no address or tag sets them. A run
  without a parameter is drawn above the axis's top value (numbers) or as ``unknown`` at its top
  (strings). The runs page's own chart view draws parallel coordinates only of runs that have every
  chosen key.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from search._errors import SearchError
from search._goal import GOAL

if TYPE_CHECKING:
    from mlflow import MlflowClient

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
    """Whether an HTTP server answers ``url`` (any status). No proxy: the server is local. Something that
    is not (yet) speaking HTTP there is not an answer: seen once in CI, the Optuna dashboard's port sent
    back the request line while it started (``BadStatusLine: GET /dashboard HTTP/1.1``), and the watch
    must go on waiting, not crash."""
    import http.client

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError, http.client.HTTPException):
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


@dataclass
class _Server:
    """One served process group: what it is called in messages, where it answers, whom to tell."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    on_ready: Callable[[str], object]
    ready: bool = False


def _dashboard_command(storage: str, host: str, port: int) -> list[str]:
    """``optuna-dashboard STORAGE --host HOST --port PORT --quiet`` run by this Python (its console
    script's entry point), or :class:`UIError` when optuna-dashboard is not installed."""
    from importlib.metadata import entry_points

    found = list(entry_points(group="console_scripts", name="optuna-dashboard"))
    if not found:
        raise UIError(
            "--optuna needs optuna-dashboard, not installed here: pip install 'cnn-search[dashboard]' "
            "(or pip install optuna-dashboard)"
        )
    module, _, attr = found[0].value.partition(":")
    code = f"import sys; from {module} import {attr} as main; sys.argv[0] = 'optuna-dashboard'; sys.exit(main())"
    return [sys.executable, "-c", code, storage, "--host", host, "--port", str(port), "--quiet"]


def _checked_dashboard(optuna: str, host: str, port: int) -> list[str]:
    """optuna-dashboard's command on the storage ``optuna`` at ``host:port``, once that port is free."""
    try:
        check_port(host, port)
    except UIError as exc:
        raise UIError(f"{exc} (optuna-dashboard listens on --port + 1)") from None
    return _dashboard_command(dashboard_storage(optuna), host, port)


def dashboard_storage(url: str) -> str:
    """The storage argument for optuna-dashboard from an Optuna storage URL as ``--storage`` takes it
    (a ``.journal`` path, ``journal:///path``, or a database URL); a journal that does not exist is
    a :class:`UIError` (the dashboard would only say it cannot guess the storage)."""
    if url.startswith("journal:///"):
        url = url.removeprefix("journal://")
    if "://" in url:
        return url
    if not Path(url).is_file():
        raise UIError(
            f"--optuna: no Optuna journal at {url}; it is written by an Optuna search (KerasTuner and AutoKeras "
            "searches have none). Run one first, or name the storage with --storage"
        )
    return url


def serve_ui(
    uri: str,
    host: str = "127.0.0.1",
    port: int = 5000,
    *,
    on_ready: Callable[[str], object],
    env: Mapping[str, str] | None = None,
    ready_timeout: float = READY_TIMEOUT,
    grace: float = GRACE,
    optuna: str | None = None,
    on_dashboard: Callable[[str], object] | None = None,
    artifacts: Path,
    allowed_hosts: Sequence[str] = (),
    allow_writes: bool = False,
    warn: Callable[[str], object] | None = None,
    verbose: bool = False,
) -> int:
    """Serve the MLflow UI on the store ``uri`` at ``host:port`` until a signal or the server ends.

    Calls ``on_ready(url)`` once the server answers HTTP at ``url``. Returns the exit code for the
    command: ``128 + signal`` when stopped by SIGINT/SIGTERM/SIGHUP, else the server's own code.
    Raises :class:`UIError` (its ``exit_code`` set) when the port is taken or the address unusable
    (nothing started then), or when the server exits or stays silent ``ready_timeout`` s before it
    answers. Whatever the way out, the server's whole process group is gone on return. Signal
    handlers are installed only when called from the main thread.

    With ``optuna`` (an Optuna storage URL, see :func:`dashboard_storage`), optuna-dashboard serves it
    at ``host:port + 1`` beside MLflow, in a process group of its own handled the same way; it is
    checked before anything starts, and ``on_dashboard(url)`` is called once it answers. Either server
    ending ends both.

    Who may reach it and what they may do (search/tracking/_ui_guard.py): the ``Host`` names accepted
    (``allowed_hosts`` adds some), read-only unless ``allow_writes``, artifacts from ``artifacts`` (the
    runs dir's ``mlartifacts``, never the current folder's); beyond loopback ``warn(text)`` (default:
    to stderr) is called before the server starts. Only the servers' warnings and errors are printed
    unless ``verbose`` (search/tracking/_ui_guard.py).
    """
    from search.tracking._ui_guard import exposure, mlflow_server

    check_port(host, port)
    seen = exposure(host, port, allowed_hosts, allow_writes=allow_writes)
    dashboard = None if optuna is None else _checked_dashboard(optuna, host, port + 1)
    from search.tracking._store import check_store, ensure_store

    check_store(uri)  # a store that cannot be used is said here, not by a server that never answers
    ensure_store(uri)  # made whole under the store's lock, never by the server's own migrations beside a search
    url = _local_url(host, port)
    if seen.beyond_loopback:
        (warn or (lambda text: print(text, file=sys.stderr, flush=True)))(seen.warning())
    environment = os.environ if env is None else env
    with mlflow_server(uri, seen, artifacts=artifacts, env=environment, verbose=verbose) as (cmd, child_env):
        child_env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no GenAI job workers (~1.6 GB)
        planned: list[_Plan] = [("the MLflow server", url, on_ready, cmd)]
        if dashboard is not None:
            where = _local_url(host, port + 1) + "dashboard"
            planned.append(("optuna-dashboard", where, on_dashboard or (lambda _: None), dashboard))
        return _serve(planned, child_env, ready_timeout, grace, filtered=not verbose)


_Plan = tuple[str, str, Callable[[str], object], list[str]]  # a server's name, url, on_ready and command


def _serve(planned: list[_Plan], child_env: dict[str, str], ready_timeout: float, grace: float, filtered: bool) -> int:
    """Start each server of ``planned`` in a process group of its own, watch them (:func:`_watch`) and
    stop them all, whatever the way out; ``filtered``: their stderr passes through
    :func:`search.tracking._ui_guard.forward_stderr`."""
    from search.tracking._ui_guard import forward_stderr

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
    servers: list[_Server] = []
    try:
        with _subreaper():
            try:
                for name, url, on_ready, cmd in planned:
                    proc = subprocess.Popen(
                        cmd,
                        env=child_env,
                        start_new_session=True,
                        preexec_fn=_die_with_parent(),
                        stderr=subprocess.PIPE if filtered else None,
                    )
                    if proc.stderr is not None:
                        forward_stderr(proc.stderr)
                    servers.append(_Server(name, proc, url, on_ready))
                return _watch(servers, caught, ready_timeout)
            finally:
                for server in servers:  # all asked at once, then each waited for
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        if os.name == "posix":
                            os.killpg(server.proc.pid, signal.SIGTERM)
                for server in servers:
                    _stop(server.proc, grace)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _watch(servers: list[_Server], caught: list[int], ready_timeout: float) -> int:
    """Wait for the servers to answer (calling each one's ``on_ready``), then for a signal or the
    end of one of them."""
    deadline = time.monotonic() + ready_timeout
    while not caught:
        for server in servers:
            code = server.proc.poll()
            if code is not None:
                if server.ready:
                    return code
                raise UIError(
                    f"{server.name} exited with code {code} before answering on {server.url}; see above", code or 1
                )
        waiting = [server for server in servers if not server.ready]
        for server in waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UIError(f"{server.name} did not answer on {server.url} in {ready_timeout:g} s; stopped it")
            if _answers(server.url, timeout=min(1.0, remaining)):
                server.ready = True
                if not caught:
                    server.on_ready(server.url)
        time.sleep(POLL_EVERY)
    return 128 + caught[0]


# -- where to look -------------------------------------------------------------------------------

#: The experiment tag MLflow 3 reads (before 3.17) to choose its classic view, and its classic value.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
VIEW_ID = "cnn-search"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_ID}"
VIEW_NAME = f"cnn-search: trials by {GOAL.best_metric}"
SORT_METRIC = GOAL.best_metric
#: The runs table's columns in the view: the trial's state first (complete, pruned, infeasible, failed:
#: MLflow's own status column says "Finished" for all but failed), then its best and last validation
#: accuracy, the winner's test accuracy (on the search's run), size, epochs, the architecture and where it
#: ran. Values are shown as stored: rounding them in the store for the table's sake would change what
#: every other reader of the store gets (the compare view, the report, re-check means).
VIEW_COLUMNS = (
    "tags.`state`",
    f"metrics.`{GOAL.best_metric}`",
    f"metrics.`{GOAL.metric}`",
    "metrics.`test_accuracy`",
    "metrics.`num_params`",
    "metrics.`epochs_run`",
    "attributes.`Models`",
    "attributes.`Duration`",
    "tags.`architecture`",
)


def view_state() -> dict[str, object]:
    """The state of the saved view ``cnn-search`` (sort, filter and table state of the runs page)."""
    return {
        "searchFilter": "",
        "orderByKey": f"metrics.`{SORT_METRIC}`",
        "orderByAsc": False,
        "selectedColumns": list(VIEW_COLUMNS),
        "columnOrder": list(VIEW_COLUMNS),
    }


def experiment_tags(existing: Mapping[str, str], *, now_ms: int | None = None) -> dict[str, str]:
    """The experiment tags to set so that a search's experiment opens as :func:`runs_address` says:
    those of ``existing`` that are missing or differ (nothing when all are there: idempotent)."""
    import json

    wanted: dict[str, str] = {}
    key, kind = EXPERIMENT_KIND
    if existing.get(key) != kind:
        wanted[key] = kind
    state = json.dumps(view_state(), separators=(",", ":"))
    try:
        saved = json.loads(existing.get(VIEW_TAG, ""))
        current = saved["name"] == VIEW_NAME and saved["state"] == state
    except (ValueError, TypeError, KeyError):
        current = False
    if not current:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        wanted[VIEW_TAG] = json.dumps(
            {"name": VIEW_NAME, "createdAt": now, "updatedAt": now, "state": state}, separators=(",", ":")
        )
    return wanted


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def runs_address(base_url: str, experiment_id: str, *, view: bool = True) -> str:
    """The runs page of an experiment in MLflow 3's "Model training" view: with ``view``, opened on the
    saved view ``cnn-search`` (:func:`experiment_tags`); without, sorted by ``best_val_accuracy``
    descending (trials listed flat, default columns).

    >>> runs_address("http://127.0.0.1:5000/", "3")
    'http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&viewStateShareKey=cnn-search'
    >>> runs_address("http://127.0.0.1:5000", "3", view=False)  # doctest: +ELLIPSIS
    'http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&orderByKey=metrics.%60best_val_...'
    """
    query: dict[str, str] = {"workflowType": "machine_learning"}
    if view:
        query["viewStateShareKey"] = VIEW_ID
    else:  # (the UI ignores a share key beside sort or filter parameters)
        query |= {"orderByKey": f"metrics.`{SORT_METRIC}`", "orderByAsc": "false"}
    return f"{_base(base_url)}/#/experiments/{experiment_id}/runs?{_query(query)}"


def _query(pairs: Mapping[str, str]) -> str:
    from urllib.parse import quote

    return "&".join(f"{key}={quote(value, safe='')}" for key, value in pairs.items())


def compare_address(base_url: str, experiment_ids: Sequence[str], run_ids: Sequence[str]) -> str:
    """MLflow's compare-runs page for ``run_ids`` (of ``experiment_ids``): parameters, metrics and
    plots side by side.

    >>> compare_address("http://127.0.0.1:5000/", ["1"], ["ab", "cd"])
    'http://127.0.0.1:5000/#/compare-runs?runs=%5B%22ab%22%2C%22cd%22%5D&experiments=%5B%221%22%5D&workflowType=machine_learning'
    """
    import json

    def listed(ids: Sequence[str]) -> str:
        return json.dumps([str(i) for i in ids], separators=(",", ":"))

    # ``runs`` first: the page reads it as the query's first key ("?runs")
    query = {"runs": listed(run_ids), "experiments": listed(experiment_ids), "workflowType": "machine_learning"}
    return f"{_base(base_url)}/#/compare-runs?{_query(query)}"


def ensure_view(client: MlflowClient, experiment_id: str, existing: Mapping[str, str]) -> None:
    """Set the tags of :func:`experiment_tags` on the experiment (those missing only)."""
    for key, value in experiment_tags(existing).items():
        client.set_experiment_tag(experiment_id, key, value)


def search_addresses(uri: str, base_url: str) -> list[tuple[str, str]]:
    """``(search name, runs address)`` for each search in the store ``uri`` (an experiment with a
    search's run), by name. The experiments' view tags are set where missing (stores written before
    they existed); an experiment whose tags cannot be written gets the address without the view."""
    import logging

    from search.tracking._store import open_client

    client = open_client(uri)
    experiments = {e.experiment_id: e for e in client.search_experiments()}
    if not experiments:
        return []
    parents = client.search_runs(list(experiments), filter_string="tags.role = 'search'", max_results=50_000)
    found = []
    for experiment_id in sorted({r.info.experiment_id for r in parents}):
        experiment = experiments[experiment_id]
        view = True
        try:
            ensure_view(client, experiment_id, experiment.tags)
        except Exception as exc:  # a store we may not write (read-only, busy): the address without the view
            logging.getLogger("search").warning("experiment %s: view not saved (%s)", experiment.name, exc)
            view = VIEW_TAG in experiment.tags
        found.append((experiment.name, runs_address(base_url, experiment_id, view=view)))
    return sorted(found)


def study_addresses(storage: str, dashboard_url: str) -> list[tuple[str, str]]:
    """``(study name, its page in optuna-dashboard at dashboard_url)`` for each study of the Optuna
    ``storage`` (as ``--storage`` takes it), by name. Reads only: a journal is not repaired here."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    url = dashboard_storage(storage)
    store: optuna.storages.BaseStorage
    if "://" in url:
        store = optuna.storages.RDBStorage(url, skip_compatibility_check=True, skip_table_creation=True)
    else:
        store = optuna.storages.JournalStorage(JournalFileBackend(url))
    names = optuna.get_all_study_names(store)
    return sorted((name, f"{_base(dashboard_url)}/studies/{store.get_study_id_from_name(name)}") for name in names)
