"""``cnn-search export``, ``predict`` and ``report``: the winner handed over, used, and drawn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from search._errors import SearchError as SearchError_
from search._quiet import quiet_libraries

if TYPE_CHECKING:
    from rich.table import Table

    from search.export import ExportResult

from search.cli._app import RunsDir, TrackingUri, app, fail, stdout_console

#: ``export``'s own options (the store's are :data:`RunsDir` and :data:`TrackingUri`).
Trial = Annotated[int | None, typer.Option("--trial", help="Trial to export (default: the winner).")]
Pick = Annotated[
    str | None,
    typer.Option(
        "--pick",
        help="Another point of a search's Pareto front (--goals): accuracy, a goal of size (params: the "
        "smallest), GOAL<=LIMIT (params<=50k, latency_ms:tflite<=0.5: the most accurate within it) or "
        "val_accuracy>=LIMIT (the smallest at least that accurate).",
        show_default=False,
    ),
]
Formats = Annotated[
    str | None,
    typer.Option("--format", help="Comma-separated: keras,savedmodel,tflite,onnx (default: all available)."),
]
BundleOut = Annotated[Path | None, typer.Option("--out", help="Bundle folder (default: RUNS_DIR/exports/NAME).")]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Write into an --out folder that holds other files, beside them (files of the bundle's names "
        "are replaced). Without it such a folder is refused; a new or empty folder or an earlier bundle is not.",
    ),
]
Quantize = Annotated[str, typer.Option("--quantize", help="none, float16 or int8: also write a quantized TFLite file.")]
Data = Annotated[str | None, typer.Option("--data", help="The search's data, if it cannot be found as recorded.")]


@app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Search name.", show_default=False)],
    trial: Trial = None,
    pick: Pick = None,
    format: Formats = None,
    out: BundleOut = None,
    force: Force = False,
    quantize: Quantize = "none",
    data: Data = None,
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Export a search's winner to every format, each checked against the Keras model; write a model card."""
    import logging

    quiet_libraries()
    logging.getLogger("search").setLevel(logging.INFO)
    logging.basicConfig(format="%(message)s")
    from search.export import export_search

    formats = [f.strip() for f in format.split(",") if f.strip()] if format is not None else None
    try:
        result = export_search(
            name,
            trial=trial,
            formats=formats,
            out=out,
            quantize=quantize,
            runs_dir=runs_dir,
            tracking_uri=tracking_uri,
            data=data,
            pick=pick,
            force=force,
        )
    except SearchError_ as exc:
        raise fail(exc) from None
    _say_export(result, name)


def _say_export(result: ExportResult, name: str) -> None:
    """What ``export`` prints: the formats' table, the trial, how it was chosen, the bundle and registration."""
    card = result.card
    console = stdout_console()
    console.print(_formats_table(result))
    console.print(
        f"trial {result.trial}: {card['architecture']['summary']}; validation accuracy "
        f"{card['metrics']['validation_accuracy']:.4f}, test accuracy {card['metrics']['test_accuracy']:.4f}"
    )
    goals = card["goals"]
    console.print(f"chosen by: {goals['chosen_by']}")
    front = goals.get("pareto_front")
    if front is not None:
        console.print(f"goals: {_goals_text(goals, front)}")
    console.print(f"bundle: {result.bundle}  (model card: {result.bundle / 'MODEL_CARD.md'})")
    console.print(f"registered: models:/{name}@{result.alias} -> trial {result.trial}")


def _formats_table(result: ExportResult) -> Table:
    """One row per exported format (size, parity, latency, test accuracy), then those not produced and why."""
    from rich.table import Table

    table = Table("format", "file", "bytes", "top-1 agreement", "max abs diff", "ms/image", "test accuracy")
    for fmt, f in result.card["formats"].items():
        table.add_row(
            fmt,
            f["file"],
            f"{f['bytes']:,}",
            f"{f['parity']['top1_agreement']:.4f}",
            f"{f['parity']['max_abs_diff']:.1e}",
            f"{f['latency_ms']:.3f}",
            f"{f['test_accuracy']:.4f}",
        )
    for fmt, why in result.not_produced.items():
        table.add_row(fmt, f"not produced: {why}", "", "", "", "", "")
    return table


def _goals_text(goals: dict, front: dict) -> str:
    """The exported trial's goal values and its place on (or off) the Pareto front."""
    n, values = (
        len(front["points"]),
        "; ".join(f"{g['metric']} {g['value']:.4g}" for g in goals["goals"] if g["value"] is not None),
    )
    where = (
        f"number {front['rank_by_accuracy']} by accuracy of the {n} trial(s) on the Pareto front"
        if front["on_front"]
        else f"not on the Pareto front of {n} trial(s)"
    )
    return f"{values}; {where}"


@app.command("predict")
def predict(
    model: Annotated[str, typer.Argument(help="An export bundle, or a .keras, .tflite or .onnx file.")],
    images: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG...).", show_default=False)],
    top_k: Annotated[int, typer.Option("--top-k", help="Classes to print per image.")] = 3,
    runtime: Annotated[
        str | None, typer.Option("--runtime", help="keras, tflite or onnx (default: keras for a bundle).")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """The top classes of each image, with their probabilities."""
    quiet_libraries()
    from search.export import predict as predict_images

    if format not in ("table", "json"):
        raise fail(SearchError_(f"--format: expected table or json, received {format!r}"))
    try:
        results = predict_images(model, images, top_k=top_k, runtime=runtime)
    except SearchError_ as exc:
        raise fail(exc) from None
    if format == "json":
        typer.echo(json.dumps(results, indent=2))
        return
    for r in results:
        note = f"  ({r['note']})" if r["note"] else ""
        typer.echo(f"{r['image']}  [{r['runtime']}]{note}")
        for rank, t in enumerate(r["top"], 1):
            typer.echo(f"  {rank}. {t['label']:<20} {t['probability']:.4f}")


@app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="Search name (any engine).", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", help="Folder (default: RUNS_DIR/reports/NAME).")] = None,
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Draw a search's pictures (history, importances, architecture, filters, confusion...) and an HTML page."""
    quiet_libraries()
    from search.report import make_report

    try:
        made = make_report(name, runs_dir=runs_dir, tracking_uri=tracking_uri, out=out)
    except SearchError_ as exc:
        raise fail(exc) from None
    for picture in made.pictures:
        typer.echo(str(picture))
    for file, why in made.missing.items():
        typer.echo(f"not drawn: {file}: {why}", err=True)
    typer.echo(f"open {made.html}", err=True)
