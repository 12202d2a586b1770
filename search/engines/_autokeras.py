"""The AutoKeras engine: AutoKeras's blocks declare the hyperparameters, its oracle chooses them.

AutoKeras describes an image classifier as a graph of blocks (``ConvBlock``, ``SpatialReduction``,
``DenseBlock``, ``ClassificationHead``), each declaring KerasTuner hyperparameters, searched by its
``greedy`` oracle (the ``ImageClassifier`` default; ``random``, ``bayesian`` and ``hyperband`` too).
This engine builds that graph with every hyperparameter *restricted to the space's choices*, lets
AutoKeras's oracle pick values, and translates them into the space's own parameter names
(:class:`AutoKerasParams`). The Architecture, model, training and MLflow record are cnn-search's,
as for every engine (docs/architecture.md, contract 1): AutoKeras never trains a model here, and its ImageBlock
(ResNet/Xception/EfficientNet backbones at 224x224) is never part of the graph.

What AutoKeras can choose (everything else keeps one value; see :func:`translate`):

=====================  =============================================  ==============================
space key              AutoKeras hyperparameter                       restriction
=====================  =============================================  ==============================
blocks.depth           conv_block_1/num_blocks
blocks.convs_per_block conv_block_1/num_layers                        one value for all blocks
blocks.filters         conv_block_1/filters_<i>_0                     first convolution of block i
blocks.kernel_size     conv_block_1/kernel_size                       one value for all blocks
blocks.pooling         conv_block_1/max_pooling                       max or none only
blocks.conv_type       conv_block_1/separable                         standard or separable only
blocks.dropout         conv_block_1/dropout                           one value for all blocks
head.pooling           spatial_reduction_1/reduction_type
head.dense_layers      dense_block_1/num_layers
head.units             dense_block_1/units_<j>
head.dropout           classification_head_1/dropout
training.optimizer     optimizer                                      adam, sgd, adamw only
training.learning_rate learning_rate
=====================  =============================================  ==============================

Continuous ranges become AutoKeras-style choices: its own grid values inside the range (dropout
0/0.25/0.5, learning rates 1e-1...1e-5), or the range's low, middle and high when fewer than two fall
inside. A searchable key AutoKeras cannot express (activation, strides, batch_norm, batch_size...)
keeps one value: a choice its first option, an integer range its low end, a float range its
(geometric) middle. All of this is printed at launch and logged on the search's run
(``autokeras_translation.json``). A space is refused when AutoKeras could choose fewer than half of
its searchable keys (at most half), or none of its architecture: that search would no longer be the
space's (the shipped ``resnet`` and ``mobilenet`` spaces, whose point is strided or depthwise blocks,
are refused; ``tiny``, ``lenet``, ``alexnet`` and ``vgg`` run).

``install_shim`` fixes AutoKeras 3.0.0 with Keras >= 3.13 (see its docstring).
"""

from __future__ import annotations

import builtins
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search.engines._base import Engine, SearchOptions, register_engine
from search.engines._keras_tuner import KerasTunerEngine
from search.space import ParamSource, Space
from search.space._params import Choice, FloatRange, IntRange, Param

if TYPE_CHECKING:
    from search.runtime._session import Session, Signals

log = logging.getLogger("search")

TUNERS = ("greedy", "random", "bayesian", "hyperband")

_POOLING = {"max": True, "none": False}
_CONV_TYPE = {"separable": True, "standard": False}
_REDUCTION = {"flatten": "flatten", "global_average": "global_avg", "global_max": "global_max"}
_OPTIMIZER = {"adam": "adam", "sgd": "sgd", "adamw": "adam_weight_decay"}

# space key -> (AutoKeras hyperparameter name, our value -> AutoKeras value or None for identity,
#               AutoKeras chooses it once for every block)
_AK: dict[str, tuple[str, dict[Any, Any] | None, bool]] = {
    "blocks.depth": ("conv_block_1/num_blocks", None, False),
    "blocks.convs_per_block": ("conv_block_1/num_layers", None, True),
    "blocks.filters": ("conv_block_1/filters_{i}_0", None, False),
    "blocks.kernel_size": ("conv_block_1/kernel_size", None, True),
    "blocks.pooling": ("conv_block_1/max_pooling", _POOLING, True),
    "blocks.conv_type": ("conv_block_1/separable", _CONV_TYPE, True),
    "blocks.dropout": ("conv_block_1/dropout", None, True),
    "head.pooling": ("spatial_reduction_1/reduction_type", _REDUCTION, False),
    "head.dense_layers": ("dense_block_1/num_layers", None, False),
    "head.units": ("dense_block_1/units_{i}", None, False),
    "head.dropout": ("classification_head_1/dropout", None, False),
    "training.optimizer": ("optimizer", _OPTIMIZER, False),
    "training.learning_rate": ("learning_rate", None, False),
}
# AutoKeras's own choices for continuous hyperparameters, and its defaults (first trial of `greedy`
# is AutoKeras's "vanilla" image classifier where the space allows it)
_GRIDS = {
    "blocks.dropout": (0.0, 0.25, 0.5),
    "head.dropout": (0.0, 0.25, 0.5),
    "training.learning_rate": (1e-1, 1e-2, 1e-3, 1e-4, 2e-5, 1e-5),
}
_AK_DEFAULTS = {
    "conv_block_1/num_blocks": 2,
    "conv_block_1/num_layers": 2,
    "conv_block_1/filters_{i}_0": 32,
    "conv_block_1/kernel_size": 3,
    "conv_block_1/max_pooling": True,
    "conv_block_1/separable": False,
    "conv_block_1/dropout": 0.0,
    "spatial_reduction_1/reduction_type": "flatten",
    "dense_block_1/num_layers": 2,
    "dense_block_1/units_{i}": 32,
    "classification_head_1/dropout": 0.0,
    "optimizer": "adam",
    "learning_rate": 1e-3,
}
_VANILLA = {  # autokeras.tuners.task_specific.IMAGE_CLASSIFIER[0], in this graph's names
    "conv_block_1/kernel_size": 3,
    "conv_block_1/num_blocks": 1,
    "conv_block_1/num_layers": 2,
    "conv_block_1/max_pooling": True,
    "conv_block_1/separable": False,
    "conv_block_1/dropout": 0.25,
    "conv_block_1/filters_0_0": 32,
    "spatial_reduction_1/reduction_type": "flatten",
    "classification_head_1/dropout": 0.5,
    "optimizer": "adam",
    "learning_rate": 1e-3,
}
_ARCHITECTURE = ("blocks.depth", "blocks.filters", "blocks.kernel_size", "blocks.convs_per_block", "head.dense_layers")


@dataclass(frozen=True)
class Expressed:
    """A space key AutoKeras chooses: its hyperparameter name and the space values it picks among."""

    key: str
    ak_name: str
    values: tuple[Any, ...]
    encoding: dict[Any, Any] | None = None

    def encode(self, value: Any) -> Any:
        return self.encoding[value] if self.encoding else value

    def decode(self, value: Any) -> Any:
        if not self.encoding:
            return value
        return next(k for k, v in self.encoding.items() if v == value and k in self.values)

    def ak_values(self) -> list[Any]:
        return [self.encode(v) for v in self.values]

    def default(self) -> Any:
        wanted = _AK_DEFAULTS.get(self.ak_name)
        values = self.ak_values()
        return wanted if wanted in values else values[0]


@dataclass
class Translation:
    """How a space maps onto AutoKeras: what it chooses, what keeps one value, and why."""

    searchable: list[str] = field(default_factory=list)
    expressed: dict[str, Expressed] = field(default_factory=dict)
    kept: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def report(self) -> str:
        head = f"AutoKeras chooses {len(self.expressed)} of the space's {len(self.searchable)} searchable keys"
        return "\n".join([head + ("." if not self.notes else ":"), *(f"  - {n}" for n in self.notes)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "searchable": self.searchable,
            "expressed": {k: {"autokeras": e.ak_name, "values": list(e.values)} for k, e in self.expressed.items()},
            "kept": self.kept,
            "notes": self.notes,
        }


def _searchable(param: Param) -> bool:
    return param.count() != 1


def _show(values: Any) -> str:
    return "[" + ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in values) + "]"


def _domain(param: Param) -> str:
    if isinstance(param, (IntRange, FloatRange)):
        return "{" + ", ".join(f"{k}: {_show([v])[1:-1]}" for k, v in param.to_raw().items()) + "}"
    return _show(param.values())


def _kept_value(param: Param) -> Any:
    if isinstance(param, Choice):
        return param.options[0]
    if isinstance(param, IntRange):
        return param.low
    if isinstance(param, FloatRange):
        return math.sqrt(param.low * param.high) if param.log else (param.low + param.high) / 2
    return param.values()[0]


def _discrete(key: str, param: Param) -> tuple[tuple[Any, ...], str | None]:
    """The values AutoKeras picks among, and a note when that differs from the space's own."""
    if isinstance(param, FloatRange):
        grid = tuple(v for v in _GRIDS.get(key, ()) if param.low <= v <= param.high)
        if len(grid) < 2:
            middle = math.sqrt(param.low * param.high) if param.log else (param.low + param.high) / 2
            grid = (param.low, float(f"{middle:.3g}"), param.high)
        return grid, f"{key}: the range {_domain(param)} is searched as AutoKeras choices {_show(grid)}"
    if isinstance(param, IntRange) and param.log:
        return param.values(), f"{key}: {_domain(param)} is searched uniformly (AutoKeras has no log scale here)"
    return param.values(), None


def translate(space: Space) -> Translation:
    """Map ``space`` onto AutoKeras's hyperparameters; refuse it when its meaning would be lost."""
    t = Translation()
    shared = space._shared()
    depth_max = max(space.blocks["depth"].values())
    dense_max = max(space.head["dense_layers"].values())
    for section, params in (("blocks", space.blocks), ("head", space.head), ("training", space.training)):
        for name, param in params.items():
            key = f"{section}.{name}"
            if not _searchable(param) or (key in ("head.units", "head.activation") and dense_max == 0):
                continue
            t.searchable.append(key)
            spec = _AK.get(key)
            if spec is None:
                t.kept[key] = _kept_value(param)
                t.notes.append(
                    f"{key}: AutoKeras has no such choice; every trial uses {_show([t.kept[key]])[1:-1]} "
                    f"(the space allows {_domain(param)})"
                )
                continue
            ak_name, encoding, once = spec
            values, note = _discrete(key, param)
            if encoding is not None:
                usable = tuple(v for v in values if v in encoding)
                if len(usable) < 2:
                    t.kept[key] = _kept_value(param)
                    t.notes.append(
                        f"{key}: AutoKeras cannot choose among {_show(values)} (it knows {_show(encoding)}); "
                        f"every trial uses {_show([t.kept[key]])[1:-1]}"
                    )
                    continue
                if len(usable) < len(values):
                    note = f"{key}: AutoKeras chooses among {_show(usable)}; never tried: " + _show(
                        v for v in values if v not in usable
                    )
                values = usable
            t.expressed[key] = Expressed(key, ak_name, tuple(values), encoding)
            if note:
                t.notes.append(note)
            if once and name not in shared and depth_max > 1:
                t.notes.append(f"{key}: one value for every block (AutoKeras's ConvBlock chooses it once)")
    if "blocks.filters" in t.expressed and max(space.blocks["convs_per_block"].values()) > 1:
        t.notes.append(
            "blocks.filters: AutoKeras also picks filters_<i>_<j> for further convolutions of a block; "
            "cnn-search's blocks use the first convolution's for all"
        )
    if "blocks.filters" in t.expressed and "filters" in shared:
        t.notes.append("blocks.filters: shared by the blocks, so only conv_block_1/filters_0_0 counts")
    architecture = [k for k in _ARCHITECTURE if k in t.expressed]
    lost = [k for k in t.searchable if k not in t.expressed]
    if t.searchable and (len(t.expressed) * 2 <= len(t.searchable) or not architecture):
        raise SearchError(
            f"--engine autokeras: AutoKeras can express only {len(t.expressed)} of the {len(t.searchable)} "
            f"searchable keys of space {space.name!r} ({', '.join(t.expressed) or 'none'}), "
            f"expected more than half of them, one of {', '.join(_ARCHITECTURE)} among them; it cannot choose "
            f"{', '.join(lost)}. Use --engine optuna or keras-tuner for this space."
        )
    return t


_NAME = re.compile(r"^(?:(blocks)/(\w+)|block_(\d+)/(\w+)|head/dense_(\d+)/(units)|(head|training)/(\w+))$")


def _key_of(name: str) -> tuple[str, int]:
    """``block_2/filters`` -> (``blocks.filters``, 2); ``head/dense_1/units`` -> (``head.units``, 1)."""
    m = _NAME.match(name)
    if not m:
        raise SearchError(f"unexpected parameter name {name!r}")
    g = m.groups()
    if g[0]:
        return f"blocks.{g[1]}", 0
    if g[2]:
        return f"blocks.{g[3]}", int(g[2])
    if g[4]:
        return "head.units", int(g[4])
    return f"{g[6]}.{g[7]}", 0


class AutoKerasParams(ParamSource):
    """Answer the space from an AutoKeras trial's hyperparameters (``hp``), under the space's names.

    Keys AutoKeras does not choose get the translation's kept value. A hyperparameter the graph has
    not declared yet (a block beyond those built so far) is declared here with the same restriction.
    """

    def __init__(self, hp: Any, translation: Translation) -> None:
        super().__init__()
        self.hp, self.translation = hp, translation

    def _value(self, name: str) -> Any:
        key, index = _key_of(name)
        spec = self.translation.expressed.get(key)
        if spec is None:
            return self.translation.kept[key]
        ak_name = spec.ak_name.format(i=index)
        if ak_name in self.hp.values:
            value = self.hp.values[ak_name]
        else:
            value = self.hp.Choice(ak_name, spec.ak_values(), default=spec.default())
        return spec.decode(value)

    def _choice(self, name: str, options: tuple[Any, ...]) -> Any:
        return self._value(name)

    def _int(self, name: str, low: builtins.int, high: builtins.int, step: builtins.int, log: bool) -> builtins.int:
        return int(self._value(name))

    def _float(self, name: str, low: builtins.float, high: builtins.float, log: bool) -> builtins.float:
        return float(self._value(name))

    def _boolean(self, name: str) -> bool:
        return bool(self._value(name))


# -- the keras >= 3.13 shim ----------------------------------------------------------------------
def install_shim() -> None:
    """Make AutoKeras 3.0.0 work with Keras >= 3.13 (idempotent).

    ``Graph.set_io_shapes`` stores the shapes AutoKeras measures from NumPy arrays, so they hold
    ``numpy.int64``; ``ClassificationHead`` then calls ``Dense(numpy.int64(10))``, which Keras >= 3.13
    rejects ("expected a positive integer. Received: units=10"). The shim casts those shapes to
    ``int`` after the original method runs; nothing else changes. Remove it once AutoKeras casts them.
    """
    from autokeras import graph

    original = graph.Graph.set_io_shapes
    if getattr(original, "cnn_search_shim", False):
        return

    def _ints(shape: Any) -> tuple[Any, ...]:
        return tuple(None if d is None else int(d) for d in shape)

    def set_io_shapes(self: Any, shapes: Any) -> None:
        original(self, shapes)
        for node in self.inputs:
            node.shape = _ints(node.shape)
        for node in self.outputs:
            node.in_blocks[0].shape = _ints(node.in_blocks[0].shape)

    set_io_shapes.cnn_search_shim = True  # type: ignore[attr-defined]
    set_io_shapes.original = original  # type: ignore[attr-defined]
    graph.Graph.set_io_shapes = set_io_shapes


# -- graph and oracle ----------------------------------------------------------------------------
def _arg(t: Translation, space: Space, key: str, local: str, fallback: Any) -> Any:
    """A block argument: a restricted KerasTuner Choice when AutoKeras chooses ``key``, else a fixed
    AutoKeras value (what it is does not matter to the trials: cnn-search builds the model)."""
    from keras_tuner.engine.hyperparameters import Choice as KtChoice

    spec = t.expressed.get(key)
    if spec is not None:
        return KtChoice(local, spec.ak_values(), default=spec.default())
    section, name = key.split(".")
    value = t.kept.get(key, space.sections[section][name].values()[0])
    encoding = _AK[key][1]
    if encoding is not None:
        return encoding.get(value, fallback)
    return value if value is not None else fallback


def build_graph(t: Translation, space: Space, *, input_shape: tuple[int, ...], num_classes: int, samples: int) -> Any:
    """AutoKeras's graph for ``space``: ConvBlock -> SpatialReduction -> DenseBlock -> ClassificationHead."""
    import autokeras as ak
    import numpy as np
    from autokeras import graph as graph_module
    from autokeras.utils import data_utils

    install_shim()
    image = ak.ImageInput(name="image")
    x = ak.ConvBlock(
        kernel_size=_arg(t, space, "blocks.kernel_size", "kernel_size", 3),
        num_blocks=_arg(t, space, "blocks.depth", "num_blocks", 1),
        num_layers=_arg(t, space, "blocks.convs_per_block", "num_layers", 1),
        filters=_arg(t, space, "blocks.filters", "filters", 32),
        max_pooling=_arg(t, space, "blocks.pooling", "max_pooling", False),
        separable=_arg(t, space, "blocks.conv_type", "separable", False),
        dropout=_arg(t, space, "blocks.dropout", "dropout", 0.0),
        name="conv_block_1",
    )(image)
    reduction = None if "head.pooling" in t.expressed else _arg(t, space, "head.pooling", "", "flatten")
    x = ak.SpatialReduction(reduction_type=reduction, name="spatial_reduction_1")(x)
    x = ak.DenseBlock(
        num_layers=_arg(t, space, "head.dense_layers", "num_layers", 0),
        num_units=_arg(t, space, "head.units", "num_units", 32),
        use_batchnorm=False,
        dropout=0.0,
        name="dense_block_1",
    )(x)
    dropout = None if "head.dropout" in t.expressed else float(_arg(t, space, "head.dropout", "", 0.0))
    output = ak.ClassificationHead(num_classes=num_classes, dropout=dropout, name="classification_head_1")(x)
    graph = graph_module.Graph(inputs=image, outputs=output)
    # AutoKeras's own shape measurement (NumPy integers: the shim's case)
    graph.set_io_shapes(
        data_utils.dataset_shape((np.zeros((1, *input_shape), "float32"), np.zeros((1, num_classes), "float32")))
    )
    image.num_samples = samples
    image.batch_size = max(space.training["batch_size"].values())
    graph.set_fit_args(0, epochs=max(space.training["epochs"].values()))
    return graph


def declared(t: Translation) -> Any:
    """The hyperparameters AutoKeras hard-codes (reduction, head dropout, optimizer, learning rate),
    declared first, restricted to the space: a block's later ``hp.Choice`` of the same name reuses them."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for key in ("head.pooling", "head.dropout", "training.optimizer", "training.learning_rate"):
        spec = t.expressed.get(key)
        if spec is not None:
            hp.Choice(spec.ak_name, spec.ak_values(), default=spec.default())
    if "training.optimizer" not in t.expressed:
        hp.Fixed("optimizer", "adam")
    if "training.learning_rate" not in t.expressed:
        hp.Fixed("learning_rate", 1e-3)
    return hp


def initial_hps(t: Translation) -> list[dict[str, Any]]:
    """AutoKeras's first ``greedy`` trial (its vanilla ImageClassifier), kept to the space's choices."""
    allowed = {e.ak_name.format(i=0): e.ak_values() for e in t.expressed.values()}
    values = {k: v for k, v in _VANILLA.items() if v in allowed.get(k, ())}
    return [values] if values else []


def start_hps(t: Translation, points: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The space's start points in AutoKeras's names and values: a value between AutoKeras's grid points
    takes the nearest one (on a log scale for the learning rate); what AutoKeras does not choose keeps
    the translation's value, as in every AutoKeras trial."""
    hps = []
    for point in points:
        values: dict[str, Any] = {}
        for name, value in point.items():
            key, index = _key_of(name)
            spec = t.expressed.get(key)
            if spec is None:
                continue
            if value in spec.values:
                chosen = value
            else:  # a number between AutoKeras's grid points
                scale = math.log if key == "training.learning_rate" else float
                chosen = min(spec.values, key=lambda v: abs(scale(v) - scale(value)))
            values[spec.ak_name.format(i=index)] = spec.encode(chosen)
        hps.append(values)
    return hps


#: The AutoKeras tuners whose first trials are the space's start points (Hyperband's are its brackets).
START_TUNERS = ("greedy", "random", "bayesian")


def make_oracle(
    tuner: str, t: Translation, *, trials: int, seed: int | None, epochs: int, start: list[dict[str, Any]]
) -> Any:
    """AutoKeras's ``greedy`` oracle, or one of KerasTuner's (random, bayesian, hyperband) as AutoKeras
    uses them, over the hyperparameters AutoKeras hard-codes, declared first (:func:`declared`). The
    ``start`` points (AutoKeras's names, :func:`start_hps`) come first; greedy then tries its vanilla
    classifier."""
    from search.engines import _keras_tuner

    if tuner not in TUNERS:
        raise SearchError(f"--tuner: unknown AutoKeras tuner {tuner!r}; expected one of {', '.join(TUNERS)}")
    if tuner == "greedy":
        from autokeras.tuners.greedy import GreedyOracle

        options = _keras_tuner.oracle_options(seed, declared(t))
        return GreedyOracle(initial_hps=[*start, *initial_hps(t)], max_trials=trials, **options)
    hyperparameters = declared(t)
    return _keras_tuner.make_oracle(
        tuner, trials=trials, seed=seed, epochs=epochs, hyperparameters=hyperparameters, start=start
    )


def search_autokeras(
    session: Session,
    t: Translation,
    *,
    tuner: str,
    trials: int,
    seed: int | None,
    epochs: int,
    directory: Path,
    signals: Signals,
) -> list[dict[str, Any]]:
    """Run (or resume) the AutoKeras search; returns one row per finished trial."""
    import keras_tuner as kt

    from search.engines._keras_tuner import run_tuner

    graph = build_graph(
        t,
        session.space,
        input_shape=tuple(session.data.input_shape),
        num_classes=session.data.num_classes,
        samples=session.data.counts["train"],
    )

    class Declarations(kt.HyperModel):
        """AutoKeras's graph, built only so that its blocks declare their hyperparameters."""

        def build(self, hp: Any) -> Any:
            try:
                return graph.build(hp)
            except Exception:  # a shape AutoKeras's own layers cannot take: cnn-search judges feasibility
                return None

    declarations = Declarations()

    def source_of(hp: Any) -> ParamSource:
        declarations.build(hp)
        return AutoKerasParams(hp, t)

    start = start_hps(t, session.space.start) if tuner in START_TUNERS else []
    return run_tuner(
        session,
        oracle=make_oracle(tuner, t, trials=trials, seed=seed, epochs=epochs, start=start),
        source_of=source_of,
        trials=trials,
        limit_trials=tuner != "hyperband",
        directory=directory,
        signals=signals,
        hypermodel=declarations,
        start_points=len(start),
    )


@register_engine
class AutoKerasEngine(KerasTunerEngine):
    """AutoKeras's oracles (``--tuner``, greedy by default) over the space as AutoKeras can express it
    (:func:`translate`, said at launch and logged on the search's run); state under ``runs/autokeras/NAME``.
    Trials run in this process only."""

    name = "autokeras"
    tuners = TUNERS
    workers = False
    rechecks = True  # its trials are rebuilt from the space's parameters (AutoKerasParams), as KerasTuner's are
    resumes = "the oracle: finished trials are kept and an interrupted trial runs again from scratch"

    def check(self, options: SearchOptions, space: Space) -> SearchOptions:
        options = Engine.check(self, options, space)
        log.warning("%s", translate(space).report())  # what cannot be expressed is refused here, before anything
        return options

    def worker(self, name: str, **options: Any) -> int:
        return Engine.worker(self, name, **options)  # trials run in the search's own process only

    def search_trials(
        self, session: Session, options: SearchOptions, *, directory: Path, signals: Signals
    ) -> list[dict[str, Any]]:
        translation = translate(session.space)
        keywords = self.search_keywords(session, options)
        rows = search_autokeras(session, translation, directory=directory, signals=signals, **keywords)
        session.record.tracker.client.log_dict(
            session.record.parent_run_id, translation.to_dict(), "autokeras_translation.json"
        )
        return rows
