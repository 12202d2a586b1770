"""Fault injection for the reliability tests, through :mod:`search.hooks` (never read by the package).

A test that starts a process tree (``cnn-search run`` and its workers, ``cnn-search export``) puts
this folder on the children's ``PYTHONPATH`` (``tests.helpers.faults``); every Python interpreter
there, the forkserver that forks the workers included, imports ``sitecustomize`` at start-up, and this
one registers a hook that reads these variables when it is called:

* ``CNN_SEARCH_TEST_EPOCH_SLEEP=SECONDS``: sleep at the end of every epoch (signal tests);
* ``CNN_SEARCH_TEST_FAIL_TRIALS=1,3``: raise ``RuntimeError`` when these trials start training;
* ``CNN_SEARCH_TEST_NAN_TRIALS=2``: poison these trials' weights with NaN (a non-finite loss);
* ``CNN_SEARCH_TEST_OOM_TRIALS=2,4!``: raise the Keras backend's own out-of-memory error (TensorFlow's
  ``ResourceExhaustedError``, JAX's ``JaxRuntimeError`` saying ``RESOURCE_EXHAUSTED``, PyTorch's
  ``OutOfMemoryError``) when these trials start training: at the first attempt only (``2``: the retry at
  half the batch size fits), or at every attempt (``4!``). On a CPU no backend runs out of GPU memory, so
  the error is raised here, of the class the backend raises on a GPU;
* ``CNN_SEARCH_TEST_EXPORT_PAUSE=SECONDS``: pause an export after its first file is written, with a
  ``.paused`` file beside it (kill tests);
* ``CNN_SEARCH_TEST_KILL_AT=STEP:TRIAL``: the process kills itself (SIGKILL) right after step ``STEP``
  of trial ``TRIAL``'s record (``search.hooks``' ``record_step``: run, artifacts, ended, attrs, told);
* ``CNN_SEARCH_TEST_NO_TENSORFLOW=1``: TensorFlow made unimportable (``import tensorflow`` and
  ``tensorflow_*`` raise ``ModuleNotFoundError``), as on a GPU machine that has JAX or PyTorch and no
  TensorFlow: the tests of another backend (marker ``backends``, ``KERAS_BACKEND=jax``) run this way, the
  test process included (``.ci/run``). TensorFlow stays installed; it is only out of reach.
"""

from __future__ import annotations

import os
import sys
import time
from importlib.abc import MetaPathFinder
from pathlib import Path
from typing import Any


def _trials(variable: str) -> set[int]:
    return {int(t.strip().rstrip("!")) for t in os.environ.get(variable, "").split(",") if t.strip()}


def _backend_oom(message: str) -> Exception:
    """The error the Keras backend raises when a GPU runs out of memory, of its own class."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.errors.JaxRuntimeError(f"RESOURCE_EXHAUSTED: Out of memory while trying to allocate: {message}")
    if backend == "torch":
        import torch

        return torch.OutOfMemoryError(f"CUDA out of memory. {message}")
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError(None, None, message)


class NoTensorFlow(MetaPathFinder):
    """A finder first on ``sys.meta_path`` that refuses TensorFlow's modules (``CNN_SEARCH_TEST_NO_TENSORFLOW``)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        top = name.partition(".")[0]
        if top == "tensorflow" or top.startswith("tensorflow_"):
            message = f"No module named {name!r} (CNN_SEARCH_TEST_NO_TENSORFLOW: made unimportable by tests/faults)"
            raise ModuleNotFoundError(message, name=name)
        return None


class HideModules(MetaPathFinder):
    """A finder first on ``sys.meta_path`` that refuses the modules of ``CNN_SEARCH_TEST_HIDE_MODULES``."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in self.names:
            message = f"No module named {name!r} (CNN_SEARCH_TEST_HIDE_MODULES: made unimportable by tests/faults)"
            raise ModuleNotFoundError(message, name=name)
        return None


class Faults:
    """The hook: every fault the variables above ask for, at its call point."""

    paused = False

    def trial_start(self, *, trial: int, attempt: int, model: Any) -> None:
        for t in os.environ.get("CNN_SEARCH_TEST_OOM_TRIALS", "").split(","):
            t = t.strip()
            if t and int(t.rstrip("!")) == trial and (attempt == 0 or t.endswith("!")):
                raise _backend_oom("injected OOM (CNN_SEARCH_TEST_OOM_TRIALS)")
        if trial in _trials("CNN_SEARCH_TEST_FAIL_TRIALS"):
            raise RuntimeError(f"injected failure in trial {trial} (CNN_SEARCH_TEST_FAIL_TRIALS)")
        if os.environ.get("CNN_SEARCH_TEST_DIE_ON_SIGTERM"):  # a worker that dies before it records its trial
            import signal

            signal.signal(signal.SIGTERM, lambda *_: os._exit(1))
        if trial in _trials("CNN_SEARCH_TEST_NAN_TRIALS"):
            import keras

            for weight in model.trainable_weights:  # relu(NaN) may be 0: poison them all
                weight.assign(keras.ops.full(weight.shape, float("nan")))

    def epoch_end(self, *, trial: int, epoch: int, logs: dict[str, float]) -> None:
        if sleep := float(os.environ.get("CNN_SEARCH_TEST_EPOCH_SLEEP", "0") or 0):
            time.sleep(sleep)

    def record_step(self, *, step: str, trial: int) -> None:
        if os.environ.get("CNN_SEARCH_TEST_KILL_AT") == f"{step}:{trial}":
            import signal

            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def export_written(self, *, format: str, path: Path) -> None:
        pause = float(os.environ.get("CNN_SEARCH_TEST_EXPORT_PAUSE", "0") or 0)
        if pause and not self.paused:
            self.paused = True
            (Path(path).parent / ".paused").write_text("")
            time.sleep(pause)


if __name__ == "sitecustomize":  # imported by an interpreter at start-up, not collected by pytest
    if os.environ.get("CNN_SEARCH_TEST_NO_TENSORFLOW"):
        sys.meta_path.insert(0, NoTensorFlow())
    if hidden := {m.strip() for m in os.environ.get("CNN_SEARCH_TEST_HIDE_MODULES", "").split(",") if m.strip()}:
        sys.meta_path.insert(0, HideModules(hidden))
    from search import hooks

    hooks.register(Faults())
