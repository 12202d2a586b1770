"""cnn-search: search for the best convolutional network for an image-classification problem.

The public API (the notebooks use only this)::

    import search
    space = search.load_space("vgg")                     # or a path to your YAML
    arch = space.sample(search.RandomParams(seed=0))     # one point of the space
    model = search.build_model(arch, (8, 8, 1), 10)     # a keras.Model (imports Keras lazily)
    bundle = search.load_dataset("digits")               # train/validation/test, offline
    result = search.run_search("tiny", bundle, trials=5)  # Optuna + MLflow, winner registered

Nothing here imports TensorFlow or Keras until a model is built.
"""

from typing import TYPE_CHECKING

from search._errors import InfeasibleError, Problem, SearchError, SpaceError
from search._lazy import lazy
from search._version import __version__
from search.space import (
    Choice,
    Fixed,
    FixedParams,
    FloatRange,
    IntRange,
    ParamSource,
    RandomParams,
    Space,
    list_spaces,
    load_space,
)

__all__ = [
    "Architecture",
    "Choice",
    "ConvBlock",
    "DataBundle",
    "DataError",
    "Fixed",
    "FixedParams",
    "FloatRange",
    "Head",
    "InfeasibleError",
    "IntRange",
    "ParamSource",
    "Preprocessing",
    "Problem",
    "RandomParams",
    "SearchError",
    "Space",
    "SpaceError",
    "Training",
    "__version__",
    "build_model",
    "list_spaces",
    "load_dataset",
    "load_space",
    "make_plan",
    "run_search",
]

if TYPE_CHECKING:
    from search._run import run_search
    from search.data import DataBundle, DataError, load_dataset
    from search.model import Architecture, ConvBlock, Head, Preprocessing, Training, build_model, make_plan

#: Imported on first use (PEP 562), so ``cnn-search --help`` does not pay for the engines and NumPy.
_LAZY = {
    "run_search": "search._run",
    **dict.fromkeys(("DataBundle", "DataError", "load_dataset"), "search.data"),
    **dict.fromkeys(
        ("Architecture", "ConvBlock", "Head", "Preprocessing", "Training", "build_model", "make_plan"), "search.model"
    ),
}


__getattr__ = lazy("search", globals(), _LAZY)
