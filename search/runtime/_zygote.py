"""Worker processes forked from one process that imported TensorFlow once (CPU searches).

Each worker that ``cnn-search run`` starts used to be a fresh interpreter: ``python -m search worker``
imports TensorFlow, Keras and Optuna (5-6 s of CPU each), and two of them importing side by side, on a
2-core machine, left both cores busy for ~7 s before the first trial. Here, as soon as ``run`` knows it
will start workers (before it loads its data or MLflow), it starts Python's ``forkserver``
(:mod:`multiprocessing`) with this module as its preload: one process imports what a worker needs,
once, while ``run`` goes on with its own start-up on the other core; every worker (and every recycled
one) is then a ``fork`` of it, ready in milliseconds. Measured (``benchmarks/workers.py --only start``,
the README's search on digits, 10 trials x 5 epochs, 2 workers, 4 runs each taking turns): 17.9 s
forked against 20.6 s as fresh interpreters; the suite's digits task 15.1 s against 17.8 s.

What a fork shares with the process it came from, and what it does about it:

- The environment: each worker gets its own (``worker_env``: TensorFlow's intra-op threads), set
  before TensorFlow creates its thread pools, which it does at the first operation, not at import
  (measured: a fork with ``TF_NUM_INTRAOP_THREADS=1`` ran a matmul on one core, with 2 on two).
  Variables read *while importing* (:func:`import_environment`: ``KERAS_BACKEND``, ``TF_*``,
  ``CUDA_*``, ``PYTHON*``...) cannot change after the import: a worker whose environment differs there
  from the forkserver's replaces itself with a fresh interpreter (``exec``), as before.
- The working directory: each worker changes to ``run``'s.
- GPUs: never. CUDA does not survive a fork, and each worker is pinned to its own GPU by
  ``CUDA_VISIBLE_DEVICES`` before CUDA starts: with GPUs, workers are fresh interpreters.
- Threads: the preload starts none of its own (TensorFlow's pools start at the first operation).

``CNN_SEARCH_WORKER_START=exec`` turns this off (every worker a fresh interpreter); anything that goes
wrong starting the forkserver falls back to the same, with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("search")

#: Environment variables that decide something while TensorFlow, Keras or Python start (prefixes).
IMPORT_TIME_PREFIXES = ("KERAS_", "TF_", "CUDA_", "XLA_", "PYTHON", "OMP_", "MKL_", "LD_")
#: ... except these, read later (TensorFlow's thread pools start at the first operation).
LATE = frozenset({"TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"})

#: The modules the forkserver imports besides what every worker needs (comma-separated; set by
#: :meth:`Launcher.prestart` while the forkserver starts, read by its preload).
PRELOAD_VARIABLE = "CNN_SEARCH_PRELOAD"

#: What the forkserver's environment was while it imported (set in the forkserver, by the preload).
PRELOADED: dict[str, str] | None = None


def import_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The part of ``env`` read while importing (:data:`IMPORT_TIME_PREFIXES`, not :data:`LATE`).

    >>> import_environment({"TF_CPP_MIN_LOG_LEVEL": "3", "TF_NUM_INTRAOP_THREADS": "1", "HOME": "/root"})
    {'TF_CPP_MIN_LOG_LEVEL': '3'}
    """
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_PREFIXES) and k not in LATE}


class WorkerProcess(Protocol):
    """What the supervisor needs of a worker process (:class:`subprocess.Popen` has it)."""

    pid: int

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


class Forked:
    """A worker forked by the forkserver, seen as a :class:`subprocess.Popen` (exit code negative for
    the signal that ended it)."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.pid: int = process.pid

    def poll(self) -> int | None:
        code = self.process.exitcode
        return None if code is None else int(code)

    def send_signal(self, sig: int) -> None:
        if self.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(self.pid, sig)

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        code = self.process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
        return int(code)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Launcher:
    """Starts ``python -m search ARGS`` worker processes: forked from the forkserver (:meth:`prestart`
    started it) or, when it is off or failed, as fresh interpreters."""

    def __init__(self) -> None:
        self.context: Any = None
        self.failed = False

    def prestart(self, modules: Sequence[str] = ()) -> None:
        """Start the forkserver now (it imports in the background, ``modules`` too: the engine's
        :attr:`~search.engines.Engine.preload`); nothing when turned off."""
        if self.context is not None or self.failed or os.environ.get("CNN_SEARCH_WORKER_START") == "exec":
            return
        import multiprocessing

        try:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__ + "_preload"])
            from multiprocessing import forkserver

            before = os.environ.get(PRELOAD_VARIABLE)
            os.environ[PRELOAD_VARIABLE] = ",".join(modules)  # the forkserver inherits it as it starts
            try:
                forkserver.ensure_running()
            finally:
                if before is None:
                    os.environ.pop(PRELOAD_VARIABLE, None)
                else:
                    os.environ[PRELOAD_VARIABLE] = before
        except (OSError, ValueError) as exc:  # no forkserver on this platform, no socket...
            log.warning("worker processes start as fresh interpreters (the forkserver did not start: %s)", exc)
            self.failed = True
            return
        self.context = context

    def start(self, args: Sequence[str], env: Mapping[str, str]) -> WorkerProcess:
        """Worker ``python -m search *args`` with environment ``env`` (forked unless it says
        ``CNN_SEARCH_WORKER_START=exec``)."""
        if self.context is not None and env.get("CNN_SEARCH_WORKER_START") != "exec":
            try:
                process = self.context.Process(target=_worker_main, args=(list(args), dict(env), os.getcwd()))
                process.start()
                return Forked(process)
            except (OSError, EOFError) as exc:  # the forkserver died: fresh interpreters from now on
                log.warning("worker processes start as fresh interpreters from now on (forkserver: %r)", exc)
                self.context, self.failed = None, True
        return subprocess.Popen([sys.executable, "-m", "search", *args], env=dict(env))


#: One per process: the forkserver is (multiprocessing keeps one per process too).
LAUNCHER = Launcher()


def needs_exec(env: Mapping[str, str]) -> bool:
    """Whether a worker with environment ``env`` must be a fresh interpreter rather than a fork:
    the preload failed or ran with another :func:`import_environment`.

    >>> import search.runtime._zygote as z
    >>> z.PRELOADED = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    >>> z.needs_exec({"TF_CPP_MIN_LOG_LEVEL": "3", "TF_NUM_INTRAOP_THREADS": "1", "HOME": "/w"})
    False
    >>> z.needs_exec({"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax"})
    True
    >>> z.PRELOADED = None  # the preload failed (or this is not the forkserver)
    >>> z.needs_exec({})
    True
    """
    return PRELOADED is None or import_environment(env) != PRELOADED


def _worker_main(args: list[str], env: dict[str, str], cwd: str) -> None:
    """In the forked worker: its own environment, directory and command line, then ``python -m search ARGS``
    as an exec'd worker runs it (``runpy``: this module does not import the CLI that starts the workers)."""
    os.chdir(cwd)
    if needs_exec(env):
        os.execve(sys.executable, [sys.executable, "-m", "search", *args], env)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["cnn-search", *args]
    index = args[args.index("--index") + 1] if "--index" in args else "0"
    with contextlib.suppress(OSError):  # the name top and ps -o comm show (the command line is the forkserver's)
        Path("/proc/self/comm").write_text(f"cnn-search-w{index}"[:15])
    import runpy

    runpy.run_module("search", run_name="__main__")  # sys.argv stays: the usage says cnn-search
