"""ParamSource: the only thing a space talks to when it is sampled (docs/architecture.md, contract 2).

Engines adapt their own objects (an Optuna trial, a KerasTuner ``hp``) to these four calls; this
module has the two that need no engine: :class:`RandomParams` (seeded) and :class:`FixedParams`
(replay a logged point, rebuild a winner for export). Every source records what it returned in
``params``, keyed by the path-like names (``block_0/filters``, ``head/dropout``,
``training/learning_rate``) that MLflow logs, so trials of different engines line up.

>>> src = RandomParams(seed=0)
>>> src.int("block_0/filters", 8, 64, step=8) in range(8, 65, 8)
True
>>> FixedParams({"head/units": "64"}).choice("head/units", (32, 64))
64
"""

from __future__ import annotations

import builtins
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from search._errors import Problem, SpaceError


class ParamSource(ABC):
    """Chooses a value for each named parameter. Subclasses implement the four ``_suggest`` hooks."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def choice(self, name: str, options: Sequence[Any]) -> Any:
        return self._record(name, self._choice(name, tuple(options)))

    def int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return int(self._record(name, self._int(name, low, high, step, log)))

    def float(self, name: str, low: builtins.float, high: builtins.float, *, log: bool = False) -> builtins.float:
        return float(self._record(name, self._float(name, low, high, log)))

    def boolean(self, name: str) -> bool:
        return bool(self._record(name, self._boolean(name)))

    def _record(self, name: str, value: Any) -> Any:
        self.params[name] = value
        return value

    @abstractmethod
    def _choice(self, name: str, options: tuple[Any, ...]) -> Any: ...

    @abstractmethod
    def _int(self, name: str, low: builtins.int, high: builtins.int, step: builtins.int, log: bool) -> builtins.int: ...

    @abstractmethod
    def _float(self, name: str, low: builtins.float, high: builtins.float, log: bool) -> builtins.float: ...

    def _boolean(self, name: str) -> bool:
        return bool(self._choice(name, (False, True)))


class RandomParams(ParamSource):
    """Uniform (or log-uniform) random values from a seeded generator: same seed, same points."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self.rng = random.Random(seed)

    def _choice(self, name: str, options: tuple[Any, ...]) -> Any:
        return options[self.rng.randrange(len(options))]

    def _int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        if log:
            value = math.exp(self.rng.uniform(math.log(low), math.log(high)))
            return min(high, low + step * round((value - low) / step))
        return low + step * self.rng.randrange((high - low) // step + 1)

    def _float(self, name: str, low: float, high: float, log: bool) -> float:
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        return self.rng.uniform(low, high)


class FixedParams(ParamSource):
    """Values given up front, for replay and export. Strings (as MLflow stores params) are coerced.

    A name that is asked for but missing, or a value outside the space, raises :class:`SpaceError`.
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__()
        self.values = dict(values)

    def unused(self) -> list[str]:
        """Names given but never asked for (a sign the values belong to another space)."""
        return sorted(set(self.values) - set(self.params))

    def _get(self, name: str, expected: str) -> Any:
        if name not in self.values:
            raise SpaceError(Problem(name, "missing parameter", expected=expected, received="nothing"))
        return self.values[name]

    def _bad(self, name: str, expected: str, value: Any) -> SpaceError:
        return SpaceError(Problem(name, "value outside the space", expected=expected, received=repr(value)))

    def _choice(self, name: str, options: tuple[Any, ...]) -> Any:
        expected = f"one of {list(options)}"
        value = self._get(name, expected)
        for option in options:
            if value == option and type(value) is type(option):
                return option
        for option in options:  # MLflow gives strings back: '64', 'True', 'relu'
            if isinstance(value, str) and value.lower() == str(option).lower():
                return option
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            for option in options:
                if isinstance(option, (int, float)) and not isinstance(option, bool) and option == value:
                    return option
        raise self._bad(name, expected, value)

    def _int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        expected = f"an integer from {low} to {high} in steps of {step}"
        raw = self._get(name, expected)
        try:
            value = int(raw) if not isinstance(raw, float) or raw.is_integer() else None
        except (TypeError, ValueError):
            value = None
        if value is None or isinstance(raw, bool) or not low <= value <= high or (value - low) % step:
            raise self._bad(name, expected, raw)
        return value

    def _float(self, name: str, low: float, high: float, log: bool) -> float:
        expected = f"a number from {low} to {high}"
        raw = self._get(name, expected)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise self._bad(name, expected, raw) from None
        if isinstance(raw, bool) or not low <= value <= high:
            raise self._bad(name, expected, raw)
        return value

    def _boolean(self, name: str) -> bool:
        return bool(self._choice(name, (False, True)))


class PartialParams(FixedParams):
    """Given values where there are some (checked as :class:`FixedParams` checks them), the first
    option or the low end elsewhere: a start point's values checked against a space.

    >>> from search.space import Space
    >>> source = PartialParams({"blocks/depth": 2})
    >>> len(Space(blocks={"depth": {"low": 1, "high": 3}, "filters": [8, 16]}).sample(source).blocks)
    2
    >>> source.given()
    {'blocks/depth': 2}
    """

    def given(self) -> dict[str, Any]:
        """The given values that the space asked for, as the space's own values (``'64'`` -> ``64``)."""
        return {name: self.params[name] for name in self.values if name in self.params}

    def _choice(self, name: str, options: tuple[Any, ...]) -> Any:
        return super()._choice(name, options) if name in self.values else options[0]

    def _int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        return super()._int(name, low, high, step, log) if name in self.values else low

    def _float(self, name: str, low: float, high: float, log: bool) -> float:
        return super()._float(name, low, high, log) if name in self.values else low
