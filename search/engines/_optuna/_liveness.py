"""Liveness of running trials: heartbeats, stale trials (their worker ended) failed and retried once, and the
wait for other workers' trials.

Crash safety, for any storage (Optuna's own heartbeat needs an RDB): each running trial carries the
``host:pid`` of its worker and a ``heartbeat`` time, refreshed every :func:`heartbeat_seconds` by a
thread. A RUNNING trial is stale when its worker is a dead process on this host, or when its
heartbeat is older than :func:`grace_seconds` (a worker on another machine). Before each trial, every
worker fails the stale ones (state ``killed``, an MLflow run recorded for them) and enqueues each
once more with the same parameters (``retry_of``); a retried trial is not retried again. Any killed
trial still lacking its retry or its MLflow run (its worker died while failing it, or a signal
stopped it) gets them at that point too.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from search._errors import SearchError
from search._process import dead_here, worker_id
from search.engines._optuna._study import _running
from search.runtime._session import Session, Signals, log

if TYPE_CHECKING:
    import optuna


def heartbeat_seconds() -> float:
    """Seconds between a running trial's heartbeats: ``CNN_SEARCH_HEARTBEAT_SECONDS`` (README,
    "Crashes"), default 10. A trial of another machine is stale after three missed beats (:func:`grace_seconds`),
    so every machine of a search must use the same value.

    >>> heartbeat_seconds()
    10.0
    """
    text = os.environ.get("CNN_SEARCH_HEARTBEAT_SECONDS", "10")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SearchError(f"CNN_SEARCH_HEARTBEAT_SECONDS: expected a number of seconds > 0, received {text!r}")
    return value


def grace_seconds() -> float:
    """How old another machine's last heartbeat may be before its running trial is stale: three beats."""
    return 3 * heartbeat_seconds()


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Refresh the trial's ``heartbeat`` every :func:`heartbeat_seconds` while the block runs."""
    stop = threading.Event()
    every = heartbeat_seconds()

    def beat() -> None:
        while not stop.wait(every):
            with contextlib.suppress(Exception):  # a finished trial or a busy storage: next beat
                trial.set_user_attr("heartbeat", time.time())

    thread = threading.Thread(target=beat, name="cnn-search-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def fail_stale_trials(study: optuna.Study, session: Session | None = None) -> list[int]:
    """Fail the stale RUNNING trials (see the module docstring), record them in MLflow when
    ``session`` is given, and enqueue each once more. Returns their numbers."""
    import optuna

    failed = []
    now, grace = time.time(), grace_seconds()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = str(t.user_attrs.get("worker", ""))
        last = float(t.user_attrs.get("heartbeat") or (t.datetime_start.timestamp() if t.datetime_start else now))
        if worker == worker_id():
            continue
        dead = dead_here(worker)
        if not (dead or now - last > grace):
            continue
        why = "its worker process ended" if dead else f"no heartbeat for {now - last:.0f} s"
        reason = f"killed: {why} ({worker or 'unknown worker'})"
        # Optuna has no public API that writes a trial this process did not ask for (Study.tell can fail
        # it but not say why): the storage's own methods, as Optuna's heartbeat code uses them.
        storage = study._storage
        try:  # any step can find the trial finished: another worker failed it first (UpdateFinishedTrialError)
            storage.set_trial_user_attr(t._trial_id, "state", "killed")
            storage.set_trial_user_attr(t._trial_id, "reason", reason)
            storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        except RuntimeError:
            continue
        failed.append(t.number)
    # The retry is queued and the MLflow run written for every killed trial that lacks them, not only
    # for those failed just now: a process killed between failing a trial and these steps (MLflow's
    # start-up takes seconds) leaves them to the next worker instead of losing them.
    killed = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("state") == "killed"]
    retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    for t in killed:  # retries first: milliseconds
        fail = t.state == optuna.trial.TrialState.FAIL
        if fail and t.params and "retry_of" not in t.user_attrs and t.number not in retried:
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number}, skip_if_exists=False)
    if session is not None:
        recorded = study.user_attrs  # a finished trial's attributes are frozen: the study's carry the mark
        for t in killed:
            key = f"killed_run_{t.number}"
            if t.state == optuna.trial.TrialState.FAIL and key not in recorded and "mlflow_run_id" not in t.user_attrs:
                reason = str(t.user_attrs.get("reason") or "killed")
                try:
                    run_id = session.record_killed(t.number, dict(t.params), reason, started=t.datetime_start)
                except Exception as exc:  # bookkeeping of another process's trial never stops this one
                    log.warning("trial %d: killed run not recorded in MLflow (%r)", t.number, exc)
                    continue
                study.set_user_attr(key, run_id)
    return failed


def wait_for_others(study: optuna.Study, session: Session, signals: Signals, *, limit: float | None = None) -> None:
    """Wait until trials other workers are running (another machine's ``cnn-search worker``) end,
    so the winner is chosen among them too; stale ones are failed on the way."""
    if not _running(study):
        return
    log.info("waiting for %d trial(s) running in other workers", _running(study))
    until = time.time() + limit if limit is not None else None
    while _running(study) and (until is None or time.time() < until):
        signals.check()
        fail_stale_trials(study, session)
        time.sleep(1)
