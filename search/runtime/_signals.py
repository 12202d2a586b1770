"""SIGINT and SIGTERM during a search: raised inside a trial's training, held everywhere else, except
while the search waits on a server that does not answer (see :class:`Signals`)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Seconds the main thread may go on waiting on a server (a tracking server, a database) after a signal
#: before the signal is raised in it: a server that answers at once never sees a record cut in half.
PATIENCE = 2.0
_STEP = 0.25
#: Where a thread blocked in these files is waiting on a server: the innermost frames of its stack.
_NETWORK = ("/urllib3/", "/requests/", "/http/client.py", "/socket.py", "/ssl.py", "/psycopg", "/pymysql/")


def _in_network(frame: Any, depth: int = 4) -> bool:
    while frame is not None and depth > 0:
        if any(part in frame.f_code.co_filename for part in _NETWORK):
            return True
        frame, depth = frame.f_back, depth - 1
    return False


def waiting_on_server(main: int | None = None) -> bool:
    """The main thread is blocked on a server: in network I/O, or waiting (a future's result, a join, a
    lock) while another thread is in network I/O (MLflow's start-up thread, in :mod:`search.runtime._record`)."""
    frames = sys._current_frames()
    frame = frames.get(main if main is not None else threading.main_thread().ident or 0)
    if frame is None:
        return False
    if _in_network(frame):
        return True
    return frame.f_code.co_filename == threading.__file__ and any(
        _in_network(f) for ident, f in frames.items() if ident != main
    )


class SearchInterrupted(KeyboardInterrupt):
    """Raised by SIGINT/SIGTERM during a search; ``exit_code`` is 130 or 143."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(signal.Signals(signum).name)


class Signals:
    """SIGINT/SIGTERM during a search. Inside :meth:`armed` (a trial's training) a signal raises
    :class:`SearchInterrupted` at once; anywhere else (recording a trial, the winner) it is held and
    raised at the next :meth:`check`, so bookkeeping is never cut in half.

    The handler runs wherever Python checks for signals, C code included: TensorFlow may catch the
    exception and go on, or turn it into another one (CI saw ``SystemError: Objects/listobject.c:338:
    bad argument to internal function``), so the trial would end "failed" and the search go on.
    :meth:`armed` therefore remembers the signal it raised and raises it again on the way out, whatever
    became of the first exception.

    A held signal is not held while the search waits on a server that does not answer (issue 31: a
    tracking server that accepts and never replies held SIGTERM for minutes): from the first signal a
    watcher thread looks at the main thread every quarter second, and once it has waited on a server
    (:func:`waiting_on_server`) for :data:`PATIENCE` seconds in a row, the signal is raised there (sent
    again to the main thread, which leaves its wait). So is every later such wait while the search
    unwinds (ending its MLflow run waits on the same server). What was being written to that server is
    left as it is, for the rerun to reconcile (contract 6). The watcher ends with the handler."""

    def __init__(self) -> None:
        self.is_armed = False
        self.pending: int | None = None
        self.fired: int | None = None  # the signal raised inside the current armed block
        self.forced: int | None = None  # a signal the watcher sends again: raised wherever it lands
        self.watching = False  # False again: the watcher ends

    def handler(self, signum: int, frame: Any) -> None:
        self._watch(signum)
        if self.forced is not None:
            self.forced, self.pending = None, None
            raise SearchInterrupted(signum)
        if self.is_armed:
            self.is_armed = False  # a second signal while unwinding is held, not raised
            self.fired = signum
            raise SearchInterrupted(signum)
        self.pending = signum

    def _watch(self, signum: int) -> None:
        """Start the watcher (once) for ``signum``, in the main thread only, where signals are handled."""
        main = threading.main_thread()
        if self.watching or threading.current_thread() is not main:
            return
        self.watching = True

        def watch() -> None:
            waited = 0.0
            while self.watching:
                time.sleep(_STEP)
                waited = waited + _STEP if waiting_on_server(main.ident) else 0.0
                if waited >= PATIENCE and self.watching:
                    waited, self.forced = 0.0, signum
                    signal.pthread_kill(main.ident or 0, signum)

        threading.Thread(target=watch, name="signal-watcher", daemon=True).start()

    def check(self) -> None:
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise SearchInterrupted(signum)

    @contextmanager
    def armed(self) -> Iterator[None]:
        self.check()
        self.is_armed, self.fired = True, None
        try:
            yield
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a library turned the interrupt into another exception
            if self.fired is not None:
                raise SearchInterrupted(self.fired) from exc
            raise
        finally:
            self.is_armed = False
        if self.fired is not None:  # a library swallowed the interrupt
            raise SearchInterrupted(self.fired)


@contextmanager
def interrupt_on_signals() -> Iterator[Signals]:
    """Install :class:`Signals` for SIGINT and SIGTERM (main thread only; elsewhere none are caught)."""
    import threading

    signals = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    previous = {s: signal.signal(s, signals.handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        signals.watching = False
        for s, h in previous.items():
            signal.signal(s, h)
