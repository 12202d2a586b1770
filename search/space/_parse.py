"""Turn raw values (from YAML or Python) into validated parameter specs, collecting every problem."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from search._errors import Problem, SpaceError, did_you_mean, show
from search.space._params import Choice, Fixed, FloatRange, IntRange, Param
from search.space._rules import PER_BLOCK_KEYS, Rule
from search.space._yaml import Lines

_RANGE_KEYS = ("low", "high", "step", "log")


@dataclass
class Context:
    """Where problems are reported: the file, its line map, and the list they are collected in."""

    file: str | None = None
    lines: Lines = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line(self, path: tuple[str, ...]) -> int | None:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def problem(
        self,
        path: tuple[str, ...],
        what: str,
        *,
        expected: str | None = None,
        received: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problems.append(Problem(".".join(path), what, expected, received, hint, self.file, self.line(path)))

    def raise_if_any(self) -> None:
        if self.problems:  # in file order
            raise SpaceError(sorted(self.problems, key=lambda p: p.line or 0))


def check_keys(raw: Mapping[Any, Any], allowed: Iterable[str], path: tuple[str, ...], ctx: Context) -> None:
    allowed = list(allowed)
    for key in raw:
        if key not in allowed:
            ctx.problem(
                (*path, str(key)),
                f"unknown key {key!r}",
                expected="one of " + ", ".join(allowed),
                received=repr(key),
                hint=did_you_mean(str(key), allowed),
            )


def _scalar(value: Any, rule: Rule, path: tuple[str, ...], ctx: Context) -> bool:
    """Check one value against ``rule``; report and return False when it does not fit."""
    expected = rule.describe()
    if value is None:
        if rule.nullable:
            return True
        ctx.problem(path, "missing value", expected=expected, received="null")
        return False
    kind = rule.kind
    if kind == "str":
        if not isinstance(value, str) or (rule.choices is not None and value not in rule.choices):
            name = next((p for p in reversed(path) if not p.isdigit()), "value")
            hint = did_you_mean(value, rule.choices or ()) if isinstance(value, str) else None
            ctx.problem(
                path,
                f"unknown {name} {value!r}" if isinstance(value, str) else "wrong type",
                expected=expected,
                received=show(value),
                hint=hint,
            )
            return False
        return True
    if kind == "bool":
        if not isinstance(value, bool):
            ctx.problem(path, "wrong type", expected=expected, received=show(value))
            return False
        return True
    if kind == "text":
        if not isinstance(value, str):
            ctx.problem(path, "wrong type", expected=expected, received=show(value))
            return False
        return True
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int":
        ok = numeric and isinstance(value, int)
    elif kind == "count":
        ok = numeric and (isinstance(value, int) or (math.isfinite(value) and float(value).is_integer()))
    else:  # float
        ok = numeric and math.isfinite(value)
    if not ok:
        hint = None
        if isinstance(value, str):
            try:
                float(value)
                hint = "Write the number without quotes (1e-3 and 0.001 are both read as numbers)."
            except ValueError:
                pass
        ctx.problem(path, "wrong type", expected=expected, received=show(value), hint=hint)
        return False
    low, high = rule.minimum, rule.maximum
    if (low is not None and (value < low or (rule.exclusive_minimum and value == low))) or (
        high is not None and (value > high or (rule.exclusive_maximum and value == high))
    ):
        ctx.problem(path, "out of range", expected=expected, received=show(value))
        return False
    return True


def _range(raw: Mapping[Any, Any], rule: Rule, path: tuple[str, ...], ctx: Context) -> Param | None:
    if rule.kind not in ("int", "float"):
        ctx.problem(
            path,
            "a range is only for numbers",
            expected=f"{rule.describe()}, or a list of them",
            received=repr(dict(raw)),
        )
        return None
    if "choices" in raw:
        check_keys(raw, ("choices",), path, ctx)
        return _choice(raw["choices"], rule, (*path, "choices"), ctx)
    check_keys(raw, _RANGE_KEYS if rule.kind == "int" else ("low", "high", "log"), path, ctx)
    for key in ("low", "high"):
        if key not in raw:
            ctx.problem(
                (*path, key),
                "missing key",
                expected=f"{{low: ..., high: ...}} with {rule.describe()}",
                received="no " + key,
            )
            return None
    ok = all([_scalar(raw["low"], rule, (*path, "low"), ctx), _scalar(raw["high"], rule, (*path, "high"), ctx)])
    log = raw.get("log", False)
    if not isinstance(log, bool):
        ctx.problem((*path, "log"), "wrong type", expected="true or false", received=show(log))
        ok = False
    step = raw.get("step", 1)
    if rule.kind == "int" and (not isinstance(step, int) or isinstance(step, bool) or step < 1):
        ctx.problem((*path, "step"), "wrong type", expected="an integer >= 1", received=show(step))
        ok = False
    if not ok:
        return None
    low, high = raw["low"], raw["high"]
    if low > high:
        ctx.problem(path, "low is greater than high", expected="low <= high", received=f"low={low}, high={high}")
        return None
    if log and low <= 0:
        ctx.problem((*path, "low"), "a log range needs low > 0", expected="low > 0", received=f"low={low}")
        return None
    if rule.kind == "int":
        if log and step != 1:
            ctx.problem(
                (*path, "step"),
                "step and log cannot be combined",
                expected="step: 1 with log: true",
                received=f"step={step}",
            )
            return None
        if (high - low) % step:
            ctx.problem(
                path,
                "high - low is not a multiple of step",
                expected=f"high in {low} + k*{step}",
                received=f"low={low}, high={high}, step={step}",
            )
            return None
        return IntRange(int(low), int(high), int(step), log)
    return FloatRange(float(low), float(high), log)


def _choice(raw: Any, rule: Rule, path: tuple[str, ...], ctx: Context) -> Param | None:
    if not isinstance(raw, list) or not raw:
        ctx.problem(path, "empty list of choices", expected=f"at least one of {rule.describe()}", received=show(raw))
        return None
    ok = all([_scalar(v, rule, (*path, str(i)), ctx) for i, v in enumerate(raw)])
    if not ok:
        return None
    if rule.kind == "float":
        raw = [float(v) for v in raw]
    if len({repr(v) for v in raw}) != len(raw):
        ctx.problem(path, "repeated choices", expected="distinct values", received=repr(raw))
        return None
    return Choice(tuple(raw))


def parse_value(raw: Any, rule: Rule, path: tuple[str, ...], ctx: Context) -> Param | None:
    """One key's value as a :class:`Param`, or None (with the problem reported)."""
    if isinstance(raw, (Fixed, Choice, IntRange, FloatRange)):
        raw = raw.to_raw()
    if not rule.searchable:
        return _fixed_only(raw, rule, path, ctx)
    if isinstance(raw, Mapping):
        return _range(raw, rule, path, ctx)
    if isinstance(raw, (list, tuple)):
        return _choice(list(raw), rule, path, ctx)
    if not _scalar(raw, rule, path, ctx):
        return None
    return Fixed(float(raw) if rule.kind == "float" and raw is not None else raw)


def _fixed_only(raw: Any, rule: Rule, path: tuple[str, ...], ctx: Context) -> Param | None:
    if rule.kind == "size" and raw is not None:
        size = [raw, raw] if isinstance(raw, int) and not isinstance(raw, bool) else raw
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size)
        ):
            ctx.problem(path, "wrong value", expected="an integer >= 1 or [height, width]", received=show(raw))
            return None
        return Fixed(tuple(size))
    if rule.kind == "augment" and raw is not None:
        from search.data._augment import check_augmentation

        found = check_augmentation(raw, path=".".join(path))
        for p in found:
            key = tuple(p.path.split("."))
            ctx.problems.append(type(p)(p.path, p.what, p.expected, p.received, p.hint, ctx.file, ctx.line(key)))
        return None if found else Fixed(dict(raw))
    if rule.kind == "names":
        if not isinstance(raw, (list, tuple)):
            ctx.problem(path, "wrong type", expected="a list of block keys", received=show(raw))
            return None
        for i, name in enumerate(raw):
            if name not in PER_BLOCK_KEYS:
                ctx.problem(
                    (*path, str(i)),
                    f"unknown block key {name!r}",
                    expected="one of " + ", ".join(PER_BLOCK_KEYS),
                    received=show(name),
                    hint=did_you_mean(str(name), PER_BLOCK_KEYS),
                )
                return None
        return Fixed(tuple(raw))
    if isinstance(raw, (list, tuple, Mapping)):
        ctx.problem(path, "this key is not searched", expected=f"a single value: {rule.describe()}", received=show(raw))
        return None
    if not _scalar(raw, rule, path, ctx):
        return None
    if raw is not None and rule.kind == "count":
        raw = int(raw)
    elif raw is not None and rule.kind == "float":
        raw = float(raw)
    return Fixed(raw)


def parse_section(raw: Any, rules: Mapping[str, Rule], path: tuple[str, ...], ctx: Context) -> dict[str, Param]:
    """Every key of one section as a Param (defaults filled in). Problems go to ``ctx``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        ctx.problem(path, "wrong type", expected="a mapping of " + ", ".join(rules), received=show(raw))
        raw = {}
    check_keys(raw, rules, path, ctx)
    result: dict[str, Param] = {}
    for key, rule in rules.items():
        value = raw.get(key, rule.default)
        param = parse_value(value, rule, (*path, key), ctx)
        result[key] = param if param is not None else Fixed(rule.default)
    return result
