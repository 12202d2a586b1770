"""Feasibility before training: the layer plan of an Architecture, with shapes, params and FLOPs.

The plan is computed with integer arithmetic only (no Keras, milliseconds), and the builder
instantiates exactly this plan, so what is refused here is never built and what is built has the
predicted parameter count.

Shape formulas (Keras conventions), for a side of length ``n``:

* convolution, ``padding="same"``: ``ceil(n / strides)``; ``"valid"``: ``floor((n - kernel_size) / strides) + 1``
* pooling (always ``"valid"``): ``floor((n - pool_size) / pool_strides) + 1``

A side that would reach 0 is a *collapse*: the architecture is refused, naming the block.
FLOPs count ``2 x multiply-adds`` of convolutions and Dense layers, per image.
Activation memory is the float32 bytes of every layer output, per image.

>>> from search.model._architecture import Architecture, ConvBlock
>>> plan = make_plan(Architecture(blocks=(ConvBlock(filters=8),)), (8, 8, 1), 10)
>>> plan.params  # conv 3*3*1*8+8 = 80, then flatten 4*4*8 into softmax: 128*10+10 = 1290
1370
>>> make_plan(Architecture(blocks=(ConvBlock(kernel_size=9, padding="valid"),)), (8, 8, 1), 10)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
search._errors.InfeasibleError: block 0: conv 1 (kernel_size 9, ...) on a 8x8 feature map leaves 0x0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from search._errors import InfeasibleError
from search.model._architecture import Architecture, ConvBlock
from search.model.layers import get_layer_kind

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Step:
    """One Keras layer of the plan: its class, keyword arguments, inputs and output shape."""

    name: str
    layer: str  # a class name in keras.layers
    config: dict[str, Any]
    inputs: tuple[str, ...]
    shape: Shape
    params: int = 0
    flops: int = 0
    block: int | None = None
    kind: str | None = None  # the layer kind (search.model.layers) that planned it, whose ``layer`` builds it


@dataclass
class Plan:
    """All steps in order; the last one is the softmax output."""

    input_shape: Shape
    num_classes: int
    steps: list[Step] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(s.params for s in self.steps)

    @property
    def flops(self) -> int:
        return sum(s.flops for s in self.steps)

    @property
    def activation_bytes(self) -> int:
        return 4 * sum(math.prod(s.shape) for s in self.steps)

    @property
    def output(self) -> str:
        return self.steps[-1].name

    def shape_of(self, name: str) -> Shape:
        if name == "input":
            return self.input_shape
        return next(s.shape for s in self.steps if s.name == name)

    def add(self, step: Step) -> str:
        self.steps.append(step)
        return step.name


def _side(n: int, kernel: int, strides: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(n / strides)
    return (n - kernel) // strides + 1 if n >= kernel else 0


class PlanBuilder:
    """Adds the steps of a plan; layer kinds (:mod:`search.model.layers`) plan their convolutions through it."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def spatial(
        self,
        x: str,
        name: str,
        layer: str,
        config: dict[str, Any],
        *,
        kernel: int,
        strides: int,
        padding: str,
        channels: int,
        params: int,
        flops_per_pixel: int,
        block: int,
        what: str,
    ) -> str:
        h, w, _ = self.plan.shape_of(x)
        ho, wo = _side(h, kernel, strides, padding), _side(w, kernel, strides, padding)
        if ho < 1 or wo < 1:
            raise InfeasibleError(
                f"block {block}: {what} on a {h}x{w} feature map leaves {max(ho, 0)}x{max(wo, 0)}",
                reason="collapse",
                block=block,
            )
        return self.plan.add(
            Step(name, layer, config, (x,), (ho, wo, channels), params, flops_per_pixel * ho * wo, block)
        )

    def channels(self, x: str) -> int:
        """The channels of step ``x``'s output."""
        return self.plan.shape_of(x)[-1]

    @staticmethod
    def conv_config(block: ConvBlock, kernel: int, strides: int, padding: str) -> dict[str, Any]:
        """The keywords every convolution of ``block`` shares (no bias before a batch norm)."""
        return {"kernel_size": kernel, "strides": strides, "padding": padding, "use_bias": not block.batch_norm}

    def conv2d(
        self, x: str, name: str, block: ConvBlock, index: int, *, filters: int, kernel: int, strides: int,
        padding: str, what: str,
    ) -> str:  # fmt: skip
        """A standard ``Conv2D`` (the standard kind, the depthwise kind's pointwise half, the shortcut)."""
        cin, bias = self.channels(x), not block.batch_norm
        macs = kernel * kernel * cin * filters
        return self.spatial(
            x, name, "Conv2D", {"filters": filters, **self.conv_config(block, kernel, strides, padding)},
            kernel=kernel, strides=strides, padding=padding, channels=filters,
            params=macs + (filters if bias else 0), flops_per_pixel=2 * macs, block=index, what=what,
        )  # fmt: skip

    def pointwise(
        self, x: str, name: str, layer: str, config: dict[str, Any], block: int | None, params: int = 0
    ) -> str:
        return self.plan.add(Step(name, layer, config, (x,), self.plan.shape_of(x), params, 0, block))

    def norm_act(self, x: str, prefix: str, block: ConvBlock, index: int, *, activate: bool = True) -> str:
        if block.batch_norm:
            x = self.pointwise(x, f"{prefix}_bn", "BatchNormalization", {}, index, params=4 * self.plan.shape_of(x)[-1])
        if activate:
            x = self.pointwise(x, f"{prefix}_act", "Activation", {"activation": block.activation}, index)
        return x

    def block(self, x: str, block: ConvBlock, index: int) -> str:
        """Plan one block: its convolutions (each by its layer kind), residual add, pooling, dropout."""
        kind = get_layer_kind(block.conv_type)
        refused = kind.check(block)
        if refused:
            raise InfeasibleError(f"block {index}: {block.conv_type} {refused}", reason="layer_kind", block=index)
        start = x
        for j in range(block.convs):
            strides = block.strides if j == 0 else 1
            prefix = f"block{index}_conv{j + 1}"
            what = f"conv {j + 1} (kernel_size {block.kernel_size}, strides {strides}, padding {block.padding})"
            before = len(self.plan.steps)
            x = kind.plan(self, x, prefix, block, index, strides=strides, what=what)
            self.plan.steps[before:] = [replace(s, kind=kind.name) for s in self.plan.steps[before:]]
            x = self.norm_act(x, prefix, block, index, activate=not (j == block.convs - 1 and block.residual))
        if block.residual:
            x = self.residual(start, x, block, index)
        if block.pooling != "none":
            x = self.pool(x, block, index)
        if block.dropout > 0:
            x = self.pointwise(x, f"block{index}_dropout", "Dropout", {"rate": block.dropout}, index)
        return x

    def pool(self, x: str, block: ConvBlock, index: int) -> str:
        """The block's pooling (always ``valid``)."""
        layer = {"max": "MaxPooling2D", "average": "AveragePooling2D"}[block.pooling]
        strides = block.effective_pool_strides
        return self.spatial(
            x, f"block{index}_pool", layer, {"pool_size": block.pool_size, "strides": strides, "padding": "valid"},
            kernel=block.pool_size, strides=strides, padding="valid", channels=self.channels(x), params=0,
            flops_per_pixel=0, block=index,
            what=f"{block.pooling} pooling (pool_size {block.pool_size}, strides {strides})",
        )  # fmt: skip

    def residual(self, start: str, x: str, block: ConvBlock, index: int) -> str:
        h, w, c = self.plan.shape_of(start)
        expected = (math.ceil(h / block.strides), math.ceil(w / block.strides))
        shape = self.plan.shape_of(x)
        if shape[:2] != expected:
            raise InfeasibleError(
                f"block {index}: residual connection needs padding same (the convolutions turn "
                f"{h}x{w} into {shape[0]}x{shape[1]}, the shortcut gives {expected[0]}x{expected[1]})",
                reason="residual_shape",
                block=index,
            )
        shortcut = start
        if c != shape[-1] or block.strides != 1:
            shortcut = self.conv2d(
                start, f"block{index}_shortcut", block, index, filters=shape[-1], kernel=1, strides=block.strides,
                padding="same", what="shortcut",
            )  # fmt: skip
            shortcut = self.norm_act(shortcut, f"block{index}_shortcut", block, index, activate=False)
        name = self.plan.add(Step(f"block{index}_add", "Add", {}, (x, shortcut), shape, 0, 0, index))
        act = f"block{index}_out"
        return self.plan.add(Step(act, "Activation", {"activation": block.activation}, (name,), shape, 0, 0, index))

    def dense(self, x: str, name: str, units: int, activation: str, dropout: float) -> str:
        if dropout > 0:
            x = self.pointwise(x, f"{name}_dropout", "Dropout", {"rate": dropout}, None)
        fan_in = self.plan.shape_of(x)[-1]
        return self.plan.add(
            Step(
                name,
                "Dense",
                {"units": units, "activation": activation},
                (x,),
                (units,),
                fan_in * units + units,
                2 * fan_in * units,
            )
        )


def make_plan(arch: Architecture, input_shape: Shape, num_classes: int) -> Plan:
    """The layer plan for ``input_shape`` (height, width, channels); raises :class:`InfeasibleError`."""
    if len(input_shape) != 3 or not all(isinstance(v, int) and v >= 1 for v in input_shape):
        raise ValueError(f"input_shape: expected (height, width, channels) of positive ints, received {input_shape!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes: expected at least 2, received {num_classes!r}")
    plan = Plan(tuple(input_shape), num_classes)
    b = PlanBuilder(plan)
    pre = arch.preprocessing
    x = b.pointwise("input", "rescaling", "Rescaling", {"scale": pre.rescale}, None)
    if pre.image_size is not None:
        h, w = pre.image_size
        x = plan.add(Step("resizing", "Resizing", {"height": h, "width": w}, (x,), (h, w, input_shape[-1])))
    for index, block in enumerate(arch.blocks):
        x = b.block(x, block, index)
    h, w, c = plan.shape_of(x)
    head = arch.head
    if head.pooling == "flatten":
        x = plan.add(Step("flatten", "Flatten", {}, (x,), (h * w * c,)))
    else:
        layer = {"global_average": "GlobalAveragePooling2D", "global_max": "GlobalMaxPooling2D"}[head.pooling]
        x = plan.add(Step(head.pooling + "_pool", layer, {}, (x,), (c,)))
    for j, units in enumerate(head.units):
        x = b.dense(x, f"dense{j}", units, head.activation, head.dropout)
    b.dense(x, "output", num_classes, "softmax", head.dropout)
    return plan


def check_budget(
    plan: Plan, *, max_params: int | None = None, max_flops: int | None = None, max_activation_bytes: int | None = None
) -> None:
    """Raise :class:`InfeasibleError` (reason ``max_params`` etc.) if the plan is over a budget."""
    for reason, value, limit in (
        ("max_params", plan.params, max_params),
        ("max_flops", plan.flops, max_flops),
        ("max_activation_bytes", plan.activation_bytes, max_activation_bytes),
    ):
        if limit is not None and value > limit:
            raise InfeasibleError(
                f"over budget: {reason.removeprefix('max_')} {value:,} > {reason} {limit:,}", reason=reason
            )
