"""The feasibility plan against Keras itself, and the builder's models (real Keras, tiny shapes)."""

from __future__ import annotations

import numpy as np
import pytest

from search import Architecture, ConvBlock, Head, InfeasibleError, Space, Training, build_model, make_plan
from search._vocab import ACTIVATIONS
from search.model import check_budget, compile_model

keras = pytest.importorskip("keras")  # a dependency of the package: always present


def both(arch: Architecture, shape=(8, 8, 1), classes=10):
    plan = make_plan(arch, shape, classes)
    model = build_model(arch, shape, classes, plan=plan)
    return plan, model


def test_plan_shapes_and_params_equal_keras_layer_by_layer():
    arch = Architecture(
        blocks=(
            ConvBlock(filters=6, kernel_size=5, padding="valid", activation="tanh", pooling="average"),
            ConvBlock(
                filters=8,
                conv_type="separable",
                batch_norm=True,
                residual=True,
                strides=2,
                convs=2,
                pooling="max",
                pool_size=3,
                pool_strides=1,
            ),
            ConvBlock(filters=4, conv_type="depthwise", batch_norm=True, pooling="none", dropout=0.2),
        ),
        head=Head(pooling="flatten", units=(12, 7), dropout=0.1),
    )
    plan, model = both(arch, (20, 18, 3), 5)
    for step in plan.steps:
        layer = model.get_layer(step.name)
        assert tuple(layer.output.shape[1:]) == step.shape, step.name
        assert layer.count_params() == step.params, step.name
    assert model.count_params() == plan.params
    assert plan.shape_of("block0_pool") == (8, 7, 6)  # (20-5+1)//2, (18-5+1)//2


def test_flops_worked_by_hand():
    arch = Architecture(
        blocks=(ConvBlock(filters=4, kernel_size=3, pooling="none"),), head=Head(pooling="global_average")
    )
    plan = make_plan(arch, (6, 6, 2), 3)
    conv = 2 * (3 * 3 * 2 * 4) * 6 * 6
    dense = 2 * 4 * 3
    assert plan.flops == conv + dense
    assert plan.params == (3 * 3 * 2 * 4 + 4) + (4 * 3 + 3)


def test_collapse_is_refused_with_block_and_reason():
    arch = Architecture(blocks=(ConvBlock(), ConvBlock(), ConvBlock(), ConvBlock()))
    with pytest.raises(InfeasibleError) as info:
        make_plan(arch, (8, 8, 1), 10)
    assert info.value.reason == "collapse" and info.value.block == 3
    assert str(info.value) == "block 3: max pooling (pool_size 2, strides 2) on a 1x1 feature map leaves 0x0"


def test_residual_with_valid_padding_refused():
    arch = Architecture(blocks=(ConvBlock(padding="valid", residual=True),))
    with pytest.raises(InfeasibleError) as info:
        make_plan(arch, (8, 8, 1), 10)
    assert info.value.reason == "residual_shape"
    assert "needs padding same" in str(info.value)


def test_budgets_refuse_before_training():
    arch = Architecture(blocks=(ConvBlock(filters=64),), head=Head(units=(256,)))
    plan = make_plan(arch, (8, 8, 1), 10)
    with pytest.raises(InfeasibleError) as info:
        check_budget(plan, max_params=1000)
    assert info.value.reason == "max_params"
    assert str(info.value) == f"over budget: params {plan.params:,} > max_params 1,000"
    with pytest.raises(InfeasibleError, match="over budget: flops"):
        check_budget(plan, max_flops=10)
    with pytest.raises(InfeasibleError, match="over budget: activation_bytes"):
        check_budget(plan, max_activation_bytes=10)
    check_budget(plan, max_params=plan.params, max_flops=plan.flops)  # at the limit is fine


def test_space_check_input_refuses_kernel_larger_than_images():
    space = Space(blocks={"kernel_size": 11, "padding": "valid", "depth": 1})
    from search import SpaceError

    with pytest.raises(SpaceError) as info:
        space.check_input((8, 8, 1))
    assert "no architecture of 200 sampled fits the input" in str(info.value)
    assert "{" not in str(info.value)  # the reasons counted in words, not a Python dict (issue 14)
    assert "received 200 collapse (the last: " in str(info.value)
    space.check_input((32, 32, 1))


def test_model_takes_raw_images_and_saves_under_safe_mode(tmp_path):
    arch = Architecture(
        blocks=(
            ConvBlock(filters=4, batch_norm=True, residual=True, activation="leaky_relu"),
            ConvBlock(filters=4, conv_type="depthwise"),
        ),
        head=Head(pooling="global_max", units=(8,), dropout=0.1),
    )
    from search.model import Preprocessing

    arch = Architecture(arch.blocks, arch.head, Training(), Preprocessing(image_size=(12, 12)))
    plan, model = both(arch, (8, 8, 1), 3)
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)
    assert type(model.get_layer("rescaling")).__name__ == "Rescaling"
    assert model.get_layer("resizing").output.shape[1:3] == (12, 12)
    raw = np.random.default_rng(0).integers(0, 256, size=(5, 8, 8, 1)).astype("uint8")
    expected = model.predict(raw, verbose=0)
    assert expected.shape == (5, 3) and np.allclose(expected.sum(axis=1), 1, atol=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert again.count_params() == plan.params
    np.testing.assert_allclose(again.predict(raw, verbose=0), expected, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_compile_and_one_step_with_each_optimizer(optimizer):
    arch = Architecture(
        blocks=(ConvBlock(filters=2, pooling="none"),),
        head=Head(pooling="global_average"),
        training=Training(
            optimizer=optimizer,
            learning_rate=0.01,
            weight_decay=0.0,
            momentum=0.9 if optimizer in ("sgd", "rmsprop") else None,
        ),
    )
    model = compile_model(build_model(arch, (4, 4, 1), 2), arch)
    assert type(model.optimizer).__name__.lower() == optimizer
    if optimizer == "adamw":
        assert float(model.optimizer.weight_decay) == 0.0  # not AdamW's own default 0.004
    if optimizer in ("sgd", "rmsprop"):
        assert float(model.optimizer.momentum) == pytest.approx(0.9)
    x = np.zeros((4, 4, 4, 1), "uint8")
    history = model.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("steps_per_execution", [1, 32])
def test_a_compiled_model_traces_its_train_step_once(steps_per_execution):
    """compile_model creates the metrics', loss's and optimizer's variables before fit: a first trace
    that creates variables is traced again by TensorFlow, the whole train step twice per trial."""
    import tensorflow as tf

    arch = Architecture(
        blocks=(ConvBlock(filters=4, batch_norm=True),), head=Head(pooling="global_average"), training=Training()
    )
    model = compile_model(
        build_model(arch, (8, 8, 1), 3, fused=True), arch, steps_per_execution=steps_per_execution, fused=True
    )
    traces = []
    train_step = model.train_step

    def counting(data):
        traces.append(tf.inside_function())
        return train_step(data)

    model.train_step = counting
    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices((rng.integers(0, 255, (96, 8, 8, 1), "uint8"), rng.integers(0, 3, 96)))
    history = model.fit(data.batch(16), epochs=3, verbose=0)
    assert traces == [True]  # one trace (in a graph), reused by every step of every epoch
    assert len(history.history["accuracy"]) == 3 and 0 <= history.history["accuracy"][-1] <= 1
    _, accuracy = model.evaluate(data.batch(16), verbose=0)
    assert float(model.get_metrics_result()["accuracy"]) == pytest.approx(accuracy)


def test_every_activation_name_is_a_keras_activation():
    x = keras.ops.convert_to_tensor(np.linspace(-2, 2, 9, dtype="float32"))
    for name in ACTIVATIONS:
        fn = keras.activations.get(name)
        y = keras.ops.convert_to_numpy(keras.layers.Activation(name)(x))
        assert y.shape == (9,) and np.all(np.isfinite(y)), name
        assert callable(fn)


def test_fused_batch_norm_trains_as_keras_batch_norm_and_leaves_only_builtin_layers(tmp_path):
    """The training twin (TensorFlow's fused kernel) normalises a batch as Keras's BatchNormalization
    does and updates the same moving statistics (variance with Bessel's correction, n/(n-1)); the model
    handed on after training holds plain BatchNormalization, the same weights and the same answers."""
    from search.model import for_saving

    arch = Architecture(
        blocks=(ConvBlock(filters=4, batch_norm=True), ConvBlock(filters=6, batch_norm=True, residual=True)),
        head=Head(pooling="global_average", units=(8,)),
    )
    x = np.random.default_rng(0).uniform(100, 140, size=(16, 8, 8, 1)).astype("float32")  # low contrast
    keras.utils.set_random_seed(1)
    plain = build_model(arch, (8, 8, 1), 3, bn_momentum=0.5)
    keras.utils.set_random_seed(1)
    fused = build_model(arch, (8, 8, 1), 3, bn_momentum=0.5, fused=True)
    bn = [layer.name for layer in plain.layers if type(layer).__name__ == "BatchNormalization"]
    assert len(bn) == 3 and {type(fused.get_layer(n)).__name__ for n in bn} == {"FusedBatchNormalization"}
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), atol=1e-5)
    for name in bn:
        a, b = plain.get_layer(name), fused.get_layer(name)
        n = 16 * int(np.prod(a.input.shape[1:3]))  # values a channel in this batch
        np.testing.assert_allclose(b.moving_mean.numpy(), a.moving_mean.numpy(), atol=1e-5)
        batch_var = (a.moving_variance.numpy() - 0.5) / 0.5  # momentum 0.5 from a start of 1
        np.testing.assert_allclose(b.moving_variance.numpy(), 0.5 + 0.5 * batch_var * n / (n - 1), rtol=1e-4)
    np.testing.assert_allclose(fused(x), fused.predict(x, verbose=0), atol=1e-5)  # inference: Keras's own path

    kept = for_saving(fused)
    assert {type(kept.get_layer(n)).__name__ for n in bn} == {"BatchNormalization"}
    assert not any("Fused" in type(layer).__name__ for layer in kept.layers)
    np.testing.assert_allclose(kept(x), fused(x), atol=1e-6)
    kept.save(tmp_path / "kept.keras")
    again = keras.saving.load_model(tmp_path / "kept.keras", safe_mode=True)  # no cnn-search class needed
    np.testing.assert_allclose(again(x), fused(x), atol=1e-6)
    assert for_saving(plain) is plain


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
@pytest.mark.parametrize("ema", [None, 0.7])
def test_fused_adam_takes_the_steps_keras_adam_takes_and_is_not_saved(tmp_path, optimizer, ema):
    """Trained side by side from the same weights on the same batches, the fused optimizer (one
    ResourceApplyAdam a weight, and one ResourceApplyGradientDescent a weight for the moving average
    with ``ema``) leaves the weights, and the averages, Keras's Adam/AdamW leaves; the model handed on is
    compiled with Keras's own optimizer (same configuration), evaluates the same, and loads without
    cnn-search."""
    from search.model import for_saving

    arch = Architecture(
        blocks=(ConvBlock(filters=4),),
        head=Head(pooling="flatten", units=(8,)),
        training=Training(optimizer=optimizer, learning_rate=3e-3, weight_decay=1e-2 if optimizer == "adamw" else 0.0),
    )
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, size=(64, 8, 8, 1)).astype("float32"), rng.integers(0, 3, size=64)
    models = {}
    for fused in (False, True):
        keras.utils.set_random_seed(2)
        models[fused] = compile_model(
            build_model(arch, (8, 8, 1), 3), arch, steps_per_execution=4, fused=fused, ema_momentum=ema
        )
        models[fused].fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    assert type(models[True].optimizer).__name__ == f"Fused{type(models[False].optimizer).__name__}"
    assert int(models[True].optimizer.iterations) == int(models[False].optimizer.iterations) == 24
    for a, b in zip(models[False].get_weights(), models[True].get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)
    if ema is not None:  # fit ends by putting the averages into the weights (Keras's finalize_variable_values)
        averages = [[a.numpy() for a in m.optimizer._model_variables_moving_average] for m in models.values()]
        for a, b in zip(*averages, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)
        assert not np.allclose(averages[0][0], 0.0)
    kept = for_saving(models[True])
    assert kept is not models[True] and type(kept.optimizer) is type(models[False].optimizer)
    assert kept.optimizer.get_config() == {**models[True].optimizer.get_config(), "name": optimizer}
    assert kept.evaluate(x, y, verbose=0) == pytest.approx(models[True].evaluate(x, y, verbose=0), abs=1e-6)
    kept.save(tmp_path / "kept.keras")
    again = keras.saving.load_model(tmp_path / "kept.keras", safe_mode=True)
    np.testing.assert_allclose(again(x), models[True](x), atol=1e-6)


def test_training_ema_is_a_setting_of_the_space_and_old_records_read_as_without_it():
    """``training.ema`` defaults on, may be fixed off or searched; an architecture recorded before the
    setting existed (no ``ema`` key) trained without it and is read back that way."""
    from search import RandomParams, Space

    assert Space().sample(RandomParams(0)).training.ema is True
    assert Space(training={"ema": False}).sample(RandomParams(0)).training.ema is False
    both = {Space(training={"ema": [False, True]}).sample(RandomParams(seed)).training.ema for seed in range(12)}
    assert both == {False, True}
    data = Space().sample(RandomParams(0)).to_dict()
    assert Architecture.from_dict(data).training.ema is True
    del data["training"]["ema"]
    assert Architecture.from_dict(data).training.ema is False
