"""The Optuna engine: ask/tell over the shared Session (one trial at a time in each worker).

Trial states map to Optuna's: complete → COMPLETE (value = best validation accuracy), pruned and
infeasible → PRUNED (infeasible ones are never trained), failed and killed → FAIL. The target
``trials`` counts COMPLETE and PRUNED trials, so a search interrupted and run again reaches it.

Crash safety, for any storage (Optuna's own heartbeat needs an RDB): each running trial carries the
``host:pid`` of its worker and a ``heartbeat`` time, refreshed every :func:`heartbeat_seconds` by a
thread. A RUNNING trial is stale when its worker is a dead process on this host, or when its
heartbeat is older than :func:`grace_seconds` (a worker on another machine). Before each trial, every
worker fails the stale ones (state ``killed``, an MLflow run recorded for them) and enqueues each
once more with the same parameters (``retry_of``); a retried trial is not retried again. Any killed
trial still lacking its retry or its MLflow run (its worker died while failing it, or a signal
stopped it) gets them at that point too.

Workers share no lock (another machine's worker has only the storage), so two can see one trial to go
and both ask for it. Right after ``ask()`` a worker counts the trials ahead of its own (finished and
counted, or running with a smaller number); when they already reach ``trials`` its trial is surplus:
failed at once with state ``surplus``, never trained, no MLflow run, and left out of the trial table
and the counts. Every worker applies the same rule to the same storage, so exactly one of two racing
workers gives way and the search runs ``trials`` trials, not one more (Optuna's own
``MaxTrialsCallback`` overshoots here).

Several goals (``--goals val_accuracy,params``): the study has one direction per goal, accuracy first,
and a complete trial is told its value for each (the goals of size are known from the layer plan). Optuna
prunes one objective only (``Trial.report`` refuses a multi-objective study), so the median pruner is
cnn-search's own there, and sound for a Pareto front (:func:`pareto_median_prunes`): a trial is stopped
when its validation accuracy at an epoch is below the median, at that epoch, of the finished trials that
are no larger than it on every goal of size; a trial smaller than all of them is never stopped by them.
Its epochs' values are kept in the trial's ``epoch_values`` attribute. Hyperband is refused with several
goals. The samplers take several objectives as they are (TPE, NSGA-II, random, QMC).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError, option
from search._goal import GOAL, Goal, pareto_front, parse_goals
from search._process import dead_here, worker_id
from search.engines._base import Engine, SearchOptions, check_same_search, register_engine, seed_everything
from search.engines._optuna_params import OptunaParams
from search.runtime._session import (
    EpochEvent,
    SearchResult,
    Session,
    Signals,
    TrialEvent,
    TrialStarted,
    dispatch,
    log,
    say_winner,
)
from search.runtime._workers import (
    import_keras_lean,
    wait_for_parent_run,
    watch,
    worker_env,
    worker_session,
)
from search.runtime._zygote import LAUNCHER, WorkerProcess

if TYPE_CHECKING:
    import optuna

    from search.model import Architecture
    from search.space import Space
    from search.training import TrialResult

SAMPLERS = ("tpe", "tpe-local", "random", "gp", "qmc", "nsga2")
#: Trials a supervised worker process runs before a fresh one replaces it, unless told otherwise
#: (measured: TensorFlow keeps 5-6 MB per trained model in a process; benchmarks/workers.py).
RECYCLE_AFTER = 50
PRUNERS = ("median", "median-noise", "hyperband", "none")
#: Trials before ``tpe-local`` starts its local moves (``--local-after``): the first 20 (the README's budget)
#: are TPE's, so the moves refine what a global search found.
LOCAL_AFTER = 20


def constraint_violations(limits: Mapping[str, float]) -> Callable[[optuna.trial.FrozenTrial], list[float]]:
    """Optuna's ``constraints_func`` for the measured constraints ``limits`` (metric -> most allowed): how far
    over each limit a trial was (> 0: violated), from what was measured on it before it trained (a trial
    refused for it, or one that trained). TPE, NSGA-II and GP then steer towards trials that meet them,
    rather than learning only that a refused trial had no value.

    >>> from optuna.trial import create_trial
    >>> over = constraint_violations({"latency_ms:tflite": 2.0})
    >>> over(create_trial(value=0.5, user_attrs={"measured": {"latency_ms:tflite": 3.5}}))
    [1.5]
    """

    def violations(trial: optuna.trial.FrozenTrial) -> list[float]:
        measured = trial.user_attrs.get("measured") or {}
        return [float(measured[m]) - limit if m in measured else 0.0 for m, limit in limits.items()]

    return violations


def make_sampler(
    name: str, seed: int | None, limits: Mapping[str, float] | None = None, *, local_after: int = LOCAL_AFTER
) -> optuna.samplers.BaseSampler:
    """The ``--sampler``; with measured constraints (``limits``), TPE, NSGA-II and GP take them as Optuna's
    constraints (:func:`constraint_violations`). ``tpe-local`` makes local moves from trial ``local_after``."""
    import optuna

    constraints = constraint_violations(limits) if limits else None
    with warnings.catch_warnings():  # constraints_func is "experimental" in Optuna: said once here, not each run
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _sampler(name, seed, constraints, local_after)


def _sampler(name: str, seed: int | None, constraints: Any, local_after: int) -> optuna.samplers.BaseSampler:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, constraints_func=constraints)
    if name == "tpe-local":  # TPE, and local moves around the incumbent (search.engines._local)
        from search.engines._local import LocalSampler

        tpe = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, constraints_func=constraints)
        return LocalSampler(tpe, seed=None if seed is None else seed + 1, after=local_after)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints)
    if name == "gp":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise SearchError(f"{option('sampler')} gp needs PyTorch: pip install torch") from None
        return optuna.samplers.GPSampler(seed=seed, constraints_func=constraints)
    raise SearchError(f"{option('sampler')}: unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


def pruner_startup(start_points: int) -> int:
    """Finished trials before the median pruner may stop one: the space's start points when it has at least
    two (known-good trials are the bar to beat; measured on the five tuning tasks of benchmarks/suite.py, README
    "Each trial"), else Optuna's default of 5.

    >>> pruner_startup(2), pruner_startup(1), pruner_startup(0), pruner_startup(9)
    (2, 5, 5, 5)
    """
    return start_points if 2 <= start_points <= 5 else 5


def make_pruner(name: str, epochs: int, start_points: int = 0, validation_images: int = 0) -> optuna.pruners.BasePruner:
    import optuna

    if name == "median":
        # From the first epoch (no warm-up steps): measured with the README's search on the five tuning tasks
        # (README "Each trial"), the same test accuracy on all five and 74 s against 99 s on objects.
        return optuna.pruners.MedianPruner(n_startup_trials=pruner_startup(start_points), n_warmup_steps=0)
    if name == "median-noise":  # the same, with the validation split's noise allowed for (search.engines._pruning)
        from search.engines._pruning import NoisyMedianPruner

        return NoisyMedianPruner(n_startup_trials=pruner_startup(start_points), validation_images=validation_images)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SearchError(f"{option('pruner')}: unknown pruner {name!r}; expected one of {', '.join(PRUNERS)}")


def goals_of(study: optuna.Study) -> tuple[Goal, ...]:
    """The goals the search was started with (accuracy alone for a study recorded before goals existed)."""
    return parse_goals(study.user_attrs.get("goals"))


def accuracy_of(t: optuna.trial.FrozenTrial) -> float | None:
    """A finished trial's validation accuracy: its value, or its first value with several goals."""
    return float(t.values[0]) if t.values else None


def epoch_values(t: optuna.trial.FrozenTrial) -> dict[int, float]:
    """The validation accuracy a trial reported after each epoch (step from 0): Optuna's intermediate
    values, or with several goals the ``epoch_values`` attribute (see the module docstring)."""
    if t.intermediate_values:
        return {int(k): float(v) for k, v in t.intermediate_values.items()}
    return {i: float(v) for i, v in enumerate(t.user_attrs.get("epoch_values") or [])}


def pareto_median_prunes(
    value: float,
    step: int,
    sizes: dict[str, float],
    finished: list[tuple[dict[str, float], dict[int, float]]],
    *,
    startup: int,
    images: int = 0,
) -> bool:
    """Whether a trial with validation accuracy ``value`` at epoch ``step`` and goals of size ``sizes``
    (``{"params": 40_000}``) is stopped, given the ``finished`` (complete) trials' sizes and epoch
    values: when at least ``startup`` of those no larger than it on every goal of size reported that
    epoch, and ``value`` is below their median by more than the noise of ``images`` validation images
    (:func:`search.engines._pruning.noise_margin`; 0 images, ``--pruner median``: by any margin).

    >>> done = [({"params": 100}, {0: 0.8}), ({"params": 200}, {0: 0.9}), ({"params": 900}, {0: 0.95})]
    >>> pareto_median_prunes(0.5, 0, {"params": 300}, done, startup=2)  # below 0.85, larger than two
    True
    >>> pareto_median_prunes(0.5, 0, {"params": 150}, done, startup=2)  # only one trial is as small
    False
    """
    bar = [
        curve[step]
        for other, curve in finished
        if step in curve and all(other.get(k, math.inf) <= v for k, v in sizes.items())
    ]
    if not bar or len(bar) < startup:
        return False
    from search.engines._pruning import noise_margin

    median = statistics.median(bar)
    return value < median - noise_margin(median, images)


def limits_of(measures: Mapping[str, float | None] | None) -> dict[str, float]:
    """The measured constraints among ``measures`` (metric -> limit; goals have no limit)."""
    return {k: float(v) for k, v in (measures or {}).items() if v is not None}


def counted(study: optuna.Study) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


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


def enqueue_start_points(study: optuna.Study, points: tuple[dict[str, Any], ...]) -> None:
    """Queue the space's start points as the first trials of a new study (``start_point`` = index);
    a study that has trials already (a resumed search) is left as it is."""
    if study.get_trials(deepcopy=False):
        return
    for i, point in enumerate(points):
        study.enqueue_trial(point, user_attrs={"start_point": i}, skip_if_exists=False)


def rss_mb() -> float:
    """This process's resident memory in MiB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def optimize(
    session: Session,
    study: optuna.Study,
    *,
    trials: int,
    signals: Signals,
    deadline: float | None = None,
    hard_deadline: float | None = None,
    max_trials_here: int | None = None,
    max_rss_mb: float | None = None,
) -> int:
    """Run trials until ``trials`` are counted, the ``deadline`` (``time.time()``) passes, this worker
    has run ``max_trials_here`` or grown past ``max_rss_mb`` (it is then recycled), or failures pile
    up. A running trial is stopped at ``hard_deadline``. Returns how many ran."""
    import optuna

    ran = 0
    goals = goals_of(study)
    while more_work(study, trials, None):  # trials other workers are running count as coming
        signals.check()  # a signal held since the last trial ends the search here, with nothing half-done
        why = _why_stop(deadline=deadline, ran=ran, max_trials_here=max_trials_here, max_rss_mb=max_rss_mb)
        if why is not None:
            log.info("%s", why)
            break
        stale = fail_stale_trials(study, session)
        if stale:
            log.warning("trial(s) %s were left running by a worker that stopped: failed, retried once", stale)
        trial = _ask(study, trials)
        if trial is None:
            continue
        ran += 1

        def report_one(epoch: int, value: float, trial: optuna.Trial = trial) -> bool:
            trial.report(value, epoch)
            return bool(trial.should_prune())

        # Optuna prunes one objective only: with several goals, see the module docstring
        report = report_one if len(goals) == 1 else _pareto_reporter(session, study, trial, goals)

        def interrupted(trial: optuna.Trial = trial) -> None:
            trial.set_user_attr("state", "killed")
            trial.set_user_attr("reason", "killed: interrupted")
            study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)

        def best_so_far() -> tuple[float | None, int | None]:  # other workers may have finished some
            best = best_trial(study)
            return (accuracy_of(best), best.number) if best is not None else (None, None)

        def record(arch: Architecture, result: TrialResult, run_id: str, trial: optuna.Trial = trial) -> None:
            tell(study, trial, arch, result, run_id, goals=goals)

        queued = study._storage.get_trial_user_attrs(trial._trial_id)  # with what the sampler set (local_of)
        # start_point: which of the space's start points; retry_of: the killed trial it reruns
        tags: dict[str, str] = {k: str(queued[k]) for k in ("start_point", "retry_of", "local_of") if k in queued}
        if "local_moves" in queued:  # a local move around the incumbent (search.engines._local)
            tags["local_moves"] = ",".join(queued["local_moves"])
        with heartbeat(study, trial):
            session.trial(
                trial.number,
                OptunaParams(trial),
                signals=signals,
                target=trials,
                best=best_so_far,
                record=record,
                done=lambda: counted(study),
                reporter=report,
                on_interrupt=interrupted,
                deadline=hard_deadline,
                tags=tags,
            )
    return ran


def _pareto_reporter(
    session: Session, study: optuna.Study, trial: optuna.Trial, goals: tuple[Goal, ...]
) -> Callable[[int, float], bool]:
    """The reporter of a trial of a several-goal study: keeps its epochs' values (``epoch_values``) and,
    with the median pruner, stops it by :func:`pareto_median_prunes`."""
    import optuna

    curve: list[float] = []
    pruner = study.user_attrs.get("pruner", "median")
    prunes = pruner in ("median", "median-noise")
    startup = pruner_startup(len(session.space.start))
    images = session.data.counts["validation"] if pruner == "median-noise" else 0  # the noise allowance

    def report(epoch: int, value: float) -> bool:
        curve.append(float(value))
        trial.set_user_attr("epoch_values", list(curve))
        if not prunes:
            return False
        # this trial's goals of size, known before it trained (the objective running it keeps them)
        sizes = {g.metric: float(session.objective.last_sizes[g.metric]) for g in goals[1:]}
        finished = [
            ({g.metric: float(v) for g, v in zip(goals[1:], t.values[1:], strict=True)}, epoch_values(t))
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.values
        ]
        # its best epoch so far, as Optuna's median rule judges a trial of one goal
        return pareto_median_prunes(max(curve), epoch, sizes, finished, startup=startup, images=images)

    return report


def _why_stop(*, deadline: float | None, ran: int, max_trials_here: int | None, max_rss_mb: float | None) -> str | None:
    """Why this worker starts no more trials (said in the log), or None to go on."""
    if deadline is not None and time.time() >= deadline:
        return "--timeout reached: no new trial starts"
    if max_trials_here is not None and ran >= max_trials_here:
        return f"worker recycled after {ran} trials"
    if max_rss_mb is not None and rss_mb() > max_rss_mb:
        return f"worker recycled at {rss_mb():.0f} MiB resident (limit {max_rss_mb:.0f} MiB)"
    return None


def _ask(study: optuna.Study, trials: int) -> optuna.Trial | None:
    """The next trial, marked with this worker and its first heartbeat; None when it is surplus (another
    worker took the last trial at the same moment: failed at once, see the module docstring)."""
    import optuna

    trial = study.ask()
    if surplus(study, trial.number, trials):
        trial.set_user_attr("state", SURPLUS)
        trial.set_user_attr("reason", f"surplus: {trials} trials were already counted or running")
        study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        log.debug("trial %d: surplus (another worker started the last trial at the same moment)", trial.number)
        return None
    trial.set_user_attr("worker", worker_id())
    trial.set_user_attr("heartbeat", time.time())
    if "CUDA_VISIBLE_DEVICES" in os.environ:  # the GPU a supervised worker is pinned to, and its memory setting
        from search._backend import gpu_env, name

        trial.set_user_attr("cuda_visible_devices", os.environ["CUDA_VISIBLE_DEVICES"])
        memory = [f"{k}={os.environ[k]}" for k in gpu_env(name()) if k in os.environ]
        trial.set_user_attr("gpu_memory", ",".join(memory))
    return trial


def tell(
    study: optuna.Study,
    trial: optuna.Trial,
    arch: Architecture,
    result: TrialResult,
    run_id: str,
    *,
    goals: tuple[Goal, ...] = (GOAL,),
) -> None:
    """Record a trial's outcome in the study: what the trial table shows as user attributes, then its
    state (complete → COMPLETE with its value, one per goal; pruned and infeasible → PRUNED; failed → FAIL)."""
    import optuna

    attrs: dict[str, Any] = {
        "state": result.state,
        "reason": result.reason,
        "summary": arch.summary(),
        "architecture_hash": arch.hash(),
        "mlflow_run_id": run_id,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "params": result.params,
        "flops": result.flops,
        "measured": result.measured or None,
        "train_seconds": round(result.train_seconds, 3),
        "worker_rss_mb": round(rss_mb(), 1),  # resident memory of the worker after the trial
    }
    from search import hooks

    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    hooks.call("record_step", step="attrs", trial=trial.number)
    State = optuna.trial.TrialState
    if result.state == "complete" and len(goals) > 1:
        study.tell(trial, [float(result.goal_value(g) or 0.0) for g in goals])
    elif result.state == "complete":
        study.tell(trial, result.value)
    elif result.state in ("pruned", "infeasible"):
        study.tell(trial, state=State.PRUNED)
    else:
        study.tell(trial, state=State.FAIL)
    hooks.call("record_step", step="told", trial=trial.number)


SURPLUS = "surplus"


def surplus(study: optuna.Study, number: int, trials: int) -> bool:
    """Whether trial ``number``, just asked for, would exceed ``trials``: the trials ahead of it
    (COMPLETE or PRUNED, or RUNNING with a smaller number) already reach the target."""
    import optuna

    State = optuna.trial.TrialState
    ahead = study.get_trials(deepcopy=False, states=(State.COMPLETE, State.PRUNED, State.RUNNING))
    return sum(t.state != State.RUNNING or t.number < number for t in ahead) >= trials


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


def _running(study: optuna.Study) -> int:
    import optuna

    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))


def more_work(study: optuna.Study, trials: int, deadline: float | None) -> bool:
    """Whether trials remain to be started (before ``deadline``, if any): the trial loop's condition, and
    whether the supervisor starts a worker that ended again. Trials running in any worker count as
    coming (a worker started for none of them would spend 5 s starting up, find nothing to do, and keep
    the search waiting for its exit)."""
    return counted(study) + _running(study) < trials and (deadline is None or time.time() < deadline)


def search_done(study: optuna.Study, trials: int, deadline: float | None) -> bool:
    """Whether the search's trials are over (none to start, none running) and one of them completed:
    the winner can be evaluated and registered."""
    return not more_work(study, trials, deadline) and _running(study) == 0 and has_complete(study)


def has_complete(study: optuna.Study) -> bool:
    import optuna

    return bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The completed trial best by the search's :data:`~search._goal.GOAL` (a tie: the earlier trial), or
    ``None``. Used instead of ``study.best_trial``, which Optuna defines for one objective only."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return min(complete, key=lambda t: GOAL.sort_key(accuracy_of(t), t.number), default=None)


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One plain dict per trial, best first (complete by value, then the rest by number). With several
    goals each row says whether its trial is on the Pareto front (``pareto_front``)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("state") == SURPLUS:
            continue
        rows.append(
            {
                "trial": t.number,
                "state": t.user_attrs.get("state", t.state.name.lower()),
                GOAL.metric: accuracy_of(t) if t.values else _last(epoch_values(t)),
                "best_epoch": t.user_attrs.get("best_epoch"),
                "epochs_run": t.user_attrs.get("epochs_run"),
                "params": t.user_attrs.get("params"),
                "flops": t.user_attrs.get("flops"),
                "seconds": t.user_attrs.get("train_seconds"),
                "architecture": t.user_attrs.get("summary", ""),
                "reason": t.user_attrs.get("reason") or "",
                "hyperparameters": dict(t.params),
                **({"start_point": t.user_attrs["start_point"]} if "start_point" in t.user_attrs else {}),
                **({"local_of": t.user_attrs["local_of"]} if "local_of" in t.user_attrs else {}),
                **(t.user_attrs.get("measured") or {}),
            }
        )
    goals = goals_of(study)
    if len(goals) > 1:
        front = set(pareto_front((r for r in rows if r["state"] == "complete"), goals))
        for row in rows:
            row["pareto_front"] = row["trial"] in front
    from search.runtime._recheck import annotate

    return annotate(
        GOAL.best_first(rows), study.user_attrs.get("recheck_summary"), study.user_attrs.get("champion_trial")
    )


def _last(values: dict[int, float]) -> float | None:
    """The value of the last epoch reported (a pruned trial's, as Optuna keeps it with one goal)."""
    return values[max(values)] if values else None


def summarize(study: optuna.Study) -> dict[str, int]:
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get("state", t.state.name.lower())
        if key == SURPLUS:
            continue
        states[key] = states.get(key, 0) + 1
    return states


def result_of(session: Session, study: optuna.Study, *, ran: int, nothing_to_do: bool) -> SearchResult:
    from search.model import Architecture

    best = best_trial(study)
    champion = study.user_attrs.get("champion_trial")
    if best is not None and champion is not None and champion != best.number:  # re-checked: the best mean
        best = study.get_trials(deepcopy=False)[champion]
    arch = None
    if best is not None:
        from search.space import FixedParams

        arch = session.space.sample(FixedParams(best.params))
    metrics = {k: float(v) for k, v in study.user_attrs.get("test_metrics", {}).items()}
    return SearchResult(
        name=session.name,
        engine="optuna",
        best_trial=best.number if best else None,
        best_value=accuracy_of(best) if best else None,
        architecture=arch if isinstance(arch, Architecture) else None,
        test_metrics=metrics,
        model_uri=study.user_attrs.get("model_uri"),
        states=summarize(study),
        wall_seconds=time.perf_counter() - session.started,
        experiment_id=session.experiment_id,
        parent_run_id=session.parent_run_id,
        tracking_uri=session.tracking_uri,
        nothing_to_do=nothing_to_do,
        new_trials=ran,
        trials=trial_rows(study),
    )


def finish_search(session: Session, study: optuna.Study) -> None:
    """Evaluate and register the best trial, unless it is already the registered champion (checked
    under the search's lock: two ``run`` processes of one search register one model version). The
    worker process that ends a supervised search evaluates it (it has Keras and the data loaded; the
    supervising process would spend 3 s importing Keras first) and hands it to the supervisor through
    the spool to register (:mod:`search.tracking._spool`); the supervisor's call then finds it done,
    or does it all when no worker could."""
    from search.tracking._store import search_lock

    session.tracker  # noqa: B018 -- MLflow's start-up (a background thread) takes this lock too: wait for it first
    with search_lock(session.runs_dir, session.name):
        _finish_locked(session, study)


def _finish_locked(session: Session, study: optuna.Study) -> None:
    best = best_trial(study)
    if best is None:
        log.warning("no trial completed: nothing to register")
        return
    single = best
    k = int(study.user_attrs.get("recheck") or 0)
    if k:
        if session.relay is not None:  # a worker: the supervisor re-checks, records and registers
            return
        runs, within = int(study.user_attrs.get("recheck_runs") or 2), study.user_attrs.get("recheck_within", 2.0)
        best = _rechecked(session, study, k, runs, float(within)) or best
    if study.user_attrs.get("champion_trial") == best.number:
        return
    t0 = time.perf_counter()
    metrics, uri = session.finish(
        best_trial=best.number,
        best_params=best.params,
        best_epoch=best.user_attrs.get("best_epoch"),
        refit=bool(study.user_attrs.get("refit")),
    )
    if k:
        session.beside_single_run(metrics, single=single.number, champion=best.number)
    study.set_user_attr("test_metrics", metrics)
    study.set_user_attr("model_uri", uri)
    study.set_user_attr("champion_trial", best.number)
    if not session.keeps_front:  # several goals: mark_front keeps the front's models
        session.keep_only({best.number})
    if session.relay is not None:  # the supervisor says it once it has registered the model
        return
    say_winner(best.number, metrics["test_accuracy"], time.perf_counter() - t0, uri)


def _rechecked(
    session: Session, study: optuna.Study, k: int, runs: int, within: float
) -> optuna.trial.FrozenTrial | None:
    """The champion re-checked (:func:`search.runtime._recheck.crown`), or None when nothing was re-checked."""
    import optuna

    from search.runtime._recheck import crown

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    rows = [
        {"trial": t.number, "value": accuracy_of(t), "params": t.params,
         "architecture_hash": t.user_attrs.get("architecture_hash") or str(t.number)}
        for t in complete
    ]  # fmt: skip
    crowned = crown(session, rows, k, runs, within=within)
    if crowned is None:
        return None
    chosen, summary, rule = crowned
    study.set_user_attr("recheck_summary", summary)
    study.set_user_attr("champion_rule", rule)
    return next(t for t in complete if t.number == chosen)


def mark_front(session: Session, study: optuna.Study) -> list[int]:
    """Tag the search's complete trials in MLflow: ``pareto_front`` true or false on each trial's run, and
    on the search's run the front's trial numbers (``pareto_front``) and the goals. Returns the front."""
    rows = trial_rows(study)
    complete = [r["trial"] for r in rows if r["state"] == "complete"]
    front = sorted(r["trial"] for r in rows if r.get("pareto_front"))
    session.keep_only(set(front))  # the champion is on the front; export --pick takes any point of it
    budget = session.space.budget  # constraints known from the plan, then the measured ones
    limits: dict[str, float] = {k.removeprefix("max_"): v for k, v in budget.items() if v is not None}
    limits.update(limits_of(study.user_attrs.get("measures")))
    session.tracker.mark_front(
        session.experiment_id,
        session.parent_run_id,
        front=front,
        complete=complete,
        goals=[g.metric for g in goals_of(study)],
        constraints=limits,
    )
    return front


# -- worker processes: `cnn-search run --workers N` supervises them, `cnn-search worker NAME` is one --------
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
    command = [
        "worker",
        session.name,
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
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}  # said before: a resume
    running: dict[int, tuple[int, int]] = {}  # trial -> (epochs planned, epochs announced)

    def start(index: int) -> WorkerProcess:
        args, env = [*command, "--index", str(index)], worker_env(index, gpus, workers)
        if gpus:  # CUDA does not survive a fork: fresh interpreters
            return subprocess.Popen([sys.executable, "-m", "search", *args], env=env)
        return LAUNCHER.start(args, env)  # forked from the forkserver that run_search prestarted

    def tick() -> None:
        _announce(session, study, seen, trials, running)
        session.drain(wait=False)

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
            session.drain()
            # A worker the signal reached inside TensorFlow's C code can die with a SystemError before it
            # records its trial: its trial would stay RUNNING until the next start; fail it now.
            stale = fail_stale_trials(study, session)
            if stale:
                log.warning("trial(s) %s were left running by a worker that ended: failed", stale)
        except Exception as exc:  # left in the spool: the next start of the search writes it
            spool = spool_dir(session.runs_dir, session.name)
            log.warning("the workers' last records stay in %s for the next run: %r", spool, exc)
        raise
    session.drain()  # the last trials and the winner
    return len(study.trials) - before


def _announce(
    session: Session, study: optuna.Study, seen: set[int], trials: int, running: dict[int, tuple[int, int]]
) -> None:
    """Progress callbacks for what the workers did since the last look: trials started, their epochs
    (the validation accuracy each reported to Optuna) and trials finished."""
    import datetime

    import optuna

    from search.space import FixedParams

    now = datetime.datetime.now()

    def epochs_of(t: optuna.trial.FrozenTrial) -> None:
        """on_trial_begin the first time ``t`` is seen, then on_epoch_end for the epochs it reported since."""
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

    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if "worker" in t.user_attrs:  # set once the trial is known not to be surplus
            epochs_of(t)
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.number not in seen and t.user_attrs.get("state") != SURPLUS
    ]
    if not finished:
        return
    for t in finished:  # a trial that ended between two looks: its epochs are said before its end
        if epoch_values(t):
            epochs_of(t)
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
    from search.runtime._storage import default_storage_url, get_storage
    from search.tracking import check_store, default_tracking_uri
    from search.tracking._spool import spool_dir

    check_name(name, option="NAME")
    runs = Path(runs_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or default_storage_url(runs)
    try:
        study = optuna.load_study(study_name=name, storage=get_storage(url))
    except KeyError:
        from search.tracking._searches import unknown_search

        names = optuna.get_all_study_names(get_storage(url))
        raise unknown_search(name, names, url, hint="start it with cnn-search run") from None
    attrs = study.user_attrs
    if "space_definition" not in attrs or "target_trials" not in attrs:
        raise SearchError(f"search {name!r} was not started by a cnn-search that supports workers; rerun it")
    if not relay:
        check_store(tracking_uri or default_tracking_uri(runs))
    session = worker_session(
        name, "optuna", attrs, runs_dir=runs, tracking_uri=tracking_uri, relay=spool_dir(runs, name) if relay else None
    )
    space, seed, epochs = session.space, attrs.get("seed"), attrs.get("epochs")
    import_keras_lean()  # before waiting: its seconds overlap the supervisor's MLflow start-up

    def recorded() -> dict[str, Any]:
        return study.user_attrs  # read from the storage at every call (journal and RDB alike)

    parent = None if relay else wait_for_parent_run(recorded, wait_for_parent)
    local_after = int(attrs.get("local_after", LOCAL_AFTER))
    study.sampler = make_sampler(
        attrs["sampler"],
        None if seed is None else seed + 7919 * (index + 1) + len(study.trials),
        limits_of(attrs.get("measures")),
        local_after=local_after,
    )
    study.pruner = make_pruner(
        attrs["pruner"],
        epochs or max(space.training["epochs"].values()),
        start_points=len(space.start),
        validation_images=session.data.counts["validation"],
    )
    trials = int(attrs["target_trials"])
    with session.running(parent) as signals:
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


def open_study(session: Session, options: SearchOptions, storage_url: str) -> optuna.Study:
    """The search's study, created or continued (refused when it has another space or other data), with
    the goal's metric named, the space's start points queued (a new study only), and the sampler seeded
    past the trials it has (a resumed seeded search continues the random sequence instead of replaying it)."""
    import optuna

    from search.runtime._storage import get_storage

    space = session.space
    goals = options.goal_list
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=session.name,
        storage=get_storage(storage_url),
        directions=[g.direction for g in goals],
        load_if_exists=True,
        sampler=make_sampler(
            options.sampler, options.seed, limits_of(options.measures), local_after=options.local_after
        ),
        pruner=make_pruner(
            options.pruner,
            options.planned_epochs(space),
            start_points=len(space.start),
            validation_images=session.data.counts["validation"],
        ),
    )
    identity = check_same_search(dict(study.user_attrs), space, session.data, session.name)
    recorded_goals = tuple(g.metric for g in goals_of(study)) if study.trials else None
    if recorded_goals is not None and recorded_goals != options.goals:
        raise SearchError(
            f"search {session.name!r} already exists with goals {','.join(recorded_goals)}; received "
            f"{option('goals')} {','.join(options.goals or ())}. Use another {option('name')}, or the same goals to "
            "continue it."
        )
    study.set_user_attr("goals", list(options.goals or (GOAL.metric,)))
    if "data_fingerprint" not in study.user_attrs:
        for key, value in identity.items():
            study.set_user_attr(key, value)
        study.set_user_attr("engine", OptunaEngine.name)
    if study.metric_names is None:  # optuna-dashboard and Optuna's plots then name the goal's metric
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([g.metric for g in goals])
    enqueue_start_points(study, space.start)
    if options.seed is not None:
        study.sampler = make_sampler(
            options.sampler,
            options.seed + len(study.trials),
            limits_of(options.measures),
            local_after=options.local_after,
        )
    return study


@register_engine
class OptunaEngine(Engine):
    """Optuna's ask/tell: ``--sampler`` chooses the trials, ``--pruner`` stops hopeless ones after an epoch,
    the study (``--storage``, default a journal file under ``runs/``) is the source of truth; trials run
    in this process or in supervised worker processes (``--workers``; one per GPU, or two on a 2-core
    CPU for a search of more than seconds: :func:`search._run.default_workers`)."""

    name = "optuna"
    workers = True
    cpu_workers = True
    preload = ("optuna", __name__)
    several_goals = True
    rechecks = True
    resumes = (
        "the study: finished trials are kept, a trial left running by a process that ended is failed and "
        "retried once, start points are not tried again, and the target --trials counts them all"
    )

    def default_name(self, space: Space, data: str) -> str:
        """``SPACE-DATA``: Optuna is the default engine, its searches carry no suffix."""
        from search._names import safe_name

        return safe_name(f"{space.name}-{Path(str(data)).stem}")

    def check(self, options: SearchOptions, space: Space) -> SearchOptions:
        options = super().check(options, space)
        heartbeat_seconds()  # a bad CNN_SEARCH_HEARTBEAT_SECONDS is refused before anything is written
        if options.sampler not in SAMPLERS:
            make_sampler(options.sampler, None)  # the error that names the choices
        if options.pruner not in PRUNERS:
            make_pruner(options.pruner, 1)
        if len(options.goal_list) > 1 and options.pruner == "hyperband":
            raise SearchError(
                f"{option('pruner')}: hyperband prunes on one objective; with several goals "
                f"({','.join(options.goals or ())}) use median (a trial is stopped below the finished trials "
                "no larger than it) or none"
            )
        sqlite = options.storage is not None and options.storage.startswith("sqlite")
        if options.supervised and sqlite:
            raise SearchError(
                f"{option('storage')}: several worker processes need a journal file (the default) or a database server "
                f"(postgresql://, mysql://); received {options.storage!r} (Optuna advises against SQLite for "
                "parallel workers)"
            )
        if options.supervised and not options.recycles:  # TensorFlow keeps ~5-6 MB a trial in a process
            options = dataclasses.replace(options, recycle_after=RECYCLE_AFTER)
        return options

    def run(self, session: Session, options: SearchOptions) -> SearchResult:
        from search.runtime._storage import default_storage_url

        supervised = options.supervised
        if supervised and not options.gpus:
            LAUNCHER.prestart(self.preload)  # the workers' imports start now, beside this process's own start-up
        storage_url = options.storage or default_storage_url(session.runs_dir)
        if not supervised:  # trials run here; worker processes seed themselves (this one never imports Keras)
            seed_everything(options.seed)
        study = open_study(session, options, storage_url)
        deadline, hard_deadline = options.deadlines()
        settings: dict[str, Any] = {  # what workers read (several machines included)
            "sampler": options.sampler,
            "pruner": options.pruner,
            "local_after": options.local_after,
            "epochs": options.epochs,
            "seed": options.seed,
            "data_seed": session.data.seed,
            "target_trials": options.trials,
            "deadline": deadline,
            "hard_deadline": hard_deadline,
            "max_failures": options.max_failures,
            "recycle_after": options.recycle_after,
            "mixed_precision": options.mixed_precision,
            "xla": options.xla,
            "measures": options.measures,
            "recheck": options.recheck,
            "recheck_runs": options.recheck_runs,
            "recheck_within": options.recheck_within,
            "refit": options.refit,
        }
        for key, value in settings.items():
            study.set_user_attr(key, value)
        best = best_trial(study)
        already_final = counted(study) >= options.trials and study.user_attrs.get("champion_trial") == (
            best.number if best is not None else None
        )

        def recorded(experiment_id: str, parent_run_id: str) -> None:  # workers elsewhere wait for it
            if study.user_attrs.get("mlflow_parent_run_id") != parent_run_id:
                study.set_user_attr("mlflow_parent_run_id", parent_run_id)
                study.set_user_attr("mlflow_experiment_id", experiment_id)

        ran = 0
        if not already_final:
            session.search_started(done=counted(study), target=options.trials)

        # MLflow starts in the background, inside the block: a signal during start-up ends the parent run too
        def parent() -> str | None:  # read when MLflow starts: the study's attributes then, not now
            return study.user_attrs.get("mlflow_parent_run_id")

        with session.running(parent, on_ready=recorded, trains=not supervised) as signals:
            stale = fail_stale_trials(study, session)
            if stale:
                log.warning("trial(s) %s were left running by a process that ended: failed, retried once", stale)
            if not already_final:
                if supervised:
                    ran = supervise(
                        session,
                        study,
                        workers=options.workers or 1,
                        trials=options.trials,
                        storage_url=storage_url,
                        deadline=deadline,
                        signals=signals,
                        recycle_after=options.recycle_after,
                        max_rss_mb=options.max_worker_rss_mb,
                        gpus=list(options.gpus),
                    )
                else:
                    ran = optimize(
                        session, study, trials=options.trials, signals=signals, deadline=deadline,
                        hard_deadline=hard_deadline,
                    )  # fmt: skip
                    limit = None if hard_deadline is None else hard_deadline - time.time()
                    wait_for_others(study, session, signals, limit=limit)
                finish_search(session, study)  # done already when a worker finished it
                if len(options.goal_list) > 1:
                    mark_front(session, study)
                if options.report:
                    session.pictures()
            study.set_user_attr("mlflow_parent_run_id", session.parent_run_id)
            study.set_user_attr("mlflow_experiment_id", session.experiment_id)
        return result_of(session, study, ran=ran, nothing_to_do=already_final)

    def trial_rows(
        self, name: str, *, runs_dir: Path, storage: str | None = None
    ) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
        import optuna

        from search.runtime._storage import default_storage_url, get_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=name, storage=get_storage(storage or default_storage_url(runs_dir)))
        return trial_rows(study), study.user_attrs

    def worker(self, name: str, **options: Any) -> int:
        return run_worker(name, **options)
