"""A small, documented test hook for fault injection (docs/RELIABILITY.md), read from the environment.

Never set in normal use. Each variable names trial numbers (comma-separated) or a value:

* ``CNN_SEARCH_TEST_EPOCH_SLEEP=SECONDS`` — sleep at the end of every epoch (signal tests);
* ``CNN_SEARCH_TEST_FAIL_TRIALS=1,3`` — raise ``RuntimeError`` at the start of these trials' training;
* ``CNN_SEARCH_TEST_NAN_TRIALS=2`` — poison these trials' weights with NaN (a non-finite loss);
* ``CNN_SEARCH_TEST_OOM_TRIALS=2,4!`` — raise TensorFlow's ``ResourceExhaustedError`` when these
  trials start training: at the first attempt only (``2``: the retry at half the batch size fits), or
  at every attempt (``4!``);
* ``CNN_SEARCH_TEST_EXPORT_PAUSE=SECONDS`` — pause an export after its first file is written (kill tests).
"""

from __future__ import annotations

import os


def epoch_sleep() -> float:
    return float(os.environ.get("CNN_SEARCH_TEST_EPOCH_SLEEP", "0") or 0)


def _trials(variable: str) -> set[int]:
    return {int(t.strip().rstrip("!")) for t in os.environ.get(variable, "").split(",") if t.strip()}


def oom_trial(number: int, attempt: int) -> bool:
    for t in os.environ.get("CNN_SEARCH_TEST_OOM_TRIALS", "").split(","):
        t = t.strip()
        if t and int(t.rstrip("!")) == number and (attempt == 0 or t.endswith("!")):
            return True
    return False


def fail_trial(number: int) -> bool:
    return number in _trials("CNN_SEARCH_TEST_FAIL_TRIALS")


def nan_trial(number: int) -> bool:
    return number in _trials("CNN_SEARCH_TEST_NAN_TRIALS")


def export_pause() -> float:
    return float(os.environ.get("CNN_SEARCH_TEST_EXPORT_PAUSE", "0") or 0)
