"""Helpers shared by the tests that run real searches (real processes, a real MLflow store)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
FAULTS = Path(__file__).parent / "faults"


def faults(**injected: object) -> dict[str, str]:
    """Environment that injects faults into a child process tree through the hook of
    ``tests/faults/sitecustomize.py`` (every interpreter there imports it): ``faults(EPOCH_SLEEP=1)``
    sets ``CNN_SEARCH_TEST_EPOCH_SLEEP=1``. The package itself reads none of these variables."""
    path = os.pathsep.join(p for p in (str(FAULTS), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, **{f"CNN_SEARCH_TEST_{key}": str(value) for key, value in injected.items()}}


def cnn_search(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "search", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**ENV, **(env or {})},
        cwd=cwd,
    )


def mlflow_client(runs_dir: Path) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{(runs_dir / 'mlflow.db').resolve()}")


def runs_of(runs_dir: Path, name: str) -> tuple[list[Any], list[Any]]:
    """(parent runs, child runs) of the search ``name``, children (its trials; re-check runs left out) sorted by
    trial number."""
    client = mlflow_client(runs_dir)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, f"no MLflow experiment {name!r}"
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("role") == "search"]
    trials = (r for r in runs if "mlflow.parentRunId" in r.data.tags and r.data.tags.get("phase") != "recheck")
    children = sorted(trials, key=lambda r: int(r.data.tags["trial"]))
    return parents, children


def study_of(runs_dir: Path, name: str) -> Any:
    import optuna

    from search.runtime._storage import default_storage_url, get_storage

    return optuna.load_study(study_name=name, storage=get_storage(default_storage_url(runs_dir)))


def digit_pngs(folder: Path, count: int) -> tuple[Any, list[str]]:
    """The first ``count`` test images of ``digits`` (seed 0) written as PNG files in ``folder``: (the test images,
    the files' paths), for ``cnn-search predict``."""
    from PIL import Image

    from search.data import load_dataset

    x = load_dataset("digits", seed=0).arrays("test")[0]
    paths = []
    for i in range(count):
        path = folder / f"digit{i}.png"
        Image.fromarray(x[i, :, :, 0]).save(path)
        paths.append(str(path))
    return x, paths
