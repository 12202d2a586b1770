"""Layer kinds: the values of a block's ``conv_type``, one class per file, registered by name
(:mod:`search.model.layers._kind`). The built-in kinds are imported in the order of the choices
(standard, the default, first), which is the order they register in."""

# isort: off
from search.model.layers import _standard  # noqa: F401
from search.model.layers import _separable  # noqa: F401
from search.model.layers import _depthwise  # noqa: F401

# isort: on
from search.model.layers._kind import (
    LAYER_KINDS,
    KindNames,
    LayerKind,
    get_layer_kind,
    kinds_doc,
    register_layer_kind,
)

__all__ = ["LAYER_KINDS", "KindNames", "LayerKind", "get_layer_kind", "kinds_doc", "register_layer_kind"]
