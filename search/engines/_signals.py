"""SIGINT and SIGTERM during a search: raised inside a trial's training, held everywhere else."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


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
    became of the first exception."""

    def __init__(self) -> None:
        self.is_armed = False
        self.pending: int | None = None
        self.fired: int | None = None  # the signal raised inside the current armed block

    def handler(self, signum: int, frame: Any) -> None:
        if self.is_armed:
            self.is_armed = False  # a second signal while unwinding is held, not raised
            self.fired = signum
            raise SearchInterrupted(signum)
        self.pending = signum

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
        for s, h in previous.items():
            signal.signal(s, h)
