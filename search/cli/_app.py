"""The ``cnn-search`` application, its ``spaces`` group, and what every command shares: the one-line
failure, the store options (``--runs-dir``, ``--storage``, ``--tracking-uri``), the console."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from search._errors import SearchError as SearchError_
from search._version import __version__
from search.data._cli import data_command

if TYPE_CHECKING:
    from rich.console import Console

    from search._options import Option


app = typer.Typer(
    name="cnn-search",
    help="Search for the best convolutional network for an image-classification problem.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
spaces_app = typer.Typer(help="List, show, validate search spaces; print their JSON Schema.", no_args_is_help=True)
app.add_typer(spaces_app, name="spaces")
app.command("data")(data_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnn-search {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Search for the best convolutional network for an image-classification problem."""


def fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def _reached(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """--storage and --tracking-uri: a server they name (MLflow's, PostgreSQL, MySQL) reached once before the
    command starts, or one line (search/tracking/_reach.py); every command that takes them passes here."""
    if value is not None and not ctx.resilient_parsing:
        from search.tracking._reach import reach

        try:
            reach(value, what=(param.opts or ["--storage"])[0])
        except SearchError_ as exc:
            raise fail(exc) from None
    return value


#: Options whose servers are reached once before the command starts (:func:`_reached`).
_REACHED = frozenset({"storage", "tracking_uri"})
#: The command line's types: an option of another type (``goals``: a tuple in Python) takes text.
_SIMPLE = (int, float, str, bool, Path)


def inverted(o: Option) -> bool:
    """Whether option ``o`` is a bool that defaults to True, so its flag turns it off (``--no-report``):
    the command's parameter is then ``no_NAME``, False by default."""
    return o.type is bool and o.default is True


def flag_of(o: Option) -> Any:
    """Option ``o`` (:mod:`search._options`) as a Typer parameter's annotation: its flag, help and type (an
    option with a ``parse`` takes text)."""
    import types
    import typing

    base = (
        [t for t in typing.get_args(o.type) if t is not type(None)] if isinstance(o.type, types.UnionType) else [o.type]
    )
    optional = isinstance(o.type, types.UnionType) and type(None) in typing.get_args(o.type)
    kind: Any = base[0] if len(base) == 1 and base[0] in _SIMPLE and o.parse is None else str
    if optional or kind is not base[0]:
        kind = kind | None
    decls = (o.flag, *o.short)
    engines = f" ({' and '.join(o.engines)} only)" if o.engines else ""
    info = typer.Option(*decls, help=o.help + engines, callback=_reached if o.name in _REACHED else None)
    return Annotated[kind, info]


def _shared(name: str) -> Any:
    from search.engines._base import SHARED

    return flag_of(next(o for o in SHARED if o.name == name))


RunsDir = _shared("runs_dir")
Storage = _shared("storage")
TrackingUri = _shared("tracking_uri")


def stdout_console() -> Console:

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, markup=False)  # text as written: [export] stays
