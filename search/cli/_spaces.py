"""``cnn-search spaces list|show|validate|schema``: the search spaces, read without TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from search._errors import SearchError as SearchError_
from search._errors import SpaceError

if TYPE_CHECKING:
    from search._errors import InfeasibleError
    from search.data import DataBundle
    from search.space import Space

from search.cli._app import fail, spaces_app


def _size_line(space: object) -> str:
    from search.space import Space

    assert isinstance(space, Space)
    size = space.size()
    text = f"{size.parameters} searchable parameters; {size.combinations:,} discrete combinations"
    if size.continuous:
        text += f" x {len(size.continuous)} continuous ({', '.join(size.continuous)})"
    if space.start:
        text += f"; {len(space.start)} start point(s) tried first"
    return text


@spaces_app.command("list")
def spaces_list() -> None:
    """List the ready-made spaces shipped with cnn-search, each with its whole description."""
    import shutil
    import textwrap

    from search.space import list_spaces, load_space

    width = max(shutil.get_terminal_size().columns, 40)  # COLUMNS, the terminal, or 80 when piped
    for name in list_spaces():
        space = load_space(name)
        text = " ".join(space.description.split()) or "(no description)"
        # folded between words under the name, never cut: the continuation lines are indented
        typer.echo(
            textwrap.fill(
                text,
                width=width - 1,
                initial_indent=f"{name:<10} ",
                subsequent_indent=" " * 11,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )


@spaces_app.command("show")
def spaces_show(space: Annotated[str, typer.Argument(help="A shipped space name (vgg) or a YAML file.")]) -> None:
    """Show a space (every key, defaults filled in) and its size."""
    import yaml

    from search.space import load_space

    try:
        loaded = load_space(space)
    except SpaceError as exc:
        raise fail(exc) from None
    typer.echo(f"# {loaded.source}")
    typer.echo(f"# size: {_size_line(loaded)}")
    typer.echo(yaml.safe_dump(loaded.to_dict(), sort_keys=False, width=100, default_flow_style=None).rstrip())


@spaces_app.command("validate")
def spaces_validate(
    files: Annotated[list[Path], typer.Argument(help="YAML files to check.", show_default=False)],
    data: Annotated[
        str | None,
        typer.Option(
            "--data", help="Also check the space fits these images: digits, shapes, a folder or an .npz (as run)."
        ),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", help="With --data: architectures sampled (seeded).")] = 20,
) -> None:
    """Check space files; exit 0 when all are valid, 1 otherwise. With --data, also sample architectures
    (seeded, the same every time) and say how many fit those images, and why the others do not."""
    from search.space import Space

    bundle = None
    if data is not None:
        from search.data import load_dataset

        try:
            bundle = load_dataset(data)
        except SearchError_ as exc:
            raise fail(exc) from None
        if samples < 1:
            raise fail(SearchError_(f"--samples: expected a whole number >= 1, received {samples}"))

    failed = 0
    for path in files:
        try:
            space = Space.from_file(path)
        except SpaceError as exc:
            failed += 1
            typer.echo(str(exc), err=True)
            continue
        if bundle is None:
            typer.echo(f"ok {path}: {_size_line(space)}")
            continue
        fits, lines = _fit_report(space, "ok", bundle, samples)
        if fits:
            typer.echo(f"ok {path}: {_size_line(space)}")
            typer.echo("\n".join("  " + line for line in lines))
        else:
            failed += 1
            typer.echo(f"{path}: " + "\n".join(lines), err=True)
    if failed:
        typer.echo(f"{failed} of {len(files)} file(s) invalid", err=True)
        raise typer.Exit(1)


def _advice(exc: InfeasibleError) -> str:
    """What to change in a space whose sampled architecture did not fit (:func:`spaces_validate`)."""
    text = str(exc)
    if exc.reason == "collapse" and "pooling" in text:
        return "lower blocks.depth, or use pooling: none (or a smaller pool_size) in the later blocks"
    if exc.reason == "collapse":
        return "use padding: same, a smaller kernel_size or strides 1, or lower blocks.depth"
    if exc.reason == "residual_shape":
        return "use padding: same in residual blocks"
    if exc.reason.startswith("max_"):
        return f"raise budget.{exc.reason}, or narrow filters, units or blocks.depth"
    return "see the reason above"


def _fit_report(space: Space, label: str, bundle: DataBundle, samples: int) -> tuple[bool, list[str]]:
    """(whether any architecture fits, lines): how many of `samples` seeded samples fit, and why not."""
    import re
    from collections import Counter

    from search._errors import InfeasibleError
    from search.space import RandomParams

    h, w, c = bundle.input_shape
    images = f"{h}x{w}x{c} images ({bundle.source})"
    source = RandomParams(0)
    causes: dict[str, Counter[int | None]] = {}  # cause -> the blocks where it happened, counted
    fixes: dict[str, str] = {}
    largest: dict[str, int] = {}  # over a budget: the largest value met
    for _ in range(samples):
        try:
            space.check(space.sample(source), bundle.input_shape, bundle.num_classes)
        except InfeasibleError as exc:
            text = str(exc)
            if exc.reason == "collapse" and " on a " in text:  # one cause per layer, in whichever block
                layer = text.split(" on a ")[0].removeprefix(f"block {exc.block}: ")
                cause = f"the feature map collapses to 0x0 at {layer}"
            elif budget := re.fullmatch(r"over budget: (\w+) ([\d,]+) > (\w+ [\d,]+)", text):  # one per budget
                cause = f"over budget: {budget[1]} > {budget[3]}"
                value = int(budget[2].replace(",", ""))
                largest[cause] = max(largest.get(cause, value), value)
            else:
                cause = text.removeprefix(f"block {exc.block}: ")
            causes.setdefault(cause, Counter())[exc.block] += 1
            fixes[cause] = _advice(exc)
    fit = samples - sum(sum(c.values()) for c in causes.values())
    lines = [f"{label}: {fit}/{samples} sampled architectures fit {images}"]
    for cause, blocks in sorted(causes.items(), key=lambda item: -sum(item[1].values())):
        where = ", ".join(f"block {b} ({n})" for b, n in sorted(blocks.items()) if b is not None)
        shown = f"{cause} (up to {largest[cause]:,})" if cause in largest else cause
        shown += f" in {where}" if where else ""
        lines.append(f"  {sum(blocks.values())} of {samples}: {shown}: {fixes[cause]}")
    if causes and fit:
        lines.append("  (those are refused before training, in milliseconds; the search samples again)")
    if fit:
        return True, lines
    try:  # none of these fit: does any? (the check run makes before it starts)
        space.check_input(bundle.input_shape)
    except SpaceError:
        return False, [f"no sampled architecture fits {images}; cnn-search run would refuse this space", *lines[1:]]
    lines.append(f"  a few architectures fit, but most trials of a search would be refused on {images}")
    return True, lines


@spaces_app.command("schema")
def spaces_schema() -> None:
    """Print the JSON Schema of the space format (for editors)."""
    from search.space import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))
