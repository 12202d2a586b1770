"""The ``cnn-search`` command line.

Heavy libraries (TensorFlow, Keras, MLflow, Optuna) are imported inside the commands that need
them, never at module level: ``cnn-search --help`` and ``cnn-search spaces ...`` stay fast
(``benchmarks/cli_startup.py`` measures it).

One module per command group: :mod:`._app` (the application and what commands share),
:mod:`._spaces`, :mod:`._run` (run, worker), :mod:`._read` (trials, searches, compare), :mod:`._export`
(export, predict, report), :mod:`._ui`; importing this package registers them, :data:`ORDER` sorts them for ``--help``.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

from search.cli import _export, _read, _run, _spaces, _ui  # noqa: F401  (registers the commands)
from search.cli._app import app
from search.cli._read import print_searches as _print_searches

__all__ = ["_print_searches", "app", "main"]

#: The commands in ``--help``'s order (a user's path: look at the data, search, read, hand over, browse).
ORDER = ("data", "run", "worker", "trials", "searches", "compare", "export", "predict", "report", "ui")
app.registered_commands.sort(key=lambda command: ORDER.index(command.name or ""))


def main() -> None:
    """The console entry point (``cnn-search``, ``python -m search``).

    A process that imported TensorFlow or MLflow ends without the interpreter's module teardown, which
    spends 1.4-1.9 s in TensorFlow's destructors after a search and 1 s after MLflow alone (measured;
    a search's worker processes pay it too): every stream is flushed, cnn-search's own threads joined,
    ``atexit`` handlers and logging shut down first, so nothing written is lost. Other libraries'
    idle threads (thread pools waiting for work, MLflow's telemetry) are not waited for. mypy ends its runs the
    same way. Called in-process (tests, ``app`` with typer's runner) nothing changes."""
    try:
        app()
    except SystemExit as exc:
        if not _HEAVY.intersection(sys.modules):
            raise
        _fast_exit(exc.code)
    except Exception as exc:  # a full disk, a server gone mid-command: one line (search/tracking/_disk.py, _reach.py)
        from search.tracking._disk import disk_full
        from search.tracking._reach import unreachable

        said = disk_full(exc) or unreachable(exc)
        if said is None:
            raise
        typer.echo(f"error: {said}", err=True)
        _fast_exit(1)
    if _HEAVY.intersection(sys.modules):
        _fast_exit(0)


#: Libraries whose teardown at exit is slow (see :func:`main`).
_HEAVY = frozenset({"tensorflow", "mlflow"})


def _fast_exit(code: object) -> NoReturn:
    import atexit
    import contextlib
    import logging
    import threading

    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    status = code if isinstance(code, int) else (0 if code is None else 1)
    for thread in threading.enumerate():  # cnn-search's own unfinished work (MLflow's start-up), if any
        if thread.name.startswith("cnn-search") and thread is not threading.current_thread() and not thread.daemon:
            # after a signal, not for long: what is left is a wait on a server that does not answer (_signals.py)
            thread.join(timeout=2 if status in (130, 143) else 60)
    atexit._run_exitfuncs()  # what Py_Finalize runs first (MLflow's, tempfile's finalizers...)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can reach it
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
