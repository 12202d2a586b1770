"""What a study says: the search's goals, a trial's validation accuracy and epochs, the trials counted,
running and still to start, the best trial, and whether a trial just asked for is surplus."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from search._goal import GOAL, Goal, parse_goals

if TYPE_CHECKING:
    import optuna


def goals_of(study: optuna.Study) -> tuple[Goal, ...]:
    """The goals the search was started with (accuracy alone for a study recorded before goals existed)."""
    return parse_goals(study.user_attrs.get("goals"))


def accuracy_of(t: optuna.trial.FrozenTrial) -> float | None:
    """A finished trial's validation accuracy: its value, or its first value with several goals."""
    return float(t.values[0]) if t.values else None


def epoch_values(t: optuna.trial.FrozenTrial) -> dict[int, float]:
    """The validation accuracy a trial reported after each epoch (step from 0): Optuna's intermediate
    values, or with several goals the ``epoch_values`` attribute (:mod:`search.engines._optuna._pareto`)."""
    if t.intermediate_values:
        return {int(k): float(v) for k, v in t.intermediate_values.items()}
    return {i: float(v) for i, v in enumerate(t.user_attrs.get("epoch_values") or [])}


def counted(study: optuna.Study) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


SURPLUS = "surplus"


def surplus(study: optuna.Study, number: int, trials: int) -> bool:
    """Whether trial ``number``, just asked for, would exceed ``trials``: the trials ahead of it
    (COMPLETE or PRUNED, or RUNNING with a smaller number) already reach the target (the race this settles:
    :mod:`search.engines._optuna._loop`)."""
    import optuna

    State = optuna.trial.TrialState
    ahead = study.get_trials(deepcopy=False, states=(State.COMPLETE, State.PRUNED, State.RUNNING))
    return sum(t.state != State.RUNNING or t.number < number for t in ahead) >= trials


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
