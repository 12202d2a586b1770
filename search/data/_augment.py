"""Optional augmentation of the training pipeline with Keras's random preprocessing layers.

A config is a mapping of these keys (each optional; 0, ``false`` or ``"none"`` turns one off):

====================  ===========================================  =======================================
key                   value                                        Keras layer
====================  ===========================================  =======================================
``flip``              ``horizontal``, ``vertical``,                ``RandomFlip(mode)``
                      ``horizontal_and_vertical``
``rotation``          fraction of a full turn, 0..0.5              ``RandomRotation(factor)``
``zoom``              fraction of the size, 0..0.9 (in and out)    ``RandomZoom(factor)``
``translation``       fraction of the size, 0..0.9                 ``RandomTranslation(factor, factor)``
``contrast``          0..1                                         ``RandomContrast(factor)``
====================  ===========================================  =======================================

>>> validate_augmentation({"flip": "horizontal", "rotation": 0.1})
{'flip': 'horizontal', 'rotation': 0.1}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from search._errors import Problem
from search.data._errors import DataError

#: The keys an augmentation config may use, in the order the layers are applied.
AUGMENTATION_KEYS: Final = ("flip", "rotation", "zoom", "translation", "contrast")
FLIP_MODES: Final = ("horizontal", "vertical", "horizontal_and_vertical")
_RANGES: Final = {"rotation": 0.5, "zoom": 0.9, "translation": 0.9, "contrast": 1.0}
_OFF: Final = (None, False, "none", 0, 0.0)


def check_augmentation(config: Mapping[str, Any], *, path: str = "augment") -> list[Problem]:
    """Every problem of ``config``, each located at ``path.key`` (empty when valid).

    The space YAML can turn these into a ``SpaceError`` with its file and line.
    """
    from search._errors import did_you_mean, show

    if not isinstance(config, Mapping):
        return [
            Problem(path, "wrong type", expected="a mapping of " + ", ".join(AUGMENTATION_KEYS), received=show(config))
        ]
    problems = []
    for key, value in config.items():
        where = f"{path}.{key}"
        if key not in AUGMENTATION_KEYS:
            problems.append(
                Problem(
                    where,
                    f"unknown key {key!r}",
                    expected="one of " + ", ".join(AUGMENTATION_KEYS),
                    received=repr(key),
                    hint=did_you_mean(str(key), AUGMENTATION_KEYS),
                )
            )
        elif _is_off(value):
            continue
        elif key == "flip":
            if value not in FLIP_MODES:
                hint = did_you_mean(value, FLIP_MODES) if isinstance(value, str) else None
                problems.append(
                    Problem(
                        where,
                        "unknown flip mode",
                        expected="one of " + ", ".join(FLIP_MODES) + ", or none",
                        received=show(value),
                        hint=hint,
                    )
                )
        else:
            high = _RANGES[key]
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not 0 <= value <= high:
                problems.append(
                    Problem(
                        where,
                        "out of range" if number else "wrong type",
                        expected=f"a number from 0 to {high}",
                        received=show(value),
                    )
                )
    return problems


def validate_augmentation(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with the switched-off entries dropped; a :class:`DataError` listing every problem."""
    problems = check_augmentation(config)
    if problems:
        raise DataError.from_problems(problems)
    return {key: value for key, value in config.items() if not _is_off(value)}


def augmentation_layers(config: Mapping[str, Any], *, seed: int | None = None) -> list[Any]:
    """The Keras layers of ``config``, in :data:`AUGMENTATION_KEYS` order (random only while training)."""
    import keras

    clean = validate_augmentation(config)
    layers: list[Any] = []
    for i, key in enumerate(k for k in AUGMENTATION_KEYS if k in clean):
        value = clean[key]
        layer_seed = None if seed is None else seed + i
        if key == "flip":
            layers.append(keras.layers.RandomFlip(value, seed=layer_seed))
        elif key == "rotation":
            layers.append(keras.layers.RandomRotation(value, fill_mode="reflect", seed=layer_seed))
        elif key == "zoom":
            layers.append(keras.layers.RandomZoom(value, fill_mode="reflect", seed=layer_seed))
        elif key == "translation":
            layers.append(keras.layers.RandomTranslation(value, value, fill_mode="reflect", seed=layer_seed))
        elif key == "contrast":
            layers.append(keras.layers.RandomContrast(value, value_range=(0, 255), seed=layer_seed))
        else:  # pragma: no cover - AUGMENTATION_KEYS and this chain are kept in step
            raise ValueError(f"unknown augmentation key {key!r}")
    return layers


def _is_off(value: Any) -> bool:
    return any(value is off or (type(value) is type(off) and value == off) for off in _OFF)
