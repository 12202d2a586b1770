"""Imported by the forkserver of :mod:`search.runtime._zygote` (its preload): what a worker imports,
once. Anything failing here leaves :data:`~search.runtime._zygote.PRELOADED` unset, and every worker
then starts as a fresh interpreter (the forkserver itself must not fail: it would take ``run`` with it)."""

from __future__ import annotations

import atexit
import gc
import importlib
import os

from search.runtime import _zygote

_environment = _zygote.import_environment(os.environ)  # as run handed it over, before anything sets more
try:
    from search._quiet import quiet_libraries

    quiet_libraries()  # what the worker command does before it imports TensorFlow
    from search.runtime._workers import import_keras_lean

    import_keras_lean()  # TensorFlow with it, on the default backend
    import search.data
    import search.model._builder
    import search.training._objective  # noqa: F401

    for _module in filter(None, os.environ.get(_zygote.PRELOAD_VARIABLE, "").split(",")):
        importlib.import_module(_module)  # the engine's own (Engine.preload), named by the search that started it
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
