"""The schema of a space file: one :class:`Rule` per key, per section.

This table is the single source of truth: validation (``_parse.py``), the JSON Schema for editors
(``_schema.py``), defaults and the documentation of every key all come from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from search._vocab import (
    ACTIVATIONS,
    HEAD_POOLINGS,
    OPTIMIZERS,
    PADDINGS,
    POOLINGS,
)
from search.model.layers import KindNames

Kind = Literal["int", "float", "str", "bool", "count", "size", "names", "text", "augment"]


@dataclass(frozen=True)
class Rule:
    """What one key accepts.

    ``kind``: ``int``/``float``/``str``/``bool`` values (searchable unless ``searchable=False``);
    ``count`` a fixed non-negative integer that may be written ``1e6``; ``size`` an int or
    ``[height, width]``; ``names`` a list of block keys; ``text`` free text.
    """

    kind: Kind
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: Sequence[str] | None = None
    searchable: bool = True
    nullable: bool = False

    @property
    def help(self) -> str:
        """The key's documentation; choices that explain themselves (the layer kinds) add their lines."""
        explain = getattr(self.choices, "explain", None)
        return f"{self.doc}: {explain()}" if explain is not None else self.doc

    def describe(self) -> str:
        """The expected value in words: 'an integer >= 1', 'one of same, valid'."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        words = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "count": "a whole number",
            "size": "an integer or [height, width]",
            "names": "a list of block keys",
            "text": "a string",
            "augment": "a mapping of flip, rotation, zoom, translation, contrast",
            "str": "a string",
        }[self.kind]
        bounds = []
        if self.minimum is not None:
            bounds.append(f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"{'<' if self.exclusive_maximum else '<='} {self.maximum:g}")
        text = words + (" " + " and ".join(bounds) if bounds else "")
        return text + (" or null" if self.nullable else "")


def _fixed(kind: Kind, default: Any, doc: str, **kw: Any) -> Rule:
    return Rule(kind, default, doc, searchable=False, **kw)


BLOCK_RULES: dict[str, Rule] = {
    "depth": Rule("int", 2, "Number of conv blocks.", minimum=1),
    "convs_per_block": Rule("int", 1, "Convolutions in each block.", minimum=1),
    "filters": Rule("int", 32, "Output channels of each convolution.", minimum=1),
    "filters_growth": _fixed(
        "float",
        None,
        "If set, `filters` is chosen once and block i gets round(filters * growth**i).",
        minimum=1,
        nullable=True,
    ),
    "kernel_size": Rule("int", 3, "Square kernel size; 1 gives a 1x1 (pointwise) convolution.", minimum=1),
    "strides": Rule("int", 1, "Strides of the block's first convolution.", minimum=1),
    "padding": Rule("str", "same", "Convolution padding.", choices=PADDINGS),
    "activation": Rule("str", "relu", "Keras activation after each convolution.", choices=ACTIVATIONS),
    "conv_type": Rule(
        "str",
        "standard",
        "The layer kind of each convolution (search/model/layers/, one file each)",
        choices=KindNames(),  # read when asked: a kind registered later is a choice
    ),
    "batch_norm": Rule("bool", False, "BatchNormalization after each convolution."),
    "residual": Rule("bool", False, "Add the block's input to its output (1x1 projection when shapes differ)."),
    "dropout": Rule("float", 0.0, "Dropout rate after the block.", minimum=0, maximum=1, exclusive_maximum=True),
    "pooling": Rule("str", "max", "Pooling at the end of the block.", choices=POOLINGS),
    "pool_size": Rule("int", 2, "Pooling window.", minimum=1),
    "pool_strides": Rule("int", None, "Pooling strides; null means pool_size.", minimum=1, nullable=True),
    "shared": _fixed("names", [], "Block keys chosen once for all blocks instead of per block."),
}

#: Keys of ``blocks`` that are chosen per block (``block_<i>/<key>``) unless listed in ``shared``.
PER_BLOCK_KEYS: tuple[str, ...] = tuple(k for k in BLOCK_RULES if k not in ("depth", "filters_growth", "shared"))

HEAD_RULES: dict[str, Rule] = {
    "pooling": Rule("str", "flatten", "How the feature maps become a vector.", choices=HEAD_POOLINGS),
    "dense_layers": Rule("int", 1, "Hidden Dense layers before the softmax output.", minimum=0),
    "units": Rule("int", 64, "Units of each hidden Dense layer (chosen per layer).", minimum=1),
    "activation": Rule("str", "relu", "Activation of the hidden Dense layers.", choices=ACTIVATIONS),
    "dropout": Rule(
        "float", 0.0, "Dropout rate before each Dense layer.", minimum=0, maximum=1, exclusive_maximum=True
    ),
}

TRAINING_RULES: dict[str, Rule] = {
    "optimizer": Rule("str", "adam", "Keras optimizer.", choices=OPTIMIZERS),
    "learning_rate": Rule("float", 1e-3, "Learning rate.", minimum=0, exclusive_minimum=True),
    "momentum": Rule("float", 0.9, "Momentum (sgd, rmsprop only).", minimum=0, maximum=1, exclusive_maximum=True),
    "batch_size": Rule("int", 32, "Batch size.", minimum=1),
    "epochs": Rule("int", 10, "Maximum epochs per trial.", minimum=1),
    "weight_decay": Rule("float", 0.0, "Decoupled weight decay of the optimizer.", minimum=0),
    "patience": Rule(
        "int",
        5,
        "Stop a trial when val_accuracy has not improved for this many epochs; null: never.",
        minimum=1,
        nullable=True,
    ),
    "ema": Rule(
        "bool",
        True,
        "Judge each trial, and keep its model, with an exponential moving average of its weights (Polyak "
        "averaging over about a quarter of an epoch); false: the weights of the last step.",
    ),
    "augment": _fixed(
        "augment",
        None,
        "Augmentation of training batches only: flip (horizontal|vertical|horizontal_and_vertical), rotation "
        "(0..0.5 of a turn), zoom (0..0.9), translation (0..0.9), contrast (0..1).",
        nullable=True,
    ),
}

BUDGET_RULES: dict[str, Rule] = {
    "max_params": _fixed("count", None, "Largest parameter count allowed.", minimum=1, nullable=True),
    "max_flops": _fixed("count", None, "Largest FLOPs per image (2 x multiply-adds).", minimum=1, nullable=True),
    "max_activation_bytes": _fixed(
        "count", None, "Largest float32 activation memory per image, in bytes.", minimum=1, nullable=True
    ),
    "max_latency_ms": _fixed(
        "float",
        None,
        "Largest median latency of one image (batch 1) in ms, measured on the runtime of a latency_ms goal "
        "(else TFLite) right after a trial's model is built, before it trains.",
        minimum=0,
        exclusive_minimum=True,
        nullable=True,
    ),
    "max_model_kb": _fixed(
        "float",
        None,
        "Largest model file in KiB, in the format of a model_bytes goal (else TFLite), measured right after a "
        "trial's model is built, before it trains.",
        minimum=0,
        exclusive_minimum=True,
        nullable=True,
    ),
}

#: Budget keys measured on the built model (not known from its layer plan); left out of a space's data when
#: unset, so the fingerprints of spaces written before they existed do not change.
MEASURED_BUDGET: tuple[str, ...] = ("max_latency_ms", "max_model_kb")

INPUT_RULES: dict[str, Rule] = {
    "image_size": _fixed(
        "size",
        None,
        "Resize images to this size inside the model; null keeps the data's size.",
        minimum=1,
        nullable=True,
    ),
    "rescale": _fixed(
        "float",
        1 / 255,
        "Factor applied to raw pixels inside the model (raw 0-255 images by default).",
        minimum=0,
        exclusive_minimum=True,
    ),
    "standardize": _fixed(
        "bool",
        True,
        "Subtract the training split's mean pixel and divide by its standard deviation inside the model "
        "(replaces rescale; low-contrast images then reach the first layer at unit scale).",
    ),
}

SECTIONS: dict[str, dict[str, Rule]] = {
    "input": INPUT_RULES,
    "blocks": BLOCK_RULES,
    "head": HEAD_RULES,
    "training": TRAINING_RULES,
    "budget": BUDGET_RULES,
}

TOP_RULES: dict[str, Rule] = {
    "name": _fixed("text", None, "Name of the space (defaults to the file name)."),
    "description": _fixed("text", "", "One line about the space."),
}

#: The list of known-good first trials (validated against the space, not by a rule of the table).
START_DOC = (
    "Start points: known-good configurations tried first by every engine, in order. Each is a mapping from "
    "parameter names (as in MLflow: blocks/depth, block_0/filters, training/learning_rate) to values inside "
    "the space; parameters left out are chosen by the engine."
)
#: The goals of a search run on the space, when the command line or Python names none.
GOALS_DOC = (
    "Goals of a search on this space when --goals is not given: val_accuracy and goals of size (params, flops, "
    "latency_ms:RUNTIME, model_bytes:RUNTIME; RUNTIME keras, tflite or onnx). More than one: a Pareto front."
)
TOP_KEYS: tuple[str, ...] = (*TOP_RULES, "goals", *SECTIONS, "start")
