"""The Objective in-process: feasibility before training, pruning, non-finite loss, best weights,
augmentation from the space (real Keras training on a few hundred digits, 1-2 epochs)."""

from __future__ import annotations

import numpy as np
import pytest

from search import FixedParams, RandomParams, Space, load_dataset
from search.training import Objective


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit=400)


SMALL = {"blocks": {"depth": 1, "filters": 4}, "head": {"dense_layers": 0}, "training": {"epochs": 2, "batch_size": 64}}


def test_infeasible_architecture_is_refused_without_training(digits):
    space = Space(blocks={"depth": 4, "filters": 4}, head={"dense_layers": 0})
    calls = []
    result = Objective(space, digits)(space.sample(RandomParams(0)), lambda e, v: calls.append(e) or False)
    assert result.state == "infeasible" and result.reason.startswith("collapse: block 3:")
    assert calls == [] and result.epochs_run == 0 and result.model is None


def test_complete_trial_reports_every_epoch_and_keeps_best_weights(digits):
    space = Space(**SMALL)
    reported = []
    result = Objective(space, digits, seed=0)(
        space.sample(RandomParams(0)), lambda e, v: reported.append((e, v)) or False
    )
    assert result.state == "complete" and result.epochs_run == 2
    assert [e for e, _ in reported] == [0, 1]
    assert result.value == max(v for _, v in reported) == max(result.history["val_accuracy"])
    x, y = digits.arrays("validation")
    _, accuracy = result.model.evaluate(x, y, verbose=0)
    assert accuracy == pytest.approx(result.value, abs=1e-6)  # the best epoch's weights
    assert result.params == result.model.count_params()


def test_pruning_stops_training(digits):
    space = Space(**{**SMALL, "training": {"epochs": 5, "batch_size": 64}})
    result = Objective(space, digits)(space.sample(RandomParams(0)), lambda e, v: e >= 1)
    assert result.state == "pruned" and result.epochs_run == 2 and result.model is None
    assert result.reason == "pruner: stopped after epoch 1"


def test_non_finite_loss_fails_the_trial(digits, monkeypatch):
    monkeypatch.setenv("CNN_SEARCH_TEST_NAN_TRIALS", "4")
    space = Space(**SMALL)
    result = Objective(space, digits)(space.sample(RandomParams(0)), lambda e, v: False, trial_number=4)
    assert result.state == "failed" and result.reason.startswith("non_finite")
    assert result.model is None and result.value is None


def test_augmentation_declared_in_the_space_is_used_for_training(digits):
    space = Space(
        **{**SMALL, "training": {"epochs": 1, "batch_size": 64, "augment": {"flip": "horizontal", "rotation": 0.05}}}
    )
    arch = space.sample(FixedParams({}))
    assert arch.training.augment == {"flip": "horizontal", "rotation": 0.05}
    result = Objective(space, digits, seed=0)(arch, lambda e, v: False)
    assert result.state == "complete" and np.isfinite(result.history["loss"][0])


def test_augmentation_errors_are_located(write_yaml):
    from search import SpaceError

    path = write_yaml("training:\n  augment:\n    flop: horizontal\n    rotation: 0.9\n")
    with pytest.raises(SpaceError) as info:
        Space.from_file(path)
    assert [str(p).replace(str(path), "F") for p in info.value.problems] == [
        "F:3: training.augment.flop: unknown key 'flop'; expected one of flip, rotation, zoom, translation, contrast, "
        "received 'flop'. Did you mean 'flip'?",
        "F:4: training.augment.rotation: out of range; expected a number from 0 to 0.5, received 0.9 (a float).",
    ]


def test_patience_stops_a_trial_that_no_longer_improves(digits):
    space = Space(**{**SMALL, "training": {"epochs": 30, "batch_size": 64, "patience": 1}})
    result = Objective(space, digits)(space.sample(RandomParams(0)), lambda e, v: False)
    assert result.state == "complete"
    # stopped one epoch after the last improvement, long before 30 epochs
    assert result.epochs_run == result.best_epoch + 2 and result.epochs_run < 30
    never = Space(**{**SMALL, "training": {"epochs": 3, "batch_size": 64, "patience": None}})
    assert Objective(never, digits)(never.sample(RandomParams(0)), lambda e, v: False).epochs_run == 3
