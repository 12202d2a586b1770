"""Local moves around the incumbent: the sampler behind ``--sampler tpe-local`` (issue 32).

Why: TPE over a conditional CNN space samples far from what works. On the suite's tasks most of its trials
were stopped after their first epoch below the space's start points, so the start points won and five times
the trials bought nothing. Minimal mutation of the incumbent is what explains most of the gains of
model-based NAS (Schneider et al. 2021, on BANANAS); AutoKeras's greedy tuner does the same (the best trial's
values, a few of them changed).

The rule: from trial ``after`` on (``--local-after``, 20 by default: the first 20 trials are TPE's, so the
moves refine what a global search found), each new trial is, with probability :data:`LOCAL_SHARE`, a *local
move*: the best complete trial's parameters (the incumbent, by validation accuracy) with one to three of them
changed (:data:`MOVES`) to a neighbouring value (:func:`neighbour`); the other trials are TPE's, as before.
A parameter the incumbent did not have (a block it lacked, after a move of the depth) is TPE's choice.

Every local trial records ``local_of`` (the incumbent's trial number) and ``local_moves`` (the parameters
changed) as user attributes; MLflow shows them as tags, and ``cnn-search trials`` writes ``near N:`` before
the architecture. A move always changes something (a value on a bound moves inwards), and a move another
trial made already is drawn again (up to :data:`ATTEMPTS` times). With several goals the sampler is TPE alone (there is
no single incumbent). The choice of which trials move, and how, comes from the sampler's seed: a seeded
search repeats.

Not the default (``--sampler tpe``): measured on the tuning task objects at 5x the README's wall (seed 0,
620 s, Optuna's median pruner), the best trial of 108 validated 0.7325 against TPE alone's 0.845 (103
trials); with the noise-aware pruner too, 0.7725 (docs/benchmarking.md). One seed each, and retraining one
architecture moves its validation accuracy by several points there: too few runs to decide either way.
"""

from __future__ import annotations

import math
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
#: Draws of a move before it is taken even though another trial made it already.
ATTEMPTS = 8
#: A log-scaled float moves by a factor of up to this, up or down; a linear one by up to this share of its range.
LOG_FACTOR = 2.0
LINEAR_SHARE = 0.15


def neighbour(value: Any, dist: BaseDistribution, rng: np.random.RandomState) -> Any:
    """A value next to ``value`` in ``dist``, never ``value`` itself when the distribution has another:
    ordered choices (numbers) move one place, other choices to any other one; integers by one step (a
    factor of two when log-scaled and that stays inside, else one step); floats uniformly within a factor
    of :data:`LOG_FACTOR` when log-scaled, else within :data:`LINEAR_SHARE` of the range, the window cut
    at the bounds (a value on a bound moves inwards).

    >>> rng = np.random.RandomState(0)
    >>> neighbour(16, CategoricalDistribution([8, 16, 32]), rng) in (8, 32)
    True
    >>> neighbour(1, IntDistribution(1, 3), rng) == 2
    True
    >>> 0.001 <= neighbour(0.002, FloatDistribution(1e-4, 1e-2, log=True), rng) <= 0.004
    True
    >>> 0.0 < neighbour(0.0, FloatDistribution(0.0, 0.3), rng) <= 0.045
    True
    """
    if isinstance(dist, CategoricalDistribution):
        return _choice_neighbour(value, dist.choices, rng)
    if isinstance(dist, IntDistribution):
        steps = [value * 2, value // 2] if dist.log else []
        inside = [int(v) for v in steps if dist.low <= v <= dist.high and v != value]
        if not inside:
            inside = [v for v in (value + dist.step, value - dist.step) if dist.low <= v <= dist.high]
        return inside[rng.randint(len(inside))] if inside else value
    if isinstance(dist, FloatDistribution):
        if dist.high <= dist.low:
            return value
        if dist.log:
            low, high = math.log(max(value / LOG_FACTOR, dist.low)), math.log(min(value * LOG_FACTOR, dist.high))
            moved = math.exp(rng.uniform(low, high))
        else:
            reach = LINEAR_SHARE * (dist.high - dist.low)
            moved = rng.uniform(max(value - reach, dist.low), min(value + reach, dist.high))
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

    def __init__(
        self, base: optuna.samplers.BaseSampler, *, seed: int | None = None, share: float = LOCAL_SHARE, after: int = 0
    ):
        self._base = base
        self._share = share
        self._after = after
        self._rng = np.random.RandomState(seed)
        self._plans: dict[int, dict[str, Any]] = {}  # local trials of this process: their parameters

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
        self._rng.seed()

    def _plan(self, trial: FrozenTrial) -> dict[str, Any] | None:
        return self._plans.get(trial.number)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)
        whole = getattr(study, "_study", study)  # Hyperband hands a study of one bracket: the incumbent is the study's
        decided = self._decide(whole, trial)
        if decided is None:
            return
        best, plan, moved = decided
        self._plans[trial.number] = plan
        study._storage.set_trial_user_attr(trial._trial_id, "local_of", best.number)
        study._storage.set_trial_user_attr(trial._trial_id, "local_moves", sorted(moved))

    def _decide(self, study: optuna.Study, trial: FrozenTrial) -> tuple[FrozenTrial, dict[str, Any], set[str]] | None:
        """The incumbent, the parameters to give (its own, some moved) and which were moved; None: TPE's trial."""
        if "fixed_params" in trial.system_attrs or len(study.directions) != 1 or trial.number < self._after:
            return None
        best = incumbent(study)
        draw = self._rng.rand()  # drawn for every searched trial, so the sequence does not hang on the history
        if best is None or draw >= self._share or not best.params:
            return None
        counts, weights = zip(*MOVES, strict=True)
        n = min(int(self._rng.choice(counts, p=weights)), len(best.params))
        tried = [_key(t.params) for t in study.get_trials(deepcopy=False) if t.params]
        names = sorted(best.params)
        plan: dict[str, Any] = dict(best.params)
        for _ in range(ATTEMPTS):  # a move another trial has made already is drawn again
            plan = dict(best.params)
            for i in self._rng.choice(len(names), size=n, replace=False):
                name = names[int(i)]
                plan[name] = neighbour(best.params[name], best.distributions[name], self._rng)
            planned = _key(plan)
            if not any(other <= planned for other in tried):  # <=: a trial lacks the blocks its depth drops
                break
        moved = {k for k in plan if plan[k] != best.params[k]}
        return (best, plan, moved) if moved else None

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
        if plan is not None and param_name in plan and _contains(param_distribution, plan[param_name]):
            return plan[param_name]
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


def _key(params: dict[str, Any]) -> frozenset[tuple[str, str]]:
    return frozenset((k, repr(v)) for k, v in params.items())


def _contains(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False
