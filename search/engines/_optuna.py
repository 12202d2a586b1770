"""The Optuna engine: ask/tell over the shared Session (one trial at a time in this process).

Trial states map to Optuna's: complete → COMPLETE (value = best validation accuracy), pruned and
infeasible → PRUNED (infeasible ones are never trained), failed and killed → FAIL. The target
``trials`` counts COMPLETE and PRUNED trials, so a search interrupted and run again reaches it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search.engines._optuna_params import OptunaParams
from search.engines._session import SearchResult, Session, Signals, TrialEvent, log

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "gp", "qmc")
PRUNERS = ("median", "hyperband", "none")


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    if name == "gp":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise SearchError("--sampler gp needs PyTorch: pip install torch") from None
        return optuna.samplers.GPSampler(seed=seed)
    raise SearchError(f"--sampler: unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SearchError(f"--pruner: unknown pruner {name!r}; expected one of {', '.join(PRUNERS)}")


def counted(study: optuna.Study) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def fail_stale_running(study: optuna.Study) -> list[int]:
    """Trials left RUNNING by a process that died (one worker per search) are failed."""
    import optuna

    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_user_attr(trial._trial_id, "state", "killed")
        study._storage.set_trial_user_attr(trial._trial_id, "reason", "killed: the process running it ended")
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    return [t.number for t in stale]


def optimize(session: Session, study: optuna.Study, *, trials: int, timeout: float | None, signals: Signals) -> int:
    """Run trials until ``trials`` are counted, ``timeout`` passes, or failures pile up. Returns how many ran."""
    import optuna

    State = optuna.trial.TrialState
    started = time.perf_counter()
    ran = 0
    while counted(study) < trials:
        signals.check()  # a signal held since the last trial ends the search here, with nothing half-done
        if timeout is not None and time.perf_counter() - started >= timeout:
            log.info("timeout of %.0f s reached: no new trial starts", timeout)
            break
        trial = study.ask()
        ran += 1

        def report(epoch: int, value: float, trial: optuna.Trial = trial) -> bool:
            trial.report(value, epoch)
            return bool(trial.should_prune())

        def interrupted(trial: optuna.Trial = trial) -> None:
            trial.set_user_attr("state", "killed")
            trial.set_user_attr("reason", "killed: interrupted")
            study.tell(trial, state=State.FAIL, skip_if_finished=True)

        source = OptunaParams(trial)
        t0 = time.perf_counter()
        best = study.best_trial if has_complete(study) else None
        arch, result, run_id = session.run_trial(
            trial.number, source, report, signals=signals, on_interrupt=interrupted
        )
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
            "train_seconds": round(result.train_seconds, 3),
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if result.state == "complete":
            session.keep_if_best(trial.number, result, best.value if best else None, best.number if best else None)
            study.tell(trial, result.value)
        elif result.state in ("pruned", "infeasible"):
            study.tell(trial, state=State.PRUNED)
        else:
            study.tell(trial, state=State.FAIL)
        result.model = None
        best = study.best_trial if has_complete(study) else None
        session.notify(
            TrialEvent(
                trial.number,
                result.state,
                result.value,
                result.reason,
                arch.summary(session.data.num_classes),
                time.perf_counter() - t0,
                best.value if best else None,
                best.number if best else None,
                counted(study),
                trials,
            )
        )
        if session.too_many_failures():
            raise SearchError(
                f"{session.consecutive_failures} trials failed in a row; the last error: {session.last_error}"
            )
    return ran


def has_complete(study: optuna.Study) -> bool:
    import optuna

    return bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One plain dict per trial, best first (complete by value, then the rest by number)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "trial": t.number,
                "state": t.user_attrs.get("state", t.state.name.lower()),
                "val_accuracy": t.value,
                "best_epoch": t.user_attrs.get("best_epoch"),
                "epochs_run": t.user_attrs.get("epochs_run"),
                "params": t.user_attrs.get("params"),
                "flops": t.user_attrs.get("flops"),
                "seconds": t.user_attrs.get("train_seconds"),
                "architecture": t.user_attrs.get("summary", ""),
                "reason": t.user_attrs.get("reason") or "",
                "hyperparameters": dict(t.params),
            }
        )
    rows.sort(key=lambda r: (r["val_accuracy"] is None, -(r["val_accuracy"] or 0), r["trial"]))
    return rows


def summarize(study: optuna.Study) -> dict[str, int]:
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get("state", t.state.name.lower())
        states[key] = states.get(key, 0) + 1
    return states


def result_of(session: Session, study: optuna.Study, *, ran: int, nothing_to_do: bool) -> SearchResult:
    from search.model import Architecture

    best = study.best_trial if has_complete(study) else None
    arch = None
    if best is not None:
        from search.space import FixedParams

        arch = session.space.sample(FixedParams(best.params))
    metrics = {k: float(v) for k, v in study.user_attrs.get("test_metrics", {}).items()}
    return SearchResult(
        name=session.name,
        engine="optuna",
        best_trial=best.number if best else None,
        best_value=best.value if best else None,
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
