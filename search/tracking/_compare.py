"""Searches side by side, read from MLflow (so any engine's search compares with any other's)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from search._goal import GOAL
from search.tracking._searches import unknown_search

DATA_COLUMNS = ("data", "data_seed", "data_fingerprint")
"""What each search ran on (its MLflow run's tags): in the CSV and JSON rows, and in the split warning."""

COLUMNS = (
    "search",
    "engine",
    "trials",
    "complete",
    "pruned",
    "infeasible",
    "failed",
    "killed",
    GOAL.best_metric,
    "test_accuracy",
    "wall_seconds",
    "trials_per_hour",
    "seconds_to_best",
    *DATA_COLUMNS,
    "winner_from",
    "gain_over_start_points",
    "experiment_id",
    "run_id",
)
TABLE_COLUMNS = COLUMNS[: COLUMNS.index("data")]
"""The columns of the table on screen (the CSV and JSON rows also carry the data and the MLflow ids)."""


def running_seconds(intervals: Iterable[tuple[float, float]], *, until: float | None = None) -> float:
    """Seconds covered by the union of the ``(start, end)`` intervals (seconds), counted up to ``until``.

    Overlapping intervals (trials of parallel workers) count once; the gaps between them (a search
    stopped, then resumed a day later) do not count.

    >>> running_seconds([(0, 10), (5, 12), (100, 103)])
    15
    >>> running_seconds([(0, 10), (5, 12), (100, 103)], until=8)
    8
    """
    total: float = 0
    end_so_far: float | None = None
    for start, end in sorted(intervals):
        if until is not None:
            end = min(end, until)
        if end_so_far is not None:
            start = max(start, end_so_far)
        if end > start:
            total += end - start
        end_so_far = end if end_so_far is None else max(end_so_far, end)
    return total


def compare_searches(names: Sequence[str], tracking_uri: str) -> list[dict[str, Any]]:
    """One row per search: engine, trials by state, best validation and test accuracy, where the winner came
    from and its gain over the start points (``winner_from``, ``gain_over_start_points``), running time,
    trials per hour, time to best, and the data it ran on (``data``, ``data_seed``, ``data_fingerprint``).

    Times are *running* time: the union of the trial runs' ``[start, end]`` intervals, so trials run in
    parallel by several workers count once and the idle gap between a search and its resumption does
    not count. ``wall_seconds`` is that running time, ``trials_per_hour`` is trials per running hour,
    and ``seconds_to_best`` is the running time until the end of the trial that turned out best.
    """
    from search.tracking._store import open_client

    client = open_client(tracking_uri)
    rows = []
    for name in names:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise unknown_search(name, client, tracking_uri)
        runs = client.search_runs([experiment.experiment_id], max_results=50_000)
        parent = next((r for r in runs if r.data.tags.get("role") == "search"), None)
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags and "trial" in r.data.tags]  # no re-checks
        row: dict[str, Any] = {
            "search": name,
            "engine": parent.data.tags.get("engine") if parent else None,
            "trials": len(children),
        }
        for state in ("complete", "pruned", "infeasible", "failed", "killed"):
            row[state] = sum(c.data.tags.get("state") == state for c in children)
        scored = [c for c in children if c.data.tags.get("state") == "complete" and GOAL.best_metric in c.data.metrics]
        best = min(
            scored,
            key=lambda c: GOAL.sort_key(c.data.metrics[GOAL.best_metric], int(c.data.tags["trial"])),
            default=None,
        )
        row[GOAL.best_metric] = best.data.metrics.get(GOAL.best_metric) if best else None
        row["test_accuracy"] = parent.data.metrics.get("test_accuracy") if parent else None
        row["winner_from"] = parent.data.tags.get("winner_from") if parent else None  # search.tracking._paid
        row["gain_over_start_points"] = parent.data.metrics.get("gain_over_start_points") if parent else None
        if children:
            intervals = [(c.info.start_time / 1000, (c.info.end_time or c.info.start_time) / 1000) for c in children]
            wall = max(running_seconds(intervals), 1e-9)
            row["wall_seconds"] = round(wall, 1)
            row["trials_per_hour"] = round(len(children) / wall * 3600, 1)
            best_end = (best.info.end_time or best.info.start_time) / 1000 if best else None
            row["seconds_to_best"] = round(running_seconds(intervals, until=best_end), 1) if best else None
        else:
            row.update(wall_seconds=None, trials_per_hour=None, seconds_to_best=None)
        for key in DATA_COLUMNS:
            row[key] = parent.data.tags.get(key) if parent else None
        row["experiment_id"] = experiment.experiment_id
        row["run_id"] = parent.info.run_id if parent else None
        rows.append(row)
    return rows


def _described(row: dict[str, Any]) -> str:
    fingerprint = row.get("data_fingerprint")
    return (
        f"{row['search']} ({row.get('data') or 'unknown data'}, seed {row.get('data_seed') or '?'}, "
        f"{fingerprint[:8] + '…' if fingerprint else 'no fingerprint'})"
    )


def split_warnings(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per group of searches whose test accuracies are not comparable: searches of one data
    source whose splits differ (different ``data_fingerprint``, e.g. another ``--seed``), searches of
    different data sources, and searches that recorded no fingerprint. Empty when all match.

    >>> a = {"search": "a", "data": "digits", "data_seed": "0", "data_fingerprint": "5a43caaf0b7c1ba1"}
    >>> [line] = split_warnings([a, a | {"search": "b", "data_seed": "1", "data_fingerprint": "ba238589277fce98"}])
    >>> line.split(": ", 1)
    ['these searches were not run on the same data split (data fingerprint)', 'a (digits, seed 0, 5a43caaf…), \
b (digits, seed 1, ba238589…); their test accuracies are not comparable']
    """
    known = [r for r in rows if r.get("data_fingerprint")]
    lines = []
    sources: dict[str, list[dict[str, Any]]] = {}
    for row in known:
        sources.setdefault(str(row.get("data")), []).append(row)
    for group in sources.values():
        if len({r["data_fingerprint"] for r in group}) > 1:
            lines.append(
                "these searches were not run on the same data split (data fingerprint): "
                + ", ".join(map(_described, group))
                + "; their test accuracies are not comparable"
            )
    if len(sources) > 1:
        lines.append(
            "these searches were not run on the same data: "
            + ", ".join(map(_described, known))
            + "; their accuracies are not comparable"
        )
    unknown = [r for r in rows if not r.get("data_fingerprint")]
    if unknown and len(rows) > 1:
        lines.append(
            "no data fingerprint recorded for "
            + ", ".join(r["search"] for r in unknown)
            + ": cannot tell whether it ran on the same data split as the others"
        )
    return lines


def compare_runs_url(rows: Sequence[dict[str, Any]], ui: str = "http://127.0.0.1:5000") -> str | None:
    """The MLflow UI page (``cnn-search ui`` at ``ui``) that compares the searches' own runs side by side
    (:func:`search.tracking._ui.compare_address`); None for fewer than two runs.

    >>> compare_runs_url([{"run_id": "ab", "experiment_id": "2"}, {"run_id": "cd", "experiment_id": "1"}])
    'http://127.0.0.1:5000/#/compare-runs?runs=%5B%22ab%22%2C%22cd%22%5D&experiments=%5B%221%22%2C%222%22%5D&workflowType=machine_learning'
    """
    from search.tracking._ui import compare_address

    runs = [r["run_id"] for r in rows if r.get("run_id")]
    if len(runs) < 2:
        return None
    return compare_address(ui, sorted({str(r["experiment_id"]) for r in rows if r.get("run_id")}), runs)
