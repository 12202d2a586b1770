"""The trial loop of one worker (:func:`optimize`): ask for a trial, train it through the Session, tell the
study its outcome (:func:`tell`).

Workers share no lock (another machine's worker has only the storage), so two can see one trial to go
and both ask for it. Right after ``ask()`` a worker counts the trials ahead of its own (finished and
counted, or running with a smaller number); when they already reach ``trials`` its trial is surplus:
failed at once with state ``surplus``, never trained, no MLflow run, and left out of the trial table
and the counts. Every worker applies the same rule to the same storage, so exactly one of two racing
workers gives way and the search runs ``trials`` trials, not one more (Optuna's own
``MaxTrialsCallback`` overshoots here).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from search._goal import GOAL, Goal
from search._process import worker_id
from search.engines._optuna._liveness import fail_stale_trials, heartbeat
from search.engines._optuna._params import OptunaParams
from search.engines._optuna._pareto import _pareto_reporter
from search.engines._optuna._study import SURPLUS, accuracy_of, best_trial, counted, goals_of, more_work, surplus
from search.runtime._session import Session, Signals, TrialStore, log

if TYPE_CHECKING:
    import optuna

    from search.model import Architecture
    from search.training import TrialResult


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
        _run_trial(session, study, trial, trials=trials, signals=signals, goals=goals, hard_deadline=hard_deadline)
    return ran


def _run_trial(
    session: Session,
    study: optuna.Study,
    trial: optuna.Trial,
    *,
    trials: int,
    signals: Signals,
    goals: tuple[Goal, ...],
    hard_deadline: float | None,
) -> None:
    """Train ``trial`` through the session, its heartbeat refreshed meanwhile: each epoch reported (to the
    pruner, or by the Pareto rule with several goals), the outcome told to the study, an interruption recorded
    as killed."""
    tags = _tags(study, trial)
    with heartbeat(study, trial):
        session.trial(
            trial.number,
            OptunaParams(trial),
            StudyTrial(session, study, trial, goals),
            signals=signals,
            target=trials,
            deadline=hard_deadline,
            tags=tags,
        )


class StudyTrial(TrialStore):
    """An Optuna trial as the session's store: each epoch reported to the pruner (or judged by the Pareto rule
    with several goals: :mod:`search.engines._optuna._pareto`), the outcome told to the study, an
    interruption told as a failed trial; the best so far read from the study (other workers finish some)."""

    def __init__(self, session: Session, study: optuna.Study, trial: optuna.Trial, goals: tuple[Goal, ...]) -> None:
        self.study, self.trial, self.goals = study, trial, goals
        self._pareto = _pareto_reporter(session, study, trial, goals) if len(goals) > 1 else None

    def report(self, epoch: int, value: float) -> bool:
        if self._pareto is not None:  # Optuna prunes one objective only
            return self._pareto(epoch, value)
        self.trial.report(value, epoch)
        return bool(self.trial.should_prune())

    def interrupted(self) -> None:
        import optuna

        self.trial.set_user_attr("state", "killed")
        self.trial.set_user_attr("reason", "killed: interrupted")
        self.study.tell(self.trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)

    def best(self) -> tuple[float | None, int | None]:
        found = best_trial(self.study)
        return (accuracy_of(found), found.number) if found is not None else (None, None)

    def record(self, architecture: Architecture, result: TrialResult, run_id: str) -> None:
        tell(self.study, self.trial, architecture, result, run_id, goals=self.goals)

    def done(self) -> int:
        return counted(self.study)


def _tags(study: optuna.Study, trial: optuna.Trial) -> dict[str, str]:
    """The trial's MLflow tags from its user attributes, as queued (start points, retries) or set by the sampler."""
    queued = study._storage.get_trial_user_attrs(trial._trial_id)  # with what the sampler set (local_of)
    # start_point: which of the space's start points; retry_of: the killed trial it reruns
    tags: dict[str, str] = {k: str(queued[k]) for k in ("start_point", "retry_of", "local_of") if k in queued}
    if "local_moves" in queued:  # a local move around the incumbent (search.engines._optuna._local)
        tags["local_moves"] = ",".join(queued["local_moves"])
    return tags


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
