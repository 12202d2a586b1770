"""Which trial's weights a search keeps when two trials tie (search/runtime/_winner.py): the winner is the
earlier trial of a tie (``GOAL.sort_key``), so the earlier trial's weights must be the ones on disk, or the
search retrains its winner at the end. With two workers the earlier trial often finishes second: on a
saturated validation split both start points reach 1.0 and the later-numbered one finishes first. Real Keras
models saved to real files."""

from __future__ import annotations

from pathlib import Path

import pytest


def _keeper(runs: Path):
    """The Session's winner part alone, over a search record that never starts MLflow (no trial is recorded)."""
    from search.runtime._record import SearchRecord
    from search.runtime._winner import Winner
    from search.space import load_space

    record = SearchRecord(
        name="ties", engine="optuna", space=load_space("tiny"), data=None, runs_dir=runs, tracking_uri=""
    )
    keeper = Winner(record, objective=None)
    assert keeper.models_dir == runs / "models" / "ties"
    return keeper


def _result(value: float):
    import keras

    from search.training import TrialResult

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    return TrialResult(state="complete", value=value, model=model)


@pytest.mark.timeout(120)
def test_an_earlier_trial_that_ties_the_best_after_it_finished_takes_its_place(tmp_path: Path) -> None:
    keeper = _keeper(tmp_path)
    assert keeper.keep_if_best(1, _result(1.0), None, None)  # trial 1 finished first
    assert keeper.keep_if_best(0, _result(1.0), 1.0, 1)  # trial 0, same value, finished second: it is the winner
    assert sorted(p.name for p in keeper.models_dir.glob("*.keras")) == ["trial-0.keras"]


@pytest.mark.timeout(120)
def test_a_later_trial_that_only_ties_is_not_kept_and_a_better_one_is(tmp_path: Path) -> None:
    keeper = _keeper(tmp_path)
    assert keeper.keep_if_best(0, _result(0.9), None, None)
    assert not keeper.keep_if_best(2, _result(0.9), 0.9, 0)  # a tie with an earlier trial: the earlier wins
    assert not keeper.keep_if_best(3, _result(0.8), 0.9, 0)
    assert sorted(p.name for p in keeper.models_dir.glob("*.keras")) == ["trial-0.keras"]
    assert keeper.keep_if_best(4, _result(0.95), 0.9, 0)
    assert sorted(p.name for p in keeper.models_dir.glob("*.keras")) == ["trial-4.keras"]
