"""The ``cnn-search`` command line.

Heavy libraries (TensorFlow, Keras, MLflow, Optuna) are imported inside the commands that need
them, never at module level: ``cnn-search --help`` and ``cnn-search spaces ...`` stay fast
(``benchmarks/cli_startup.py`` measures it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from search._errors import SearchError as SearchError_
from search._errors import SpaceError
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
    if space.start:
        text += f"; {len(space.start)} start point(s) tried first"
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


# -- run, trials, ui --------------------------------------------------------------------------------
RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where the local store lives (MLflow, Optuna, models).")]
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage", help="Optuna storage URL (default: RUNS_DIR/optuna.journal; postgresql://... for many machines)."
    ),
]
TrackingUri = Annotated[
    str | None, typer.Option("--tracking-uri", help="MLflow tracking URI (default: sqlite:///RUNS_DIR/mlflow.db).")
]


def _quiet_libraries() -> None:
    import logging
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for noisy in ("mlflow", "alembic", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # every trial is a new model, so tf.function's "triggered tf.function retracing" warning is expected
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


@app.command("run")
def run(
    space: Annotated[str, typer.Argument(help="A shipped space name (tiny, vgg...) or a YAML file.")],
    data: Annotated[str, typer.Option("--data", help="digits, shapes, mnist..., a folder or an .npz.")] = "digits",
    name: Annotated[str | None, typer.Option("--name", help="Search name (default: SPACE-DATA).")] = None,
    trials: Annotated[int, typer.Option("--trials", help="Total trials to reach (a rerun continues).")] = 20,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds after which no new trial starts.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Epochs per trial (overrides the space).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="optuna, keras-tuner or autokeras.")] = "optuna",
    tuner: Annotated[
        str | None,
        typer.Option(
            "--tuner",
            help="keras-tuner: random (default), bayesian, hyperband or grid; "
            "autokeras: greedy (default), random, bayesian or hyperband.",
        ),
    ] = None,
    sampler: Annotated[str, typer.Option("--sampler", help="optuna only: tpe, random, qmc or gp.")] = "tpe",
    pruner: Annotated[str, typer.Option("--pruner", help="median, hyperband or none.")] = "median",
    seed: Annotated[int | None, typer.Option("--seed", help="Seed: same architectures and metrics on CPU.")] = None,
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Worker processes (optuna; default: one per visible GPU; on a CPU, 2 for a search of 40+ "
            "trial-epochs, else 1 in this process). --seed repeats a search exactly with --workers 1.",
        ),
    ] = None,
    recycle_after: Annotated[
        int | None, typer.Option("--recycle-after", help="Start a fresh worker process after this many trials.")
    ] = None,
    max_worker_rss: Annotated[
        float | None, typer.Option("--max-worker-rss", help="Start a fresh worker process above this RSS (MiB).")
    ] = None,
    mixed_precision: Annotated[
        bool, typer.Option("--mixed-precision", help="mixed_float16 (for GPUs; untested on GPU here).")
    ] = False,
    xla: Annotated[bool, typer.Option("--xla", help="XLA-compile training steps (for GPUs).")] = False,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Skip the pictures logged on the search's run.")
    ] = False,
) -> None:
    """Search SPACE on DATA (Optuna, KerasTuner or AutoKeras); every trial lands in MLflow; the winner is registered."""
    import logging

    _quiet_libraries()
    from rich.console import Console
    from rich.logging import RichHandler
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from search._run import run_search
    from search.engines._session import SearchInterrupted, TrialEvent

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[best]}"),
        console=console,
        transient=True,
    )
    handler = RichHandler(console=console, show_time=False, show_path=False, show_level=False, markup=False)
    logger = logging.getLogger("search")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    task = progress.add_task("trials", total=trials, best="")

    def on_trial(event: TrialEvent) -> None:
        best = f"best {event.best_value:.4f} (trial {event.best_trial})" if event.best_value is not None else ""
        progress.update(task, completed=event.done, total=event.target, best=best)

    try:
        with progress:
            result = run_search(
                space,
                data,
                engine=engine,
                tuner=tuner,
                name=name,
                trials=trials,
                timeout=timeout,
                epochs=epochs,
                sampler=sampler,
                pruner=pruner,
                seed=seed,
                runs_dir=runs_dir,
                storage=storage,
                tracking_uri=tracking_uri,
                callbacks=[on_trial],
                workers=workers,
                recycle_after=recycle_after,
                max_worker_rss_mb=max_worker_rss,
                mixed_precision=mixed_precision,
                xla=xla,
                report=not no_report,
            )
    except SearchInterrupted as exc:
        typer.echo(
            f"interrupted ({exc}): completed trials are kept, a running one is marked failed; "
            "run the same command to resume",
            err=True,
        )
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo(
            "interrupted: completed trials are kept, a running one is marked failed; run the same command to resume",
            err=True,
        )
        raise typer.Exit(130) from None
    except (SearchError_, SpaceError) as exc:
        raise _fail(exc) from None
    finally:
        logger.removeHandler(handler)
    if result.nothing_to_do:
        typer.echo(
            f"nothing to do: search {result.name!r} already has {len(result.trials)} trials for a target of {trials} "
            "(raise --trials to add more)",
            err=True,
        )
    out = _stdout_console()
    _print_trials(result.trials[:10], console=out)
    if result.best_trial is not None:
        test = result.test_metrics.get("test_accuracy")
        out.print(
            f"best: trial {result.best_trial}, val_accuracy {result.best_value:.4f}"
            + (f", test_accuracy {test:.4f} (test split, evaluated once)" if test is not None else "")
        )
        out.print(f"model: {result.model_uri}  (tracking URI {result.tracking_uri})")
    ui = "cnn-search ui" + (f" --runs-dir {runs_dir}" if str(runs_dir) != "runs" else "")
    out.print(f"look: {ui}  then open http://127.0.0.1:5000/#/experiments/{result.experiment_id}/runs")
    if result.best_trial is None:  # a search that found nothing did not succeed (scripts see it)
        states = ", ".join(f"{n} {state}" for state, n in sorted(result.states.items())) or "no trial ran"
        typer.echo(
            f"error: no trial completed ({states}): nothing registered; the reasons are in the table above and "
            "in MLflow",
            err=True,
        )
        raise typer.Exit(1)


def _stdout_console() -> Console:
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def _print_trials(rows: list[dict], *, console: Console) -> None:
    from rich.table import Table

    table = Table(
        "trial",
        "state",
        "val_accuracy",
        "epochs",
        "params",
        "seconds",
        "architecture / reason",
        title="trials, best first",
    )
    for r in rows:
        value = f"{r['val_accuracy']:.4f}" if r["val_accuracy"] is not None else ""
        seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else ""
        params = f"{r['params']:,}" if r["params"] is not None else ""
        text = r["architecture"] + (f"  [{r['reason']}]" if r["reason"] else "")
        table.add_row(str(r["trial"]), r["state"], value, str(r["epochs_run"] or ""), params, seconds, text)
    console.print(table)


@app.command("worker")
def worker(
    name: Annotated[str, typer.Argument(help="The search to join (started by cnn-search run).", show_default=False)],
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
    index: Annotated[int, typer.Option("--index", help="Worker number (seeds and GPU pinning).")] = 0,
    recycle_after: Annotated[int | None, typer.Option("--recycle-after", help="Exit after this many trials.")] = None,
    max_worker_rss: Annotated[
        float | None, typer.Option("--max-worker-rss", help="Exit once resident memory passes this (MiB).")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="optuna, or keras-tuner (started by run --workers N only).")
    ] = "optuna",
) -> None:
    """Join a running search as one more worker (this machine or another: same --storage and --tracking-uri)."""
    import logging

    _quiet_libraries()
    logging.basicConfig(format=f"[worker {index}] %(message)s")
    logging.getLogger("search").setLevel(logging.INFO)
    from search.engines._session import SearchInterrupted
    from search.engines._workers import run_keras_tuner_worker, run_worker

    try:
        if engine == "keras-tuner":
            ran = run_keras_tuner_worker(name, runs_dir=runs_dir, tracking_uri=tracking_uri)
        elif engine == "optuna":
            ran = run_worker(
                name,
                runs_dir=runs_dir,
                storage=storage,
                tracking_uri=tracking_uri,
                index=index,
                recycle_after=recycle_after,
                max_rss_mb=max_worker_rss,
            )
        else:
            raise SearchError_(f"--engine: expected optuna or keras-tuner, received {engine!r}")
    except SearchInterrupted as exc:
        typer.echo(f"[worker {index}] interrupted ({exc}): its running trial is marked killed", err=True)
        raise typer.Exit(exc.exit_code) from None
    except (SearchError_, SpaceError) as exc:
        raise _fail(exc) from None
    typer.echo(f"[worker {index}] ran {ran} trial(s)", err=True)


@app.command("trials")
def trials_command(
    name: Annotated[str, typer.Argument(help="The search name.")],
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """The trials of a search, best first, read back from the store."""
    import csv
    import io
    import sys

    import optuna

    from search.engines._optuna import trial_rows
    from search.engines._storage import default_storage_url, get_storage

    if format not in ("table", "csv", "json"):
        raise _fail(SearchError_(f"--format: expected table, csv or json, received {format!r}"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from search.engines._keras_tuner import load_rows

    candidates = [runs_dir / d for d in ("keras_tuner", "autokeras") if (runs_dir / d / name).is_dir()]
    if candidates and storage is None:  # a KerasTuner or AutoKeras search
        rows = sorted(
            load_rows(candidates[0], name).values(),
            key=lambda r: (r["val_accuracy"] is None, -(r["val_accuracy"] or 0), r["trial"]),
        )
    else:
        try:
            study = optuna.load_study(study_name=name, storage=get_storage(storage or default_storage_url(runs_dir)))
        except KeyError:
            raise _fail(SearchError_(f"no search named {name!r} in {storage or runs_dir}")) from None
        rows = trial_rows(study)
    if format == "json":
        typer.echo(json.dumps(rows, indent=2, default=str))
    elif format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[k for k in rows[0] if k != "hyperparameters"] if rows else [])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: v for k, v in r.items() if k != "hyperparameters"})
        sys.stdout.write(buffer.getvalue())
    else:
        _print_trials(rows, console=_stdout_console())


@app.command("compare")
def compare(
    names: Annotated[list[str], typer.Argument(help="Search names (any engine).", show_default=False)],
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Searches side by side: engine, trials by state, best accuracies, wall time, trials per hour."""
    import csv
    import sys

    from search.tracking import default_tracking_uri
    from search.tracking._compare import COLUMNS, compare_searches

    _quiet_libraries()
    if format not in ("table", "csv", "json"):
        raise _fail(SearchError_(f"--format: expected table, csv or json, received {format!r}"))
    try:
        rows = compare_searches(names, tracking_uri or default_tracking_uri(runs_dir))
    except SearchError_ as exc:
        raise _fail(exc) from None
    if format == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    else:
        from rich.table import Table

        table = Table(*COLUMNS, title="searches side by side")
        for row in rows:
            table.add_row(
                *(
                    ""
                    if row[c] is None
                    else f"{row[c]:.4f}"
                    if isinstance(row[c], float) and c.endswith("accuracy")
                    else str(row[c])
                    for c in COLUMNS
                )
            )
        _stdout_console().print(table)


@app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Search name.", show_default=False)],
    trial: Annotated[int | None, typer.Option("--trial", help="Trial to export (default: the winner).")] = None,
    format: Annotated[
        str | None,
        typer.Option("--format", help="Comma-separated: keras,savedmodel,tflite,onnx (default: all available)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Bundle folder (default: RUNS_DIR/exports/NAME).")] = None,
    quantize: Annotated[
        str, typer.Option("--quantize", help="none, float16 or int8: also write a quantized TFLite file.")
    ] = "none",
    data: Annotated[
        str | None, typer.Option("--data", help="The search's data, if it cannot be found as recorded.")
    ] = None,
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Export a search's winner to every format, each checked against the Keras model; write a model card."""
    import logging

    _quiet_libraries()
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
        )
    except SearchError_ as exc:
        raise _fail(exc) from None
    from rich.table import Table

    card = result.card
    table = Table("format", "file", "bytes", "top-1 agreement", "max abs diff", "ms/image", "test accuracy")
    for fmt, f in card["formats"].items():
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
    console = _stdout_console()
    console.print(table)
    console.print(
        f"trial {result.trial}: {card['architecture']['summary']}; validation accuracy "
        f"{card['metrics']['validation_accuracy']:.4f}, test accuracy {card['metrics']['test_accuracy']:.4f}"
    )
    console.print(f"bundle: {result.bundle}  (model card: {result.bundle / 'MODEL_CARD.md'})")
    console.print(f"registered: models:/{name}@champion -> trial {result.trial}")


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
    _quiet_libraries()
    from search.export import predict as predict_images

    if format not in ("table", "json"):
        raise _fail(SearchError_(f"--format: expected table or json, received {format!r}"))
    try:
        results = predict_images(model, images, top_k=top_k, runtime=runtime)
    except SearchError_ as exc:
        raise _fail(exc) from None
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
    _quiet_libraries()
    from search.report import make_report

    try:
        made = make_report(name, runs_dir=runs_dir, tracking_uri=tracking_uri, out=out)
    except SearchError_ as exc:
        raise _fail(exc) from None
    for picture in made.pictures:
        typer.echo(str(picture))
    for file, why in made.missing.items():
        typer.echo(f"not drawn: {file}: {why}", err=True)
    typer.echo(f"open {made.html}", err=True)


@app.command("ui")
def ui(
    port: Annotated[int, typer.Option("--port", help="Port of the MLflow UI.")] = 5000,
    host: Annotated[
        str, typer.Option("--host", help="Listen address; 127.0.0.1 unless you ask otherwise.")
    ] = "127.0.0.1",
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Start the MLflow UI on the search store (127.0.0.1 only by default); Ctrl+C or SIGTERM stops it."""
    from search.tracking import default_tracking_uri
    from search.tracking._ui import UIError, serve_ui

    def banner(url: str) -> None:
        typer.echo(f"MLflow UI on {url.rstrip('/')}  (runs of a search: /#/experiments/<id>/runs); Ctrl+C stops it")

    try:
        code = serve_ui(tracking_uri or default_tracking_uri(runs_dir), host, port, on_ready=banner)
    except UIError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except SearchError_ as exc:  # a store that cannot be used
        raise _fail(exc) from None
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
