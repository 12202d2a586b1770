"""Architecture: one point of a space, as plain data.

It is what every engine produces, what MLflow logs (``to_dict``), what replay and export rebuild
(``from_dict``), and what the builder turns into a Keras model. Two equal architectures have the
same :meth:`Architecture.hash`, whatever engine sampled them.

>>> arch = Architecture(blocks=(ConvBlock(filters=32),), head=Head(pooling="global_average"))
>>> arch.summary(num_classes=10)
'conv3x3·32·relu/max → gap → softmax10'
>>> Architecture.from_dict(arch.to_dict()) == arch
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from search._errors import Problem, SpaceError


@dataclass(frozen=True)
class ConvBlock:
    """``convs`` convolutions, then optional pooling and dropout.

    The first convolution has ``strides``; the others stride 1. With ``residual`` the block's input
    is added before the last activation (through a 1x1 convolution when shapes differ).
    """

    filters: int = 32
    kernel_size: int = 3
    strides: int = 1
    padding: str = "same"
    activation: str = "relu"
    conv_type: str = "standard"
    convs: int = 1
    batch_norm: bool = False
    residual: bool = False
    dropout: float = 0.0
    pooling: str = "max"
    pool_size: int = 2
    pool_strides: int | None = None

    @property
    def effective_pool_strides(self) -> int:
        return self.pool_strides if self.pool_strides is not None else self.pool_size

    def summary(self) -> str:
        from search.model.layers import get_layer_kind

        prefix = get_layer_kind(self.conv_type).short
        text = f"{prefix}{self.kernel_size}x{self.kernel_size}"
        if self.strides != 1:
            text += f"s{self.strides}"
        text += f"·{self.filters}·{self.activation}"
        if self.convs != 1:
            text = f"{self.convs}×{text}"
        if self.batch_norm:
            text += "·bn"
        if self.residual:
            text = f"res({text})"
        if self.pooling != "none":
            text += "/" + {"max": "max", "average": "avg"}[self.pooling]
            if self.pool_size != 2 or self.effective_pool_strides != self.pool_size:
                text += f"{self.pool_size}"
                if self.effective_pool_strides != self.pool_size:
                    text += f"s{self.effective_pool_strides}"
        if self.dropout:
            text += f"·drop{self.dropout:.2g}"
        return text


@dataclass(frozen=True)
class Head:
    """Feature maps to class probabilities: pooling, hidden Dense layers, softmax output.

    ``dropout`` is applied before each Dense layer (hidden ones and the output).
    """

    pooling: str = "flatten"
    units: tuple[int, ...] = ()
    activation: str = "relu"
    dropout: float = 0.0

    def summary(self) -> str:
        parts = [{"flatten": "flatten", "global_average": "gap", "global_max": "gmp"}[self.pooling]]
        parts += [f"dense{u}" + (f"·{self.activation}" if self.activation != "relu" else "") for u in self.units]
        return " → ".join(parts)


@dataclass(frozen=True)
class Training:
    """How a trial trains; ``momentum`` is used by sgd and rmsprop only. ``ema``: the trial is judged,
    and its model kept, with an exponential moving average of its weights (see
    :func:`search.model._builder.ema_momentum`)."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 10
    weight_decay: float = 0.0
    momentum: float | None = None
    patience: int | None = 5
    augment: dict[str, Any] | None = None
    ema: bool = True


@dataclass(frozen=True)
class Preprocessing:
    """Inside the model, so an exported model takes raw images: ``x * rescale``, then resize.

    ``standardize`` (default): the model subtracts the training split's mean pixel and divides by its
    standard deviation instead (one number each, measured on the data by the Objective and stored in
    the model's first layer, so every exported format carries it). Without data statistics (a model
    built from an Architecture alone) ``x * rescale`` is used.
    """

    rescale: float = 1 / 255
    image_size: tuple[int, int] | None = None
    standardize: bool = True


@dataclass(frozen=True)
class Architecture:
    """A whole CNN: preprocessing, conv blocks, head and training settings."""

    blocks: tuple[ConvBlock, ...]
    head: Head = field(default_factory=Head)
    training: Training = field(default_factory=Training)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; ``from_dict`` gives the same Architecture back."""
        data = asdict(self)
        data["blocks"] = [asdict(b) for b in self.blocks]
        data["head"]["units"] = list(self.head.units)
        size = self.preprocessing.image_size
        data["preprocessing"]["image_size"] = list(size) if size is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        """Rebuild from :meth:`to_dict` output; unknown or missing keys are a :class:`SpaceError`, except
        ``training.ema``: an architecture recorded before that setting existed trained without it."""
        try:
            _only_known(data, ("blocks", "head", "training", "preprocessing"), "architecture")
            blocks = tuple(
                ConvBlock(**_only_known(b, _names(ConvBlock), f"blocks.{i}")) for i, b in enumerate(data["blocks"])
            )
            head = dict(_only_known(data.get("head", {}), _names(Head), "head"))
            head["units"] = tuple(head.get("units", ()))
            pre = dict(_only_known(data.get("preprocessing", {}), _names(Preprocessing), "preprocessing"))
            if pre.get("image_size") is not None:
                pre["image_size"] = tuple(pre["image_size"])
            training = dict(_only_known(data.get("training", {}), _names(Training), "training"))
            training.setdefault("ema", False)  # recorded before the setting existed: trained without it
            return cls(blocks, Head(**head), Training(**training), Preprocessing(**pre))
        except (KeyError, TypeError) as exc:
            raise SpaceError(
                Problem(
                    "architecture",
                    "not an architecture dict",
                    expected="the output of Architecture.to_dict()",
                    received=str(exc),
                )
            ) from None

    def hash(self) -> str:
        """A stable 16-hex-digit hash of the architecture (same dict, same hash, any process)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def summary(self, num_classes: int | None = None) -> str:
        """One line: ``conv3x3·32·relu/max → conv5x5·64·elu → gap → dense128 → softmax10``."""
        parts = [b.summary() for b in self.blocks]
        parts.append(self.head.summary())
        parts.append("softmax" + (str(num_classes) if num_classes is not None else ""))
        return " → ".join(parts)


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _only_known(data: dict[str, Any], names: tuple[str, ...], where: str) -> dict[str, Any]:
    unknown = set(data) - set(names)
    if unknown:
        raise SpaceError(
            Problem(
                where,
                f"unknown keys {sorted(unknown)}",
                expected="one of " + ", ".join(names),
                received=", ".join(sorted(unknown)),
            )
        )
    return data
