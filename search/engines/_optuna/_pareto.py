"""Several goals: the median pruner sound for a Pareto front, and the front marked in MLflow.

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

import math
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING

from search._goal import Goal
from search.engines._optuna._factories import limits_of, pruner_startup
from search.engines._optuna._reading import trial_rows
from search.engines._optuna._study import epoch_values, goals_of
from search.runtime._session import Session

if TYPE_CHECKING:
    import optuna


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
    (:func:`search.engines._optuna._pruning.noise_margin`; 0 images, ``--pruner median``: by any margin).

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
    from search.engines._optuna._pruning import noise_margin

    median = statistics.median(bar)
    return value < median - noise_margin(median, images)


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


def mark_front(session: Session, study: optuna.Study) -> list[int]:
    """Tag the search's complete trials in MLflow: ``pareto_front`` true or false on each trial's run, and
    on the search's run the front's trial numbers (``pareto_front``) and the goals. Returns the front."""
    rows = trial_rows(study)
    complete = [r["trial"] for r in rows if r["state"] == "complete"]
    front = sorted(r["trial"] for r in rows if r.get("pareto_front"))
    session.winner.keep_only(set(front))  # the champion is on the front; export --pick takes any point of it
    budget = session.space.budget  # constraints known from the plan, then the measured ones
    limits: dict[str, float] = {k.removeprefix("max_"): v for k, v in budget.items() if v is not None}
    limits.update(limits_of(study.user_attrs.get("measures")))
    session.record.tracker.mark_front(
        session.record.experiment_id,
        session.record.parent_run_id,
        front=front,
        complete=complete,
        goals=[g.metric for g in goals_of(study)],
        constraints=limits,
        chance=study.user_attrs.get("val_chance"),
    )
    return front
