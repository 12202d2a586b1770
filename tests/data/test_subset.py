"""Data size as a fidelity (``--subset``): each trial's first epoch on a stratified fraction of the training
images, judged there, the later epochs on all of them; recorded on MLflow (real training, real folders)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from search import RandomParams, Space, load_dataset
from search.training import Objective
from search.training import _callbacks as callbacks_module
from tests.helpers import cnn_search, runs_of

SMALL = {"blocks": {"depth": 1, "filters": 4}, "head": {"dense_layers": 0}, "training": {"epochs": 3, "batch_size": 32}}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit=500)


def test_a_subset_is_stratified_and_leaves_the_validation_and_test_splits_whole(digits):
    sample = digits.subset(0.25)
    train = digits.labels("train")
    assert len(sample.labels("train")) == round(0.25 * len(train))
    full, part = np.bincount(train), np.bincount(sample.labels("train"))
    assert np.all(np.abs(part - full * 0.25) <= 1)  # every class at its share, to one image
    rows = sample.store.rows
    assert np.array_equal(sample.arrays("train")[0], digits.arrays("train")[0][rows])
    for split in ("validation", "test"):
        assert np.array_equal(sample.arrays(split)[0], digits.arrays(split)[0])
    assert sample.fingerprint == digits.fingerprint  # the same data, judged on a part of it
    seen = [np.sort(y.numpy()) for _, y in sample.train(16)]
    assert np.array_equal(np.sort(np.concatenate(seen)), np.sort(sample.labels("train")))


def test_the_first_epoch_trains_on_the_subset_and_the_others_on_every_image(digits, monkeypatch):
    monkeypatch.setattr(callbacks_module, "STEP_EVERY", 0.0)  # every step said, to count each epoch's batches
    space = Space(**SMALL)
    objective = Objective(space, digits, seed=0)
    objective.subset = 0.25
    steps: dict[int, int] = {}
    reported = []
    result = objective(
        space.sample(RandomParams(0)),
        lambda epoch, value: reported.append(epoch) or False,
        on_step=lambda epoch, step, of: steps.__setitem__(epoch, of),
    )
    n = len(digits.labels("train"))
    assert result.state == "complete" and result.epochs_run == 3 and reported == [0, 1, 2]
    assert result.subset_images == round(0.25 * n) and result.final_metrics()["subset_images"] == round(0.25 * n)
    assert steps == {0: math.ceil(round(0.25 * n) / 32), 1: math.ceil(n / 32), 2: math.ceil(n / 32)}


def test_the_hooks_see_one_trial_start_and_every_epoch_across_the_subset_and_the_rest(digits):
    from search import hooks

    class Seen:
        def __init__(self) -> None:
            self.starts: list[int] = []
            self.epochs: list[int] = []

        def trial_start(self, trial, attempt, model):
            self.starts.append(len(model.get_weights()))

        def epoch_end(self, trial, epoch, logs):
            self.epochs.append(epoch)

    space = Space(**SMALL)
    objective = Objective(space, digits, seed=0)
    objective.subset = 0.25
    seen = hooks.register(Seen())
    try:
        result = objective(space.sample(RandomParams(0)), lambda epoch, value: False)
    finally:
        hooks.unregister(seen)
    assert result.epochs_run == 3 and len(seen.starts) == 1 and seen.epochs == [0, 1, 2]


def test_a_trial_the_pruner_stops_on_its_subset_epoch_trains_no_more(digits):
    space = Space(**SMALL)
    objective = Objective(space, digits, seed=0)
    objective.subset = 0.25
    result = objective(space.sample(RandomParams(0)), lambda epoch, value: True)
    assert result.state == "pruned" and result.epochs_run == 1
    assert result.reason == "pruner: stopped after epoch 1 of 3"


def test_a_search_with_subset_records_it_on_its_run_and_each_trial(tmp_path, make_folder):
    """A folder (on disk, from the pixel cache), two worker processes: every trial says its subset's size."""
    root = make_folder({"ant": 12, "bee": 12, "cat": 12})
    space = tmp_path / "small.yaml"
    space.write_text(
        "name: small\nblocks: {depth: 1, filters: [4, 8]}\nhead: {dense_layers: 0}\n"
        "training: {epochs: 2, batch_size: 8}\n"
    )
    runs = tmp_path / "runs"
    done = cnn_search(
        "run", str(space), "--data", str(root), "--trials", "4", "--subset", "0.5", "--workers", "2",
        "--runs-dir", str(runs), "--seed", "1", "--no-report",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [parent], trials = runs_of(runs, "small-images")
    assert parent.data.params["option/subset"] == "0.5"
    train = len(load_dataset(root, seed=1).labels("train"))
    assert len(trials) == 4
    assert {t.data.metrics.get("subset_images") for t in trials} == {max(6, round(0.5 * train))}


def test_a_subset_outside_0_to_1_is_refused_naming_the_flag(tmp_path):
    done = cnn_search("run", "tiny", "--subset", "1.5", "--runs-dir", str(tmp_path / "runs"))
    assert done.returncode != 0 and not (tmp_path / "runs" / "mlflow.db").exists()
    assert (
        "--subset: expected a fraction between 0 and 1 (0.25: a quarter of the training images), or none, "
        "received 1.5" in done.stderr
    )
