"""Datasets: named sources, image folders and ``.npz`` files, split and served as a :class:`DataBundle`.

::

    from search.data import load_dataset
    bundle = load_dataset("digits")                  # or "shapes", "mnist", "path/to/folder", "data.npz"
    bundle.input_shape, bundle.class_names           # (8, 8, 1), ('0', ..., '9')
    model.fit(bundle.train(32), validation_data=bundle.validation(32))
    x, y = bundle.arrays("train")                    # NumPy, for any Keras backend

Importing this package imports neither TensorFlow nor Keras; the pipelines import them when built.
"""

from typing import TYPE_CHECKING

from search._lazy import lazy
from search.data._augment import AUGMENTATION_KEYS, augmentation_layers, check_augmentation, validate_augmentation
from search.data._errors import DataError

if TYPE_CHECKING:
    from search.data._bundle import CACHE_BYTES, DataBundle
    from search.data._folder import IMAGE_EXTENSIONS
    from search.data._load import SOURCES, load_dataset, reload_recorded
    from search.data._preview import write_preview
    from search.data._shapes import SHAPES, make_shapes
    from search.data._split import SPLITS, TEST_FRACTION, VALIDATION_FRACTION

#: Imported on first use (PEP 562): NumPy and the loaders stay out of ``cnn-search --help``.
_LAZY = {
    **dict.fromkeys(("CACHE_BYTES", "DataBundle"), "search.data._bundle"),
    "IMAGE_EXTENSIONS": "search.data._folder",
    **dict.fromkeys(("SOURCES", "load_dataset", "reload_recorded"), "search.data._load"),
    "write_preview": "search.data._preview",
    **dict.fromkeys(("SHAPES", "make_shapes"), "search.data._shapes"),
    **dict.fromkeys(("SPLITS", "TEST_FRACTION", "VALIDATION_FRACTION"), "search.data._split"),
}


__getattr__ = lazy("search.data", globals(), _LAZY)


__all__ = [
    "AUGMENTATION_KEYS",
    "CACHE_BYTES",
    "IMAGE_EXTENSIONS",
    "SHAPES",
    "SOURCES",
    "SPLITS",
    "TEST_FRACTION",
    "VALIDATION_FRACTION",
    "DataBundle",
    "DataError",
    "augmentation_layers",
    "check_augmentation",
    "load_dataset",
    "make_shapes",
    "reload_recorded",
    "validate_augmentation",
    "write_preview",
]
