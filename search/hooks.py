"""Hooks: where code outside the package steps into a search, without the package reading switches.

A hook is any object with some of these methods, each called with keyword arguments only:

* ``trial_start(trial, attempt, model)``: before a trial's first epoch; ``attempt`` counts its
  retries at half the batch size after running out of memory (0 first). It may raise: the trial
  then fails with that error, or is retried if it is TensorFlow's ``ResourceExhaustedError``; it may
  change ``model``'s weights.
* ``epoch_end(trial, epoch, logs)``: after each epoch, once the epoch's metrics are recorded.
* ``export_written(format, path)``: after an export writes a format's file, before it is loaded back.
* ``test_evaluated(model, images)``: each time a search evaluates a model on its test split.
* ``record_step(step, trial)``: after each step of writing a finished trial's record, in order:
  ``run`` (its MLflow run created with its params, metrics and tags), ``artifacts`` (its
  ``architecture.json``), ``ended`` (the run given its final status), ``attrs`` (the study's
  attributes of the trial, Optuna), ``told`` (the study told its state and value, Optuna). The store
  fault-injection test kills the process at each (``tests/test_store_kills.py``).

:func:`register` adds a hook to this process (and returns it, so it can be used as a decorator on an
instance), :func:`unregister` removes it. A hook reaches the trials and exports that run in the
process that registered it. A search's worker processes are forks of a forkserver or fresh
interpreters, so a hook meant for them is registered by a module every interpreter imports: the
tests put ``tests/faults/sitecustomize.py`` on ``PYTHONPATH`` (fault injection for the reliability
tests: failures, NaN weights, out-of-memory errors, slow epochs, a paused export).

With no hook registered, each call point costs one check of an empty tuple.
"""

from __future__ import annotations

from typing import Any

_hooks: tuple[Any, ...] = ()


def register(hook: Any) -> Any:
    """Add ``hook`` (called after those registered before it); returns it."""
    global _hooks
    _hooks = (*_hooks, hook)
    return hook


def unregister(hook: Any) -> None:
    """Remove ``hook``; nothing happens if it was not registered."""
    global _hooks
    _hooks = tuple(h for h in _hooks if h is not hook)


def registered() -> tuple[Any, ...]:
    """The hooks of this process, in call order."""
    return _hooks


def call(event: str, **kwargs: Any) -> None:
    """Call ``event`` on every registered hook that has it, in order; an exception propagates.

    >>> class Count:
    ...     seen = 0
    ...     def epoch_end(self, **kwargs): Count.seen += 1
    >>> hook = register(Count())
    >>> call("epoch_end", trial=0, epoch=0, logs={}); call("trial_start", trial=0, attempt=0, model=None)
    >>> unregister(hook); call("epoch_end", trial=0, epoch=1, logs={})
    >>> Count.seen
    1
    """
    for hook in _hooks:
        method = getattr(hook, event, None)
        if method is not None:
            method(**kwargs)
