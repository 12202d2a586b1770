"""``cnn-search data DATA``: load a dataset, print its summary, optionally write a preview grid.

Registered by ``search/cli.py`` as ``app.command("data")(data_command)``. Importing this module
imports typer, not TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from search.data._errors import DataError


def data_command(
    data: Annotated[
        str,
        typer.Argument(
            help="digits, shapes, mnist, fashion_mnist, cifar10, cifar100, a folder of class sub-folders, or an .npz.",
            show_default=False,
        ),
    ],
    image_size: Annotated[int | None, typer.Option("--image-size", help="Resize images to SIZE x SIZE.")] = None,
    color_mode: Annotated[
        str | None, typer.Option("--color-mode", help="grayscale or rgb (default: the source's own).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Keep a stratified sample of this many images.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the splits and the shuffles.")] = 0,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse a folder holding any unusable file.")] = False,
    preview: Annotated[
        Path | None, typer.Option("--preview", help="Write a grid of sample images with their labels to FILE.png.")
    ] = None,
) -> None:
    """Load a dataset and print its shape, classes, images per split and class, fingerprint and skipped files."""
    from search._quiet import quiet_libraries

    quiet_libraries()  # a folder is read through TensorFlow: its C++ start-up lines are not the summary
    from search.data._load import load_dataset
    from search.data._preview import write_preview

    try:
        bundle = load_dataset(
            data,
            image_size=image_size,
            color_mode=color_mode,  # type: ignore[arg-type]  # checked by load_dataset
            limit=limit,
            seed=seed,
            strict=strict,
        )
        typer.echo(bundle.summary())
        if preview is not None:
            typer.echo(f"preview: {write_preview(bundle, preview)}")
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
