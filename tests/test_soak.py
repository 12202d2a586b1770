"""The soak's pure helpers (benchmarks/soak.py): tracebacks and stacks found in logs, exits, lost trials."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
_spec = importlib.util.spec_from_file_location("soak", BENCHMARKS / "soak.py")
assert _spec is not None and _spec.loader is not None
soak = importlib.util.module_from_spec(_spec)
sys.modules["soak"] = soak  # dataclasses look the module up by name
_spec.loader.exec_module(soak)

PLAIN = """\
trial 3 complete
Traceback (most recent call last):
  File "/x/search/a.py", line 12, in f
    g()
  File "/x/search/b.py", line 40, in g
    raise ValueError("bad 42")
ValueError: bad 42
trial 4 complete
"""

RICH = """\
╭───────────── Traceback (most recent call last) ─────────────╮
│ /x/search/cli.py:237 in run                                 │
╰─────────────────────────────────────────────────────────────╯
OperationalError: database is locked
after
"""

DUMP = """\
continuing search tiny-digits (optuna): 2 of 2 trials done
Fatal Python error: Aborted

Thread 0x00007fd63ba896c0 (most recent call first):
  File "/work/main/search/tracking/_store.py", line 59 in file_lock
  File "/usr/lib/python3.11/contextlib.py", line 137 in __enter__
  File "/work/main/search/runtime/_session.py", line 262 in _begin

Current thread 0x00007fd6a8bddb80 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 327 in wait
  File "/work/main/search/runtime/_session.py", line 286 in _tracked
  File "/work/main/search/_run.py", line 430 in _finish

Extension modules: yaml._yaml (total: 1)
"""


def test_plain_traceback_to_its_exception_line():
    [block] = soak.traceback_blocks(PLAIN)
    assert block[0].startswith("Traceback") and block[-1] == "ValueError: bad 42"
    assert soak.traceback_key(block) == "ValueError: bad N"


def test_rich_traceback_and_two_in_one_log():
    blocks = soak.traceback_blocks(RICH + PLAIN)
    assert [b[-1] for b in blocks] == ["OperationalError: database is locked", "ValueError: bad 42"]
    assert soak.traceback_blocks("no trouble here\n") == []


def test_exit_kinds():
    assert soak.exit_kind("worker", -9, "soak", "") == "killed (soak)"
    assert soak.exit_kind("run", -6, "limit", "") == "stopped at the time limit"
    early = "error: no search named 'tiny-digits' in /r/optuna.journal; start it with cnn-search run"
    assert soak.exit_kind("worker", 1, "", early) == "started too early"
    assert soak.exit_kind("run", 1, "", early) == "exit 1"  # only a worker can start too early
    assert soak.exit_kind("worker", 1, "", "error: something else") == "exit 1"
    assert soak.exit_kind("worker", -11, "", "") == "signal SIGSEGV"
    assert soak.exit_kind("worker", 0, "", "") == "exit 0"


def test_lost_trials_both_ways():
    states = {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE", 3: "PRUNED", 4: "COMPLETE"}
    assert soak.lost_trials(states, [0, 2, 4]) == ([], [])
    assert soak.lost_trials(states, [0, 1, 4, 4]) == ([2], [1])


def test_stack_summary_keeps_thread_headers_and_our_frames():
    lines = soak.stack_summary(DUMP, frames=2)
    assert lines == [
        "Thread 0x00007fd63ba896c0 (most recent call first):",
        'File "/work/main/search/tracking/_store.py", line 59 in file_lock',
        'File "/work/main/search/runtime/_session.py", line 262 in _begin',
        "Current thread 0x00007fd6a8bddb80 (most recent call first):",
        'File "/work/main/search/runtime/_session.py", line 286 in _tracked',
        'File "/work/main/search/_run.py", line 430 in _finish',
    ]
    assert soak.stack_summary("nothing") == []
