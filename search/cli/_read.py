"""Reading searches back: ``cnn-search trials``, ``searches`` and ``compare``, and the trial table they print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from search._errors import SearchError as SearchError_
from search._errors import SpaceError
from search._goal import GOAL
from search._quiet import quiet_libraries

if TYPE_CHECKING:
    from rich.console import Console


from search.cli._app import RunsDir, Storage, TrackingUri, app, fail, stdout_console

#: ``--format`` of the commands that read searches back.
TableFormat = Annotated[str, typer.Option("--format", help="table, csv or json.")]


def print_trials(rows: list[dict], *, console: Console, fixed: dict | None = None) -> None:
    """``fixed``: the training parameters the space fixes (:func:`fixed_training`), shown where a
    trial's sampled ones (``hyperparameters``) lack them.

    The architecture (or why a trial stopped) is the table's last column when the whole table fits the
    terminal, or :data:`PIPED_WIDTH` columns when piped; otherwise the table keeps the figures and each
    trial's architecture follows it on a line of its own, never wrapped (a 10-line row per trial was
    unreadable at 110 columns, and a piped table was 220 wide)."""
    from rich.measure import Measurement

    width = console.width if console.is_terminal else PIPED_WIDTH
    table = _trials_table(rows, fixed, with_text=True)
    if Measurement.get(console, console.options.update_width(10_000), table).maximum <= width:
        console.print(table, width=width)
        return
    console.print(_trials_table(rows, fixed, with_text=False), width=width)
    console.print("architecture / reason, by trial:")
    for r in rows:
        console.print(f"{r['trial']:>5}  {_row_text(r)}", soft_wrap=True, crop=False)


#: How wide ``print_trials`` draws its table when the output is not a terminal (a file, a pipe).
PIPED_WIDTH = 100


def _row_text(r: dict) -> str:
    """A trial's architecture (or reason), with where it came from: a start point, a local move."""
    text = r["architecture"] + (f"  [{r['reason']}]" if r["reason"] else "")
    if "start_point" in r:  # the space's own defaults, tried first: where the search began
        return f"start point {r['start_point']}: {text}"
    if "local_of" in r:  # a local move around the incumbent then (search.engines._optuna._local)
        return f"near {r['local_of']}: {text}"
    return text


def _trials_table(rows: list[dict], fixed: dict | None, *, with_text: bool) -> Any:
    from rich.table import Table

    fronted = any("pareto_front" in r for r in rows)  # a search of several goals: its front is marked
    chance = any(r.get("at_chance") for r in rows)
    marks = "; * on the Pareto front" + ("; chance: at chance, left off it" if chance else "")
    table = Table(title="trials, best first" + (marks if fronted else ""))
    for header in ("trial", "state", GOAL.metric, "epochs", "params", "seconds", *_TRAINING_COLUMNS):
        table.add_column(header, overflow="fold")
    if fronted:
        table.add_column("front")
    rechecked = any("recheck_mean" in r for r in rows)  # re-checked: mean ± spread of the candidates' re-runs
    if rechecked:
        table.add_column("re-checked", overflow="fold")
    if with_text:
        table.add_column("architecture / reason", overflow="fold")
    for r in rows:
        value = f"{r[GOAL.metric]:.4f}" if r[GOAL.metric] is not None else ""
        seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else ""
        params = f"{r['params']:,}" if r["params"] is not None else ""
        sampled = {**(fixed or {}), **(r.get("hyperparameters") or {})}
        training = [_training_text(sampled.get(key)) for key in _TRAINING_COLUMNS.values()]
        front = ["*" if r.get("pareto_front") else "chance" if r.get("at_chance") else ""] if fronted else []
        mean, spread = r.get("recheck_mean"), r.get("recheck_std") or 0.0
        if rechecked:
            front.append(
                "" if mean is None else f"{mean:.4f} ± {spread:.4f}" + (" champion" if r.get("champion") else "")
            )
        text = [_row_text(r)] if with_text else []
        table.add_row(
            str(r["trial"]), r["state"], value, str(r["epochs_run"] or ""), params, seconds, *training, *front, *text
        )
    return table


#: The training parameters shown beside the architecture: column -> parameter name (as in MLflow).
_TRAINING_COLUMNS = {"lr": "training/learning_rate", "optimizer": "training/optimizer", "batch": "training/batch_size"}


def _training_text(value: object) -> str:
    """A learning rate as ``2.03e-3`` (3 significant digits), other values as they are, '-' if unknown."""
    if value is None:
        return "-"
    if isinstance(value, float):
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return str(value)


def fixed_training(definition: dict | None) -> dict:
    """The values of :data:`_TRAINING_COLUMNS` a space definition (``Space.to_dict()``) fixes: not
    sampled, so in no trial's parameters."""
    fixed = {}
    for key, name in ((name.split("/")[1], name) for name in _TRAINING_COLUMNS.values()):
        value = ((definition or {}).get("training") or {}).get(key)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        elif isinstance(value, dict) and value.get("low") is not None and value.get("low") == value.get("high"):
            value = value["low"]
        if value is not None and not isinstance(value, list | dict):
            fixed[name] = float(value) if key == "learning_rate" else value
    return fixed


def space_training(space: str) -> dict:
    """:func:`_fixed_training` of a shipped space or a YAML file; {} if it cannot be read (now)."""
    from search.space import load_space

    try:
        return fixed_training(load_space(space).to_dict())
    except (SpaceError, OSError):
        return {}


@app.command("trials")
def trials_command(
    name: Annotated[
        str | None, typer.Argument(help="The search name (none: every search, as cnn-search searches).")
    ] = None,
    format: TableFormat = "table",
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """The trials of a search, best first, read back from the store (no NAME: the list of searches)."""
    import csv
    import io

    import optuna

    if format not in ("table", "csv", "json"):
        raise fail(SearchError_(f"--format: expected table, csv or json, received {format!r}"))
    if name is None:
        searches_command(format=format, runs_dir=runs_dir, tracking_uri=tracking_uri)
        return
    from search.engines import get_engine
    from search.engines._base import DEFAULT_ENGINE, engine_of
    from search.tracking import default_tracking_uri

    uri = tracking_uri or default_tracking_uri(runs_dir)
    # the engine recorded with the search (runs/searches/NAME.json, else its MLflow run); with --storage: Optuna
    recorded_engine = None if storage is not None else engine_of(name, runs_dir=runs_dir, tracking_uri=uri)
    try:
        rows, recorded = get_engine(recorded_engine or DEFAULT_ENGINE).trial_rows(
            name, runs_dir=runs_dir, storage=storage
        )
    except KeyError:
        from search.runtime._storage import default_storage_url, get_storage
        from search.tracking._searches import names_in, unknown_search

        quiet_libraries()
        known = names_in(uri) + optuna.get_all_study_names(get_storage(storage or default_storage_url(runs_dir)))
        raise fail(unknown_search(name, known, str(storage or runs_dir))) from None
    except SearchError_ as exc:
        raise fail(exc) from None
    if format == "json":
        typer.echo(json.dumps(rows, indent=2, default=str))
    elif format == "csv":
        buffer = io.StringIO()
        columns = dict.fromkeys(k for r in rows for k in r)  # every row's keys (start_point: the start points')
        writer = csv.DictWriter(buffer, fieldnames=[k for k in columns if k != "hyperparameters"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: v for k, v in r.items() if k != "hyperparameters"})
        sys.stdout.write(buffer.getvalue())
    else:
        from search.tracking._searches import winner_lines

        console = stdout_console()
        print_trials(rows, console=console, fixed=fixed_training(recorded.get("space_definition")))
        for line in winner_lines(uri, name):  # the winner, its test accuracy beside chance, and why it won
            console.print(line, soft_wrap=True, crop=False)


@app.command("searches")
def searches_command(
    format: TableFormat = "table",
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Every search in the store, most recently active first: engine, space, data, trials by state, best accuracy."""
    import csv

    from search.tracking import default_tracking_uri
    from search.tracking._searches import STATES, list_searches

    quiet_libraries()
    if format not in ("table", "csv", "json"):
        raise fail(SearchError_(f"--format: expected table, csv or json, received {format!r}"))
    try:
        rows = list_searches(tracking_uri or default_tracking_uri(runs_dir))
    except SearchError_ as exc:
        raise fail(exc) from None
    if format == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    if format == "csv":
        fields = ["name", "engine", "space", "data", "trials", *STATES, GOAL.best_metric, "test_accuracy"]
        writer = csv.DictWriter(sys.stdout, fieldnames=[*fields, "last_activity"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**r, **{s: r["states"].get(s, 0) for s in STATES}} for r in rows)
        return
    if not rows:
        own_dir = tracking_uri is None and str(runs_dir) != "runs"
        start = "cnn-search run tiny" + (f" --runs-dir {runs_dir}" if own_dir else "")
        typer.echo(f"no searches in {tracking_uri or runs_dir} yet; start one with {start}")
        return
    from rich.console import Console

    # piped: as wide as the table, so that no name, path or header is ever cut or folded
    print_searches(rows, console=stdout_console() if sys.stdout.isatty() else Console(width=10_000, markup=False))


def print_searches(rows: list[dict], *, console: Console) -> None:
    from rich.table import Table

    table = Table(title="searches, most recently active first")
    # a terminal too narrow for the table: every column but the names folds (nothing is cut)
    table.add_column("search", no_wrap=True, min_width=max(len(r["name"]) for r in rows))
    for header in ("engine", "space", "data", "trials", "by state", f"best {GOAL.metric}", "test_accuracy"):
        numeric = "accuracy" in header or header == "trials"
        table.add_column(header, overflow="fold", justify="right" if numeric else "left")
    table.add_column("last activity", overflow="fold")
    for r in rows:
        states = ", ".join(f"{n} {state}" for state, n in r["states"].items()) or "-"
        best, test = (f"{v:.4f}" if v is not None else "" for v in (r[GOAL.best_metric], r["test_accuracy"]))
        described = (r["engine"] or "", r["space"] or "", r["data"] or "")
        table.add_row(r["name"], *described, str(r["trials"]), states, best, test, r["last_activity"])
    console.print(table)


@app.command("compare")
def compare(
    names: Annotated[list[str], typer.Argument(help="Search names (any engine).", show_default=False)],
    format: TableFormat = "table",
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Searches side by side: engine, trials by state, best accuracies, running time, trials per hour.

    Times count running time only (the union of the trials' start-to-end intervals): the idle gap
    before a search was resumed does not count. Searches run on different data splits are warned
    about on stderr (their test accuracies are not comparable). csv and json rows also carry the data,
    its seed and fingerprint, and the MLflow experiment and run ids."""
    import csv

    from search.tracking import default_tracking_uri
    from search.tracking._compare import COLUMNS, compare_searches, split_warnings

    quiet_libraries()
    if format not in ("table", "csv", "json"):
        raise fail(SearchError_(f"--format: expected table, csv or json, received {format!r}"))
    uri = tracking_uri or default_tracking_uri(runs_dir)
    try:
        rows = compare_searches(names, uri)
    except SearchError_ as exc:
        raise fail(exc) from None
    if format == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    else:
        _print_compared(rows, uri)
    for line in split_warnings(rows):
        typer.echo(f"warning: {line}", err=True)


def _print_compared(rows: list[dict], uri: str) -> None:
    """``compare``'s table (one column per search in a narrow terminal) and the MLflow UI page comparing their runs."""
    from rich.measure import Measurement
    from rich.table import Table

    from search.tracking._compare import TABLE_COLUMNS, compare_runs_url

    cells = [
        [
            ""
            if row[c] is None
            else f"{row[c]:.4f}"
            if isinstance(row[c], float) and c.endswith("accuracy")
            else str(row[c])
            for c in TABLE_COLUMNS
        ]
        for row in rows
    ]
    console = stdout_console()
    table = Table(title="searches side by side")
    for c in TABLE_COLUMNS:  # fold, never cut: names and headers are shown whole at any width
        table.add_column(c.replace("_", " "), overflow="fold", justify="left" if c == "search" else "right")
    for r in cells:
        table.add_row(*r)
    needed = Measurement.get(console, console.options.update_width(10_000), table)  # unclamped
    if not console.is_terminal:  # piped: as wide as the table needs, so nothing folds in a file
        console.width = max(console.width, needed.maximum)
    elif needed.minimum > console.width:
        # a narrow terminal: one column per search, one row per figure, so numbers are not folded
        table = Table("", title="searches side by side")
        for r in cells:
            table.add_column(r[0], overflow="fold", justify="right")
        for i, c in enumerate(TABLE_COLUMNS[1:], 1):
            table.add_row(c.replace("_", " "), *(r[i] for r in cells))
    console.print(table)
    url = compare_runs_url(rows, uri if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000")
    if url:
        where = "" if uri.startswith(("http://", "https://")) else " (cnn-search ui, on its default port)"
        typer.echo(f"the searches' runs side by side in the MLflow UI{where}: {url}")
