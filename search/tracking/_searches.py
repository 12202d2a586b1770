"""Every search in an MLflow store, and the error for a search name that is not there.

A search is an MLflow experiment holding a parent run tagged ``role=search`` (see
:mod:`search.tracking._mlflow`); other experiments (MLflow's ``Default``, a user's own) are not
searches and are never listed nor suggested.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search._goal import GOAL

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: Trial states in the order they are shown.
STATES = ("complete", "pruned", "infeasible", "failed", "killed")
#: How many names an unknown-search error lists when none is close.
_MAX_KNOWN = 10
_PAGE = 50_000  # MLflow's largest page of runs


def _experiments(client: MlflowClient) -> dict[str, str]:
    """experiment id -> name, every active experiment."""
    found: dict[str, str] = {}
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        found.update({str(e.experiment_id): e.name for e in page})
        token = page.token
        if not token:
            return found


def _runs(client: MlflowClient, experiment_ids: list[str], filter_string: str = "") -> list[Any]:
    runs: list[Any] = []
    token = None
    while experiment_ids:
        page = client.search_runs(experiment_ids, filter_string, max_results=_PAGE, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs


def _parents(client: MlflowClient) -> tuple[dict[str, str], list[Any]]:
    experiments = _experiments(client)
    return experiments, _runs(client, list(experiments), "tags.role = 'search'")


def search_names(client: MlflowClient) -> list[str]:
    """The names of the searches in the store of ``client``, sorted."""
    experiments, parents = _parents(client)
    return sorted({experiments[p.info.experiment_id] for p in parents if p.info.experiment_id in experiments})


def names_in(tracking_uri: str) -> list[str]:
    """:func:`search_names` of the store at ``tracking_uri``; [] for a local store not made yet (it is
    not created) or one that cannot be read (for error messages: they must not fail themselves)."""
    if _store_missing(tracking_uri):
        return []
    try:
        with _reading(tracking_uri):
            from search.tracking._store import open_client

            return search_names(open_client(tracking_uri))
    except SearchError:
        return []


@contextlib.contextmanager
def _reading(tracking_uri: str) -> Iterator[None]:
    """MLflow's errors on a store that cannot be read (not a database, a server down) as a SearchError."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (MlflowException, SQLAlchemyError, OSError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SearchError(
            f"cannot read the MLflow store {tracking_uri}: {why}; expected a store cnn-search made "
            "(check --runs-dir or --tracking-uri)"
        ) from None


def _store_missing(tracking_uri: str) -> bool:
    """A local store that does not exist yet (listing it must not create it)."""
    from search.tracking._store import sqlite_path

    db = sqlite_path(tracking_uri)
    return db is not None and (not db.exists() or db.stat().st_size == 0)


def local_time(ms: int | None) -> str:
    """``2026-11-25 15:40`` in this machine's time zone, '' for None."""
    return "" if ms is None else datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def list_searches(tracking_uri: str) -> list[dict[str, Any]]:
    """One dict per search in the store, most recently active first: ``name``, ``engine``, ``space``,
    ``data``, ``trials`` (trial runs), ``states`` (trials by state, in :data:`STATES` order, then any
    other), ``best_val_accuracy`` (best complete trial), ``test_accuracy`` (the champion's, on the
    search's run), ``last_activity_ms`` (latest end, else start, of the search's runs),
    ``last_activity`` (that time, local, to the minute) and ``experiment_id``.
    A local store that does not exist yet is empty (it is not created)."""
    if _store_missing(tracking_uri):
        return []
    from search.tracking._store import open_client

    with _reading(tracking_uri):
        client = open_client(tracking_uri)
        experiments, parents = _parents(client)
        by_experiment: dict[str, Any] = {}
        for parent in sorted(parents, key=lambda r: r.info.start_time or 0):  # the first one, as find_search
            by_experiment.setdefault(parent.info.experiment_id, parent)
        runs = _runs(client, sorted(by_experiment))
    children: dict[str, list[Any]] = {eid: [] for eid in by_experiment}
    activity: dict[str, int | None] = {eid: None for eid in by_experiment}
    for run in runs:
        eid = run.info.experiment_id
        if eid not in children:
            continue
        when = run.info.end_time or run.info.start_time
        if when is not None:
            activity[eid] = max(activity[eid] or 0, when)
        if "mlflow.parentRunId" in run.data.tags and "trial" in run.data.tags:
            children[eid].append(run)
    rows = [_row(experiments[eid], eid, parent, children[eid], activity[eid]) for eid, parent in by_experiment.items()]
    rows.sort(key=lambda r: (r["last_activity_ms"] is None, -(r["last_activity_ms"] or 0), r["name"]))
    return rows


def _row(name: str, eid: str, parent: Any, trials: list[Any], last_ms: int | None) -> dict[str, Any]:
    """:func:`list_searches`'s dict for the search ``name``: its ``parent`` run, its ``trials`` runs."""
    tags = parent.data.tags
    states: dict[str, int] = {}
    for t in trials:
        state = t.data.tags.get("state") or t.info.status.lower()
        states[state] = states.get(state, 0) + 1
    ordered = {s: states[s] for s in STATES if s in states}
    ordered.update({s: n for s, n in sorted(states.items()) if s not in ordered})
    scored = [
        {"trial": int(t.data.tags.get("trial", 0)), GOAL.metric: t.data.metrics[GOAL.best_metric]}
        for t in trials
        if t.data.tags.get("state") == "complete" and GOAL.best_metric in t.data.metrics
    ]
    best = GOAL.best_of(scored)
    return {
        "name": name,
        "engine": tags.get("engine"),
        "space": tags.get("space"),
        "data": tags.get("data"),
        "trials": len(trials),
        "states": ordered,
        GOAL.best_metric: best[GOAL.metric] if best else None,
        "test_accuracy": parent.data.metrics.get("test_accuracy"),
        "last_activity_ms": last_ms,
        "last_activity": local_time(last_ms),
        "experiment_id": eid,
    }


def unknown_search(
    name: str, client_or_names: MlflowClient | Iterable[str], where: str, *, hint: str = ""
) -> SearchError:
    """The error for search ``name`` not found in ``where``: the closest names of the store's searches
    (``client_or_names``: an MlflowClient, or the names themselves), else the names it holds (at most
    ten), else that it holds none; without a close name, that a search run with ``--storage`` or
    ``--tracking-uri`` is read with the same options (its data may be in another store). ``hint`` is added at
    the end."""
    if isinstance(client_or_names, str):
        names = [client_or_names]
    elif isinstance(client_or_names, Iterable):
        names = sorted(set(client_or_names))
    else:
        names = search_names(client_or_names)
    names = [n for n in names if n != name]
    message = f"no search named {name!r} in {where}"
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if close:  # only the names about as close as the closest ('tiny-digits', not also 'tiny-kt')
        best = difflib.SequenceMatcher(None, name, close[0]).ratio()
        close = [c for c in close if difflib.SequenceMatcher(None, name, c).ratio() >= best - 0.05]
    if close:
        message += f"; did you mean {' or '.join(repr(c) for c in close)}? (cnn-search searches lists them)"
    elif names:
        shown = ", ".join(names[:_MAX_KNOWN]) + (
            f" and {len(names) - _MAX_KNOWN} more" if len(names) > _MAX_KNOWN else ""
        )
        message += f"; known searches: {shown} (cnn-search searches lists them)"
    else:
        message += "; no searches in this store yet"
    if not close:  # its data may be in another store: the options that name one (issue 31, item 12)
        message += (
            "; a search run with --storage or --tracking-uri (PostgreSQL, a server) is read with the same options"
        )
    return SearchError(message + (f"; {hint}" if hint else ""))


def search_run(tracking_uri: str, name: str) -> Any | None:
    """Search ``name``'s own MLflow run (tag ``role`` = ``search``: its tags and metrics), or None when the
    store (a local one is not created) or the search is not there, or cannot be read."""
    if _store_missing(tracking_uri):
        return None
    from search.tracking._store import open_client

    try:
        with _reading(tracking_uri):
            client = open_client(tracking_uri)
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                return None
            runs = client.search_runs([experiment.experiment_id], "tags.role = 'search'", max_results=1)
    except SearchError:
        return None
    return runs[0] if runs else None


def recorded_engine(tracking_uri: str, name: str) -> str | None:
    """The engine recorded on search ``name``'s MLflow run (tag ``engine``), or None (:func:`search_run`)."""
    run = search_run(tracking_uri, name)
    return run.data.tags.get("engine") if run is not None else None


def winner_lines(tracking_uri: str, name: str) -> list[str]:
    """What ``cnn-search trials`` says under the table of a finished search: the winner with its test
    accuracy and the chance level, then why it won (tag ``winner_why``, :mod:`search.tracking._paid`).
    Empty while no trial has won (or the store cannot be read)."""
    run = search_run(tracking_uri, name)
    if run is None or "best_trial" not in run.data.tags:
        return []
    tags, metrics = run.data.tags, run.data.metrics
    said = f"winner: trial {tags['best_trial']}"
    if "test_accuracy" in metrics:
        said += f", test accuracy {metrics['test_accuracy']:.4f}"
    if "chance_accuracy" in metrics:
        said += f", chance {metrics['chance_accuracy']:.4f}"
    return [said, *([f"why: {tags['winner_why']}"] if tags.get("winner_why") else [])]
