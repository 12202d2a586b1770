"""Space: a validated search space, from YAML or from Python, and how it is sampled.

>>> space = Space.from_dict({"blocks": {"depth": {"low": 1, "high": 2}, "filters": [8, 16]}})
>>> arch = space.sample(RandomParams(seed=0))
>>> 1 <= len(arch.blocks) <= 2
True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search._errors import Problem, SpaceError
from search._vocab import MOMENTUM_OPTIMIZERS
from search.model._architecture import Architecture, ConvBlock, Head, Preprocessing, Training
from search.model._plan import Plan, Shape, check_budget, make_plan
from search.space._params import Fixed, Param
from search.space._parse import Context, check_keys, did_you_mean, parse_section, parse_value, show
from search.space._rules import MEASURED_BUDGET, PER_BLOCK_KEYS, SECTIONS, TOP_KEYS, TOP_RULES
from search.space._source import ParamSource, PartialParams, RandomParams
from search.space._yaml import Lines, read_yaml

__all__ = ["Space", "SpaceSize"]


@dataclass(frozen=True)
class SpaceSize:
    """How big a space is: searchable parameters (at the largest depth), how many combinations
    its discrete parameters make, and which parameters are continuous (each multiplies that by
    infinity)."""

    parameters: int
    combinations: int
    continuous: tuple[str, ...]


class Space:
    """A validated search space.

    Build it from YAML (:meth:`from_file`, or :func:`search.load_space` by name) or from Python with
    the same keys — each section a mapping whose values are fixed values, lists of choices,
    ``{low, high[, step][, log]}`` ranges, or the :mod:`search.space` value objects::

        Space(name="mine", blocks={"depth": IntRange(1, 3), "filters": [16, 32]},
              training={"learning_rate": FloatRange(1e-4, 1e-2, log=True)})

    Every problem is collected and raised together as one :class:`search.SpaceError`.
    """

    def __init__(
        self,
        name: str = "space",
        *,
        description: str = "",
        input: Mapping[str, Any] | None = None,
        blocks: Mapping[str, Any] | None = None,
        head: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
        budget: Mapping[str, Any] | None = None,
        goals: Any = None,
        start: Any = None,
        _ctx: Context | None = None,
    ) -> None:
        ctx = _ctx or Context()
        raw = {"input": input, "blocks": blocks, "head": head, "training": training, "budget": budget}
        for key, rule in TOP_RULES.items():
            value = {"name": name, "description": description}[key]
            parse_value(value, rule, (key,), ctx)
        self.name = str(name)
        self.description = str(description or "")
        self.sections: dict[str, dict[str, Param]] = {
            section: parse_section(raw[section], rules, (section,), ctx) for section, rules in SECTIONS.items()
        }
        self.goals: tuple[str, ...] = self._parse_goals(goals, ctx)
        ctx.raise_if_any()
        self.start: tuple[dict[str, Any], ...] = self._parse_start(start, ctx)
        ctx.raise_if_any()
        self.source: str | None = ctx.file

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: Any, *, file: str | None = None, lines: Lines | None = None, default_name: str = "space"
    ) -> Space:
        """Validate a plain dict (as read from YAML)."""
        ctx = Context(file=file, lines=lines or {})
        if data is None:
            ctx.problem((), "empty space", expected="a mapping with keys " + ", ".join(TOP_KEYS), received="nothing")
            ctx.raise_if_any()
        if not isinstance(data, Mapping):
            ctx.problem((), "wrong type", expected="a mapping with keys " + ", ".join(TOP_KEYS), received=show(data))
            ctx.raise_if_any()
        check_keys(data, TOP_KEYS, (), ctx)
        name = data.get("name") or default_name
        sections = {key: data.get(key) for key in SECTIONS}
        return cls(
            name,
            description=data.get("description", ""),
            goals=data.get("goals"),
            start=data.get("start"),
            _ctx=ctx,
            **sections,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Space:
        """Read and validate a YAML file (``yaml.SafeLoader`` only)."""
        path = Path(path)
        data, lines = read_yaml(path)
        return cls.from_dict(data, file=str(path), lines=lines, default_name=path.stem)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` turns back into an equal Space."""
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        if self.goals:
            data["goals"] = list(self.goals)
        for section, params in self.sections.items():
            data[section] = {
                key: param.to_raw()
                for key, param in params.items()
                if not (key in MEASURED_BUDGET and section == "budget" and param.to_raw() is None)
            }
        if self.start:
            data["start"] = [dict(point) for point in self.start]
        return data

    def fingerprint(self) -> str:
        """A stable hash of the space's meaning (not of its file's formatting, nor of its start points,
        which only say what is tried first)."""
        body = {k: v for k, v in self.to_dict().items() if k not in ("name", "description", "start")}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Space(name={self.name!r}, source={self.source!r})"

    @staticmethod
    def _parse_goals(raw: Any, ctx: Context) -> tuple[str, ...]:
        """The ``goals`` key: a list of goal names or one comma-separated string, as ``--goals`` takes.

        >>> Space("s", goals="val_accuracy, params").goals
        ('val_accuracy', 'params')
        >>> Space("s", goals=["val_accuracy", "latency"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        search._errors.SpaceError: ...goals: unknown goal 'latency'; expected names from val_accuracy, params, ...
        """
        from search._errors import SearchError
        from search._goal import parse_goals

        if raw is None:
            return ()
        if not isinstance(raw, (str, list)) or not all(isinstance(n, str) for n in raw):
            ctx.problem(
                ("goals",),
                "wrong type",
                expected="a list of goal names (val_accuracy, params, flops, latency_ms:RUNTIME, model_bytes:RUNTIME)",
                received=show(raw),
            )
            return ()
        try:
            return tuple(g.metric for g in parse_goals(raw))
        except SearchError as exc:
            ctx.problem(("goals",), str(exc).removeprefix("goals: "))
            return ()

    def _parse_start(self, raw: Any, ctx: Context) -> tuple[dict[str, Any], ...]:
        """Check each start point against the space: every name a parameter the point's own choices ask
        for (``block_2/filters`` needs ``blocks/depth`` of 3 or more), every value inside the space."""
        if raw is None:
            return ()
        expected = "a list of mappings from parameter names to values"
        if not isinstance(raw, list):
            ctx.problem(("start",), "wrong type", expected=expected, received=show(raw))
            return ()
        points = []
        for i, point in enumerate(raw):
            path = ("start", str(i))
            if not isinstance(point, Mapping) or not point:
                ctx.problem(
                    path, "wrong type", expected="a mapping from parameter names to values", received=show(point)
                )
                continue
            source = PartialParams({str(k): v for k, v in point.items()})
            try:
                self.sample(source)
            except SpaceError as exc:
                for p in exc.problems:
                    ctx.problem((*path, p.path), p.what, expected=p.expected, received=p.received)
                continue
            unused = source.unused()
            if unused:
                names = self.parameter_names()
                asked = ", ".join(sorted(source.params))
                for name in unused:
                    if name in names:  # e.g. block_2/filters with blocks/depth 2
                        what, expected, hint = (
                            "not used by this point",
                            f"one of the names its values use: {asked}",
                            None,
                        )
                    else:
                        what, expected, hint = (
                            "unknown parameter",
                            "one of " + ", ".join(names),
                            did_you_mean(name, names),
                        )
                    ctx.problem((*path, name), what, expected=expected, received=repr(name), hint=hint)
                continue
            points.append(source.given())
        return tuple(points)

    def parameter_names(self) -> list[str]:
        """Every parameter name a sample of this space can ask for (conditional ones included), sorted."""
        names: set[str] = set()
        for source in (_Extreme(first=True), _Extreme(first=False), *(RandomParams(seed) for seed in range(20))):
            self.sample(source)
            names.update(source.params)
        return sorted(names)

    # -- accessors ------------------------------------------------------------------------------
    @property
    def blocks(self) -> dict[str, Param]:
        return self.sections["blocks"]

    @property
    def head(self) -> dict[str, Param]:
        return self.sections["head"]

    @property
    def training(self) -> dict[str, Param]:
        return self.sections["training"]

    @property
    def budget(self) -> dict[str, Any]:
        """The limits known from an architecture's layer plan (``max_params``, ``max_flops``...)."""
        return {
            k: p.value for k, p in self.sections["budget"].items() if isinstance(p, Fixed) and k not in MEASURED_BUDGET
        }

    @property
    def measured_budget(self) -> dict[str, float]:
        """The limits set on what is measured on a built model (``max_latency_ms``, ``max_model_kb``).

        >>> Space("s", budget={"max_latency_ms": 2}).measured_budget
        {'max_latency_ms': 2.0}
        """
        found = {k: self.sections["budget"][k] for k in MEASURED_BUDGET}
        return {k: float(p.value) for k, p in found.items() if isinstance(p, Fixed) and p.value is not None}

    def _shared(self) -> set[str]:
        shared = set(self.blocks["shared"].value)  # type: ignore[union-attr]
        if self.blocks["filters_growth"].value is not None:  # type: ignore[union-attr]
            shared.add("filters")
        return shared

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, source: ParamSource) -> Architecture:
        """One Architecture, asking ``source`` for each parameter that is searched *and* active.

        Names: ``blocks/depth``; ``block_<i>/<key>`` per block, or ``blocks/<key>`` for keys in
        ``shared``; ``head/dense_layers``, ``head/dense_<j>/units``, ``head/<key>``;
        ``training/<key>`` (``training/momentum`` only for sgd and rmsprop).
        """
        b = self.blocks
        depth = b["depth"].suggest(source, "blocks/depth")
        shared = self._shared()
        common = {k: b[k].suggest(source, f"blocks/{k}") for k in PER_BLOCK_KEYS if k in shared}
        growth = b["filters_growth"].value  # type: ignore[union-attr]
        blocks = []
        for i in range(depth):
            values = {k: common[k] if k in shared else b[k].suggest(source, f"block_{i}/{k}") for k in PER_BLOCK_KEYS}
            if growth is not None:
                values["filters"] = max(1, round(values["filters"] * growth**i))
            values["convs"] = values.pop("convs_per_block")
            blocks.append(ConvBlock(**values))
        h = self.head
        n_dense = h["dense_layers"].suggest(source, "head/dense_layers")
        head = Head(
            pooling=h["pooling"].suggest(source, "head/pooling"),
            units=tuple(h["units"].suggest(source, f"head/dense_{j}/units") for j in range(n_dense)),
            activation=h["activation"].suggest(source, "head/activation") if n_dense else "relu",
            dropout=h["dropout"].suggest(source, "head/dropout"),
        )
        t = self.training
        optimizer = t["optimizer"].suggest(source, "training/optimizer")
        training = Training(
            optimizer=optimizer,
            learning_rate=t["learning_rate"].suggest(source, "training/learning_rate"),
            batch_size=t["batch_size"].suggest(source, "training/batch_size"),
            epochs=t["epochs"].suggest(source, "training/epochs"),
            weight_decay=t["weight_decay"].suggest(source, "training/weight_decay"),
            momentum=t["momentum"].suggest(source, "training/momentum") if optimizer in MOMENTUM_OPTIMIZERS else None,
            patience=t["patience"].suggest(source, "training/patience"),
            augment=t["augment"].value,  # type: ignore[union-attr]
            ema=t["ema"].suggest(source, "training/ema"),
        )
        inp = self.sections["input"]
        pre = Preprocessing(
            rescale=inp["rescale"].value,  # type: ignore[union-attr]
            image_size=inp["image_size"].value,  # type: ignore[union-attr]
            standardize=inp["standardize"].value,  # type: ignore[union-attr]
        )
        return Architecture(tuple(blocks), head, training, pre)

    def with_budget(self, **limits: int) -> Space:
        """This space with its ``budget`` tightened by ``limits`` (``max_params=100_000``): for each, the
        lower of the space's limit and the one given. The space is the same when nothing tightens.

        >>> space = Space("s", blocks={"filters": [8]}, budget={"max_params": 5000})
        >>> space.with_budget(max_params=9000, max_flops=10**6).budget
        {'max_params': 5000, 'max_flops': 1000000, 'max_activation_bytes': None}
        """
        data = self.to_dict()
        budget = dict(data.get("budget") or {})
        for key, limit in limits.items():
            current = budget.get(key)
            budget[key] = limit if current is None else min(int(current), int(limit))
        if budget == data.get("budget"):
            return self
        return Space.from_dict({**data, "budget": budget}, file=self.source)

    def check(self, arch: Architecture, input_shape: Shape, num_classes: int) -> Plan:
        """The plan of ``arch``, or :class:`search.InfeasibleError` (collapse or over budget)."""
        plan = make_plan(arch, input_shape, num_classes)
        check_budget(plan, **self.budget)
        return plan

    def check_input(self, input_shape: Shape, *, tries: int = 200, seed: int = 0) -> None:
        """Refuse a space in which no sampled architecture fits ``input_shape`` (for example a kernel
        larger than the images with ``padding: valid``), before any run is created."""
        from search._errors import InfeasibleError

        reasons: dict[str, int] = {}
        source = RandomParams(seed)
        last = ""
        smallest: dict[str, int] = {}  # over budget only: the least of each measure sampled
        for _ in range(tries):
            try:  # self.check, in its two steps: an over-budget plan is kept for its sizes
                plan = make_plan(self.sample(source), input_shape, 2)
                check_budget(plan, **self.budget)
                return
            except InfeasibleError as exc:
                reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
                last = str(exc)
                if exc.reason in self.budget:
                    for key, value in (("max_params", plan.params), ("max_flops", plan.flops)):
                        smallest[key] = min(smallest.get(key, value), value)
        if set(reasons) <= set(self.budget) and reasons:  # every sample fits the input; the budget fits none
            limits = {k: v for k, v in self.budget.items() if v is not None and k in reasons}
            raise SpaceError(
                Problem(
                    "budget",
                    f"no architecture of {tries} sampled meets the budget",
                    expected=", ".join(f"{k} {v:,}" for k, v in limits.items())
                    + " met by some architectures of the space",
                    received=", ".join(
                        f"{n} over {reason} (the smallest sampled: {smallest[reason]:,})"
                        if reason in smallest
                        else f"{n} over {reason}"
                        for reason, n in sorted(reasons.items(), key=lambda r: -r[1])
                    ),
                    hint="Raise the limit (--max-params, --max-flops or the space's budget), or make the space's "
                    "architectures smaller (fewer filters or blocks).",
                    file=self.source,
                )
            )
        raise SpaceError(
            Problem(
                "blocks",
                f"no architecture of {tries} sampled fits the input",
                expected=f"architectures that fit {input_shape[0]}x{input_shape[1]} images",
                received=", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items(), key=lambda r: -r[1]))
                + f" (the last: {last})",
                hint="Lower blocks.depth, use smaller strides or pool sizes, or padding: same; "
                "cnn-search spaces validate FILE --data DATA shows why samples do not fit.",
                file=self.source,
            )
        )

    def size(self) -> SpaceSize:
        """Count searchable parameters and discrete combinations (conditional ones included only
        where they are active)."""
        continuous: list[str] = []
        dims = 0

        def count(param: Param, name: str) -> int:
            nonlocal dims
            n = param.count()
            if n is None:
                continuous.append(name)
                dims += 1
                return 1
            if n > 1:
                dims += 1
            return n

        b = self.blocks
        shared = self._shared()
        depths = b["depth"].values()
        count(b["depth"], "blocks/depth")
        combos = math.prod(count(b[k], f"blocks/{k}") for k in PER_BLOCK_KEYS if k in shared)
        per_block = [
            math.prod(count(b[k], f"block_{i}/{k}") for k in PER_BLOCK_KEYS if k not in shared)
            for i in range(max(depths))
        ]
        combos *= sum(math.prod(per_block[:d]) for d in depths)
        h = self.head
        dense = h["dense_layers"].values()
        count(h["dense_layers"], "head/dense_layers")
        units = [count(h["units"], f"head/dense_{j}/units") for j in range(max(dense))]
        act = count(h["activation"], "head/activation") if max(dense) else 1
        combos *= sum(math.prod(units[:n]) * (act if n else 1) for n in dense)
        combos *= count(h["pooling"], "head/pooling") * count(h["dropout"], "head/dropout")
        t = self.training
        opts = t["optimizer"].values()
        count(t["optimizer"], "training/optimizer")
        momentum = count(t["momentum"], "training/momentum") if set(opts) & set(MOMENTUM_OPTIMIZERS) else 1
        combos *= sum(momentum if o in MOMENTUM_OPTIMIZERS else 1 for o in opts)
        for key in ("learning_rate", "batch_size", "epochs", "weight_decay", "patience", "ema"):  # augment is fixed
            combos *= count(t[key], f"training/{key}")
        return SpaceSize(dims, combos, tuple(continuous))


class _Extreme(ParamSource):
    """Every choice at its first (or last) option, every range at its low (or high) end."""

    def __init__(self, *, first: bool) -> None:
        super().__init__()
        self.first = first

    def _choice(self, name: str, options: tuple[Any, ...]) -> Any:
        return options[0 if self.first else -1]

    def _int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        return low if self.first else low + (high - low) // step * step

    def _float(self, name: str, low: float, high: float, log: bool) -> float:
        return low if self.first else high
