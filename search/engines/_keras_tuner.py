"""The KerasTuner engine: KerasTuner's oracles choose the parameters, the shared Session does the rest.

``--tuner random|bayesian|hyperband|grid`` picks the oracle. Its state lives under
``runs/keras_tuner/<name>`` and a rerun resumes it (KerasTuner reruns an interrupted trial from
scratch). Differences from the Optuna engine, by KerasTuner's design:

* ``--trials`` counts every trial KerasTuner started, infeasible and failed ones included;
* there is no per-epoch pruning (Hyperband's brackets decide epochs instead: ``tuner/epochs``, each
  trial trained from scratch);
* infeasible and failed trials are reported to KerasTuner as FAILED, but its own
  consecutive-failure abort is switched off: only real failures (not infeasible architectures) count,
  with the same limit as the Optuna engine.

Only the parameters a trial actually asked for are recorded (KerasTuner's oracle also carries values
of parameters that exist in other trials, e.g. of a block this trial does not have).
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError, option
from search._goal import GOAL
from search.engines._base import Engine, SearchOptions, check_same_search, register_engine, seed_everything, states_of
from search.runtime._session import SearchResult, Session, Signals, TrialStore, log
from search.runtime._workers import free_port, wait_for_parent_run, watch, worker_env, worker_session
from search.runtime._zygote import WorkerProcess
from search.space import ParamSource, Space

if TYPE_CHECKING:
    from search.model import Architecture
    from search.training import TrialResult

TUNERS = ("random", "bayesian", "hyperband", "grid")


class KerasTunerParams(ParamSource):
    """Ask KerasTuner's ``hp`` for each parameter, under the space's path-like names."""

    def __init__(self, hp: Any) -> None:
        super().__init__()
        self.hp = hp

    def _choice(self, name: str, options: tuple[Any, ...]) -> Any:
        return self.hp.Choice(name, list(options))

    def _int(self, name: str, low: builtins.int, high: builtins.int, step: builtins.int, log: bool) -> builtins.int:
        return int(self.hp.Int(name, low, high, step=None if log else step, sampling="log" if log else "linear"))

    def _float(self, name: str, low: builtins.float, high: builtins.float, log: bool) -> builtins.float:
        return float(self.hp.Float(name, low, high, sampling="log" if log else "linear"))

    def _boolean(self, name: str) -> bool:
        return bool(self.hp.Boolean(name))


def load_rows(directory: Path, name: str) -> dict[int, dict[str, Any]]:
    """Every finished trial of search ``name``: its own rows file, and one per worker process."""
    rows: dict[int, dict[str, Any]] = {}
    for path in sorted((directory / name).glob("cnn_search_trials*.json")):
        rows.update({int(k): v for k, v in json.loads(path.read_text()).items()})
    return rows


def _rows_file(directory: Path, name: str) -> Path:
    """This process's rows file (a KerasTuner worker of a distributed search writes its own)."""
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    suffix = f".{tuner_id}" if tuner_id and "chief" not in tuner_id else ""
    return directory / name / f"cnn_search_trials{suffix}.json"


def serve_oracle(session: Session, oracle: Any, *, trials: int, directory: Path) -> threading.Thread:
    """KerasTuner's chief: its oracle served over gRPC (``KERASTUNER_*`` set in this process) in a
    daemon thread; the workers are other processes."""
    import keras_tuner as kt

    class Chief(kt.Tuner):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            raise SearchError("the chief serves the oracle; trials run in the workers")

    chief = Chief(oracle=oracle, directory=str(directory), project_name=session.name, overwrite=False)
    chief.oracle.max_trials = trials
    # Declare every parameter up front (deepest blocks and head included): workers asking at the same
    # time would otherwise all get the empty first point and collide.
    hp = kt.HyperParameters()
    session.space.sample(KerasTunerParams(hp))
    for name, param in (
        ("blocks/depth", session.space.blocks["depth"]),
        ("head/dense_layers", session.space.head["dense_layers"]),
    ):
        if name in hp.values:
            hp.values[name] = max(param.values())
    session.space.sample(KerasTunerParams(hp))
    chief.oracle.update_space(hp)
    thread = threading.Thread(target=chief.search, kwargs={"verbose": 0}, name="keras-tuner-chief", daemon=True)
    thread.start()
    return thread


def oracle_options(seed: int | None, hyperparameters: Any = None) -> dict[str, Any]:
    """What every oracle of cnn-search gets: the objective, the seed, declared hyperparameters, and
    no consecutive-failure abort of its own (the Session counts real failures, not infeasible ones)."""
    import keras_tuner as kt

    return {
        "objective": kt.Objective(GOAL.metric, direction=GOAL.keras_tuner_direction),
        "seed": seed,
        "hyperparameters": hyperparameters,
        "max_consecutive_failed_trials": 10**9,
    }


#: The oracles whose first trials are the space's start points. Hyperband's brackets and the grid's
#: order are their own: those start as KerasTuner would.
START_TUNERS = ("random", "bayesian")


def start_first(oracle: Any, points: Sequence[Mapping[str, Any]]) -> Any:
    """Make trial ``i`` of ``oracle`` start point ``i`` for the first ``len(points)`` trials (a resumed
    search has them already); parameters a point leaves out take KerasTuner's defaults."""
    import keras_tuner as kt

    choose = oracle.populate_space

    def populate_space(trial_id: str) -> dict[str, Any]:
        index = int(trial_id)
        if index < len(points):
            return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": dict(points[index])}
        return choose(trial_id)

    oracle.populate_space = populate_space
    return oracle


def make_oracle(
    tuner: str,
    *,
    trials: int,
    seed: int | None,
    epochs: int,
    hyperparameters: Any = None,
    start: Sequence[Mapping[str, Any]] = (),
) -> Any:
    """KerasTuner's oracle ``tuner``; the random and bayesian ones try the ``start`` points first."""
    import keras_tuner as kt

    common = oracle_options(seed, hyperparameters)
    if tuner == "random":
        return start_first(kt.oracles.RandomSearchOracle(max_trials=trials, **common), start)
    if tuner == "bayesian":
        return start_first(kt.oracles.BayesianOptimizationOracle(max_trials=trials, **common), start)
    if tuner == "grid":
        return kt.oracles.GridSearchOracle(max_trials=trials, **common)
    if tuner == "hyperband":
        return kt.oracles.HyperbandOracle(max_epochs=max(epochs, 2), **common)
    raise SearchError(f"--tuner: unknown tuner {tuner!r}; expected one of {', '.join(TUNERS)}")


def search_keras_tuner(
    session: Session, *, tuner: str, trials: int, seed: int | None, epochs: int, directory: Path, signals: Signals
) -> list[dict[str, Any]]:
    """Run (or resume) the KerasTuner search; returns one row per finished trial."""
    start = session.space.start if tuner in START_TUNERS else ()
    return run_tuner(
        session,
        oracle=make_oracle(tuner, trials=trials, seed=seed, epochs=epochs, start=start),
        source_of=KerasTunerParams,
        trials=trials,
        limit_trials=tuner != "hyperband",
        directory=directory,
        signals=signals,
        start_points=len(start),
    )


def quiet_tracebacks() -> None:
    """KerasTuner prints the full traceback of every failed trial (``keras_tuner.src.config.DEBUG``
    is True by default; it has no public switch), an infeasible architecture's included, into the
    terminal's progress display. The Session already records each failure (reason in the trial's line,
    the traceback of a real error in MLflow as ``traceback.txt``), so the print is turned off."""
    import keras_tuner.src.config

    keras_tuner.src.config.DEBUG = False


def row_of(number: int, arch: Architecture, result: TrialResult, params: Mapping[str, Any]) -> dict[str, Any]:
    """A finished trial as a row of the rows file (and of ``cnn-search trials``)."""
    return {
        "trial": number,
        "state": result.state,
        GOAL.metric: result.value,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "params": result.params,
        "flops": result.flops,
        "seconds": round(result.train_seconds, 3),
        "architecture": arch.summary(),
        "reason": result.reason or "",
        "hyperparameters": dict(params),
    }


def best_of_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[float | None, int | None]:
    """(value, trial) of the best row by the goal, or (None, None)."""
    best = GOAL.best_of(rows)
    return (best[GOAL.metric], best["trial"]) if best is not None else (None, None)


def run_tuner(
    session: Session,
    *,
    oracle: Any,
    source_of: Callable[[Any], ParamSource],
    trials: int,
    directory: Path,
    signals: Signals,
    limit_trials: bool = True,
    hypermodel: Any = None,
    start_points: int = 0,
) -> list[dict[str, Any]]:
    """Run (or resume) a KerasTuner-style search (KerasTuner's or AutoKeras's oracle) whose trials are
    the Session's: ``source_of(hp)`` turns a trial's hyperparameters into a ParamSource. ``hypermodel``,
    when given, only declares hyperparameters (KerasTuner builds it to populate the space). ``trials``
    caps the trials the oracle starts unless ``limit_trials`` is false (Hyperband sets its own). The
    first ``start_points`` trials are the oracle's start points, tagged ``start_point`` in MLflow."""
    import keras_tuner as kt

    quiet_tracebacks()
    files = _RowsFiles.read(directory, session.name)

    class CnnSearchTuner(kt.Tuner):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            signals.check()
            number = int(trial.trial_id)
            source = source_of(trial.hyperparameters)
            hyperband_epochs = trial.hyperparameters.values.get("tuner/epochs")
            if hyperband_epochs:
                session.objective.epochs = int(hyperband_epochs)
            try:
                result = session.trial(
                    number,
                    source,
                    _TrialRows(files, number, source, start_points),
                    signals=signals,
                    target=trials,
                    tags={"start_point": str(number)} if number < start_points else None,
                )
            except SearchError as exc:  # failures piled up: KerasTuner stops its search on a FatalError
                raise kt.errors.FatalError(str(exc)) from None
            if result.state != "complete":
                raise kt.errors.FailedTrialError(f"{result.state}: {result.reason}")
            return {GOAL.metric: float(result.value or 0.0)}

        def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:  # models are kept by the Session
            pass

        def load_model(self, trial: Any) -> Any:
            raise SearchError("models are kept by cnn-search, not by KerasTuner")

    instance = CnnSearchTuner(
        oracle=oracle, hypermodel=hypermodel, directory=str(directory), project_name=session.name, overwrite=False
    )
    if limit_trials:  # a rerun with a larger --trials continues the reloaded oracle
        instance.oracle.max_trials = trials
    _search(instance)
    rows = load_rows(directory, session.name)
    return GOAL.best_first(rows.values())


@dataclasses.dataclass
class _RowsFiles:
    """The rows of a search: every process's (for the best so far), and this process's own, kept in ``path``."""

    rows: dict[int, dict[str, Any]]
    own: dict[int, dict[str, Any]]
    path: Path

    @classmethod
    def read(cls, directory: Path, name: str) -> _RowsFiles:
        """The rows of search ``name`` as its rows files hold them now."""
        rows = load_rows(directory, name)  # every process's, for the best so far
        path = _rows_file(directory, name)
        own = {int(k): v for k, v in json.loads(path.read_text()).items()} if path.is_file() else {}
        return cls(rows, own, path)


class _TrialRows(TrialStore):
    """The store of trial ``number``: the rows files, every process's and this one's own."""

    def __init__(self, files: _RowsFiles, number: int, source: ParamSource, start_points: int) -> None:
        self.files, self.number, self.source, self.start_points = files, number, source, start_points

    def best(self) -> tuple[float | None, int | None]:
        return best_of_rows(self.files.rows.values())

    def record(self, arch: Any, result: Any, run_id: str) -> None:
        rows, own, number = self.files.rows, self.files.own, self.number
        rows[number] = own[number] = row_of(number, arch, result, self.source.params)
        if number < self.start_points:  # the rows say which trials were the space's start points
            rows[number]["start_point"] = number
        self.files.path.parent.mkdir(parents=True, exist_ok=True)
        self.files.path.write_text(json.dumps(own, default=str))

    def done(self) -> int:
        return len(self.files.rows)


def _search(tuner: Any) -> None:
    """Run ``tuner``'s search; KerasTuner stopping it on piled-up failures raises :class:`SearchError`."""
    import keras_tuner as kt

    try:
        tuner.search(verbose=0)
    except kt.errors.FatalError as exc:
        raise SearchError(str(exc)) from None
    except RuntimeError as exc:
        if "consecutive failures" in str(exc):
            raise SearchError(str(exc)) from None
        raise


def tuner_directory(runs_dir: Path, engine: str) -> Path:
    """Where a KerasTuner-style engine keeps its state: ``runs/keras_tuner`` or ``runs/autokeras``."""
    return Path(runs_dir) / engine.replace("-", "_")


# -- worker processes: KerasTuner's own chief/worker mode on loopback -----------------------------------
def supervise_keras_tuner(
    session: Session,
    *,
    workers: int,
    tuner: str,
    trials: int,
    seed: int | None,
    epochs: int,
    directory: Path,
    signals: Signals,
    gpus: list[str],
) -> None:
    """KerasTuner's distributed mode: this process is the chief (its oracle served over gRPC on
    127.0.0.1), ``workers`` processes run the trials (``KERASTUNER_TUNER_ID=tuner<i>``). A worker that
    crashes is started again with the same id, and KerasTuner hands it its unfinished trial again."""
    address = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port())}
    saved = {k: os.environ.get(k) for k in (*address, "KERASTUNER_TUNER_ID")}
    os.environ.update(address, KERASTUNER_TUNER_ID="chief")
    try:
        points = session.space.start if tuner in START_TUNERS else ()
        oracle = make_oracle(tuner, trials=trials, seed=seed, epochs=epochs, start=points)
        serve_oracle(session, oracle, trials=trials, directory=directory)
        command = [sys.executable, "-m", "search", "worker", session.name, "--engine", "keras-tuner"]
        command += ["--runs-dir", str(session.runs_dir), "--tracking-uri", session.tracking_uri]
        command += [] if log.isEnabledFor(logging.INFO) else ["--quiet"]

        def start(index: int) -> WorkerProcess:
            env = {**worker_env(index, gpus, workers), **address, "KERASTUNER_TUNER_ID": f"tuner{index}"}
            return subprocess.Popen([*command, "--index", str(index)], env=env)

        # a worker that exits 0 has been told by the chief's oracle that no trial is left
        watch(start, workers=workers, signals=signals, restart_after_exit=lambda: False)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_keras_tuner_worker(name: str, *, runs_dir: str | Path = "runs", tracking_uri: str | None = None) -> int:
    """One worker of a distributed KerasTuner search (``KERASTUNER_*`` set by the chief)."""
    import json

    if "KERASTUNER_ORACLE_IP" not in os.environ:
        raise SearchError("a KerasTuner worker is started by cnn-search run --engine keras-tuner --workers N")
    runs = Path(runs_dir)
    directory = tuner_directory(runs, "keras-tuner")
    state_file = directory / name / "cnn_search.json"
    if not state_file.is_file():
        raise SearchError(f"no KerasTuner search named {name!r} in {directory}")

    def state() -> dict[str, Any]:
        return dict(json.loads(state_file.read_text()))

    first = state()
    options = dataclasses.replace(SearchOptions.from_record(first), runs_dir=runs, tracking_uri=tracking_uri)
    session = worker_session(name, "keras-tuner", first, options)
    space = session.space
    before = len(_own_rows(directory, name))
    with session.record.running(wait_for_parent_run(state, 120)) as signals:
        search_keras_tuner(
            session,
            tuner=first["tuner"],
            trials=int(first["target_trials"]),
            seed=first.get("seed"),
            epochs=first.get("epochs") or max(space.training["epochs"].values()),
            directory=directory,
            signals=signals,
        )
    return len(_own_rows(directory, name)) - before


def _own_rows(directory: Path, name: str) -> dict[str, Any]:
    import json

    path = _rows_file(directory, name)
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def _rechecked(
    session: Session, options: SearchOptions, rows: list[dict[str, Any]], best: dict[str, Any], state: dict[str, Any]
) -> dict[str, Any]:
    """The row of the champion by the best mean of fresh runs, or ``best`` when none is crowned (a crowned
    one's summary and rule are added to ``state``)."""
    from search.runtime._recheck import crown

    complete = [
        {"trial": r["trial"], "value": r[GOAL.metric], "params": r["hyperparameters"],
         "architecture_hash": r.get("architecture_hash") or r["architecture"]}
        for r in rows if r["state"] == "complete" and r[GOAL.metric] is not None
    ]  # fmt: skip
    crowned = crown(session, complete, options.recheck, options.recheck_runs, within=options.recheck_within)
    if crowned is not None:
        best = next(r for r in rows if r["trial"] == crowned[0])
        state.update(recheck_summary=crowned[1], champion_rule=crowned[2])
    return best


def _finish(
    session: Session, options: SearchOptions, best: dict[str, Any], single: dict[str, Any], state: dict[str, Any]
) -> None:
    """Make trial ``best`` the search's champion (``single``: the best of the search's own runs), recorded in
    ``state``."""
    metrics, uri = session.winner.finish(
        best_trial=best["trial"], best_params=best["hyperparameters"], best_epoch=best["best_epoch"],
        refit=options.refit,
    )  # fmt: skip
    if options.recheck:
        session.winner.beside_single_run(metrics, single=single["trial"], champion=best["trial"])
    state.update(champion_trial=best["trial"], test_metrics=metrics, model_uri=uri)
    if session.winner.keeps_candidates:  # every model was kept for the re-check: the champion's stays
        session.winner.keep_only({best["trial"]})


@register_engine
class KerasTunerEngine(Engine):
    """KerasTuner's oracles (``--tuner``) choose the trials; the oracle's state and one rows file per
    process live under ``runs/keras_tuner/NAME`` (``cnn_search.json`` records the search). ``--workers N``
    runs KerasTuner's own chief/worker mode on loopback (:func:`search.runtime._workers.supervise_keras_tuner`)."""

    name = "keras-tuner"
    tuners = TUNERS
    workers = True
    rechecks = True
    resumes = "the oracle: finished trials are kept and an interrupted trial runs again from scratch"

    def check(self, options: SearchOptions, space: Space) -> SearchOptions:
        if options.recycles:
            raise SearchError(
                f"{option('recycle_after')}/{option('max_worker_rss_mb')}: KerasTuner's workers are not recycled; "
                f"use {option('workers')} N"
            )
        return super().check(options, space)

    @staticmethod
    def search_keywords(session: Session, options: SearchOptions) -> dict[str, Any]:
        """What every KerasTuner-style search call takes from the options (in this process or supervised)."""
        assert options.tuner is not None
        epochs = options.planned_epochs(session.space)
        return {"tuner": options.tuner, "trials": options.trials, "seed": options.seed, "epochs": epochs}

    def search_trials(
        self, session: Session, options: SearchOptions, *, directory: Path, signals: Signals
    ) -> list[dict[str, Any]]:
        """Run (or resume) the trials in this process; one row per finished trial."""
        keywords = self.search_keywords(session, options)
        return search_keras_tuner(session, directory=directory, signals=signals, **keywords)

    def run(self, session: Session, options: SearchOptions) -> SearchResult:
        space, bundle, name = session.space, session.data, session.name
        directory = tuner_directory(session.runs_dir, self.name)
        state_file = directory / name / "cnn_search.json"
        state = json.loads(state_file.read_text()) if state_file.is_file() else {}
        epochs = options.planned_epochs(space)
        state.update(check_same_search(state, space, bundle, name))
        state.update(  # what KerasTuner worker processes read: the options (SearchOptions.from_record), and more
            **{**options.record(), "epochs": epochs},
            data_seed=bundle.seed,
            target_trials=options.trials,
            measures=options.measures,
        )
        state_file.parent.mkdir(parents=True, exist_ok=True)

        def save_state() -> None:
            tmp = state_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(state, indent=2))
            os.replace(tmp, state_file)

        def recorded(experiment_id: str, parent_run_id: str) -> None:
            state.update(mlflow_parent_run_id=parent_run_id, mlflow_experiment_id=experiment_id)
            save_state()

        save_state()
        before = len(load_rows(directory, name))
        if before < options.trials:
            session.search_started(done=before, target=options.trials)
        seed_everything(options.seed)
        with session.record.running(state.get("mlflow_parent_run_id"), on_ready=recorded) as signals:
            if options.supervised:
                supervise_keras_tuner(
                    session, workers=options.workers or 1, gpus=list(options.gpus), directory=directory,
                    signals=signals, **self.search_keywords(session, options),
                )  # fmt: skip
                rows = GOAL.best_first(load_rows(directory, name).values())
            else:
                rows = self.search_trials(session, options, directory=directory, signals=signals)
            best = single = rows[0] if rows and rows[0][GOAL.metric] is not None else None
            if best is not None and options.recheck:  # the best mean of fresh runs (search/runtime/_recheck.py)
                best = _rechecked(session, options, rows, best, state)
            if best is not None and single is not None and state.get("champion_trial") != best["trial"]:
                _finish(session, options, best, single, state)
            state.update(
                mlflow_parent_run_id=session.record.parent_run_id, mlflow_experiment_id=session.record.experiment_id
            )
            if options.report and len(rows) > before:
                session.winner.pictures()
            save_state()
        return self._result(session, rows, best, state, before=before)

    def _result(
        self,
        session: Session,
        rows: list[dict[str, Any]],
        best: Mapping[str, Any] | None,
        state: Mapping[str, Any],
        *,
        before: int,
    ) -> SearchResult:
        """What :meth:`run` returns: the champion ``best``, the recorded ``state`` and the trials ``rows``
        (``before`` of them finished before this run)."""
        from search.space import FixedParams

        return SearchResult(
            name=session.name,
            engine=self.name,
            best_trial=best["trial"] if best else None,
            best_value=best[GOAL.metric] if best else None,
            architecture=session.space.sample(FixedParams(best["hyperparameters"])) if best else None,
            test_metrics=dict(state.get("test_metrics", {})),
            model_uri=state.get("model_uri"),
            states=states_of(rows),
            wall_seconds=time.perf_counter() - session.started,
            experiment_id=session.record.experiment_id,
            parent_run_id=session.record.parent_run_id,
            tracking_uri=session.tracking_uri,
            nothing_to_do=len(rows) == before,
            new_trials=len(rows) - before,
            trials=rows,
        )

    def trial_rows(
        self, name: str, *, runs_dir: Path, storage: str | None = None
    ) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
        folder = tuner_directory(runs_dir, self.name) / name
        if not folder.is_dir():
            raise KeyError(name)
        state_file = folder / "cnn_search.json"
        recorded = json.loads(state_file.read_text()) if state_file.is_file() else {}
        from search.runtime._recheck import annotate

        rows = GOAL.best_first(load_rows(folder.parent, name).values())
        return annotate(rows, recorded.get("recheck_summary"), recorded.get("champion_trial")), recorded

    def worker(self, name: str, **options: Any) -> int:
        return run_keras_tuner_worker(
            name, runs_dir=options.get("runs_dir", "runs"), tracking_uri=options.get("tracking_uri")
        )
