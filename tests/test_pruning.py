"""When the median pruner may stop a trial (real Optuna study, no training), and the heartbeat setting."""

from __future__ import annotations

import optuna

from search.engines._optuna import make_pruner


def _study_after_two_good_trials(start_points: int, pruner: str = "median", images: int = 0) -> optuna.Study:
    chosen = make_pruner(pruner, 5, start_points=start_points, validation_images=images)
    study = optuna.create_study(direction="maximize", pruner=chosen)
    for _ in range(2):  # two known-good trials, as the start points of a space with two are
        trial = study.ask()
        for epoch, value in enumerate([0.6, 0.7, 0.8, 0.85, 0.9]):
            trial.report(value, epoch)
        study.tell(trial, 0.9)
    return study


def _pruned_at(study: optuna.Study, curve: list[float]) -> int | None:
    trial = study.ask()
    for epoch, value in enumerate(curve):
        trial.report(value, epoch)
        if trial.should_prune():
            return epoch
    return None


def test_two_start_points_are_the_bar_from_the_third_trial():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    hopeless = [0.2, 0.25, 0.3, 0.3, 0.3]
    # The start points have finished: a trial far below them stops after its first epoch (no warm-up).
    assert _pruned_at(_study_after_two_good_trials(start_points=2), hopeless) == 0
    # A space without two start points keeps Optuna's default: 5 finished trials before any pruning.
    assert _pruned_at(_study_after_two_good_trials(start_points=0), hopeless) is None
    # A trial as good as the start points is never stopped.
    assert _pruned_at(_study_after_two_good_trials(start_points=2), [0.65, 0.75, 0.85, 0.9, 0.95]) is None


def test_a_trial_the_validation_split_cannot_tell_from_the_median_trains_on():
    """Issue 32, --pruner median-noise: one standard error of the validation split is allowed (on 400 images
    at 0.6, 0.0245); Optuna's own rule (median, the default) stops a trial a hair below the median."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    close, far = [0.58, 0.72, 0.83], [0.57, 0.7, 0.8]  # 2 and 3 points below 0.6 after the first epoch
    assert _pruned_at(_study_after_two_good_trials(2, "median-noise", images=400), close) is None
    assert _pruned_at(_study_after_two_good_trials(2, "median-noise", images=400), far) == 0
    assert _pruned_at(_study_after_two_good_trials(2, "median", images=400), close) == 0
    # the same 2 points on 4,000 images are 6 standard errors: stopped
    assert _pruned_at(_study_after_two_good_trials(2, "median-noise", images=4000), close) == 0
    # unknown split size: Optuna's rule
    assert _pruned_at(_study_after_two_good_trials(2, "median-noise", images=0), [0.599, 0.7, 0.8]) == 0
    # judged by its best epoch so far, as Optuna's rule and the trial's value: a dip after a peak is kept
    assert _pruned_at(_study_after_two_good_trials(2, "median-noise", images=4000), [0.6, 0.9, 0.7]) is None


def test_the_heartbeat_interval_is_a_checked_setting(monkeypatch, tmp_path):
    """``CNN_SEARCH_HEARTBEAT_SECONDS`` (README, "Crashes"): read when a search starts, refused when it is
    not a number of seconds > 0, before anything is written."""
    from search import SearchError, run_search
    from search.engines._optuna import grace_seconds, heartbeat_seconds

    monkeypatch.setenv("CNN_SEARCH_HEARTBEAT_SECONDS", "2.5")
    assert heartbeat_seconds() == 2.5 and grace_seconds() == 7.5
    for bad in ("soon", "0", "-1", "nan"):
        monkeypatch.setenv("CNN_SEARCH_HEARTBEAT_SECONDS", bad)
        try:
            run_search("tiny", "digits", trials=1, epochs=1, runs_dir=tmp_path / "runs")
        except SearchError as exc:
            assert str(exc) == (f"CNN_SEARCH_HEARTBEAT_SECONDS: expected a number of seconds > 0, received {bad!r}")
        else:
            raise AssertionError(f"CNN_SEARCH_HEARTBEAT_SECONDS={bad} was accepted")
        assert not (tmp_path / "runs").exists()
