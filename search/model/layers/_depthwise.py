"""``conv_type: depthwise``: a ``DepthwiseConv2D``, its normalisation and activation, then a 1 x 1 ``Conv2D``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.model.layers._kind import LayerKind, register_layer_kind

if TYPE_CHECKING:
    from search.model._architecture import ConvBlock
    from search.model._plan import PlanBuilder


@register_layer_kind
class Depthwise(LayerKind):
    """MobileNet's pair as two layers: k x k per channel (normalised and activated on its own), then a
    pointwise convolution to ``filters`` channels."""

    name = "depthwise"
    short = "dw"
    doc = "a DepthwiseConv2D then a 1x1 Conv2D"

    def plan(self, b: PlanBuilder, x: str, name: str, block: ConvBlock, index: int, *, strides: int, what: str) -> str:
        k, cin = block.kernel_size, b.channels(x)
        bias = not block.batch_norm
        x = b.spatial(
            x, f"{name}_dw", "DepthwiseConv2D", b.conv_config(block, k, strides, block.padding),
            kernel=k, strides=strides, padding=block.padding, channels=cin,
            params=k * k * cin + (cin if bias else 0), flops_per_pixel=2 * k * k * cin, block=index, what=what,
        )  # fmt: skip
        x = b.norm_act(x, f"{name}_dw", block, index)
        return b.conv2d(
            x, name, block, index, filters=block.filters, kernel=1, strides=1, padding="same", what="pointwise conv"
        )
