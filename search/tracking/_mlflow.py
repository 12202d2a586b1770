"""MLflow, the durable record of a search (the same contract for every engine).

* one experiment per search name, one parent run per search (tag ``role=search``), reused on resume;
* one nested child run per trial, ``trial-<n>``: the sampled parameters under their path-like
  names, per-epoch metrics with ``step=epoch``, final metrics, tags (engine, state, reason,
  architecture summary and hash, data fingerprint) and ``architecture.json``;
* every run ends FINISHED, FAILED or KILLED: a trial's run is written when the trial ends (created
  with its real start time, one batch of params, metrics and tags, its artifacts, its final status),
  so a process killed mid-trial leaves no RUNNING run behind; a child left RUNNING by a process
  killed while writing it (its ``worker`` tag names the process) is set to KILLED by
  :meth:`Tracker.reconcile` on the next start, never one whose writer is still alive.

The client API (not the fluent one) is used throughout so nothing depends on a global active run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: MLflow run statuses for our trial states.
STATUS = {
    "complete": "FINISHED",
    "pruned": "FINISHED",
    "infeasible": "FINISHED",
    "failed": "FAILED",
    "killed": "KILLED",
}
_MAX_PARAM = 6000  # MLflow's limit on a param value


def default_tracking_uri(runs_dir: str | Path) -> str:
    return f"sqlite:///{(Path(runs_dir) / 'mlflow.db').resolve()}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _here(worker: str) -> bool:
    import socket

    return worker.rpartition(":")[0] == socket.gethostname()


class Tracker:
    """Writes one search into MLflow."""

    def __init__(self, tracking_uri: str, *, artifact_root: Path | None = None) -> None:
        import logging

        logging.getLogger("alembic").setLevel(logging.WARNING)
        from search.tracking._store import open_client

        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.client: MlflowClient = open_client(tracking_uri)

    # -- experiment and parent run ---------------------------------------------------------------
    def experiment(self, name: str) -> str:
        """The search's experiment (made if missing), tagged to open in MLflow's UI as ``cnn-search ui``
        says (classic kind, the saved view ``cnn-search``: see :mod:`search.tracking._ui`); the tags are
        set again only where missing or changed, so a resumed search finds them unchanged."""
        from search.tracking._ui import ensure_view, experiment_tags

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            ensure_view(self.client, str(found.experiment_id), found.tags)
            return str(found.experiment_id)
        location = None
        if self.artifact_root is not None:
            location = (self.artifact_root / name).resolve().as_uri()
        return str(self.client.create_experiment(name, artifact_location=location, tags=experiment_tags({})))

    def start_search(
        self,
        experiment_id: str,
        *,
        name: str,
        parent_run_id: str | None,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
    ) -> str:
        """The parent run of the search: the recorded one (set RUNNING again), else a new one."""
        run_id = parent_run_id
        if run_id is None:
            found = self.client.search_runs([experiment_id], filter_string="tags.role = 'search'", max_results=1)
            run_id = found[0].info.run_id if found else None
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(experiment_id, run_name=name, tags={"role": "search", **tags})
        self.log(run.info.run_id, params=params)
        return str(run.info.run_id)

    def reconcile(self, experiment_id: str, parent_run_id: str, *, killed_reason: str) -> list[str]:
        """Children left RUNNING by a process that died while writing them are set to KILLED; a run
        another live process is writing right now (its ``worker`` tag, ``host:pid``, on this host) is
        left alone, and so is a run of another host younger than a minute. Returns the run ids set."""
        from search._process import dead_here

        found = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'RUNNING'",
        )
        now = _now_ms()
        runs = [
            r
            for r in found
            if "worker" not in r.data.tags
            or dead_here(r.data.tags["worker"])
            or (not _here(r.data.tags["worker"]) and now - r.info.start_time > 60_000)
        ]
        for run in runs:
            self.client.set_tag(run.info.run_id, "state", "killed")
            self.client.set_tag(run.info.run_id, "reason", killed_reason)
            self.client.set_terminated(run.info.run_id, status="KILLED")
        return [r.info.run_id for r in runs]

    def end_search(self, parent_run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(parent_run_id, status=status)

    # -- trials ----------------------------------------------------------------------------------
    def record_trial(
        self,
        experiment_id: str,
        parent_run_id: str,
        number: int,
        *,
        started_ms: int,
        state: str,
        params: Mapping[str, Any],
        history: Mapping[str, list[float]],
        final: Mapping[str, float],
        tags: Mapping[str, str],
        architecture: Mapping[str, Any] | None,
        traceback: str | None = None,
    ) -> str:
        """Write a finished trial as the child run ``trial-<number>``, with its real start time, in one
        batch (plus its artifacts), and end it with the status of ``state``. Returns the run id."""
        from mlflow.entities import Metric

        from search._process import worker_id

        existing = self.trial_run(experiment_id, parent_run_id, number) if state == "killed" else None
        if existing is not None:  # half-written by a process killed while recording it: finish that one
            self.log(existing, tags={"state": state, **tags})
            self.client.set_terminated(existing, status=STATUS[state])
            return existing
        run = self.client.create_run(
            experiment_id,
            start_time=started_ms,
            run_name=f"trial-{number}",
            tags={
                "mlflow.parentRunId": parent_run_id,
                "trial": str(number),
                "state": state,
                "worker": worker_id(),  # who writes it: reconcile() leaves a live writer's run alone
                **tags,
            },
        )
        run_id = str(run.info.run_id)
        now = _now_ms()
        metrics = [
            Metric(key, float(v), now, step)
            for key, values in history.items()
            for step, v in enumerate(values)
            if v == v
        ]  # NaN is not stored per epoch
        metrics += [Metric(key, float(v), now, 0) for key, v in final.items() if v is not None]
        self.log(run_id, params=params, metrics=metrics)
        if architecture is not None:
            self.client.log_text(run_id, json.dumps(architecture, indent=2), "architecture.json")
        if traceback:
            self.client.log_text(run_id, traceback, "traceback.txt")
        self.client.set_terminated(run_id, status=STATUS[state], end_time=now)
        return run_id

    def trial_run(self, experiment_id: str, parent_run_id: str, number: int) -> str | None:
        """The run id of trial ``number``'s child run, if one was written."""
        runs = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.trial = '{number}'",
            max_results=1,
        )
        return str(runs[0].info.run_id) if runs else None

    def log(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: list[Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Param, RunTag

        self.client.log_batch(
            run_id,
            metrics=metrics or [],
            params=[Param(k, str(v)[:_MAX_PARAM]) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)[:_MAX_PARAM]) for k, v in (tags or {}).items()],
        )


def _requirements() -> list[str]:
    """The model's pip requirements, stated (MLflow's own inference imports and times every module)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("keras", "tensorflow", "numpy")]


def register_keras_model(tracking_uri: str, name: str, model: Any, *, run_id: str, example: Any, trial: int) -> str:
    """Log ``model`` (Keras flavor, with a signature inferred from ``example``) on ``run_id``, register
    it as a new version of ``name`` tagged with ``trial``, and return the version number.

    (``input_example=`` fails in MLflow 3.17, "No such file ... input_example.json"; a signature works.)
    MLflow's own "Successfully registered model" / "Created version" lines are not printed: the caller
    says where the model went, and a worker process registering the winner would write them into the
    supervisor's live display.
    """
    import contextlib
    import io

    import mlflow
    import mlflow.keras
    from mlflow import MlflowClient
    from mlflow.models import Model, infer_signature

    from search.training._eager import predict_eagerly

    signature = infer_signature(example, predict_eagerly(model, example))  # no predict function traced
    mlflow.set_tracking_uri(tracking_uri)  # Model.log and the registry read the global URI
    # MLflow 3 files the logged model under the *active* experiment: without this it is experiment 0,
    # whose artifact root is ./mlruns in whatever folder the process runs in.
    mlflow.set_experiment(experiment_id=MlflowClient(tracking_uri=tracking_uri).get_run(run_id).info.experiment_id)
    with contextlib.redirect_stderr(io.StringIO()):  # print()s and Python warnings; its logging and errors still show
        info = Model.log(
            artifact_path=None,
            name="model",
            flavor=mlflow.keras,
            model=model,
            run_id=run_id,
            registered_model_name=name,
            signature=signature,
            pip_requirements=_requirements(),
        )
    version = str(info.registered_model_version)
    MlflowClient(tracking_uri=tracking_uri).set_model_version_tag(name, version, "trial", str(trial))
    return version


def find_search(name: str, tracking_uri: str) -> tuple[Any, Any, list[Any]]:
    """(client, parent run, trial runs) of search ``name``, or a SearchError naming what is missing."""
    from search._errors import SearchError
    from search.tracking._store import open_client

    client = open_client(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        from search.tracking._searches import unknown_search

        raise unknown_search(name, client, tracking_uri)
    runs = client.search_runs([experiment.experiment_id], max_results=50_000)
    parent = next((r for r in runs if r.data.tags.get("role") == "search"), None)
    if parent is None:
        raise SearchError(f"search {name!r} has no search run in {tracking_uri}")
    return client, parent, [r for r in runs if "mlflow.parentRunId" in r.data.tags and "trial" in r.data.tags]
