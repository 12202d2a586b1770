"""The ``cnn-search`` application, its ``spaces`` group, and what every command shares: the one-line
failure, the store options (``--runs-dir``, ``--storage``, ``--tracking-uri``), the console."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from search._errors import SearchError as SearchError_
from search._version import __version__
from search.data._cli import data_command

if TYPE_CHECKING:
    from rich.console import Console


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


RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where the local store lives (MLflow, Optuna, models).")]
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Optuna storage URL (default: RUNS_DIR/optuna.journal; postgresql://... for many machines).",
        callback=_reached,
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri", help="MLflow tracking URI (default: sqlite:///RUNS_DIR/mlflow.db).", callback=_reached
    ),
]


def stdout_console() -> Console:

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)
