"""Sampling through ParamSource: conditional parameters, shared keys, growth, replay, seeds."""

from __future__ import annotations

import pytest

from search import Architecture, FixedParams, FloatRange, IntRange, RandomParams, Space, SpaceError, load_space
from search.space import Choice, Fixed


def sample_params(space: Space, seed: int) -> tuple[Architecture, dict]:
    source = RandomParams(seed)
    return space.sample(source), source.params


def test_parameters_of_missing_blocks_are_not_sampled():
    space = Space(
        blocks={"depth": IntRange(1, 3), "filters": [8, 16], "kernel_size": [3, 5]},
        head={"dense_layers": [0, 2], "units": [16, 32]},
    )
    seen_depths = set()
    for seed in range(40):
        arch, params = sample_params(space, seed)
        depth = len(arch.blocks)
        seen_depths.add(depth)
        assert params["blocks/depth"] == depth
        block_names = {n.split("/")[0] for n in params if n.startswith("block_")}
        assert block_names == {f"block_{i}" for i in range(depth)}
        dense = params["head/dense_layers"]
        assert len(arch.head.units) == dense
        assert {n for n in params if n.startswith("head/dense_") and n.endswith("/units")} == {
            f"head/dense_{j}/units" for j in range(dense)
        }
        assert ("head/activation" in params) is False  # fixed: never asked
    assert seen_depths == {1, 2, 3}


def test_shared_keys_and_filters_growth():
    space = Space(
        blocks={
            "depth": 3,
            "filters": [16, 32],
            "filters_growth": 2,
            "activation": ["relu", "elu"],
            "shared": ["activation"],
        }
    )
    arch, params = sample_params(space, 3)
    base = params["blocks/filters"]
    assert [b.filters for b in arch.blocks] == [base, base * 2, base * 4]
    assert len({b.activation for b in arch.blocks}) == 1
    assert "blocks/activation" in params and not any(
        n.endswith("/activation") and n.startswith("block_") for n in params
    )


def test_momentum_only_for_optimizers_that_use_it():
    space = Space(training={"optimizer": ["adam", "sgd"], "momentum": FloatRange(0.5, 0.99)})
    for seed in range(20):
        arch, params = sample_params(space, seed)
        if arch.training.optimizer == "sgd":
            assert 0.5 <= params["training/momentum"] <= 0.99 and arch.training.momentum == params["training/momentum"]
        else:
            assert "training/momentum" not in params and arch.training.momentum is None


def test_booleans_use_the_boolean_call():
    calls = []

    class Spy(RandomParams):
        def _boolean(self, name):
            calls.append(name)
            return True

    Space(blocks={"depth": 1, "batch_norm": [False, True]}).sample(Spy(0))
    assert calls == ["block_0/batch_norm"]


def test_same_seed_same_architectures_in_same_order():
    space = load_space("vgg")
    src1, src2, other = RandomParams(11), RandomParams(11), RandomParams(7)
    first = [space.sample(src1).hash() for _ in range(10)]
    second = [space.sample(src2).hash() for _ in range(10)]
    assert first == second  # the same seed: the same architectures, in the same order
    assert len(set(first)) > 5  # and they differ from one another
    assert [space.sample(other).hash() for _ in range(10)] != first  # another seed, another search


def test_replay_from_logged_params_including_strings():
    space = load_space("lenet")
    for seed in range(10):
        arch, params = sample_params(space, seed)
        as_mlflow = {k: str(v) for k, v in params.items()}  # MLflow stores params as strings
        replay = FixedParams(as_mlflow)
        assert space.sample(replay) == arch
        assert replay.unused() == []


def test_fixed_params_refuses_missing_and_outside_values():
    space = Space(blocks={"depth": IntRange(1, 2), "filters": [8, 16]})
    with pytest.raises(SpaceError) as info:
        space.sample(FixedParams({"blocks/depth": 1}))
    assert str(info.value) == "block_0/filters: missing parameter; expected one of [8, 16], received nothing."
    with pytest.raises(SpaceError) as info:
        space.sample(FixedParams({"blocks/depth": 3}))
    assert str(info.value) == (
        "blocks/depth: value outside the space; expected an integer from 1 to 2 in steps of 1, received 3."
    )
    with pytest.raises(
        SpaceError,
        match=r"block_0/filters: value outside the space; expected one of \[8, 16\], "
        r"received 12.",
    ):
        space.sample(FixedParams({"blocks/depth": 1, "block_0/filters": 12}))


def test_random_ranges_respect_step_and_log():
    src = RandomParams(0)
    ints = [src.int("i", 8, 64, step=8) for _ in range(200)]
    assert set(ints) <= set(range(8, 65, 8)) and len(set(ints)) > 4
    logs = [src.float("f", 1e-4, 1e-1, log=True) for _ in range(400)]
    assert all(1e-4 <= v <= 1e-1 for v in logs)
    assert sum(v < 1e-2 for v in logs) > 200  # log-uniform: two of three decades below 1e-2
    log_ints = [src.int("g", 1, 1000, log=True) for _ in range(300)]
    assert all(1 <= v <= 1000 for v in log_ints) and sum(v < 32 for v in log_ints) > 100


def test_space_round_trips_through_dict_and_has_stable_fingerprint():
    for name in ("tiny", "vgg", "resnet"):
        space = load_space(name)
        again = Space.from_dict(space.to_dict())
        assert again == space and again.fingerprint() == space.fingerprint()
    changed = load_space("tiny").to_dict()
    changed["blocks"]["filters"] = [8, 32]
    del changed["start"]  # its start point has 16 filters: refused by a space without 16
    assert Space.from_dict(changed).fingerprint() != load_space("tiny").fingerprint()


def test_python_value_objects_equal_yaml_forms():
    a = Space(
        blocks={
            "filters": Choice((8, 16)),
            "depth": IntRange(1, 2),
            "dropout": FloatRange(0.0, 0.5),
            "kernel_size": Fixed(3),
        }
    )
    b = Space.from_dict(
        {
            "blocks": {
                "filters": [8, 16],
                "depth": {"low": 1, "high": 2},
                "dropout": {"low": 0.0, "high": 0.5},
                "kernel_size": 3,
            }
        }
    )
    assert a == b


def test_size_counts_conditional_parameters():
    space = Space(
        blocks={"depth": [1, 2], "filters": [8, 16], "pooling": "max"}, head={"dense_layers": 0, "pooling": "flatten"}
    )
    size = space.size()
    # depth 1: 2 filter choices; depth 2: 2*2  -> 6 architectures
    assert size.combinations == 6 and size.parameters == 3 and size.continuous == ()
    lr = Space(training={"learning_rate": FloatRange(1e-4, 1e-2, log=True)}).size()
    assert lr.continuous == ("training/learning_rate",)


def test_architecture_round_trip_hash_and_summary():
    arch, _ = sample_params(load_space("resnet"), 0)
    data = arch.to_dict()
    assert Architecture.from_dict(data) == arch
    assert Architecture.from_dict(data).hash() == arch.hash()
    assert arch.summary(num_classes=10).startswith("res(2×conv3x3")
    assert arch.summary(num_classes=10).endswith("→ gap → softmax10")
    with pytest.raises(SpaceError, match=r"blocks.0: unknown keys \['kernal_size'\]"):
        Architecture.from_dict({**data, "blocks": [{**data["blocks"][0], "kernal_size": 3}]})
