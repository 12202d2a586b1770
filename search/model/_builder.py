"""Architecture + input shape + number of classes → ``keras.Model`` (functional API).

Only built-in Keras layers (no ``Lambda``): the model saves as ``.keras`` and loads back under
``safe_mode=True``. Preprocessing (rescaling, resizing) is inside the model, so it takes raw images.
The builder instantiates the plan of :func:`search.model.make_plan`; an infeasible architecture
raises :class:`search.InfeasibleError` before any layer is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.model._architecture import Architecture
from search.model._plan import Plan, Shape, make_plan

if TYPE_CHECKING:
    import keras


def build_model(
    arch: Architecture, input_shape: Shape, num_classes: int, *, plan: Plan | None = None, name: str = "cnn"
) -> keras.Model:
    """Build the (uncompiled) Keras model of ``arch``.

    ``plan`` may be passed when it was already computed for the same shapes (feasibility check).
    """
    import keras

    plan = plan or make_plan(arch, tuple(input_shape), num_classes)
    mixed = keras.mixed_precision.global_policy().name.startswith("mixed")
    inputs = keras.Input(shape=plan.input_shape, name="image")
    tensors = {"input": inputs}
    for step in plan.steps:
        config = {**step.config, "dtype": "float32"} if mixed and step.name == plan.output else step.config
        layer = getattr(keras.layers, step.layer)(name=step.name, **config)
        args = [tensors[i] for i in step.inputs]
        tensors[step.name] = layer(args if step.layer == "Add" else args[0])
    return keras.Model(inputs, tensors[plan.output], name=name)


def compile_model(
    model: keras.Model, arch: Architecture, *, steps_per_execution: int = 1, jit_compile: bool | str = "auto"
) -> keras.Model:
    """Compile with the architecture's optimizer (keywords only: Keras 3 reads a third positional
    argument as ``loss_weights``). ``jit_compile=True`` asks for XLA compilation."""
    import keras

    t = arch.training
    kwargs: dict[str, float] = {"learning_rate": t.learning_rate}
    if t.weight_decay or t.optimizer == "adamw":  # AdamW's own default is 0.004, not 0
        kwargs["weight_decay"] = t.weight_decay
    if t.optimizer in ("sgd", "rmsprop") and t.momentum is not None:
        kwargs["momentum"] = t.momentum
    optimizer = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }[t.optimizer](**kwargs)
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model
