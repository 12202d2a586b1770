"""Samplers and pruners by name: ``--sampler`` (:func:`make_sampler`; ``tpe-local``'s is in
:mod:`search.engines._optuna._local`), ``--pruner`` (:func:`make_pruner`; ``median-noise``'s is in
:mod:`search.engines._optuna._pruning`), and the measured constraints the samplers steer by."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from search._errors import SearchError, option

if TYPE_CHECKING:
    import optuna


SAMPLERS = ("tpe", "tpe-local", "random", "gp", "qmc", "nsga2")

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
    if name == "tpe-local":  # TPE, and local moves around the incumbent (search.engines._optuna._local)
        from search.engines._optuna._local import LocalSampler

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
    if name == "median-noise":  # the same, allowing for the validation split's noise (search.engines._optuna._pruning)
        from search.engines._optuna._pruning import NoisyMedianPruner

        return NoisyMedianPruner(n_startup_trials=pruner_startup(start_points), validation_images=validation_images)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SearchError(f"{option('pruner')}: unknown pruner {name!r}; expected one of {', '.join(PRUNERS)}")


def limits_of(measures: Mapping[str, float | None] | None) -> dict[str, float]:
    """The measured constraints among ``measures`` (metric -> limit; goals have no limit)."""
    return {k: float(v) for k, v in (measures or {}).items() if v is not None}
