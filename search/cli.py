"""The ``cnn-search`` command line.

Heavy libraries (TensorFlow, Keras, MLflow, Optuna) are imported inside the commands that need
them, never at module level: ``cnn-search --help`` and ``cnn-search spaces ...`` stay fast
(``benchmarks/cli_startup.py`` measures it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from search._errors import SpaceError
from search._version import __version__

app = typer.Typer(
    name="cnn-search",
    help="Search for the best convolutional network for an image-classification problem.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
spaces_app = typer.Typer(help="List, show, validate search spaces; print their JSON Schema.", no_args_is_help=True)
app.add_typer(spaces_app, name="spaces")


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


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def _size_line(space: object) -> str:
    from search.space import Space

    assert isinstance(space, Space)
    size = space.size()
    text = f"{size.parameters} searchable parameters; {size.combinations:,} discrete combinations"
    if size.continuous:
        text += f" x {len(size.continuous)} continuous ({', '.join(size.continuous)})"
    return text


@spaces_app.command("list")
def spaces_list() -> None:
    """List the ready-made spaces shipped with cnn-search."""
    from search.space import list_spaces, load_space

    for name in list_spaces():
        space = load_space(name)
        typer.echo(f"{name:<10} {space.description.split(':')[0][:70]}")


@spaces_app.command("show")
def spaces_show(space: Annotated[str, typer.Argument(help="A shipped space name (vgg) or a YAML file.")]) -> None:
    """Show a space (every key, defaults filled in) and its size."""
    import yaml

    from search.space import load_space

    try:
        loaded = load_space(space)
    except SpaceError as exc:
        raise _fail(exc) from None
    typer.echo(f"# {loaded.source}")
    typer.echo(f"# size: {_size_line(loaded)}")
    typer.echo(yaml.safe_dump(loaded.to_dict(), sort_keys=False, width=100, default_flow_style=None).rstrip())


@spaces_app.command("validate")
def spaces_validate(
    files: Annotated[list[Path], typer.Argument(help="YAML files to check.", show_default=False)],
) -> None:
    """Check space files; exit 0 when all are valid, 1 otherwise."""
    from search.space import Space

    failed = 0
    for path in files:
        try:
            space = Space.from_file(path)
        except SpaceError as exc:
            failed += 1
            typer.echo(str(exc), err=True)
            continue
        typer.echo(f"ok {path}: {_size_line(space)}")
    if failed:
        typer.echo(f"{failed} of {len(files)} file(s) invalid", err=True)
        raise typer.Exit(1)


@spaces_app.command("schema")
def spaces_schema() -> None:
    """Print the JSON Schema of the space format (for editors)."""
    from search.space import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
