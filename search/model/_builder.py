"""Architecture + input shape + number of classes → ``keras.Model`` (functional API).

Only built-in Keras layers (no ``Lambda``): the model saves as ``.keras`` and loads back under
``safe_mode=True``. The one exception is training-only: ``fused=True`` (:mod:`search.model._fused`)
builds TensorFlow's fused batch norm and optimizers, and :func:`search.model.for_saving` turns the
trained model back into built-in layers (same weights) before anything saves or exports it.
Preprocessing (rescaling, resizing) is inside the model, so it takes raw images.
The builder instantiates the plan of :func:`search.model.make_plan`; an infeasible architecture
raises :class:`search.InfeasibleError` before any layer is created.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from search.model._architecture import Architecture
from search.model._fused import fused_batch_norm_class, fused_optimizer_class
from search.model._plan import Plan, Shape, make_plan
from search.model.layers import get_layer_kind

if TYPE_CHECKING:
    import keras


def build_model(
    arch: Architecture,
    input_shape: Shape,
    num_classes: int,
    *,
    plan: Plan | None = None,
    name: str = "cnn",
    input_stats: tuple[float, float] | None = None,
    bn_momentum: float | None = None,
    fused: bool = False,
) -> keras.Model:
    """Build the (uncompiled) Keras model of ``arch``.

    ``plan`` may be passed when it was already computed for the same shapes (feasibility check).
    ``input_stats`` (mean, standard deviation of the raw training pixels) makes the first layer
    standardise its input when ``arch.preprocessing.standardize`` is on: ``Rescaling(1/std, -mean/std)``,
    a built-in layer every export format carries. ``bn_momentum`` sets every BatchNormalization's
    momentum (see :func:`bn_momentum`). ``fused`` (TensorFlow backend, training only) trains batch norm
    with TensorFlow's fused kernel (:func:`search.model._fused.fused_batch_norm_class`). None changes
    the layer plan or the parameter count.
    """
    import keras

    plan = plan or make_plan(arch, tuple(input_shape), num_classes)
    mixed = keras.mixed_precision.global_policy().name.startswith("mixed")
    inputs = keras.Input(shape=plan.input_shape, name="image")
    tensors = {"input": inputs}
    for step in plan.steps:
        config = step.config
        if step.name == "rescaling" and input_stats is not None and arch.preprocessing.standardize:
            mean, std = input_stats
            config = {"scale": 1.0 / std, "offset": -mean / std}
        elif step.layer == "BatchNormalization" and bn_momentum is not None:
            config = {**config, "momentum": bn_momentum}
        if mixed and step.name == plan.output:
            config = {**config, "dtype": "float32"}
        if step.layer == "BatchNormalization" and fused:
            layer = fused_batch_norm_class()(name=step.name, **config)
        elif step.kind is not None:
            layer = get_layer_kind(step.kind).layer(replace(step, config=config))
        else:
            layer = getattr(keras.layers, step.layer)(name=step.name, **config)
        args = [tensors[i] for i in step.inputs]
        tensors[step.name] = layer(args if step.layer == "Add" else args[0])
    return keras.Model(inputs, tensors[plan.output], name=name)


#: Weight left on BatchNormalization's initial moving statistics (mean 0, variance 1) after one epoch.
BN_RESIDUAL = 1e-3


def bn_momentum(steps_per_epoch: int) -> float:
    """BatchNormalization momentum for ``steps_per_epoch`` updates an epoch: Keras's 0.99, or lower so
    that after the first epoch the initial moving variance of 1 weighs at most :data:`BN_RESIDUAL`.

    With 0.99 the moving statistics keep 0.99**n of their start after n steps (5% after 300), while
    the true variance of a layer's input can be 1000x smaller: validation then shrinks every activation
    and predicts one class although training accuracy is high (measured: 0.97 train, 0.20 validation).

    >>> bn_momentum(1000), round(bn_momentum(75), 3), round(bn_momentum(5), 3)
    (0.99, 0.912, 0.251)
    """
    steps = max(int(steps_per_epoch), 1)
    return min(0.99, BN_RESIDUAL ** (1 / steps))


#: Weight left, one epoch later, on the weights' moving average as it stood at that epoch's start.
EMA_RESIDUAL = 0.02


def ema_momentum(steps_per_epoch: int) -> float:
    """Momentum of the exponential moving average of a trial's weights for ``steps_per_epoch`` updates an
    epoch: the average forgets all but :data:`EMA_RESIDUAL` of itself in one epoch, so it spans about the
    last quarter of the epoch (1 / (1 - momentum) = steps / ln(1 / EMA_RESIDUAL) steps) whatever the
    data's size and batch.

    Why average at all: a trial trains for a few epochs at a constant learning rate, and the weights of
    its last step are one noisy point of where the optimizer wanders; the average of its last steps is
    near their centre and validates higher and more steadily (Polyak averaging; timm's ``ModelEmaV2``).
    Measured with ``benchmarks/start_points.py`` (vgg's two start points, five tasks, two training
    seeds, 5 epochs; README "Measured"). Keras counts the average from the first step
    (``use_ema``), so no warm-up is needed.

    >>> round(ema_momentum(75), 3), round(ema_momentum(8), 3), ema_momentum(1)
    (0.949, 0.613, 0.02)
    """
    steps = max(int(steps_per_epoch), 1)
    return EMA_RESIDUAL ** (1 / steps)


def compile_model(
    model: keras.Model,
    arch: Architecture,
    *,
    steps_per_execution: int = 1,
    jit_compile: bool | str = "auto",
    fused: bool = False,
    ema_momentum: float | None = None,
) -> keras.Model:
    """Compile with the architecture's optimizer (keywords only: Keras 3 reads a third positional
    argument as ``loss_weights``). ``jit_compile=True`` asks for XLA compilation. ``fused`` (TensorFlow
    backend, training only): Adam and AdamW update each weight with TensorFlow's fused kernel
    (:func:`search.model._fused.fused_optimizer_class`). ``ema_momentum``: the optimizer also keeps an
    exponential moving average of the weights (Keras's ``use_ema``; see :func:`ema_momentum`), which
    :class:`search.training.Objective` swaps in to judge the trial.

    The optimizer's slot variables are created here, eagerly, not where Keras would create them: inside
    the first trace of the train function (TensorFlow lifts each out of the graph being traced). Measured
    on a CPU for a 2-block CNN with AdamW: 0.02 s here against 0.4-0.6 s of the first epoch's trace,
    a third of a small trial's fixed cost."""
    import keras

    t = arch.training
    kwargs: dict[str, float] = {"learning_rate": t.learning_rate}
    if t.weight_decay or t.optimizer == "adamw":  # AdamW's own default is 0.004, not 0
        kwargs["weight_decay"] = t.weight_decay
    if t.optimizer in ("sgd", "rmsprop") and t.momentum is not None:
        kwargs["momentum"] = t.momentum
    extra: dict[str, object] = {"use_ema": True, "ema_momentum": ema_momentum} if ema_momentum is not None else {}
    optimizer_class = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }[t.optimizer]
    optimizer = (fused_optimizer_class(optimizer_class) if fused else optimizer_class)(**kwargs, **extra)
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    if model.built:
        _build_state(model)
    return model


def _build_state(model: keras.Model) -> None:
    """Create the optimizer's slots and the compiled loss's and metrics' variables now, eagerly.

    Keras (TensorFlow backend, no distribution strategy) leaves them to the first trace of the train
    function, and a ``tf.function`` whose first trace creates variables is traced a second time
    (TensorFlow lifts the variables out, then retraces without variable creation): the whole train
    step, twice per trial. Measured on a CPU for 8 vgg architectures on 8x8 images: the first epoch
    (trace included) 9.3 s → 6.7 s in all, one ``train_step`` trace per fit instead of two. Keras's
    own ``_symbolic_build`` (what ``fit`` runs under a distribution strategy) does it on symbolic
    inputs; a Keras without it gets the optimizer's slots only."""
    import numpy as np

    build = getattr(model, "_symbolic_build", None)
    if build is not None and len(model.inputs) == 1 and len(model.outputs) == 1:
        x = np.zeros((1, *model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype)
        build(data_batch=(x, np.zeros((1,), dtype="int32")))
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
