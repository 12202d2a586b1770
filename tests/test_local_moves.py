"""The sampler ``tpe-local`` (issue 32, item 4): after ``--local-after`` trials, a share of the trials are
local moves around the incumbent (its parameters, one to three changed to a neighbouring value), recorded as
``local_of`` / ``local_moves``. A real tiny search pins it (with ``--sampler tpe`` no trial is a local move);
the neighbour rule is checked on Optuna's own distributions, with Hypothesis."""

from __future__ import annotations

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from search.engines._optuna import make_sampler
from search.engines._optuna._local import LocalSampler, neighbour

from .helpers import cnn_search, runs_of, study_of

SPACE = """\
name: local
blocks:
  depth: 1
  filters: [4, 8, 16]
  kernel_size: 3
  activation: [relu, elu]
  pooling: max
head:
  pooling: flatten
  dense_layers: 0
training:
  optimizer: adam
  learning_rate: {low: 1e-3, high: 1e-2, log: true}
  batch_size: 32
  epochs: 1
start:
  - block_0/filters: 8
    block_0/activation: relu
    training/learning_rate: 0.003
"""


def _search(tmp_path, sampler: str):
    space = tmp_path / "local.yaml"
    space.write_text(SPACE)
    runs = tmp_path / "runs"
    args = ["run", str(space), "--trials", "7", "--epochs", "1", "--seed", "0", "--workers", "1"]
    args += ["--sampler", sampler, "--pruner", "none", "--local-after", "1"]  # moves from the first searched trial
    out = cnn_search(*args, "--runs-dir", str(runs), "--no-report")
    assert out.returncode == 0, out.stderr[-3000:]
    listed = cnn_search("trials", "local-digits", "--runs-dir", str(runs))
    assert listed.returncode == 0, listed.stderr[-2000:]
    return study_of(runs, "local-digits"), runs_of(runs, "local-digits")[1], " ".join(listed.stdout.split())


def test_the_default_sampler_moves_around_the_incumbent_and_records_it(tmp_path):
    study, children, listed = _search(tmp_path, "tpe-local")
    trials = {t.number: t for t in study.trials}
    local = [t for t in study.trials if "local_of" in t.user_attrs]
    assert local, [t.user_attrs for t in study.trials]
    for t in local:
        before = trials[t.user_attrs["local_of"]]
        assert before.state == optuna.trial.TrialState.COMPLETE and before.number < t.number
        # the incumbent then: no complete trial before t scored higher
        earlier = [u.value for u in study.trials if u.number < t.number and u.value is not None]
        assert before.value == max(earlier)
        moved = set(t.user_attrs["local_moves"])
        assert 1 <= len(moved) <= 3 and moved <= set(before.params)
        changed = {k for k in before.params if t.params[k] != before.params[k]}
        assert changed <= moved  # every other parameter is the incumbent's
    tagged = {r.data.tags.get("local_of") for r in children} - {None}
    assert tagged == {str(t.user_attrs["local_of"]) for t in local}
    assert all(f"near {t.user_attrs['local_of']}: conv" in listed for t in local)  # cnn-search trials says so


def test_tpe_alone_makes_no_local_move(tmp_path):
    study, _, listed = _search(tmp_path, "tpe")
    assert not [t for t in study.trials if "local_of" in t.user_attrs] and "near " not in listed


def _quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    depth = trial.suggest_int("depth", 1, 3)
    extra = trial.suggest_int("extra", 1, 5) if depth == 3 else 0
    return -((x - 0.7) ** 2) + 0.05 * depth + 0.01 * extra


def _study(seed: int, local_after: int = 1, trials: int = 25) -> optuna.Study:
    study = optuna.create_study(direction="maximize", sampler=make_sampler("tpe-local", seed, local_after=local_after))
    study.enqueue_trial({"x": 0.2, "depth": 1})
    study.optimize(_quadratic, n_trials=trials)
    return study


def _plans(seed: int) -> list[tuple[int, tuple[str, ...], dict]]:
    study = _study(seed)
    return [
        (t.user_attrs["local_of"], tuple(t.user_attrs["local_moves"]), t.params)
        for t in study.trials
        if "local_of" in t.user_attrs
    ]


def test_a_seeded_search_repeats_its_moves_and_a_new_parameter_is_sampled():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    first, again = _plans(3), _plans(3)
    assert first == again and 6 <= len(first) <= 20  # about half of 24 searched trials
    assert _plans(4) != first
    # a move of the depth to 3 gives a parameter the incumbent lacked: sampled, inside its range
    grown = [p for _, moved, p in first if "depth" in moved and p["depth"] == 3 and "extra" in p]
    assert all(1 <= p["extra"] <= 5 for p in grown)


def test_the_readme_budget_is_tpe_alone_and_the_budget_beyond_it_moves_locally():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _study(0, local_after=20, trials=40)  # the default --local-after: the README's 20 trials
    local = [t.number for t in study.trials if "local_of" in t.user_attrs]
    assert local and min(local) >= 20 and len(local) >= 5  # about half of the 20 after them


def test_a_move_changes_the_incumbent_and_is_not_one_made_before():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _study(5, trials=40)
    seen: set = set()
    for t in study.trials:
        if "local_of" in t.user_attrs:
            before = study.trials[t.user_attrs["local_of"]]
            moved = {k for k in before.params if k in t.params and t.params[k] != before.params[k]}
            dropped = set(before.params) - set(t.params)  # a block the moved depth no longer has
            assert (moved or dropped) and moved <= set(t.user_attrs["local_moves"])
        key = tuple(sorted(t.params.items()))
        assert "local_of" not in t.user_attrs or key not in seen
        seen.add(key)


def test_several_goals_use_tpe_alone():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = make_sampler("tpe-local", 0)
    assert isinstance(sampler, LocalSampler)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=12)
    assert not [t for t in study.trials if "local_of" in t.user_attrs]


CHOICES = st.lists(st.integers(1, 512), min_size=2, max_size=6, unique=True)


@settings(max_examples=150, deadline=None)
@given(choices=CHOICES, pick=st.integers(0, 5), seed=st.integers(0, 2**31 - 1))
def test_an_ordered_choice_moves_one_place(choices, pick, seed):
    import numpy as np

    value = choices[pick % len(choices)]
    moved = neighbour(value, CategoricalDistribution(choices), np.random.RandomState(seed))
    ordered = sorted(choices)
    assert moved != value and abs(ordered.index(moved) - ordered.index(value)) == 1


@settings(max_examples=150, deadline=None)
@given(
    low=st.integers(-5, 5),
    span=st.integers(1, 9),
    offset=st.integers(0, 9),
    log=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_an_integer_moves_inside_its_range(low, span, offset, log, seed):
    import numpy as np

    if log:
        low = max(low, 1)
    dist = IntDistribution(low, low + span, log=log)
    value = low + offset % (span + 1)
    moved = neighbour(value, dist, np.random.RandomState(seed))
    assert dist.low <= moved <= dist.high and isinstance(moved, int)
    assert moved != value  # a range of two or more values always has a neighbour


@settings(max_examples=150, deadline=None)
@given(
    low=st.floats(1e-6, 1.0),
    ratio=st.floats(1.5, 1000.0),
    at=st.floats(0.0, 1.0),
    log=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_a_float_moves_near_inside_its_range(low, ratio, at, log, seed):
    import numpy as np

    dist = FloatDistribution(low, low * ratio, log=log)
    value = min(low + at * (dist.high - low), dist.high)
    moved = neighbour(value, dist, np.random.RandomState(seed))
    assert dist.low <= moved <= dist.high and moved != value  # on a bound too: it moves inwards
    if log:
        assert value / 2.0000001 <= moved <= value * 2.0000001
    else:
        assert abs(moved - value) <= 0.15 * (dist.high - dist.low) * 1.0000001


@pytest.mark.parametrize("choices", [["relu", "elu", "gelu"], [False, True]])
def test_an_unordered_choice_moves_to_another(choices):
    import numpy as np

    rng = np.random.RandomState(0)
    seen = {neighbour(choices[0], CategoricalDistribution(choices), rng) for _ in range(40)}
    assert seen == set(choices[1:])
