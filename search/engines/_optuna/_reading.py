"""Reading a study back: its trials as rows, best first (:func:`trial_rows`, what ``cnn-search trials``
shows), their states counted, and the search's result."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from search._goal import GOAL, at_chance, pareto_front
from search.engines._optuna._study import SURPLUS, accuracy_of, best_trial, epoch_values, goals_of
from search.runtime._session import SearchResult, Session

if TYPE_CHECKING:
    import optuna


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One plain dict per trial, best first (complete by value, then the rest by number). With several
    goals each row says whether its trial is on the Pareto front (``pareto_front``) and whether it is at
    chance (``at_chance``: never on the front, :func:`search._goal.pareto_front`)."""
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
        chance = study.user_attrs.get("val_chance")
        front = set(pareto_front((r for r in rows if r["state"] == "complete"), goals, chance=chance))
        for row in rows:
            row["pareto_front"] = row["trial"] in front
            row["at_chance"] = row["state"] == "complete" and at_chance(row[GOAL.metric], chance)
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
        experiment_id=session.record.experiment_id,
        parent_run_id=session.record.parent_run_id,
        tracking_uri=session.tracking_uri,
        nothing_to_do=nothing_to_do,
        new_trials=ran,
        trials=trial_rows(study),
    )
