"""``conv_type: separable``: one ``SeparableConv2D`` (a depthwise k x k, then a pointwise 1 x 1, fused)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.model.layers._kind import LayerKind, register_layer_kind

if TYPE_CHECKING:
    from search.model._architecture import ConvBlock
    from search.model._plan import PlanBuilder


@register_layer_kind
class Separable(LayerKind):
    """k x k per input channel, then 1 x 1 across channels: k*k*c_in + c_in*filters weights instead of
    k*k*c_in*filters (Xception, MobileNet)."""

    name = "separable"
    short = "sep"
    doc = "a SeparableConv2D (depthwise then pointwise in one layer)"

    def plan(self, b: PlanBuilder, x: str, name: str, block: ConvBlock, index: int, *, strides: int, what: str) -> str:
        k, cin, filters = block.kernel_size, b.channels(x), block.filters
        bias = not block.batch_norm
        macs = k * k * cin + cin * filters
        return b.spatial(
            x, name, "SeparableConv2D", {"filters": filters, **b.conv_config(block, k, strides, block.padding)},
            kernel=k, strides=strides, padding=block.padding, channels=filters,
            params=macs + (filters if bias else 0), flops_per_pixel=2 * macs, block=index, what=what,
        )  # fmt: skip
