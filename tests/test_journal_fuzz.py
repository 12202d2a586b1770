"""Fuzz: Optuna journals cut, bit-flipped, extended with junk or made of random bytes (issue 31; the counts are
in docs/RELIABILITY.md). Opening one (``get_storage``, what every command does first) either works, with
every whole record kept, or says in one ``SearchError`` what is wrong and leaves the file as it was: never
another exception. Property-based with Hypothesis; the journal is a real one, of a real study."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search._errors import SearchError
from search.runtime._storage import get_storage

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def journal(tmp_path_factory) -> bytes:
    """A real journal: a study with finished, pruned and failed trials, their params and attributes."""
    import optuna

    path = tmp_path_factory.mktemp("journal") / "optuna.journal"
    study = optuna.create_study(study_name="s", storage=get_storage(str(path)))
    for i in range(6):
        trial = study.ask()
        trial.suggest_int("filters", 8, 64)
        trial.suggest_categorical("activation", ["relu", "elu"])
        trial.set_user_attr("summary", f"conv3x3·{i}")
        state = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)[i % 3]
        study.tell(trial, 0.5 + i / 20 if state == optuna.trial.TrialState.COMPLETE else None, state=state)
    return path.read_bytes()


def _open(path: Path) -> int | None:
    """Open ``path`` as the package does; the number of trials it holds, or None when refused cleanly."""
    try:
        storage = get_storage(str(path))
        return sum(len(storage.get_all_trials(s._study_id)) for s in storage.get_all_studies())
    except SearchError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return None


def _whole_records(data: bytes) -> list[bytes]:
    return data.splitlines()[: data.count(b"\n")]


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_a_journal_cut_anywhere_keeps_every_whole_record(tmp_path, journal, cut):
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "optuna.journal"  # one folder per example
    data = journal[: cut % (len(journal) + 1)]
    path.write_bytes(data)
    _open(path)
    kept = path.read_bytes()
    assert kept == b"" or kept.endswith(b"\n")
    lines = kept.splitlines()
    assert lines[: len(_whole_records(data))] == _whole_records(data)  # no whole record dropped
    assert all(json.loads(line)["op_code"] is not None for line in lines)


@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=7)), min_size=1, max_size=4)
)
def test_a_bit_flipped_journal_is_opened_or_refused_in_one_line(tmp_path, journal, flips):
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "optuna.journal"  # one folder per example
    data = bytearray(journal)
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    path.write_bytes(bytes(data))
    if _open(path) is None:
        assert path.read_bytes() == bytes(data)  # refused: left exactly as it was


@FUZZ
@given(junk=st.binary(min_size=1, max_size=400), whole=st.booleans())
def test_junk_after_or_instead_of_a_journal_is_dropped_or_refused(tmp_path, journal, junk, whole):
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "optuna.journal"  # one folder per example
    data = junk if whole else journal + junk
    path.write_bytes(data)
    if _open(path) is None:
        assert path.read_bytes() == data
    else:
        assert path.read_bytes().startswith(b"" if whole else journal)  # the records before the junk all kept


@FUZZ
@given(cut=st.integers(min_value=1, max_value=10_000))
def test_a_record_torn_by_a_killed_worker_is_dropped_before_a_live_one_appends(tmp_path, journal, cut):
    """Issue 31, item 11: a worker killed mid-append left a torn line; the next append of a live worker was
    written onto it, one broken line of two records: every later read failed, and that record was lost."""
    import optuna

    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "optuna.journal"  # one folder per example
    path.write_bytes(journal)
    live = optuna.load_study(study_name="s", storage=get_storage(str(path)))  # opened before the tear
    before = len(live.trials)
    last = journal.rstrip(b"\n").rsplit(b"\n", 1)[-1] + b"\n"
    torn = last[: 1 + cut % (len(last) - 2)]  # a record cut before its end: what a killed writer leaves
    with open(path, "ab") as f:
        f.write(torn)
    trial = live.ask()  # the live worker appends
    live.tell(trial, 0.9)
    lines = path.read_bytes().splitlines()
    assert all(json.loads(line)["op_code"] is not None for line in lines)  # no broken line in the journal
    again = optuna.load_study(study_name="s", storage=get_storage(str(path)))
    assert len(again.trials) == before + 1 and again.trials[-1].value == 0.9  # the live record kept
    (backup,) = path.parent.glob("optuna.journal.torn-*")
    assert backup.read_bytes() == journal + torn  # what was dropped is kept aside
