"""The worker processes of an Optuna search: ``cnn-search run --workers N`` supervises them and says what they
do (:func:`supervise`); ``cnn-search worker NAME`` is one (:func:`run_worker`), on this machine or another."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search._goal import GOAL
from search.engines._base import SearchOptions
from search.engines._optuna._factories import limits_of, make_pruner, make_sampler
from search.engines._optuna._liveness import fail_stale_trials
from search.engines._optuna._loop import optimize
from search.engines._optuna._options import own_options
from search.engines._optuna._study import (
    SURPLUS,
    accuracy_of,
    best_trial,
    counted,
    epoch_values,
    more_work,
    search_done,
)
from search.engines._optuna._winner import finish_search
from search.runtime._session import EpochEvent, Session, Signals, TrialEvent, TrialStarted, dispatch, log
from search.runtime._workers import import_keras_lean, wait_for_parent_run, watch, worker_env, worker_session
from search.runtime._zygote import LAUNCHER, WorkerProcess

if TYPE_CHECKING:
    import datetime

    import optuna


#: Trials a supervised worker process runs before a fresh one replaces it, unless told otherwise
#: (measured: TensorFlow keeps 5-6 MB per trained model in a process; benchmarks/workers.py).
RECYCLE_AFTER = 50


def supervise(
    session: Session,
    study: optuna.Study,
    *,
    workers: int,
    trials: int,
    storage_url: str,
    deadline: float | None,
    signals: Signals,
    recycle_after: int | None,
    max_rss_mb: float | None,
    gpus: list[str],
) -> int:
    """Run ``workers`` worker processes until the target is met; returns how many trials they ran."""
    from search.tracking._spool import spool_dir

    before = len(study.trials)
    command = _worker_command(session, storage_url, recycle_after=recycle_after, max_rss_mb=max_rss_mb)
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}  # said before: a resume
    running: dict[int, tuple[int, int]] = {}  # trial -> (epochs planned, epochs announced)

    def start(index: int) -> WorkerProcess:
        args, env = [*command, "--index", str(index)], worker_env(index, gpus, workers)
        if gpus:  # CUDA does not survive a fork: fresh interpreters
            return subprocess.Popen([sys.executable, "-m", "search", *args], env=env)
        return LAUNCHER.start(args, env)  # forked from the forkserver that run_search prestarted

    def tick() -> None:
        _announce(session, study, seen, trials, running)
        session.record.drain(wait=False)

    try:
        watch(
            start,
            workers=workers,
            signals=signals,
            restart_after_exit=lambda: more_work(study, trials, deadline),
            on_tick=tick,
        )
    except BaseException:  # the workers have ended (each recorded its running trial as killed): write it all
        try:
            session.record.drain()
            # A worker the signal reached inside TensorFlow's C code can die with a SystemError before it
            # records its trial: its trial would stay RUNNING until the next start; fail it now.
            stale = fail_stale_trials(study, session)
            if stale:
                log.warning("trial(s) %s were left running by a worker that ended: failed", stale)
        except Exception as exc:  # left in the spool: the next start of the search writes it
            spool = spool_dir(session.runs_dir, session.name)
            log.warning("the workers' last records stay in %s for the next run: %r", spool, exc)
        raise
    session.record.drain()  # the last trials and the winner
    return len(study.trials) - before


def _worker_command(
    session: Session, storage_url: str, *, recycle_after: int | None, max_rss_mb: float | None
) -> list[str]:
    """The ``cnn-search`` arguments of the search's supervised workers (each adds its ``--index``)."""
    command = [
        "worker",
        session.name,
        "--engine",
        session.engine,  # this engine's worker (an engine built on Optuna's runs its own)
        "--runs-dir",
        str(session.runs_dir),
        "--storage",
        storage_url,
        "--tracking-uri",
        session.tracking_uri,
        "--relay",
    ]
    if recycle_after:
        command += ["--recycle-after", str(recycle_after)]
    if max_rss_mb:
        command += ["--max-worker-rss", str(max_rss_mb)]
    if not log.isEnabledFor(logging.INFO):  # run --quiet: its workers too
        command += ["--quiet"]
    return command


def _announce(
    session: Session, study: optuna.Study, seen: set[int], trials: int, running: dict[int, tuple[int, int]]
) -> None:
    """Progress callbacks for what the workers did since the last look: trials started, their epochs
    (the validation accuracy each reported to Optuna) and trials finished."""
    import datetime

    import optuna

    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if "worker" in t.user_attrs:  # set once the trial is known not to be surplus
            _announce_epochs(session, t, running, now)
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.number not in seen and t.user_attrs.get("state") != SURPLUS
    ]
    if not finished:
        return
    for t in finished:  # a trial that ended between two looks: its epochs are said before its end
        if epoch_values(t):
            _announce_epochs(session, t, running, now)
    best = best_trial(study)
    done = counted(study)
    for t in finished:
        seen.add(t.number)
        value = accuracy_of(t) if t.state == optuna.trial.TrialState.COMPLETE else None
        event = TrialEvent(
            number=t.number,
            state=str(t.user_attrs.get("state", t.state.name.lower())),
            value=value,
            reason=t.user_attrs.get("reason"),
            summary=str(t.user_attrs.get("summary", "")),
            seconds=float(t.user_attrs.get("train_seconds") or 0.0),
            best_value=accuracy_of(best) if best else None,
            best_trial=best.number if best else None,
            done=done,
            target=trials,
        )
        running.pop(t.number, None)
        dispatch(session.callbacks, "on_trial_end", event)


def _announce_epochs(
    session: Session, t: optuna.trial.FrozenTrial, running: dict[int, tuple[int, int]], now: datetime.datetime
) -> None:
    """on_trial_begin the first time ``t`` is seen, then on_epoch_end for the epochs it reported since."""
    from search.space import FixedParams

    if t.number not in running:
        try:
            arch = session.space.sample(FixedParams(t.params))
        except Exception:  # parameters still being written: next look
            return
        epochs = session.objective.epochs or arch.training.epochs
        running[t.number] = (epochs, 0)
        dispatch(session.callbacks, "on_trial_begin", TrialStarted(t.number, epochs, arch.summary()))
    epochs, announced = running[t.number]
    started = t.datetime_start or now
    values = epoch_values(t)
    for step in sorted(s for s in values if s >= announced):
        metrics = {GOAL.metric: values[step]}
        epoch = EpochEvent(t.number, step + 1, epochs, metrics, (now - started).total_seconds())
        dispatch(session.callbacks, "on_epoch_end", epoch)
        announced = step + 1
    running[t.number] = (epochs, announced)


def run_worker(
    name: str,
    *,
    runs_dir: str | Path = "runs",
    storage: str | None = None,
    tracking_uri: str | None = None,
    index: int = 0,
    recycle_after: int | None = None,
    max_rss_mb: float | None = None,
    wait_for_parent: float = 120,
    relay: bool = False,
) -> int:
    """One worker of search ``name`` (started by ``cnn-search run``, or on another machine with the
    same ``--storage`` and ``--tracking-uri``). Returns how many trials it ran. ``relay`` (how ``run``
    starts its workers): MLflow is neither imported nor waited for; what the worker records goes to
    the supervising process through the spool (:mod:`search.tracking._spool`)."""
    import optuna

    from search._names import check_name
    from search.runtime._storage import default_storage_url
    from search.tracking import check_store, default_tracking_uri
    from search.tracking._spool import spool_dir

    check_name(name, option="NAME")
    runs = Path(runs_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or default_storage_url(runs)
    study, attrs = load_study(name, url)
    if not relay:
        check_store(tracking_uri or default_tracking_uri(runs))
    options = dataclasses.replace(
        SearchOptions.from_record(attrs), runs_dir=runs, storage=storage, tracking_uri=tracking_uri
    )  # as the search recorded them; where the stores are, as this machine says
    relayed = spool_dir(runs, name) if relay else None
    session = worker_session(name, "optuna", attrs, options, relay=relayed)
    import_keras_lean()  # before waiting: its seconds overlap the supervisor's MLflow start-up

    def recorded() -> dict[str, Any]:
        return study.user_attrs  # read from the storage at every call (journal and RDB alike)

    parent = None if relay else wait_for_parent_run(recorded, wait_for_parent)
    _sampler_and_pruner(study, session, options, index)
    trials = int(attrs["target_trials"])
    with session.record.running(parent) as signals:
        ran = optimize(
            session,
            study,
            trials=trials,
            signals=signals,
            deadline=attrs.get("deadline"),
            hard_deadline=attrs.get("hard_deadline"),
            max_trials_here=recycle_after,
            max_rss_mb=max_rss_mb,
        )
        if search_done(study, trials, attrs.get("deadline")):  # the last one out evaluates and registers the winner
            finish_search(session, study)
        return ran


def load_study(name: str, url: str) -> tuple[optuna.Study, dict[str, Any]]:
    """The study of search ``name`` in storage ``url`` and its attributes; refused when there is none, or when a
    cnn-search without workers started it."""
    import optuna

    from search.runtime._storage import get_storage

    try:
        study = optuna.load_study(study_name=name, storage=get_storage(url))
    except KeyError:
        from search.tracking._searches import unknown_search

        names = optuna.get_all_study_names(get_storage(url))
        raise unknown_search(name, names, url, hint="start it with cnn-search run") from None
    attrs = study.user_attrs
    if "space_definition" not in attrs or "target_trials" not in attrs:
        raise SearchError(f"search {name!r} was not started by a cnn-search that supports workers; rerun it")
    return study, attrs


def _sampler_and_pruner(study: optuna.Study, session: Session, options: SearchOptions, index: int) -> None:
    """Give this worker's study its sampler, seeded apart from the other workers' and past the trials the study
    has, and its pruner."""
    space, seed, own = session.space, options.seed, own_options(options)
    study.sampler = make_sampler(
        own.sampler,
        None if seed is None else seed + 7919 * (index + 1) + len(study.trials),
        limits_of(options.measures),
        local_after=own.local_after,
    )
    study.pruner = make_pruner(
        own.pruner,
        options.planned_epochs(space),
        start_points=len(space.start),
        validation_images=session.data.counts["validation"],
    )
