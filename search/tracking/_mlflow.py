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

from search._goal import GOAL

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
        from search.tracking._disk import quiet_disk_full
        from search.tracking._store import open_client

        quiet_disk_full()

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
    ) -> tuple[str, bool]:
        """The parent run of the search: the recorded one (set RUNNING again), else a new one. Returns
        its run id and whether it was created now (a new parent has no children to :meth:`reconcile`).

        ``parent_run_id`` is the parent the engine's own record (Optuna's study, KerasTuner's state) knows.
        When it knows none while the experiment holds a parent run with trial runs under it, that record
        was lost (``optuna.journal`` deleted, the store kept): continuing it would log a second search's
        trials under the first one's parent. The earlier parent is kept, untouched but for its ``role``
        tag (``earlier-search``) and a ``replaced`` tag saying why; a new parent run starts beside it in
        the same experiment, and this is said (issue 31, item 3; docs/RELIABILITY.md)."""
        run_id = parent_run_id
        if run_id is None:
            found = self.client.search_runs([experiment_id], filter_string="tags.role = 'search'", max_results=1)
            run_id = found[0].info.run_id if found else None
            if run_id is not None and self._set_aside_if_lost(experiment_id, run_id, name):
                run_id = None
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            return run_id, False
        run = self.client.create_run(experiment_id, run_name=name, tags={"role": "search", **tags})
        self.log(run.info.run_id, params=params)
        return str(run.info.run_id), True

    def _set_aside_if_lost(self, experiment_id: str, run_id: str, name: str) -> bool:
        """Whether parent ``run_id`` has trial runs although the engine's record knows no parent; if so
        it is tagged ``role=earlier-search`` (see :meth:`start_search`)."""
        import logging

        children = self.client.search_runs(
            [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'", max_results=1
        )
        if not children:
            return False
        reason = "the search's own record (its Optuna study or tuner state) was gone when it was run again"
        self.client.set_tag(run_id, "role", "earlier-search")
        self.client.set_tag(run_id, "replaced", reason)
        logging.getLogger("search").warning(
            "search %r: MLflow keeps a parent run (%s) with trial runs, but the search's own record (the "
            "Optuna study in its storage, or the tuner's state) does not know it: it was deleted or replaced. "
            "That run and its trials are kept, tagged role=earlier-search; this search starts a new parent run "
            "beside it in experiment %s. To continue the earlier search instead, restore its optuna.journal.",
            name,
            run_id,
            experiment_id,
        )
        return True

    def reconcile(self, experiment_id: str, parent_run_id: str, *, killed_reason: str) -> list[str]:
        """Children left RUNNING by a process that died while writing them (between creating the run
        and ending it, :meth:`record_trial`) are set to KILLED; a run another live process is writing
        right now (its ``worker`` tag, ``host:pid``, on this host) is left alone, and so is a run of
        another host younger than a minute. Returns the run ids set. One query: the search calls it
        when it starts again under an existing parent run, not for a new one."""
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

        from search._process import worker_id

        existing = self.trial_run(experiment_id, parent_run_id, number) if state == "killed" else None
        if existing is not None and self.client.get_run(existing).info.status == "FINISHED":
            # written whole, its process killed before the study was told: the record is kept as it is
            # (the study fails the trial and retries it), said on the run
            self.log(existing, tags={"study_state": "failed", "study_reason": tags.get("reason", state)})
            return existing
        if existing is not None:  # half-written by a process killed while recording it: finish that one
            self.log(existing, tags={"state": state, **tags})
            self.client.set_terminated(existing, status=STATUS[state])
            return existing
        run_id, now = self._child_run(
            experiment_id,
            f"trial-{number}",
            started_ms,
            tags={
                "mlflow.parentRunId": parent_run_id,
                "trial": str(number),
                "state": state,
                "worker": worker_id(),  # who writes it: reconcile() leaves a live writer's run alone
                **tags,
            },
            params=params,
            history=history,
            final=final,
        )
        from search import hooks

        hooks.call("record_step", step="run", trial=number)
        if architecture is not None:
            self.client.log_text(run_id, json.dumps(architecture, indent=2), "architecture.json")
        if traceback:
            self.client.log_text(run_id, traceback, "traceback.txt")
        hooks.call("record_step", step="artifacts", trial=number)
        self.client.set_terminated(run_id, status=STATUS[state], end_time=now)
        hooks.call("record_step", step="ended", trial=number)
        return run_id

    def log_winner(self, parent_run_id: str, name: str, record: Mapping[str, Any]) -> str:
        """The search's winner on its run (tags ``best_trial`` and ``best_architecture``, its test
        metrics, ``best_architecture.json``, ``confusion_matrix.json``) and its ``.keras`` file
        registered as a new version of model ``name`` with the alias ``champion``; returns the model's
        URI. ``record``: what :meth:`search.runtime._winner.Winner.finish` measured (a worker's record, read
        back from the spool, is the same dict)."""
        from mlflow.entities import Metric

        trial = int(record["trial"])
        self.log(parent_run_id, tags={"best_trial": str(trial), "best_architecture": record["summary"]})
        now = _now_ms()
        metrics = [Metric(k, float(v), now, 0) for k, v in record["metrics"].items()]
        self.client.log_batch(parent_run_id, metrics=metrics)
        self.client.log_text(parent_run_id, json.dumps(record["architecture"], indent=2), "best_architecture.json")
        self.client.log_dict(parent_run_id, record["confusion"], "confusion_matrix.json")
        version = register_keras_file(
            self.tracking_uri,
            name,
            Path(record["model_file"]),
            run_id=parent_run_id,
            inputs=(list(record["inputs"][0]), record["inputs"][1]),
            outputs=(list(record["outputs"][0]), record["outputs"][1]),
            trial=trial,
            backend=record["backend"],
        )
        self.client.set_registered_model_alias(name, "champion", version)
        self.log_paid(parent_run_id, trial)
        return f"models:/{name}@champion"

    def log_paid(self, parent_run_id: str, winner: int) -> None:
        """What searching paid over the space's start points, on the search's run and said
        (:mod:`search.tracking._paid`)."""
        import logging

        from mlflow.entities import Metric

        from search.tracking._paid import search_paid

        paid = search_paid(self.client, parent_run_id, winner)
        if paid is None:
            return
        metrics, tags, line = paid
        now = _now_ms()
        self.client.log_batch(parent_run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        self.log(parent_run_id, tags=tags)
        logging.getLogger("search").info("%s", line)

    def trial_run(self, experiment_id: str, parent_run_id: str, number: int) -> str | None:
        """The run id of trial ``number``'s child run, if one was written."""
        runs = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.trial = '{number}'",
            max_results=1,
        )
        return str(runs[0].info.run_id) if runs else None

    def record_recheck(
        self,
        experiment_id: str,
        parent_run_id: str,
        *,
        trial: int,
        index: int,
        seed: int,
        fold: str | None,
        state: str,
        history: Mapping[str, list[float]],
        final: Mapping[str, float],
        started_ms: int,
    ) -> str:
        """A re-run of trial ``trial`` (:mod:`search.runtime._recheck`) as the child run
        ``recheck-<trial>-<index>``, tagged ``phase=recheck`` (no ``trial`` tag: tables of trials leave it out)."""
        run_id, now = self._child_run(
            experiment_id,
            f"recheck-{trial}-{index}",
            started_ms,
            tags={
                "mlflow.parentRunId": parent_run_id,
                "phase": "recheck",
                "recheck_of": str(trial),
                "recheck": str(index),
                "seed": str(seed),
                "fold": fold or "the search's validation split",
                "state": state,
            },
            params=None,
            history=history,
            final=final,
        )
        self.client.set_terminated(run_id, status=STATUS[state], end_time=now)
        return run_id

    def _child_run(
        self,
        experiment_id: str,
        name: str,
        started_ms: int,
        *,
        tags: Mapping[str, str],
        params: Mapping[str, Any] | None,
        history: Mapping[str, list[float]],
        final: Mapping[str, float],
    ) -> tuple[str, int]:
        """A child run (a trial or a re-run) created with its real start time, its per-epoch ``history`` and
        ``final`` metrics written in one batch; the caller ends it. Returns its id and the time written."""
        from mlflow.entities import Metric

        run = self.client.create_run(experiment_id, start_time=started_ms, run_name=name, tags=dict(tags))
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
        return run_id, now

    def recheck_runs(self, experiment_id: str, parent_run_id: str) -> dict[tuple[int, int], float | None]:
        """The re-runs already recorded under the search: ``(trial, index) -> validation accuracy`` (None: failed)."""
        runs = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.phase = 'recheck'",
            max_results=50_000,
        )
        found: dict[tuple[int, int], float | None] = {}
        for run in runs:
            if run.info.status in ("FINISHED", "FAILED"):
                key = (int(run.data.tags["recheck_of"]), int(run.data.tags["recheck"]))
                found[key] = run.data.metrics.get(GOAL.best_metric)
        return found

    def mark_front(
        self,
        experiment_id: str,
        parent_run_id: str,
        *,
        front: list[int],
        complete: list[int],
        goals: list[str],
        constraints: Mapping[str, float] | None = None,
        chance: float | None = None,
    ) -> None:
        """Tag each complete trial's run ``pareto_front`` (``true``/``false``) and the search's run with the
        front's trial numbers, the goals and the validation split's ``chance`` level (``val_chance``: the
        report draws it), so the MLflow UI can filter and chart the front."""
        runs = self.client.search_runs(
            [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=50_000
        )
        on, done = set(front), set(complete)
        for run in runs:
            trial = run.data.tags.get("trial")
            if trial is not None and trial.isdigit() and int(trial) in done:
                self.log(run.info.run_id, tags={"pareto_front": "true" if int(trial) in on else "false"})
        tags = {"pareto_front": ",".join(map(str, front)), "goals": ",".join(goals)}
        if chance is not None:
            tags["val_chance"] = repr(float(chance))
        self.log(parent_run_id, tags={**tags, "constraints": json.dumps(dict(constraints or {}))})

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
    """The model's pip requirements, stated (MLflow's own inference imports and times every module): Keras,
    the backend's package and NumPy (:func:`search._backend.requirements`)."""
    from search._backend import requirements

    return requirements()


def register_keras_model(tracking_uri: str, name: str, model: Any, *, run_id: str, example: Any, trial: int) -> str:
    """Log ``model`` (Keras flavor, with a signature inferred from ``example`` and the model's answers
    to it) on ``run_id``, register it as a new version of ``name`` tagged with ``trial``, and return the
    version number: :func:`register_keras_file` on the model saved to a temporary ``.keras`` file."""
    import tempfile

    import keras

    from search.training._eager import predict_eagerly

    answers = predict_eagerly(model, example)  # no predict function traced
    with tempfile.TemporaryDirectory(prefix="cnn-search-model-") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return register_keras_file(
            tracking_uri,
            name,
            path,
            run_id=run_id,
            inputs=tensor_spec(example),
            outputs=tensor_spec(answers),
            trial=trial,
            backend=keras.backend.backend(),
        )


def tensor_spec(batch: Any) -> tuple[list[int], str]:
    """(shape of one example, dtype) of a batch: one side of a model's signature, as
    :func:`register_keras_file` takes it (and as JSON keeps it).

    >>> import numpy as np
    >>> tensor_spec(np.zeros((5, 8, 8, 1), dtype="uint8"))
    ([8, 8, 1], 'uint8')
    """
    import numpy as np

    array = np.asarray(batch)
    return list(array.shape[1:]), str(array.dtype)


def register_keras_file(
    tracking_uri: str,
    name: str,
    keras_file: Path,
    *,
    run_id: str,
    inputs: tuple[list[int], str],
    outputs: tuple[list[int], str],
    trial: int,
    backend: str,
) -> str:
    """Log the saved model ``keras_file`` on ``run_id`` as an MLflow model of the Keras flavor, register
    it as a new version of ``name`` tagged with ``trial`` and return the version number, without
    importing Keras: the process that registers a supervised search's winner has MLflow loaded and no
    TensorFlow (5 s to import). ``inputs`` and ``outputs`` are (shape of one example, dtype): the
    signature, batch dimension left free. The model directory is the one ``mlflow.keras.save_model``
    writes (``data/model.keras``, ``data/keras_module.txt``, the ``keras`` and ``python_function``
    flavors, pinned requirements), so ``mlflow.keras.load_model`` and ``mlflow.pyfunc.load_model``
    load it (``tests/test_export.py``).

    (``input_example=`` fails in MLflow 3.17, "No such file ... input_example.json"; a signature works.)
    MLflow's own "Successfully registered model" / "Created version" lines are not printed: the caller
    says where the model went, and they would cut into the live display.
    """
    import contextlib
    import io

    import mlflow
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.models import Model, infer_signature

    signature = infer_signature(
        np.zeros((1, *inputs[0]), dtype=inputs[1]), np.zeros((1, *outputs[0]), dtype=outputs[1])
    )
    mlflow.set_tracking_uri(tracking_uri)  # Model.log and the registry read the global URI
    # MLflow 3 files the logged model under the *active* experiment: without this it is experiment 0,
    # whose artifact root is ./mlruns in whatever folder the process runs in.
    mlflow.set_experiment(experiment_id=MlflowClient(tracking_uri=tracking_uri).get_run(run_id).info.experiment_id)
    with contextlib.redirect_stderr(io.StringIO()):  # print()s and Python warnings; its logging and errors still show
        info = Model.log(
            artifact_path=None,
            name="model",
            flavor=_KerasFile,
            flavor_name="mlflow.keras",
            keras_file=Path(keras_file),
            backend=backend,
            registered_model_name=name,
            signature=signature,
        )
    version = str(info.registered_model_version)
    MlflowClient(tracking_uri=tracking_uri).set_model_version_tag(name, version, "trial", str(trial))
    return version


class _KerasFile:
    """The part of ``mlflow.keras.save_model`` that writes the model directory, from a ``.keras`` file
    already saved (``Model.log`` passes its ``flavor=`` the directory to fill and the MLmodel to add to)."""

    @staticmethod
    def save_model(path: str, mlflow_model: Any, *, keras_file: Path, backend: str, signature: Any) -> None:
        import shutil
        from importlib.metadata import version

        import yaml
        from mlflow import pyfunc
        from mlflow.models.model import MLMODEL_FILE_NAME
        from mlflow.utils.environment import (
            _CONDA_ENV_FILE_NAME,
            _PYTHON_ENV_FILE_NAME,
            _REQUIREMENTS_FILE_NAME,
            _mlflow_conda_env,
            _PythonEnv,
        )

        data = Path(path) / "data"
        data.mkdir(parents=True)
        (data / "keras_module.txt").write_text("keras")
        shutil.copyfile(keras_file, data / "model.keras")
        mlflow_model.signature = signature
        mlflow_model.add_flavor(
            "keras", data="data", keras_version=version("keras"), keras_backend=backend, save_exported_model=False
        )
        pyfunc.add_to_model(
            mlflow_model, loader_module="mlflow.keras", conda_env=_CONDA_ENV_FILE_NAME, python_env=_PYTHON_ENV_FILE_NAME
        )
        mlflow_model.save(str(Path(path) / MLMODEL_FILE_NAME))
        # what mlflow.keras writes for stated requirements, without its check of them against every
        # installed distribution (0.36 s, on the critical path at the end of a search)
        from search.tracking._store import installed_mlflow

        mlflow = installed_mlflow()
        requirements = [*([f"{mlflow[0]}=={mlflow[1]}"] if mlflow else []), *_requirements()]
        conda_env = _mlflow_conda_env(additional_pip_deps=requirements, install_mlflow=False)
        (Path(path) / _CONDA_ENV_FILE_NAME).write_text(yaml.safe_dump(conda_env, default_flow_style=False))
        (Path(path) / _REQUIREMENTS_FILE_NAME).write_text("\n".join(requirements))
        _PythonEnv.current().to_yaml(str(Path(path) / _PYTHON_ENV_FILE_NAME))


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
