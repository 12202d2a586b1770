"""The median pruner that allows for the validation split's noise: ``--pruner median-noise`` (issue 32, item 4).

Optuna's ``MedianPruner`` stops a trial whose validation accuracy after an epoch is below the median of the
complete trials' at that epoch, by any margin. On a few hundred validation images, one image is 0.25-0.5
points, and after one epoch a model that will end best often trails one that starts fast (short-horizon
bias): that rule cut 18 of 20 trials of the README's search after their first epoch, below the start
points, and the start points won.

This pruner stops a trial only when its best epoch so far (as Optuna's rule, and as the trial's value)
trails that median by more than the split can resolve: by more than :data:`WITHIN` binomial standard
errors, ``sqrt(p (1 - p) / n)`` for the median ``p`` on ``n`` validation images (at least ``1 / n``). A
trial the split cannot tell apart from the median trains on. With ``n`` unknown (0) it is Optuna's rule.

Not the default (``--pruner median`` is Optuna's rule): measured on the tuning task objects at 5x the README's
wall (seed 0, 620 s), trials that train on cost the search half its trials (50 against 103) and the best
it found validated 0.7725 against 0.845 (test 0.766 against 0.816; docs/benchmarking.md).

>>> round(noise_margin(0.8, 400), 4), round(noise_margin(0.8, 0), 4), round(noise_margin(1.0, 200), 4)
(0.02, 0.0, 0.005)
"""

from __future__ import annotations

import math
import statistics

import optuna
from optuna.trial import FrozenTrial, TrialState

#: A trial is stopped when it trails the median by more than this many standard errors of the validation split.
WITHIN = 1.0


def noise_margin(p: float, images: int, within: float = WITHIN) -> float:
    """``within`` binomial standard errors of accuracy ``p`` on ``images`` validation images (0 when unknown)."""
    if images <= 0:
        return 0.0
    return within * max(math.sqrt(max(p * (1.0 - p), 0.0) / images), 1.0 / images)


class NoisyMedianPruner(optuna.pruners.BasePruner):
    """Stop a trial below the complete trials' median at its epoch by more than :func:`noise_margin`, once
    ``n_startup_trials`` trials are complete (module docstring). One objective, maximised (accuracy)."""

    def __init__(
        self, *, n_startup_trials: int, validation_images: int, within: float = WITHIN, after: int = 0
    ) -> None:
        self.n_startup_trials = n_startup_trials
        self.validation_images = validation_images
        self.within = within
        self.after = after

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(done) < self.n_startup_trials:
            return False
        reached = [v for v in trial.intermediate_values.values() if not math.isnan(v)]
        if not reached:  # every epoch's value was NaN
            return True
        value = max(reached)  # its best epoch so far, as Optuna's median rule and the trial's value
        bar = [v for t in done if not math.isnan(v := t.intermediate_values.get(step, math.nan))]
        if not bar:
            return False
        median = statistics.median(bar)
        return value < median - noise_margin(median, self.validation_images, self.within)
