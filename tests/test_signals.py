"""Signals during a search: raised at once while a trial trains, held during bookkeeping."""

from __future__ import annotations

import os
import signal

import pytest

from search.runtime._session import SearchInterrupted, Signals, interrupt_on_signals


def test_a_signal_outside_training_is_held_until_the_next_check():
    with interrupt_on_signals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)  # delivered while recording: held
        assert signals.pending == signal.SIGTERM
        with pytest.raises(SearchInterrupted) as info:
            signals.check()
    assert info.value.exit_code == 143 and str(info.value) == "SIGTERM"
    assert signals.pending is None


def test_a_signal_during_training_raises_at_once_and_a_second_one_is_held():
    signals = Signals()
    with pytest.raises(SearchInterrupted) as info, signals.armed():
        signals.handler(signal.SIGINT, None)
        raise AssertionError("not reached")
    assert info.value.exit_code == 130
    signals.handler(signal.SIGINT, None)  # while the interrupted trial is being recorded
    assert signals.pending == signal.SIGINT
    with pytest.raises(SearchInterrupted), signals.armed():  # held one raised before the next training
        raise AssertionError("not reached")


def test_previous_handlers_are_restored():
    before = signal.getsignal(signal.SIGINT)
    with interrupt_on_signals():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before


def test_a_signal_that_a_library_swallows_or_turns_into_another_error_still_interrupts():
    """TensorFlow's C++ code may catch the handler's exception and carry on, or raise another error in
    its place (CI: ``SystemError: Objects/listobject.c:338``); the trial must still end as interrupted."""

    def swallowing_library() -> str:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the real handler runs here
            for _ in range(1000):
                pass
        except KeyboardInterrupt:
            return "carried on"
        raise AssertionError("the handler did not run")

    def mangling_library() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
        except KeyboardInterrupt:
            raise SystemError("Objects/listobject.c:338: bad argument to internal function") from None
        raise AssertionError("the handler did not run")

    with interrupt_on_signals() as signals:
        with pytest.raises(SearchInterrupted) as swallowed, signals.armed():
            assert swallowing_library() == "carried on"
        assert swallowed.value.exit_code == 130
        with pytest.raises(SearchInterrupted) as mangled, signals.armed():
            mangling_library()
        assert mangled.value.exit_code == 143 and isinstance(mangled.value.__cause__, SystemError)
        with signals.armed():  # the next trial starts clean: nothing held, nothing raised again
            pass
    assert signals.pending is None
