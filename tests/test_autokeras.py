"""The AutoKeras engine: translation of a space onto AutoKeras's blocks, its refusal, its parameter
source and the Keras >= 3.13 shim. Real AutoKeras graphs; the end-to-end runs are in test_engines."""

from __future__ import annotations

import random

import numpy as np
import pytest

from search import FixedParams, RandomParams, SearchError, Space, load_space
from search.engines._autokeras import (
    AutoKerasParams,
    build_graph,
    declared,
    initial_hps,
    install_shim,
    translate,
)

from .helpers import cnn_search


def _possible_names(space: Space, n: int = 60) -> set[str]:
    names: set[str] = set()
    for seed in range(n):
        source = RandomParams(seed)
        space.sample(source)
        names |= set(source.params)
    return names


def test_tiny_translation_names_what_autokeras_cannot_choose():
    t = translate(load_space("tiny"))
    assert len(t.searchable) == 9 and len(t.expressed) == 8
    assert t.kept == {"blocks.activation": "relu"}
    report = t.report()
    assert report.startswith("AutoKeras chooses 8 of the space's 9 searchable keys:")
    assert "blocks.activation: AutoKeras has no such choice; every trial uses relu (the space allows [relu, elu])" in (
        report
    )
    assert "blocks.kernel_size: one value for every block" in report
    assert "training.learning_rate: the range {low: 0.001, high: 0.01, log: True} is searched as AutoKeras choices" in (
        report
    )
    assert t.expressed["training.learning_rate"].values == (1e-2, 1e-3)  # AutoKeras's own grid, inside the range
    assert t.expressed["head.pooling"].ak_values() == ["flatten", "global_avg"]


def test_choices_autokeras_cannot_encode_are_dropped_and_said():
    space = Space.from_dict(
        {
            "blocks": {"depth": [1, 2], "filters": [8, 16], "pooling": ["max", "average", "none"]},
            "training": {"optimizer": ["adam", "rmsprop"]},
        }
    )
    t = translate(space)
    assert t.expressed["blocks.pooling"].values == ("max", "none")
    assert "blocks.pooling: AutoKeras chooses among [max, none]; never tried: [average]" in t.report()
    assert t.kept["training.optimizer"] == "adam"
    assert "training.optimizer: AutoKeras cannot choose among [adam, rmsprop]" in t.report()


@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_spaces_whose_meaning_would_be_lost_are_refused(name):
    with pytest.raises(SearchError) as info:
        translate(load_space(name))
    message = str(info.value)
    assert f"searchable keys of space {name!r}" in message and "expected more than half" in message
    assert "blocks.strides" in message and "Use --engine optuna or keras-tuner" in message


def test_a_space_searching_only_what_autokeras_lacks_is_refused():
    space = Space.from_dict({"blocks": {"activation": ["relu", "elu", "gelu"]}, "training": {"batch_size": [32, 64]}})
    with pytest.raises(SearchError, match=r"only 0 of the 2 searchable keys .* it cannot choose blocks.activation"):
        translate(space)


@pytest.mark.parametrize("name", ["tiny", "lenet", "alexnet", "vgg"])
def test_shipped_spaces_autokeras_can_search(name):
    t = translate(load_space(name))
    assert len(t.expressed) * 2 > len(t.searchable)


def _random_hp(t, graph, seed):
    """A trial's hyperparameters as AutoKeras's graph declares them, with random values."""
    import keras_tuner as kt

    hp = declared(t)
    graph.build(hp)
    rng = random.Random(seed)
    space_hp = hp.copy()
    values = {}
    for h in space_hp.space:
        values[h.name] = h.random_sample(rng.randrange(10**6))
    trial_hp = kt.HyperParameters()
    trial_hp.merge(space_hp.space)
    trial_hp.values.update(values)
    return trial_hp


@pytest.mark.parametrize("name", ["tiny", "vgg", "lenet"])
def test_autokeras_params_use_the_space_names_and_replay_with_fixed_params(name):
    space = load_space(name)
    t = translate(space)
    graph = build_graph(t, space, input_shape=(8, 8, 1), num_classes=10, samples=1000)
    possible = _possible_names(space)
    seen_depths = set()
    for seed in range(12):
        hp = _random_hp(t, graph, seed)
        source = AutoKerasParams(hp, t)
        arch = space.sample(source)
        seen_depths.add(len(arch.blocks))
        assert set(source.params) <= possible  # the same path-like names as every other engine
        assert not [n for n in source.params if n.startswith(f"block_{len(arch.blocks)}/")]  # no inactive block
        assert space.sample(FixedParams(source.params)) == arch
        if "blocks.kernel_size" in t.expressed:
            assert all(b.kernel_size == hp.values["conv_block_1/kernel_size"] for b in arch.blocks)
        for key, value in t.kept.items():  # what AutoKeras cannot choose keeps the announced value
            section, field = key.split(".")
            if section == "blocks" and field in ("activation", "batch_norm", "strides", "padding"):
                assert all(getattr(b, field) == value for b in arch.blocks)
    assert len(seen_depths) > 1  # AutoKeras's num_blocks does drive the depth


def test_the_architecture_matches_the_model_autokeras_would_build():
    """For what AutoKeras chooses, our architecture has the same layers as AutoKeras's own model."""
    import keras

    space = Space.from_dict(
        {
            "blocks": {"depth": [1, 2], "filters": [8, 16], "kernel_size": [3, 5], "pooling": ["max", "none"]},
            "head": {"pooling": ["flatten", "global_average"], "dense_layers": [0, 1], "units": [16, 32]},
        }
    )
    t = translate(space)
    graph = build_graph(t, space, input_shape=(16, 16, 1), num_classes=10, samples=1000)
    for seed in range(8):
        hp = _random_hp(t, graph, seed)
        ak_model = graph.build(hp)
        arch = space.sample(AutoKerasParams(hp, t))
        convs = [layer for layer in ak_model.layers if isinstance(layer, keras.layers.Conv2D)]
        assert [(c.filters, c.kernel_size[0]) for c in convs] == [(b.filters, b.kernel_size) for b in arch.blocks]
        pools = [layer for layer in ak_model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
        assert len(pools) == sum(b.pooling == "max" for b in arch.blocks)
        dense = [layer.units for layer in ak_model.layers if isinstance(layer, keras.layers.Dense)]
        assert dense == [*arch.head.units, 10]
        gap = any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in ak_model.layers)
        assert gap == (arch.head.pooling == "global_average")


def test_greedy_starts_from_autokeras_vanilla_classifier_within_the_space():
    t = translate(load_space("tiny"))
    assert initial_hps(t) == [
        {
            "conv_block_1/kernel_size": 3,
            "conv_block_1/num_blocks": 1,
            "conv_block_1/max_pooling": True,
            "spatial_reduction_1/reduction_type": "flatten",
            "learning_rate": 1e-3,
        }
    ]


def test_shim_makes_autokeras_graph_build_with_keras_313_and_later():
    """AutoKeras 3.0.0 stores NumPy integers as shapes; Keras >= 3.13 refuses Dense(numpy.int64)."""
    import autokeras as ak
    import keras_tuner as kt
    from autokeras import graph as graph_module
    from autokeras.utils import data_utils

    install_shim()
    install_shim()  # idempotent
    shapes = data_utils.dataset_shape((np.zeros((1, 8, 8, 1)), np.zeros((1, 10))))
    assert isinstance(shapes[1][1], np.integer)

    def graph():
        image = ak.ImageInput()
        out = ak.ClassificationHead(num_classes=10, dropout=0.0)(ak.ConvBlock(num_blocks=1)(image))
        return graph_module.Graph(inputs=image, outputs=out)

    unpatched = graph()
    graph_module.Graph.set_io_shapes.original(unpatched, shapes)
    with pytest.raises(ValueError, match="expected a positive integer"):
        unpatched.build(kt.HyperParameters())  # the bug, still there: the shim is still needed

    patched = graph()
    patched.set_io_shapes(shapes)
    model = patched.build(kt.HyperParameters())
    assert model.output_shape == (None, 10)


def test_cli_refuses_a_lossy_space_before_creating_anything(tmp_path):
    runs = tmp_path / "runs"
    out = cnn_search("run", "resnet", "--engine", "autokeras", "--runs-dir", str(runs))
    assert out.returncode == 1
    assert "AutoKeras can express only 4 of the 8 searchable keys of space 'resnet'" in out.stderr
    assert not (runs / "mlflow.db").exists() and not (runs / "autokeras").exists()
    wrong = cnn_search("run", "tiny", "--engine", "autokeras", "--tuner", "grid", "--runs-dir", str(runs))
    assert wrong.returncode == 1
    assert "--tuner: unknown autokeras tuner 'grid'; expected one of greedy, random, bayesian, hyperband" in (
        wrong.stderr
    )
