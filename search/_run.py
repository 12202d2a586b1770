"""``run_search``: the one function behind ``cnn-search run``."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search._goal import GOAL
from search._names import check_name
from search.space import Space, load_space

if TYPE_CHECKING:
    import optuna

    from search.data import DataBundle
    from search.engines._session import SearchResult, Session, TrialEvent

log = logging.getLogger("search")


ENGINES = ("optuna", "keras-tuner", "autokeras")
#: A running trial is stopped at this multiple of --timeout (no new trial starts after --timeout).
HARD_LIMIT = 1.1
#: Trials a supervised worker process runs before a fresh one replaces it, unless told otherwise
#: (measured: TensorFlow keeps 5-6 MB per trained model in a process; benchmarks/workers.py).
RECYCLE_AFTER = 50
#: With no --workers on a machine without GPUs, an Optuna search of at least this many trial-epochs
#: (trials x epochs), and no --timeout under AUTO_WORKERS_MIN_SECONDS, runs in CPU_WORKERS worker
#: processes. Measured on 2 cores (benchmarks/workers.py): 2 worker processes ran 2.65x the
#: trials/hour of the in-process worker once started, because TensorFlow does not keep 2 cores busy
#: with tiny CNNs; a worker's start (about 5 s of TensorFlow import and data loading) only pays off
#: when the search is not over in seconds. The two workers import TensorFlow side by side, so with a
#: --timeout they already pay at 15 s (the suite's digits and fewshot tasks, vgg, 5 epochs a trial:
#: at --timeout 15, 8 trials either way, 17.9 s of wall against 22.9 s in-process; at --timeout 30,
#: 29 trials against 15 on digits and 37 against 20 on fewshot). Was 60 s, never measured.
AUTO_WORKERS_MIN_EPOCHS = 40
AUTO_WORKERS_MIN_SECONDS = 15
#: One worker process per core, at most this many (measured on 2 cores only).
CPU_WORKERS = 2


#: Memory a worker process is planned with when --workers is capped by the machine's available memory:
#: a worker training the shipped spaces' CNNs holds 0.9 GB resident (TensorFlow, the data, MLflow;
#: ``worker_rss_mb`` on every Optuna trial), rounded up.
WORKER_MIB = 1024


def available_mib() -> int | None:
    """MemAvailable from /proc/meminfo in MiB (Linux), else None (not capped by memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def cap_workers(
    requested: int, *, trials: int, cores: int | None = None, memory_mib: int | None = None
) -> tuple[int, str | None]:
    """At most one worker per trial, per CPU core (TensorFlow processes beyond the cores only contend),
    and per :data:`WORKER_MIB` of available memory; returns (workers, what capped it or None).

    >>> cap_workers(64, trials=3, cores=2, memory_mib=100_000)
    (2, '2 CPU cores, 3 trials')
    >>> cap_workers(2, trials=10, cores=2, memory_mib=1500)
    (1, 'memory for 1 worker(s) of ~1024 MiB (1500 MiB available)')
    """
    cores = cores if cores is not None else os.cpu_count() or 1
    memory_mib = memory_mib if memory_mib is not None else available_mib()
    limits = {f"{cores} CPU cores": cores, f"{trials} trials": trials}
    if memory_mib is not None:
        fits = max(1, memory_mib // WORKER_MIB)
        limits[f"memory for {fits} worker(s) of ~{WORKER_MIB} MiB ({memory_mib} MiB available)"] = fits
    workers = min(requested, *limits.values())
    if workers == requested:
        return workers, None
    return workers, ", ".join(why for why, limit in limits.items() if limit < requested)


def default_workers(engine: str, gpus: list[str], *, trials: int, epochs: int, timeout: float | None) -> int:
    """Workers when ``--workers`` is not given: one per visible GPU; on a CPU, one per core (at most
    :data:`CPU_WORKERS`) for an Optuna search of at least :data:`AUTO_WORKERS_MIN_EPOCHS` trial-epochs
    whose ``--timeout``, if any, is at least :data:`AUTO_WORKERS_MIN_SECONDS`; else one in this process.

    >>> default_workers("optuna", [], trials=20, epochs=20, timeout=None) == min(CPU_WORKERS, os.cpu_count() or 1)
    True
    >>> default_workers("optuna", [], trials=3, epochs=1, timeout=None)
    1
    >>> default_workers("optuna", ["0", "1"], trials=3, epochs=1, timeout=None)  # one per GPU
    2
    >>> default_workers("optuna", [], trials=100, epochs=5, timeout=10)  # a search of seconds: in this process
    1
    """
    if gpus:
        return len(gpus)
    long = trials * epochs >= AUTO_WORKERS_MIN_EPOCHS and (timeout is None or timeout >= AUTO_WORKERS_MIN_SECONDS)
    return max(1, min(CPU_WORKERS, os.cpu_count() or 1)) if engine == "optuna" and long else 1


def check_limits(*, trials: int | None = None, epochs: int | None = None, timeout: float | None = None) -> None:
    """Refuse out-of-range ``--trials``, ``--epochs`` and ``--timeout`` before anything is created: a
    search must always end (``--epochs 0`` or ``-3`` trained nothing and was never counted, so the
    search never reached its target).

    >>> check_limits(trials=3, epochs=-3)
    Traceback (most recent call last):
    ...
    search._errors.SearchError: --epochs: expected a whole number of epochs >= 1, received -3
    """
    if trials is not None and trials < 1:
        raise SearchError(f"--trials: expected a whole number >= 1, received {trials}")
    if epochs is not None and epochs < 1:
        raise SearchError(f"--epochs: expected a whole number of epochs >= 1, received {epochs}")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise SearchError(f"--timeout: expected a finite number of seconds > 0, received {timeout}")


def default_name(space: Space, data: str, engine: str = "optuna") -> str:
    """``SPACE-DATA`` for Optuna, ``SPACE-DATA-ENGINE`` for the others (one MLflow experiment each)."""
    from search._names import safe_name

    base = f"{space.name}-{Path(str(data)).stem}"
    return safe_name(base if engine == "optuna" else f"{base}-{engine}")


def check_same_search(recorded: dict[str, Any], space: Space, data: DataBundle, name: str) -> dict[str, Any]:
    """Refuse to continue search ``name`` with another space or other data than it was started with;
    returns what identifies it, to be recorded (fingerprints last, so a half-written record is retried)."""
    if "data_fingerprint" in recorded:
        if recorded.get("space_fingerprint") != space.fingerprint():
            raise SearchError(
                f"search {name!r} already exists with a different space ({recorded.get('space')!r}, "
                f"fingerprint {recorded.get('space_fingerprint')}); received space {space.name!r} (fingerprint "
                f"{space.fingerprint()}). Use another --name, or the same space to continue it."
            )
        if recorded.get("data_fingerprint") != data.fingerprint:
            raise SearchError(
                f"search {name!r} already exists on other data ({recorded.get('data')!r}, fingerprint "
                f"{recorded.get('data_fingerprint')}); received {data.source!r} (fingerprint {data.fingerprint}). "
                "Use another --name, or the same data and split to continue it."
            )
    return {
        "space": space.name,
        "space_definition": space.to_dict(),
        "data": data.source,
        "space_fingerprint": space.fingerprint(),
        "data_fingerprint": data.fingerprint,
    }


def _check_study(study: optuna.Study, space: Space, data: DataBundle, name: str) -> None:
    identity = check_same_search(dict(study.user_attrs), space, data, name)
    if "data_fingerprint" not in study.user_attrs:
        for key, value in identity.items():
            study.set_user_attr(key, value)
        study.set_user_attr("engine", "optuna")


def _determinism(seed: int | None) -> None:
    if seed is None:
        return
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def run_search(
    space: str | Path | Space,
    data: str | Path | DataBundle = "digits",
    *,
    engine: str = "optuna",
    tuner: str | None = None,
    name: str | None = None,
    trials: int = 20,
    timeout: float | None = None,
    epochs: int | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    seed: int | None = None,
    runs_dir: str | Path = "runs",
    storage: str | None = None,
    tracking_uri: str | None = None,
    max_failures: int = 3,
    callbacks: Sequence[Callable[[TrialEvent], None] | Any] = (),
    data_options: dict[str, Any] | None = None,
    workers: int | None = None,
    recycle_after: int | None = None,
    max_worker_rss_mb: float | None = None,
    mixed_precision: bool = False,
    xla: bool = False,
    report: bool = True,
) -> SearchResult:
    """Search ``space`` on ``data`` with ``engine`` (``optuna``; ``keras-tuner`` with ``tuner`` random
    (default), bayesian, hyperband or grid; ``autokeras`` with greedy (default), random, bayesian or hyperband);
    every trial lands in MLflow; the winner is evaluated once on the test split and registered as
    ``name`` with alias ``champion``.

    ``trials`` is the total target: running again with the same ``name`` continues the search (the
    storage is the source of truth) and does nothing when the target is met. ``epochs`` overrides the
    space's ``training.epochs``. ``seed`` makes a CPU search reproducible (same architectures in the
    same order, same metrics). Defaults keep everything under ``runs_dir`` with no server.

    ``timeout`` (seconds) is a wall-clock budget: no trial starts after it, a running one is stopped
    at ``HARD_LIMIT`` times it, and the winner is still evaluated and registered. ``workers`` (Optuna
    only; default :func:`default_workers`: one per visible GPU, else two on a 2-core CPU for a search
    longer than a few seconds) runs trials in worker processes; one worker runs in this process unless
    ``recycle_after`` (trials) or ``max_worker_rss_mb`` ask for recycling. With several workers,
    ``seed`` seeds every trial but which worker takes which trial depends on timing: ``workers=1``
    repeats a search exactly (said at launch).
    ``callbacks`` follow Keras's callback pattern: an object gets ``on_search_begin(SearchStarted)``,
    ``on_trial_begin(TrialStarted)``, ``on_epoch_end(EpochEvent)`` and ``on_trial_end(TrialEvent)``,
    whichever it has; a plain function gets each :class:`TrialEvent`.
    ``mixed_precision`` and ``xla`` are for GPUs (they run, slowly, on a CPU). ``report`` draws the
    search's pictures (:mod:`search.report`) and logs them on its MLflow run when trials ran.
    """
    import optuna

    from search.data import DataBundle, load_dataset
    from search.engines._autokeras import TUNERS as AUTOKERAS_TUNERS
    from search.engines._autokeras import translate
    from search.engines._keras_tuner import TUNERS
    from search.engines._optuna import (
        PRUNERS,
        SAMPLERS,
        heartbeat_seconds,
        make_pruner,
        make_sampler,
        optimize,
        result_of,
    )
    from search.engines._session import Session
    from search.engines._storage import default_storage_url, get_storage
    from search.tracking import check_store, check_writable, default_tracking_uri

    if engine not in ENGINES:
        raise SearchError(f"--engine: unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    check_limits(trials=trials, epochs=epochs, timeout=timeout)
    if name is not None:
        check_name(name)
    if engine == "optuna":
        heartbeat_seconds()  # a bad CNN_SEARCH_HEARTBEAT_SECONDS is refused before anything is written
    from search.engines._workers import visible_gpus

    gpus = visible_gpus()
    if workers is not None and workers < 1:
        raise SearchError(f"--workers: expected a whole number >= 1, received {workers}")
    if recycle_after is not None and recycle_after < 1:
        raise SearchError(f"--recycle-after: expected a whole number of trials >= 1, received {recycle_after}")
    if max_worker_rss_mb is not None and not (math.isfinite(max_worker_rss_mb) and max_worker_rss_mb > 0):
        raise SearchError(f"--max-worker-rss: expected MiB > 0, received {max_worker_rss_mb}")
    if workers is None:
        space = load_space(space)  # loaded once: the load below passes a Space through
        planned = epochs if epochs is not None else max(space.training["epochs"].values())
        workers = default_workers(engine, gpus, trials=trials, epochs=planned, timeout=timeout)
        if storage is not None and storage.startswith("sqlite"):
            workers = 1  # SQLite is not for parallel workers (refused below when asked for explicitly)
        if workers > 1 and seed is not None:
            log.warning(
                "--seed %s with %d worker processes: every trial is seeded, but which worker takes which "
                "trial depends on timing; --workers 1 repeats the search exactly",
                seed,
                workers,
            )
    capped, why = cap_workers(workers, trials=trials)
    if why is not None:
        log.warning("--workers %d: running %d worker process(es) (capped by %s)", workers, capped, why)
        workers = capped
    supervised = workers > 1 or recycle_after is not None or max_worker_rss_mb is not None or bool(gpus)
    if supervised and engine == "optuna" and not gpus:
        from search.engines._zygote import LAUNCHER

        LAUNCHER.prestart()  # the workers' imports start now, beside this process's own start-up
    if supervised and engine == "optuna" and recycle_after is None and max_worker_rss_mb is None:
        recycle_after = RECYCLE_AFTER  # TensorFlow keeps ~5-6 MB a trial in a process: start a fresh one now and then
    if supervised and engine == "autokeras":
        raise SearchError(
            "--workers/--recycle-after/--max-worker-rss: worker processes run the optuna and keras-tuner engines; "
            f"received --engine {engine}"
        )
    if engine == "keras-tuner" and (recycle_after is not None or max_worker_rss_mb is not None):
        raise SearchError("--recycle-after/--max-worker-rss: KerasTuner's workers are not recycled; use --workers N")
    if supervised and storage is not None and storage.startswith("sqlite"):
        raise SearchError(
            "--storage: several worker processes need a journal file (the default) or a database server "
            f"(postgresql://, mysql://); received {storage!r} (Optuna advises against SQLite for parallel workers)"
        )
    if sampler not in SAMPLERS:
        raise SearchError(f"--sampler: unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise SearchError(f"--pruner: unknown pruner {pruner!r}; expected one of {', '.join(PRUNERS)}")
    tuners = AUTOKERAS_TUNERS if engine == "autokeras" else TUNERS
    tuner = tuner or tuners[0]
    if tuner not in tuners:
        raise SearchError(f"--tuner: unknown {engine} tuner {tuner!r}; expected one of {', '.join(tuners)}")
    space = load_space(space)
    translation = translate(space) if engine == "autokeras" else None  # refused before anything is created
    if translation is not None:
        log.warning("%s", translation.report())
    bundle = data if isinstance(data, DataBundle) else load_dataset(data, seed=seed or 0, **(data_options or {}))
    space.check_input(bundle.input_shape)
    if bundle.skipped:  # said on screen here, and on the search's MLflow run (skipped_files.json)
        shown = "; ".join(f"{Path(path).name}: {reason}" for path, reason in bundle.skipped[:3])
        more = f"; and {len(bundle.skipped) - 3} more" if len(bundle.skipped) > 3 else ""
        log.warning(
            "%d unusable file(s) in %s skipped (%s%s); cnn-search data %s lists them all",
            len(bundle.skipped),
            bundle.source,
            shown,
            more,
            bundle.source,
        )
    name = name or default_name(space, bundle.source, engine)
    runs = Path(runs_dir)
    check_writable(runs, what="--runs-dir", fix="choose another --runs-dir or fix its permissions")
    tracking_uri = tracking_uri or default_tracking_uri(runs)
    check_store(tracking_uri)  # a store that cannot be used is refused before any trial
    session = Session(
        name=name,
        engine=engine,
        space=space,
        data=bundle,
        runs_dir=runs,
        tracking_uri=tracking_uri,
        epochs=epochs,
        seed=seed,
        max_failures=max_failures,
        callbacks=tuple(callbacks),
        mixed_precision=mixed_precision,
        xla=xla,
    )
    if engine != "optuna":
        return _run_tuner(
            session, tuner=tuner, trials=trials, translation=translation, report=report, workers=workers, gpus=gpus
        )
    storage_url = storage or default_storage_url(runs)
    if not supervised:  # trials run here; worker processes seed themselves (this one never imports Keras)
        _determinism(seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name,
        storage=get_storage(storage_url),
        direction=GOAL.direction,
        load_if_exists=True,
        sampler=make_sampler(sampler, seed),
        pruner=make_pruner(
            pruner,
            epochs if epochs is not None else max(space.training["epochs"].values()),
            start_points=len(space.start),
        ),
    )
    _check_study(study, space, bundle, name)
    if study.metric_names is None:  # optuna-dashboard and Optuna's plots then name the goal's metric, not "Objective 0"
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([GOAL.metric])
    from search.engines._optuna import (
        best_trial,
        counted,
        enqueue_start_points,
        fail_stale_trials,
        finish_search,
        wait_for_others,
    )

    enqueue_start_points(study, space.start)
    now = time.time()
    deadline = now + timeout if timeout is not None else None
    hard_deadline = now + timeout * HARD_LIMIT if timeout is not None else None
    settings: dict[str, Any] = {
        "sampler": sampler,
        "pruner": pruner,
        "epochs": epochs,
        "seed": seed,
        "data_seed": bundle.seed,
        "target_trials": trials,
        "deadline": deadline,
        "hard_deadline": hard_deadline,
        "max_failures": max_failures,
        "recycle_after": recycle_after,
        "mixed_precision": mixed_precision,
        "xla": xla,
    }
    for key, value in settings.items():  # what workers read (several machines included)
        study.set_user_attr(key, value)

    if seed is not None:  # a resumed seeded search continues the random sequence instead of replaying it
        study.sampler = make_sampler(sampler, seed + len(study.trials))
    best = best_trial(study)
    best_number = best.number if best is not None else None
    already_final = counted(study) >= trials and study.user_attrs.get("champion_trial") == best_number

    def recorded(experiment_id: str, parent_run_id: str) -> None:  # workers elsewhere wait for it
        if study.user_attrs.get("mlflow_parent_run_id") != parent_run_id:
            study.set_user_attr("mlflow_parent_run_id", parent_run_id)
            study.set_user_attr("mlflow_experiment_id", experiment_id)

    ran = 0
    if not already_final:
        session.search_started(done=counted(study), target=trials)
    # MLflow starts in the background, inside the block: a signal during start-up ends the parent run too
    parent = study.user_attrs.get("mlflow_parent_run_id")
    with session.running(parent, on_ready=recorded, trains=not supervised) as signals:
        stale = fail_stale_trials(study, session)
        if stale:
            log.warning("trial(s) %s were left running by a process that ended: failed, retried once", stale)
        if not already_final:
            if supervised:
                from search.engines._workers import supervise

                ran = supervise(
                    session,
                    study,
                    workers=workers,
                    trials=trials,
                    storage_url=storage_url,
                    deadline=deadline,
                    signals=signals,
                    recycle_after=recycle_after,
                    max_rss_mb=max_worker_rss_mb,
                    gpus=gpus,
                )
            else:
                ran = optimize(
                    session,
                    study,
                    trials=trials,
                    signals=signals,
                    deadline=deadline,
                    hard_deadline=hard_deadline,
                )
                wait_for_others(
                    study, session, signals, limit=None if hard_deadline is None else hard_deadline - time.time()
                )
            finish_search(session, study)  # done already when a worker finished it
            if report:
                _pictures(session)
        study.set_user_attr("mlflow_parent_run_id", session.parent_run_id)
        study.set_user_attr("mlflow_experiment_id", session.experiment_id)
    return result_of(session, study, ran=ran, nothing_to_do=already_final)


def tuner_directory(runs_dir: Path, engine: str) -> Path:
    """Where a KerasTuner-style engine keeps its state: ``runs/keras_tuner`` or ``runs/autokeras``."""
    return Path(runs_dir) / engine.replace("-", "_")


def _pictures(session: Session) -> None:
    """The report pictures, logged on the search's run; a picture never fails a search."""
    from search.report import make_report

    t0 = time.perf_counter()
    try:
        made = make_report(
            session.name,
            runs_dir=session.runs_dir,
            tracking_uri=session.tracking_uri,
            data=session.data,
        )
    except Exception as exc:  # whatever goes wrong with a picture, the search stands
        log.warning("report pictures not made: %s: %s", type(exc).__name__, exc)
        return
    log.info("%d pictures in %s (%.1f s)", len(made.pictures), made.html, time.perf_counter() - t0)


def _run_tuner(
    session: Session,
    *,
    tuner: str,
    trials: int,
    translation: Any = None,
    report: bool = True,
    workers: int = 1,
    gpus: list[str] | None = None,
) -> SearchResult:
    """The KerasTuner and AutoKeras engines: a KerasTuner-style oracle, state in its own directory."""
    import json

    from search.engines._autokeras import search_autokeras
    from search.engines._keras_tuner import load_rows, search_keras_tuner
    from search.engines._session import SearchResult

    space, bundle, name, runs = session.space, session.data, session.name, session.runs_dir
    engine = session.engine
    directory = tuner_directory(runs, engine)
    state_file = directory / name / "cnn_search.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    seed = session.objective.seed
    epochs = session.objective.epochs or max(space.training["epochs"].values())
    state.update(check_same_search(state, space, bundle, name), engine=engine, tuner=tuner)
    state.update(  # what KerasTuner worker processes read
        data_seed=bundle.seed, seed=seed, epochs=epochs, target_trials=trials, max_failures=session.max_failures
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
    if before < trials:
        session.search_started(done=before, target=trials)
    _determinism(seed)
    with session.running(state.get("mlflow_parent_run_id"), on_ready=recorded) as signals:
        common: dict[str, Any] = {
            "tuner": tuner,
            "trials": trials,
            "seed": seed,
            "epochs": epochs,
            "directory": directory,
            "signals": signals,
        }
        if workers > 1:
            from search.engines._workers import supervise_keras_tuner

            supervise_keras_tuner(session, workers=workers, gpus=gpus or [], **common)
            rows = GOAL.best_first(load_rows(directory, name).values())
        elif translation is not None:
            rows = search_autokeras(session, translation, **common)
            session.tracker.client.log_dict(session.parent_run_id, translation.to_dict(), "autokeras_translation.json")
        else:
            rows = search_keras_tuner(session, **common)
        best = rows[0] if rows and rows[0][GOAL.metric] is not None else None
        if best is not None and state.get("champion_trial") != best["trial"]:
            metrics, uri = session.finish(
                best_trial=best["trial"], best_params=best["hyperparameters"], best_epoch=best["best_epoch"]
            )
            state.update(champion_trial=best["trial"], test_metrics=metrics, model_uri=uri)
        state.update(mlflow_parent_run_id=session.parent_run_id, mlflow_experiment_id=session.experiment_id)
        if report and len(rows) > before:
            _pictures(session)
        save_state()
    from search.space import FixedParams

    states: dict[str, int] = {}
    for row in rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    return SearchResult(
        name=name,
        engine=engine,
        best_trial=best["trial"] if best else None,
        best_value=best[GOAL.metric] if best else None,
        architecture=space.sample(FixedParams(best["hyperparameters"])) if best else None,
        test_metrics=dict(state.get("test_metrics", {})),
        model_uri=state.get("model_uri"),
        states=states,
        wall_seconds=time.perf_counter() - session.started,
        experiment_id=session.experiment_id,
        parent_run_id=session.parent_run_id,
        tracking_uri=session.tracking_uri,
        nothing_to_do=len(rows) == before,
        new_trials=len(rows) - before,
        trials=rows,
    )
