"""Searches side by side, read from MLflow (so any engine's search compares with any other's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search._errors import SearchError

COLUMNS = (
    "search",
    "engine",
    "trials",
    "complete",
    "pruned",
    "infeasible",
    "failed",
    "killed",
    "best_val_accuracy",
    "test_accuracy",
    "wall_seconds",
    "trials_per_hour",
    "seconds_to_best",
)


def compare_searches(names: Sequence[str], tracking_uri: str) -> list[dict[str, Any]]:
    """One row per search: engine, trials by state, best validation and test accuracy, wall time
    (first trial start to last trial end), trials per hour, and time from the first trial's start to
    the end of the trial that turned out best."""
    from search.tracking._store import open_client

    client = open_client(tracking_uri)
    rows = []
    for name in names:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise SearchError(f"no search named {name!r} in {tracking_uri}")
        runs = client.search_runs([experiment.experiment_id], max_results=50_000)
        parent = next((r for r in runs if r.data.tags.get("role") == "search"), None)
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        row: dict[str, Any] = {
            "search": name,
            "engine": parent.data.tags.get("engine") if parent else None,
            "trials": len(children),
        }
        for state in ("complete", "pruned", "infeasible", "failed", "killed"):
            row[state] = sum(c.data.tags.get("state") == state for c in children)
        scored = [c for c in children if c.data.tags.get("state") == "complete"]
        best = max(scored, key=lambda c: c.data.metrics.get("best_val_accuracy", -1.0), default=None)
        row["best_val_accuracy"] = best.data.metrics.get("best_val_accuracy") if best else None
        row["test_accuracy"] = parent.data.metrics.get("test_accuracy") if parent else None
        if children:
            start = min(c.info.start_time for c in children)
            end = max(c.info.end_time or c.info.start_time for c in children)
            wall = max((end - start) / 1000, 1e-9)
            row["wall_seconds"] = round(wall, 1)
            row["trials_per_hour"] = round(len(children) / wall * 3600, 1)
            row["seconds_to_best"] = round(((best.info.end_time or start) - start) / 1000, 1) if best else None
        else:
            row.update(wall_seconds=None, trials_per_hour=None, seconds_to_best=None)
        rows.append(row)
    return rows
