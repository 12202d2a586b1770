"""What a layer kind is, and the registry the space, the plan and the builder read.

A *layer kind* is what a block's ``conv_type`` names: how one convolution of a block is made. Each is
one :class:`LayerKind` subclass in one file (``_standard.py``, ``_separable.py``, ``_depthwise.py``),
registered with :func:`register_layer_kind` the way engines are (timm's model registry; Keras keeps one
layer per file). The class holds everything about the kind:

* its rule: :attr:`LayerKind.name` is a choice of the space's ``conv_type`` key, :attr:`LayerKind.doc`
  its line in the key's documentation and the JSON Schema (both read the registry when asked, so a kind
  registered later is a valid choice);
* how it is sampled: the space draws ``conv_type`` among the names its YAML lists, then
  :meth:`LayerKind.check` refuses, before any layer exists, a block the kind cannot take (the trial is
  infeasible, as a collapsed feature map is);
* its plan: :meth:`LayerKind.plan` adds the convolution's steps (shapes, parameters, FLOPs) through
  :class:`search.model._plan.PlanBuilder`, with integer arithmetic only;
* its Keras layer: :meth:`LayerKind.layer` builds one planned step (by default the built-in
  ``keras.layers`` class the step names, so the model saves under ``safe_mode``).

``tests/test_layer_kinds.py`` adds a kind from outside the package and searches with it.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, overload

from search._errors import SearchError

if TYPE_CHECKING:
    import keras

    from search.model._architecture import ConvBlock
    from search.model._plan import PlanBuilder, Step


class LayerKind(abc.ABC):
    """One value of ``conv_type``: its name, its documentation, its rule, its plan and its Keras layer."""

    #: The word in a space's ``conv_type`` (and in an Architecture's ``conv_type``).
    name: ClassVar[str]
    #: The prefix of a block in an architecture's one-line summary (``conv3x3·32``).
    short: ClassVar[str]
    #: Its line in the ``conv_type`` key's documentation.
    doc: ClassVar[str]

    def check(self, block: ConvBlock) -> str | None:
        """Why this kind cannot take ``block`` (the trial is then infeasible), or ``None``."""
        return None

    @abc.abstractmethod
    def plan(self, b: PlanBuilder, x: str, name: str, block: ConvBlock, index: int, *, strides: int, what: str) -> str:
        """Add one convolution of ``block`` (block number ``index``) on ``x`` to the plan, named ``name``
        (a kind of several layers names its others from it), and return the last step's name. The
        normalisation and activation after it are the block's, not the kind's."""

    def layer(self, step: Step) -> keras.layers.Layer:
        """The Keras layer of one step this kind planned: the built-in class the step names."""
        import keras

        return getattr(keras.layers, step.layer)(name=step.name, **step.config)


#: The registered kinds by name, in registration order (the built-in ones first).
LAYER_KINDS: dict[str, LayerKind] = {}


def register_layer_kind(kind: type[LayerKind]) -> type[LayerKind]:
    """Add ``kind`` (a class) under its :attr:`LayerKind.name`; use as a class decorator."""
    for attribute in ("name", "short", "doc"):
        if not getattr(kind, attribute, ""):
            raise TypeError(f"{kind.__name__}: a layer kind needs a {attribute}")
    LAYER_KINDS[kind.name] = kind()
    return kind


def get_layer_kind(name: str) -> LayerKind:
    """The registered kind called ``name``, or an error that lists them."""
    if name not in LAYER_KINDS:
        raise SearchError(f"conv_type: unknown layer kind {name!r}; expected one of {', '.join(LAYER_KINDS)}")
    return LAYER_KINDS[name]


class KindNames(Sequence[str]):
    """The registered kinds' names, read when asked (the ``conv_type`` rule's choices): a kind registered
    after the space's rules were made is still a valid choice."""

    def __len__(self) -> int:
        return len(LAYER_KINDS)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: Any) -> Any:
        return tuple(LAYER_KINDS)[index]

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(LAYER_KINDS))

    def __contains__(self, value: object) -> bool:
        return value in LAYER_KINDS

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))

    def explain(self) -> str:
        """Each registered kind's line, for the key's documentation."""
        return kinds_doc()


def kinds_doc() -> str:
    """The ``conv_type`` key's documentation: each registered kind's line."""
    return "; ".join(f"{kind.name}: {kind.doc}" for kind in LAYER_KINDS.values()) + "."
