"""Parameter specifications: what one key of a space may take.

A YAML value maps to one of four value objects, in Optuna's short form:

===========================  ==================================================
YAML                         object
===========================  ==================================================
``32``                       ``Fixed(32)`` — not searched
``[16, 32, 64]``             ``Choice((16, 32, 64))`` — choose one
``{low: 1, high: 3}``        ``IntRange(1, 3)`` — integers, optional ``step``, ``log``
``{low: 1e-4, high: 1e-2,    ``FloatRange(1e-4, 1e-2, log=True)``
log: true}``
===========================  ==================================================

>>> Choice((16, 32)).to_raw()
[16, 32]
>>> IntRange(1, 3).count()
3
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.space._source import ParamSource


@dataclass(frozen=True)
class Fixed:
    """A value that is not searched."""

    value: Any

    def suggest(self, source: ParamSource, name: str) -> Any:
        return self.value

    def values(self) -> tuple[Any, ...]:
        return (self.value,)

    def count(self) -> int | None:
        return 1

    def to_raw(self) -> Any:
        return list(self.value) if isinstance(self.value, tuple) else self.value


@dataclass(frozen=True)
class Choice:
    """Choose one of ``options`` (distinct values)."""

    options: tuple[Any, ...]

    def suggest(self, source: ParamSource, name: str) -> Any:
        if len(self.options) == 1:
            return self.options[0]
        if set(self.options) == {True, False} and all(isinstance(o, bool) for o in self.options):
            return source.boolean(name)
        return source.choice(name, self.options)

    def values(self) -> tuple[Any, ...]:
        return self.options

    def count(self) -> int | None:
        return len(self.options)

    def to_raw(self) -> Any:
        return list(self.options)


@dataclass(frozen=True)
class IntRange:
    """Integers from ``low`` to ``high`` inclusive, every ``step``, optionally log-uniform."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def suggest(self, source: ParamSource, name: str) -> Any:
        if self.low == self.high:
            return self.low
        return source.int(name, self.low, self.high, step=self.step, log=self.log)

    def values(self) -> tuple[Any, ...]:
        return tuple(range(self.low, self.high + 1, self.step))

    def count(self) -> int | None:
        return (self.high - self.low) // self.step + 1

    def to_raw(self) -> Any:
        raw: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.step != 1:
            raw["step"] = self.step
        if self.log:
            raw["log"] = True
        return raw


@dataclass(frozen=True)
class FloatRange:
    """Real numbers from ``low`` to ``high``, optionally log-uniform (then ``low > 0``)."""

    low: float
    high: float
    log: bool = False

    def suggest(self, source: ParamSource, name: str) -> Any:
        if self.low == self.high:
            return self.low
        return source.float(name, self.low, self.high, log=self.log)

    def values(self) -> tuple[Any, ...]:
        return (self.low, self.high)

    def count(self) -> int | None:
        return 1 if self.low == self.high else None

    def to_raw(self) -> Any:
        raw: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            raw["log"] = True
        return raw


Param = Fixed | Choice | IntRange | FloatRange
