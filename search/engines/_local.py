"""Local moves around the incumbent: the sampler behind ``--sampler tpe-local`` (the default, issue 32).

Why: TPE over a conditional CNN space samples far from what works. On the suite's tasks most of its trials
were stopped after their first epoch below the space's start points, so the start points won and five times
the trials bought nothing. Minimal mutation of the incumbent is what explains most of the gains of
model-based NAS (Schneider et al. 2021, on BANANAS); AutoKeras's greedy tuner does the same (the best trial's
values, a few of them changed).

The rule: after the space's start points, each new trial is, with probability :data:`LOCAL_SHARE`, a *local
move*: the best complete trial's parameters (the incumbent, by validation accuracy) with one to three of them
changed (:data:`MOVES`) to a neighbouring value (:func:`neighbour`); the other trials are TPE's, as before.
A parameter the incumbent did not have (a block it lacked, after a move of the depth) is TPE's choice.

Every local trial records ``local_of`` (the incumbent's trial number) and ``local_moves`` (the parameters
changed) as user attributes; MLflow shows them as tags. With several goals the sampler is TPE alone (there is
no single incumbent). The choice of which trials move, and how, comes from the sampler's seed: a seeded
search repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

#: The share of searched trials (after the start points) that are local moves around the incumbent.
LOCAL_SHARE = 0.5
#: How many parameters a local move changes, with their probabilities.
MOVES = ((1, 0.5), (2, 0.3), (3, 0.2))
#: A log-scaled float moves by a factor of up to this, up or down; a linear one by up to this share of its range.
LOG_FACTOR = 2.0
LINEAR_SHARE = 0.15


def neighbour(value: Any, dist: BaseDistribution, rng: np.random.RandomState) -> Any:
    """A value next to ``value`` in ``dist``, never ``value`` itself when the distribution has another:
    ordered choices (numbers) move one place, other choices to any other one; integers by one step (a
    factor of two when log-scaled); floats by a factor of up to :data:`LOG_FACTOR` when log-scaled, else
    by up to :data:`LINEAR_SHARE` of the range, clipped.

    >>> rng = np.random.RandomState(0)
    >>> neighbour(16, CategoricalDistribution([8, 16, 32]), rng) in (8, 32)
    True
    >>> neighbour(1, IntDistribution(1, 3), rng) == 2
    True
    >>> 0.001 <= neighbour(0.002, FloatDistribution(1e-4, 1e-2, log=True), rng) <= 0.004
    True
    """
    if isinstance(dist, CategoricalDistribution):
        return _choice_neighbour(value, dist.choices, rng)
    if isinstance(dist, IntDistribution):
        steps = (value * 2, value // 2) if dist.log else (value + dist.step, value - dist.step)
        inside = [int(v) for v in steps if dist.low <= v <= dist.high and v != value]
        return inside[rng.randint(len(inside))] if inside else value
    if isinstance(dist, FloatDistribution):
        if dist.log:
            moved = value * LOG_FACTOR ** rng.uniform(-1.0, 1.0)
        else:
            moved = value + rng.uniform(-1.0, 1.0) * LINEAR_SHARE * (dist.high - dist.low)
        if dist.step:
            moved = dist.low + round((moved - dist.low) / dist.step) * dist.step
        return float(min(max(moved, dist.low), dist.high))
    return value


def _choice_neighbour(value: Any, choices: Sequence[Any], rng: np.random.RandomState) -> Any:
    others = [c for c in choices if c != value]
    if not others:
        return value
    numeric = all(isinstance(c, int | float) and not isinstance(c, bool) for c in choices)
    if numeric and value in choices:
        ordered = sorted(choices)
        i = ordered.index(value)
        near = [ordered[j] for j in (i - 1, i + 1) if 0 <= j < len(ordered)]
        return near[rng.randint(len(near))]
    return others[rng.randint(len(others))]


class LocalSampler(optuna.samplers.BaseSampler):
    """``base`` (TPE) for a share of the trials, local moves around the incumbent for the rest (module
    docstring). Trials queued with fixed parameters (the start points, retries) are left as queued."""

    def __init__(self, base: optuna.samplers.BaseSampler, *, seed: int | None = None, share: float = LOCAL_SHARE):
        self._base = base
        self._share = share
        self._rng = np.random.RandomState(seed)
        self._plans: dict[int, tuple[dict[str, Any], frozenset[str]] | None] = {}

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
        self._rng.seed()

    def _plan(self, trial: FrozenTrial) -> tuple[dict[str, Any], frozenset[str]] | None:
        return self._plans.get(trial.number)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)
        plan = self._decide(study, trial)
        self._plans[trial.number] = plan
        if plan is not None:
            incumbent, moved = plan
            study._storage.set_trial_user_attr(trial._trial_id, "local_of", int(incumbent["__number__"]))
            study._storage.set_trial_user_attr(trial._trial_id, "local_moves", sorted(moved))

    def _decide(self, study: optuna.Study, trial: FrozenTrial) -> tuple[dict[str, Any], frozenset[str]] | None:
        if "fixed_params" in trial.system_attrs or len(study.directions) != 1:
            return None
        best = incumbent(study)
        draw = self._rng.rand()  # drawn for every searched trial, so the sequence does not hang on the history
        if best is None or draw >= self._share or not best.params:
            return None
        counts, weights = zip(*MOVES, strict=True)
        n = int(self._rng.choice(counts, p=weights))
        names = sorted(best.params)
        moved = frozenset(str(names[i]) for i in self._rng.choice(len(names), size=min(n, len(names)), replace=False))
        return {**best.params, "__number__": best.number}, moved

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if self._plan(trial) is not None:
            return {}
        return self._base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if self._plan(trial) is not None:
            return {}
        return self._base.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        plan = self._plan(trial)
        if plan is not None and param_name in plan[0]:
            params, moved = plan
            value = params[param_name]
            if _contains(param_distribution, value):
                return neighbour(value, param_distribution, self._rng) if param_name in moved else value
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._plans.pop(trial.number, None)
        self._base.after_trial(study, trial, state, values)


def incumbent(study: optuna.Study) -> FrozenTrial | None:
    """The complete trial with the best validation accuracy (the first of equals), or None."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    if not done:
        return None
    sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
    return max(done, key=lambda t: (sign * float(t.values[0]), -t.number))


def _contains(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False
