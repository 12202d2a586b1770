"""Every option of a search declared once: a dataclass field whose metadata says the rest.

A search's options are :class:`search.engines.SearchOptions` (what every engine takes) and each engine's
own small dataclass (:attr:`search.engines.Engine.options`: Optuna's sampler and pruner, say). Each
field is declared with :func:`declare`: its name (the Python keyword), its type and default (the
field's), its help, its command-line flag (``--name-with-dashes`` unless given), its check (what a
value must be), and which engines take it. From those declarations come, with nothing kept by hand:

* ``cnn-search run``'s flags, their types, defaults and ``--help`` (:mod:`search.cli._run` builds the
  command's signature, which Typer reads as it reads any typed function);
* the Python keywords of ``run_search`` and their errors (:func:`check`: the keyword in Python, the
  flag on the command line, through :func:`search._errors.option`);
* what a search records for its workers and reads back (:func:`recorded`, :func:`from_record`);
* the search's MLflow parameters (``option/NAME`` on its parent run).

An option an engine does not take is refused, naming the engines that do (:func:`refuse_foreign`).

Why no library does this here: pydantic models validate, serialise and emit a JSON Schema, but its
import (36 ms, and its ``ValidationError`` texts name neither the flag nor what was expected in our
words) sits on the path of ``cnn-search --help``, and the options are frozen dataclasses that
engines copy with :func:`dataclasses.replace`; Typer does build the command line from a typed
signature, so the signature is what this module's declarations become. The space's own JSON Schema
(``cnn-search spaces schema``) is a separate, hand-kept contract for YAML files.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from search._errors import FLAGS, SearchError, option

#: A check: None when the value is good, else what was expected ("expected a whole number >= 1").
Check = Callable[[Any], str | None]


@dataclasses.dataclass(frozen=True)
class Option:
    """One option, as :func:`options_of` reads it from a dataclass field and its :func:`declare` metadata."""

    name: str
    type: Any
    default: Any
    help: str
    flag: str
    engines: tuple[str, ...] = ()  # () : every engine
    check: Check | None = None
    cli: bool = True  # a flag of `cnn-search run`
    recorded: bool = True  # in the workers' record and the MLflow parameters
    #: The command line's text to the value (``100k`` -> 100000); the flag then takes a string.
    parse: Callable[[str, str], Any] | None = None
    short: tuple[str, ...] = ()

    def takes(self, engine: str) -> bool:
        """Whether engine ``engine`` takes this option."""
        return not self.engines or engine in self.engines


def declare(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    engines: Iterable[str] = (),
    check: Check | None = None,
    cli: bool = True,
    recorded: bool = True,
    parse: Callable[[str, str], Any] | None = None,
    short: Iterable[str] = (),
) -> Any:
    """A dataclass field that is an option (see the module docstring); ``default`` may be a callable
    for a mutable default (``dict``: a ``default_factory``)."""
    meta = {
        "help": help,
        "flag": flag,
        "engines": tuple(engines),
        "check": check,
        "cli": cli,
        "recorded": recorded,
        "parse": parse,
        "short": tuple(short),
    }
    if callable(default):
        return dataclasses.field(default_factory=default, metadata={"option": meta})
    return dataclasses.field(default=default, metadata={"option": meta})


@functools.cache
def options_of(cls: type) -> tuple[Option, ...]:
    """The options a dataclass declares, in field order (fields without :func:`declare` are not options);
    read once per class."""
    found = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("option")
        if meta is None:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        FLAGS.setdefault(f.name, flag)  # how search._errors.option spells it on the command line
        found.append(Option(f.name, _hint(cls, f), default, **{**meta, "flag": flag}))
    return tuple(found)


def own_of(cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of options dataclass ``cls`` from ``values``, the names it does not declare left out (an
    engine's own options from a search's ``own``, which may hold a subclassing engine's too)."""
    mine = {o.name for o in options_of(cls)}
    return cls(**{k: v for k, v in values.items() if k in mine})


def _hint(cls: type, f: dataclasses.Field[Any]) -> Any:
    """Field ``f``'s type, evaluated where ``cls`` was defined (a name only known to type checkers stays text)."""
    if not isinstance(f.type, str):
        return f.type
    import sys

    space = {**vars(typing), **vars(sys.modules[cls.__module__])}
    try:
        return eval(f.type, space)
    except NameError:
        return f.type


def check(values: object, options: Iterable[Option]) -> None:
    """Refuse the first value of ``values`` (a dataclass instance) that its option's check refuses:
    ``trials: expected a whole number >= 1, received 0``."""
    for o in options:
        value = getattr(values, o.name)
        if o.check is not None and (why := o.check(value)) is not None:
            raise SearchError(f"{option(o.name)}: {why}, received {value!r}")


def refuse_foreign(engine: str, given: Mapping[str, Any], every: Mapping[str, Option]) -> None:
    """Refuse options given (``given``: name -> value, only those not at their default) that engine
    ``engine`` does not take, naming the engines that do; and names that are no option at all."""
    for name, value in given.items():
        found = every.get(name)
        if found is not None and value == found.default:
            continue  # a default, as the command line passes every flag: nothing asked of the engine
        if found is None:
            from search._errors import did_you_mean

            hint = did_you_mean(name, every)
            raise SearchError(
                f"{name}: not an option of a search; expected one of {', '.join(sorted(every))}"
                + (f". {hint}" if hint else "")
            )
        if not found.takes(engine):
            takers = " and ".join(found.engines) + (" engines" if len(found.engines) > 1 else " engine")
            raise SearchError(
                f"{option(name)}: taken by the {takers}, not by {engine}; received {option(name)} {value!r} with "
                f"{option('engine')} {engine}"
            )


def recorded(values: object, options: Iterable[Option]) -> dict[str, Any]:
    """The recorded options' values (JSON's types: tuples become lists), what workers read back."""
    out = {}
    for o in options:
        if o.recorded:
            value = getattr(values, o.name)
            out[o.name] = list(value) if isinstance(value, tuple) else str(value) if isinstance(value, Path) else value
    return out


def from_record(cls: type, record: Mapping[str, Any]) -> Any:
    """An instance of dataclass ``cls`` from a :func:`recorded` dict (an option missing from an older
    record keeps its default; tuples come back as tuples)."""
    values = {}
    for o in options_of(cls):
        if o.recorded and o.name in record:
            value = record[o.name]
            if isinstance(o.default, Path) and isinstance(value, str):
                value = Path(value)
            values[o.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


# -- checks ------------------------------------------------------------------------------------------
def whole(minimum: int, what: str = "a whole number", *, optional: bool = False, note: str = "") -> Check:
    """An int (not a bool) >= ``minimum`` (None too when ``optional``).

    >>> whole(1)(0), whole(1)(3), whole(0, optional=True)(None)
    ('expected a whole number >= 1', None, None)
    """

    def checked(value: Any) -> str | None:
        if value is None and optional:
            return None
        good = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        return None if good else f"expected {what} >= {minimum}{note}"

    return checked


def number(
    *, above: float | None = None, at_least: float | None = None, what: str = "a number", optional: bool = False,
    finite: bool = True, note: str = "",
) -> Check:  # fmt: skip
    """A real number (not a bool) > ``above`` or >= ``at_least``; finite unless told (None too when ``optional``).

    >>> number(above=0)(0), number(above=0)(2.5), number(at_least=0, finite=False)(math.inf)
    ('expected a number > 0', None, None)
    """
    bound = f" > {above:g}" if above is not None else f" >= {at_least:g}" if at_least is not None else ""

    def checked(value: Any) -> str | None:
        if value is None and optional:
            return None
        good = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
        good = good and (not finite or math.isfinite(value))
        good = good and (above is None or value > above) and (at_least is None or value >= at_least)
        return None if good else f"expected {what}{bound}{note}"

    return checked


def count(text: str, flag: str) -> int:
    """A count as a user writes it on the command line: ``100000``, ``100_000``, ``100k``, ``2M``, ``1.5G``.

    >>> count("100k", "--max-params"), count("2M", "--max-params"), count("1_500", "--max-params")
    (100000, 2000000, 1500)
    >>> count("lots", "--max-params")
    Traceback (most recent call last):
    ...
    search._errors.SearchError: --max-params: expected a whole number >= 1 (100000, 100k, 2M), received 'lots'
    """
    cleaned = text.strip().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(cleaned[-1:].lower(), 1)
    digits = cleaned[:-1] if scale > 1 else cleaned
    try:
        value = float(digits) * scale
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise SearchError(f"{flag}: expected a whole number >= 1 (100000, 100k, 2M), received {text!r}")
    return int(value)
