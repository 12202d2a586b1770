"""``cnn-search ui``: the MLflow UI (and optuna-dashboard) over a search's store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from search._errors import SearchError as SearchError_
from search._goal import GOAL
from search._quiet import quiet_libraries

if TYPE_CHECKING:
    from collections.abc import Callable

from search.cli._app import RunsDir, Storage, TrackingUri, app, fail

#: ``ui``'s own options (the store's are :data:`RunsDir`, :data:`Storage` and :data:`TrackingUri`).
Port = Annotated[int, typer.Option("--port", help="Port of the MLflow UI.")]
Host = Annotated[str, typer.Option("--host", help="Listen address; 127.0.0.1 unless you ask otherwise.")]
OptunaDashboard = Annotated[
    bool,
    typer.Option(
        "--optuna",
        help="Also serve Optuna's own dashboard (optuna-dashboard: pip install 'cnn-search\\[dashboard]') on the "
        "searches' Optuna storage, at --port + 1.",
    ),
]
AllowedHosts = Annotated[
    list[str] | None,
    typer.Option(
        "--allowed-hosts",
        help="More Host names the UI answers to (comma-separated or repeated; MLflow's * patterns), besides "
        "localhost and, beyond 127.0.0.1, this machine's names: the one people type, a reverse proxy's.",
    ),
]
AllowWrites = Annotated[
    bool,
    typer.Option(
        "--allow-writes",
        help="Let the UI change the store (runs, tags, experiments, artifact uploads into RUNS_DIR/mlartifacts); "
        "read-only without it. No authentication: anyone who reaches the port could.",
    ),
]

ServerLog = Annotated[
    bool,
    typer.Option(
        "--verbose",
        help="Also print the servers' own log lines (uvicorn's start-up and access lines, MLflow's start-up); "
        "without it only their warnings and errors.",
    ),
]


@app.command("ui")
def ui(
    port: Port = 5000,
    host: Host = "127.0.0.1",
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
    optuna: OptunaDashboard = False,
    allowed_hosts: AllowedHosts = None,
    allow_writes: AllowWrites = False,
    verbose: ServerLog = False,
) -> None:
    """Start the MLflow UI on the search store (127.0.0.1 only and read-only by default) and print each
    search's runs address; Ctrl+C or SIGTERM stops it. Beyond 127.0.0.1 it warns: no authentication."""
    if not verbose:  # MLflow's INFO lines ("Creating initial MLflow database tables...") here and in the servers
        quiet_libraries()
    from search.runtime._storage import default_storage_url
    from search.tracking import default_tracking_uri
    from search.tracking._ui import UIError, search_addresses, serve_ui, study_addresses

    uri = tracking_uri or default_tracking_uri(runs_dir)
    optuna_storage = (storage or default_storage_url(runs_dir)) if optuna else None

    def banner(url: str) -> None:
        typer.echo(f"MLflow UI on {url.rstrip('/')}  (each search's trials by {GOAL.best_metric}:); Ctrl+C stops it")
        _listing(lambda: search_addresses(uri, url), "no search in this store yet")

    def dashboard(url: str) -> None:
        typer.echo(f"Optuna dashboard on {url}  (each search's study:)")
        assert optuna_storage is not None
        _listing(lambda: study_addresses(optuna_storage, url), "no Optuna study in this storage yet")

    try:
        code = serve_ui(
            uri,
            host,
            port,
            on_ready=banner,
            optuna=optuna_storage,
            on_dashboard=dashboard,
            artifacts=runs_dir / "mlartifacts",
            allowed_hosts=allowed_hosts or (),
            allow_writes=allow_writes,
            warn=lambda text: typer.echo(text, err=True),
            verbose=verbose,
        )
    except UIError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except SearchError_ as exc:  # a store that cannot be used
        raise fail(exc) from None
    raise typer.Exit(code)


def _listing(found: Callable[[], list[tuple[str, str]]], empty: str) -> None:
    """Print the ``(name, address)`` pairs ``found`` returns, one a line; else ``empty``, or why it failed."""
    try:
        rows = found()
    except Exception as exc:  # the server runs all the same
        typer.echo(f"  (could not list them: {exc})")
        return
    for name, address in rows:
        typer.echo(f"  {name}: {address}")
    if not rows:
        typer.echo(f"  ({empty})")
