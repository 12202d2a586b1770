"""The search's winner: its best trial (re-checked when asked) evaluated on the test split and registered, once."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from search.engines._optuna._study import accuracy_of, best_trial
from search.runtime._session import Session, log, say_winner

if TYPE_CHECKING:
    import optuna


def finish_search(session: Session, study: optuna.Study) -> None:
    """Evaluate and register the best trial, unless it is already the registered champion (checked
    under the search's lock: two ``run`` processes of one search register one model version). The
    worker process that ends a supervised search evaluates it (it has Keras and the data loaded; the
    supervising process would spend 3 s importing Keras first) and hands it to the supervisor through
    the spool to register (:mod:`search.tracking._spool`); the supervisor's call then finds it done,
    or does it all when no worker could."""
    from search.tracking._store import search_lock

    session.record.tracker  # noqa: B018 -- MLflow's start-up (a background thread) takes this lock too: wait for it first
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
        if session.record.relay is not None:  # a worker: the supervisor re-checks, records and registers
            return
        runs, within = int(study.user_attrs.get("recheck_runs") or 2), study.user_attrs.get("recheck_within", 2.0)
        best = _rechecked(session, study, k, runs, float(within)) or best
    if study.user_attrs.get("champion_trial") == best.number:
        return
    t0 = time.perf_counter()
    metrics, uri = session.winner.finish(
        best_trial=best.number,
        best_params=best.params,
        best_epoch=best.user_attrs.get("best_epoch"),
        refit=bool(study.user_attrs.get("refit")),
    )
    if k:
        session.winner.beside_single_run(metrics, single=single.number, champion=best.number)
    study.set_user_attr("test_metrics", metrics)
    study.set_user_attr("model_uri", uri)
    study.set_user_attr("champion_trial", best.number)
    if not session.winner.keeps_front:  # several goals: mark_front keeps the front's models
        session.winner.keep_only({best.number})
    if session.record.relay is not None:  # the supervisor says it once it has registered the model
        return
    say_winner(best.number, metrics, time.perf_counter() - t0, uri)


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
