"""Imported by the forkserver of :mod:`search.engines._zygote` (its preload): what a worker imports,
once. Anything failing here leaves :data:`~search.engines._zygote.PRELOADED` unset, and every worker
then starts as a fresh interpreter (the forkserver itself must not fail: it would take ``run`` with it)."""

from __future__ import annotations

import atexit
import gc
import os

from search.engines import _zygote

_environment = _zygote.import_environment(os.environ)  # as run handed it over, before anything sets more
try:
    from search.cli import _quiet_libraries

    _quiet_libraries()  # what the worker command does before it imports TensorFlow
    from search.engines._workers import import_keras_lean

    import_keras_lean()  # TensorFlow with it, on the default backend
    import optuna  # noqa: F401

    import search.data
    import search.engines._optuna
    import search.model._builder
    import search.training._objective  # noqa: F401
except Exception:  # a worker imports it again, and says what went wrong
    pass
else:
    _zygote.PRELOADED = _environment
gc.collect()
gc.freeze()  # the forks do not copy pages by walking these objects
_ZYGOTE = os.getpid()


def _exit_at_once() -> None:
    """The forkserver ends (``run`` exited) without TensorFlow's teardown (1.4-1.9 s, see
    :func:`search.cli.main`) while holding ``run``'s stdout and stderr open; registered last, so run
    first. Its forks inherit it and skip it: they are other processes."""
    if os.getpid() == _ZYGOTE:
        os._exit(0)


atexit.register(_exit_at_once)
