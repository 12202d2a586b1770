"""The words a space may use, kept free of heavy imports so the CLI can validate without Keras.

Every name here is Keras's own spelling (``kernel_size``, ``strides``, ``pool_size``...).
``tests/test_model.py::test_every_activation_name_is_a_keras_activation`` checks each activation name
against ``keras.activations.get``.
"""

from __future__ import annotations

from typing import Final

#: Activations Keras provides by name that make sense for hidden layers. ``softmax`` (normalises
#: across channels), ``glu`` (halves the channels) and ``threshold`` (needs arguments) are left out
#: on purpose; the output layer is always softmax.
ACTIVATIONS: Final[tuple[str, ...]] = (
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "swish",
    "hard_silu",
    "hard_swish",
    "mish",
    "tanh",
    "hard_tanh",
    "tanh_shrink",
    "sigmoid",
    "hard_sigmoid",
    "log_sigmoid",
    "softplus",
    "softsign",
    "sparse_plus",
    "squareplus",
    "soft_shrink",
    "hard_shrink",
    "exponential",
    "linear",
)

PADDINGS: Final = ("same", "valid")
POOLINGS: Final = ("max", "average", "none")
HEAD_POOLINGS: Final = ("flatten", "global_average", "global_max")
OPTIMIZERS: Final = ("adam", "adamw", "sgd", "rmsprop")
#: Optimizers that take ``momentum``; for the others it is not sampled.
MOMENTUM_OPTIMIZERS: Final = ("sgd", "rmsprop")
