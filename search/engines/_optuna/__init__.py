"""The Optuna engine: ask/tell over the shared Session (one trial at a time in each worker).

Trial states map to Optuna's: complete → COMPLETE (value = best validation accuracy), pruned and
infeasible → PRUNED (infeasible ones are never trained), failed and killed → FAIL. The target
``trials`` counts COMPLETE and PRUNED trials, so a search interrupted and run again reaches it.

Split by concept, as Optuna itself is (samplers, pruners, storages, study):

- ``_engine.py``: :class:`OptunaEngine` (``--engine optuna``): the study opened or continued, the search run.
- ``_factories.py``: the samplers and pruners by name (``--sampler``, ``--pruner``), the measured constraints.
- ``_local.py``: the ``tpe-local`` sampler: TPE, and local moves around the incumbent.
- ``_pruning.py``: the ``median-noise`` pruner: Optuna's median rule, allowing for the validation split's noise.
- ``_params.py``: :class:`OptunaParams`: an Optuna trial answers the space's calls.
- ``_study.py``: what a study says: goals, a trial's values, the trials counted and running, the best, surplus.
- ``_loop.py``: the ask/tell trial loop of one worker (:func:`optimize`), a trial's outcome told (:func:`tell`).
- ``_liveness.py``: heartbeats, stale trials (their worker ended) failed and retried once.
- ``_pareto.py``: several goals: the Pareto median pruner, the front marked in MLflow.
- ``_winner.py``: the best trial evaluated and registered, once.
- ``_workers.py``: the worker processes: supervised by ``run --workers N``, or ``cnn-search worker NAME``.
- ``_reading.py``: a study read back: its trial rows (``cnn-search trials``), its states, the search's result.

Optuna is imported inside functions (``cnn-search --help`` never imports it), but ``_local.py`` and
``_pruning.py`` import it at module level: nothing here imports them until a search asks for them.
"""

from search.engines._optuna._engine import OptunaEngine
from search.engines._optuna._factories import PRUNERS, SAMPLERS, make_pruner, make_sampler, pruner_startup
from search.engines._optuna._liveness import fail_stale_trials, grace_seconds, heartbeat_seconds
from search.engines._optuna._params import OptunaParams
from search.engines._optuna._pareto import _pareto_reporter
from search.engines._optuna._reading import summarize, trial_rows
from search.engines._optuna._study import SURPLUS, more_work, surplus
from search.engines._optuna._workers import run_worker

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "SURPLUS",
    "OptunaEngine",
    "OptunaParams",
    "_pareto_reporter",
    "fail_stale_trials",
    "grace_seconds",
    "heartbeat_seconds",
    "make_pruner",
    "make_sampler",
    "more_work",
    "pruner_startup",
    "run_worker",
    "summarize",
    "surplus",
    "trial_rows",
]
