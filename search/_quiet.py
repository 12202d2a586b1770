"""TensorFlow's start-up log lines, silenced where the user did not ask for them.

Importing TensorFlow prints, twice, lines such as ``oneDNN custom operations are on`` and ``Could not
find cuda drivers on your machine``, preceded by ``WARNING: All log messages before
absl::InitializeLog() is called are written to STDERR``. They come from C++ (absl logging, before
its initialisation) straight to file descriptor 2, so neither ``TF_CPP_MIN_LOG_LEVEL`` nor Python's
``logging`` reaches them. :func:`silence_tensorflow_import` points descriptor 2 at ``/dev/null``
while, and only while, the ``tensorflow`` package is first imported (an import hook: nothing is
imported early, a command that never needs TensorFlow never pays for it). Python errors raised by
that import still propagate as exceptions. ``cnn-search run --verbose``, or ``TF_CPP_MIN_LOG_LEVEL``
set by the user below 3, keep the lines.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """File descriptor 2 (what C and C++ code writes to) points at /dev/null inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, finder: importlib.abc.MetaPathFinder) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)  # type: ignore[no-any-return,unused-ignore]

    def exec_module(self, module: ModuleType) -> None:
        if self.finder in sys.meta_path:  # imported now: the hook has done its work
            sys.meta_path.remove(self.finder)
        with stderr_silenced():
            self.loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # resource readers, is_package...: the real loader's
        return getattr(self.loader, name)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` the usual way and wraps its loading in :func:`stderr_silenced`. It stays
    in place until TensorFlow is imported: ``importlib.util.find_spec("tensorflow")`` (a probe of what
    is installed, which imports nothing) asks it too, and must not use it up."""

    def __init__(self) -> None:
        self.finding = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow" or self.finding:
            return None
        self.finding = True  # the real finders answer the call below
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.finding = False
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader, self)
        return spec


def silence_tensorflow_import() -> None:
    """Install the hook (nothing when TensorFlow is already imported or the hook is in place)."""
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlow())


def quiet_libraries(*, tensorflow_log: bool = False) -> None:
    """Library noise off: TensorFlow's start-up C++ log lines (unless ``tensorflow_log`` or your own
    ``TF_CPP_MIN_LOG_LEVEL`` below 3 asks for them), MLflow's and alembic's INFO lines."""
    import logging

    if not tensorflow_log and os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") == "3":
        silence_tensorflow_import()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for noisy in ("mlflow", "alembic", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # every trial is a new model, so tf.function's "triggered tf.function retracing" warning is expected
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
