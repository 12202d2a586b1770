"""Search spaces: the YAML language, its validation, and sampling through a ParamSource."""

from search.space._params import Choice, Fixed, FloatRange, IntRange, Param
from search.space._registry import list_spaces, load_space, resolve_space, spaces_dir
from search.space._schema import json_schema
from search.space._source import FixedParams, ParamSource, PartialParams, RandomParams
from search.space._space import Space, SpaceSize

__all__ = [
    "Choice",
    "Fixed",
    "FixedParams",
    "FloatRange",
    "IntRange",
    "Param",
    "ParamSource",
    "PartialParams",
    "RandomParams",
    "Space",
    "SpaceSize",
    "json_schema",
    "list_spaces",
    "load_space",
    "resolve_space",
    "spaces_dir",
]
