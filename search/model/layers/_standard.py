"""``conv_type: standard``: one ``Conv2D``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.model.layers._kind import LayerKind, register_layer_kind

if TYPE_CHECKING:
    from search.model._architecture import ConvBlock
    from search.model._plan import PlanBuilder


@register_layer_kind
class Standard(LayerKind):
    """A full convolution: every output channel sees every input channel through a k x k kernel."""

    name = "standard"
    short = "conv"
    doc = "a standard Conv2D"

    def plan(self, b: PlanBuilder, x: str, name: str, block: ConvBlock, index: int, *, strides: int, what: str) -> str:
        return b.conv2d(
            x, name, block, index, filters=block.filters, kernel=block.kernel_size, strides=strides,
            padding=block.padding, what=what,
        )  # fmt: skip
