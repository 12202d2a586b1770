"""Worker processes: ``cnn-search run --workers N`` supervises them; ``cnn-search worker NAME`` is one.

A worker is a process of its own that loads the study, the space and the data once (from what
``cnn-search run`` recorded in the study), attaches to the search's MLflow parent run, and runs
Optuna trials until the target is met, the deadline passes, or it is recycled (after
``--recycle-after`` trials or above ``--max-worker-rss`` MiB: a fresh process returns the memory
TensorFlow keeps). Workers share the Optuna storage (the default journal file locally, PostgreSQL
across machines) and never end the parent run; the supervisor does, after evaluating and registering
the winner.

The supervisor starts ``N`` workers (default: one per visible GPU, each pinned with
``CUDA_VISIBLE_DEVICES`` and memory growth on; else one), starts a new one whenever one exits while
trials remain, stops after repeated crashes without progress, and on SIGINT/SIGTERM passes SIGTERM
to every worker (each records its running trial as killed) before exiting 130/143.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search.engines._session import (
    EpochEvent,
    SearchInterrupted,
    Session,
    Signals,
    TrialEvent,
    TrialStarted,
    dispatch,
    log,
)
from search.engines._zygote import LAUNCHER, WorkerProcess

if TYPE_CHECKING:
    import optuna

#: Study user attributes a worker reads (written by ``cnn-search run``).
SETTINGS = ("sampler", "pruner", "epochs", "seed", "target_trials", "deadline", "hard_deadline", "max_failures")


def visible_gpus() -> list[str]:
    """GPU ids this machine shows (``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``); no TensorFlow import."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def worker_env(index: int, gpus: list[str], workers: int = 1) -> dict[str, str]:
    """The environment of worker ``index``: pinned to one GPU (round robin) with memory growth; on a
    CPU, the cores shared out between the ``workers`` (TensorFlow's intra-op threads), unless set."""
    env = dict(os.environ)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    elif workers > 1:
        env.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    return env


def supervise(
    session: Session,
    study: optuna.Study,
    *,
    workers: int,
    trials: int,
    storage_url: str,
    deadline: float | None,
    signals: Signals,
    recycle_after: int | None,
    max_rss_mb: float | None,
    gpus: list[str],
) -> int:
    """Run ``workers`` worker processes until the target is met; returns how many trials they ran."""
    from search.engines._optuna import more_work
    from search.tracking._spool import spool_dir

    before = len(study.trials)
    command = [
        "worker",
        session.name,
        "--runs-dir",
        str(session.runs_dir),
        "--storage",
        storage_url,
        "--tracking-uri",
        session.tracking_uri,
        "--relay",
    ]
    if recycle_after:
        command += ["--recycle-after", str(recycle_after)]
    if max_rss_mb:
        command += ["--max-worker-rss", str(max_rss_mb)]
    if not log.isEnabledFor(logging.INFO):  # run --quiet: its workers too
        command += ["--quiet"]
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}  # said before: a resume
    running: dict[int, tuple[int, int]] = {}  # trial -> (epochs planned, epochs announced)

    def start(index: int) -> WorkerProcess:
        args, env = [*command, "--index", str(index)], worker_env(index, gpus, workers)
        if gpus:  # CUDA does not survive a fork: fresh interpreters
            return subprocess.Popen([sys.executable, "-m", "search", *args], env=env)
        return LAUNCHER.start(args, env)  # forked from the forkserver that run_search prestarted

    def tick() -> None:
        _announce(session, study, seen, trials, running)
        session.drain(wait=False)

    try:
        watch(
            start,
            workers=workers,
            signals=signals,
            restart_after_exit=lambda: more_work(study, trials, deadline),
            on_tick=tick,
        )
    except BaseException:  # the workers have ended (each recorded its running trial as killed): write it all
        try:
            session.drain()
        except Exception as exc:  # left in the spool: the next start of the search writes it
            spool = spool_dir(session.runs_dir, session.name)
            log.warning("the workers' last records stay in %s for the next run: %r", spool, exc)
        raise
    session.drain()  # the last trials and the winner
    return len(study.trials) - before


def watch(
    start: Callable[[int], WorkerProcess],
    *,
    workers: int,
    signals: Signals,
    restart_after_exit: Callable[[], bool],
    on_tick: Callable[[], None] = lambda: None,
) -> None:
    """Start ``workers`` processes and look after them until all have exited: a worker that exits 0
    is started again while ``restart_after_exit()``; one that crashes is started again (more than 3
    crashes a worker stop the search); exit code 1 (it refused or failed the search) stops it. On a
    signal or an error every worker gets SIGTERM (each records its running trial as killed)."""
    procs = {i: start(i) for i in range(workers)}
    crashes = 0
    ticked = time.monotonic()
    try:
        while procs:
            if signals.pending is not None:
                raise SearchInterrupted(signals.pending)
            time.sleep(0.1)  # an ended worker is seen at once (the search may be over); progress every 0.5 s
            if time.monotonic() - ticked >= 0.5:
                ticked = time.monotonic()
                on_tick()
            for index, proc in list(procs.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                del procs[index]
                if rc == 1:  # its message is on stderr
                    raise SearchError(f"worker {index} stopped the search (exit 1); see its message above")
                if rc != 0:
                    crashes += 1
                    log.warning("worker %d ended with %s; starting it again", index, _exit_text(rc))
                    if crashes > 3 * workers:
                        raise SearchError(f"workers crashed {crashes} times; the last ended with {_exit_text(rc)}")
                    procs[index] = start(index)
                elif restart_after_exit():
                    procs[index] = start(index)
        on_tick()
    except BaseException:
        _stop(procs, signal.SIGTERM)
        raise


def _exit_text(rc: int) -> str:
    return f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit code {rc}"


def _stop(procs: dict[int, WorkerProcess], sig: int, wait: float = 60) -> None:
    """Pass ``sig`` to every worker and wait for them (SIGKILL after ``wait`` seconds)."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(sig)
    limit = time.time() + wait
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, limit - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _announce(
    session: Session, study: optuna.Study, seen: set[int], trials: int, running: dict[int, tuple[int, int]]
) -> None:
    """Progress callbacks for what the workers did since the last look: trials started, their epochs
    (the validation accuracy each reported to Optuna) and trials finished."""
    import datetime

    import optuna

    from search._goal import GOAL
    from search.engines._optuna import SURPLUS, best_trial, counted
    from search.space import FixedParams

    now = datetime.datetime.now()

    def epochs_of(t: optuna.trial.FrozenTrial) -> None:
        """on_trial_begin the first time ``t`` is seen, then on_epoch_end for the epochs it reported since."""
        if t.number not in running:
            try:
                arch = session.space.sample(FixedParams(t.params))
            except Exception:  # parameters still being written: next look
                return
            epochs = session.objective.epochs or arch.training.epochs
            running[t.number] = (epochs, 0)
            dispatch(session.callbacks, "on_trial_begin", TrialStarted(t.number, epochs, arch.summary()))
        epochs, announced = running[t.number]
        started = t.datetime_start or now
        for step in sorted(s for s in t.intermediate_values if s >= announced):
            metrics = {GOAL.metric: float(t.intermediate_values[step])}
            epoch = EpochEvent(t.number, step + 1, epochs, metrics, (now - started).total_seconds())
            dispatch(session.callbacks, "on_epoch_end", epoch)
            announced = step + 1
        running[t.number] = (epochs, announced)

    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if "worker" in t.user_attrs:  # set once the trial is known not to be surplus
            epochs_of(t)
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.number not in seen and t.user_attrs.get("state") != SURPLUS
    ]
    if not finished:
        return
    for t in finished:  # a trial that ended between two looks: its epochs are said before its end
        if t.intermediate_values:
            epochs_of(t)
    best = best_trial(study)
    done = counted(study)
    for t in finished:
        seen.add(t.number)
        value = t.value if t.state == optuna.trial.TrialState.COMPLETE else None
        event = TrialEvent(
            number=t.number,
            state=str(t.user_attrs.get("state", t.state.name.lower())),
            value=value,
            reason=t.user_attrs.get("reason"),
            summary=str(t.user_attrs.get("summary", "")),
            seconds=float(t.user_attrs.get("train_seconds") or 0.0),
            best_value=best.value if best else None,
            best_trial=best.number if best else None,
            done=done,
            target=trials,
        )
        running.pop(t.number, None)
        dispatch(session.callbacks, "on_trial_end", event)


def run_worker(
    name: str,
    *,
    runs_dir: str | Path = "runs",
    storage: str | None = None,
    tracking_uri: str | None = None,
    index: int = 0,
    recycle_after: int | None = None,
    max_rss_mb: float | None = None,
    wait_for_parent: float = 120,
    relay: bool = False,
) -> int:
    """One worker of search ``name`` (started by ``cnn-search run``, or on another machine with the
    same ``--storage`` and ``--tracking-uri``). Returns how many trials it ran. ``relay`` (how ``run``
    starts its workers): MLflow is neither imported nor waited for; what the worker records goes to
    the supervising process through the spool (:mod:`search.tracking._spool`)."""
    import optuna

    from search._names import check_name
    from search.engines._optuna import finish_search, make_pruner, make_sampler, optimize, search_done
    from search.engines._storage import default_storage_url, get_storage
    from search.tracking import check_store, default_tracking_uri
    from search.tracking._spool import spool_dir

    check_name(name, option="NAME")
    runs = Path(runs_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or default_storage_url(runs)
    try:
        study = optuna.load_study(study_name=name, storage=get_storage(url))
    except KeyError:
        from search.tracking._searches import unknown_search

        names = optuna.get_all_study_names(get_storage(url))
        raise unknown_search(name, names, url, hint="start it with cnn-search run") from None
    attrs = study.user_attrs
    if "space_definition" not in attrs or "target_trials" not in attrs:
        raise SearchError(f"search {name!r} was not started by a cnn-search that supports workers; rerun it")
    if not relay:
        check_store(tracking_uri or default_tracking_uri(runs))
    session = worker_session(
        name, "optuna", attrs, runs_dir=runs, tracking_uri=tracking_uri, relay=spool_dir(runs, name) if relay else None
    )
    space, seed, epochs = session.space, attrs.get("seed"), attrs.get("epochs")
    import_keras_lean()  # before waiting: its seconds overlap the supervisor's MLflow start-up

    def recorded() -> dict[str, Any]:
        return study.user_attrs  # read from the storage at every call (journal and RDB alike)

    parent = None if relay else _wait_for(recorded, wait_for_parent)
    study.sampler = make_sampler(
        attrs["sampler"], None if seed is None else seed + 7919 * (index + 1) + len(study.trials)
    )
    study.pruner = make_pruner(
        attrs["pruner"], epochs or max(space.training["epochs"].values()), start_points=len(space.start)
    )
    trials = int(attrs["target_trials"])
    with session.running(parent) as signals:
        ran = optimize(
            session,
            study,
            trials=trials,
            signals=signals,
            deadline=attrs.get("deadline"),
            hard_deadline=attrs.get("hard_deadline"),
            max_trials_here=recycle_after,
            max_rss_mb=max_rss_mb,
        )
        if search_done(study, trials, attrs.get("deadline")):  # the last one out evaluates and registers the winner
            finish_search(session, study)
        return ran


#: Packages Keras imports at start-up, each inside ``try: import X / except ImportError``, for features
#: a worker never uses: scikit-learn (``keras.wrappers``), pandas (DataFrames as inputs), IPython
#: (``keras.saving.KerasFileEditor`` in notebooks), matplotlib (``keras.visualization``). Measured with
#: ``python -X importtime -c "import keras"``: 1.45 s, 0.43 s, 0.40 s and 0.32 s of a 7 s import.
KERAS_EXTRAS = ("sklearn", "pandas", "IPython", "matplotlib")


def import_keras_lean() -> None:
    """Import Keras (and TensorFlow) with :data:`KERAS_EXTRAS` hidden, so that Keras finds them
    missing and carries on without them, as it does where they are not installed. Each worker process
    pays its import on the search's start-up path. Importing them works as usual afterwards (the
    report's pictures import matplotlib); one already imported is left alone."""
    if "keras" in sys.modules:
        return
    hidden = [name for name in KERAS_EXTRAS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # "import name" raises ImportError
    try:
        import keras  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def worker_session(
    name: str,
    engine: str,
    record: Mapping[str, Any],
    *,
    runs_dir: Path,
    tracking_uri: str | None,
    relay: Path | None = None,
) -> Session:
    """A worker's :class:`Session` of search ``name``, from what the search recorded (space, data checked by
    its fingerprint, epochs, seed, failure limit, precision); the search's parent run is left to the process
    that started it. ``relay``: MLflow records go to that spool instead (:mod:`search.tracking._spool`)."""
    from search.space import Space
    from search.tracking import default_tracking_uri

    return Session(
        name=name,
        engine=engine,
        space=Space.from_dict(record["space_definition"]),
        data=_recorded_data(record, name),
        runs_dir=runs_dir,
        tracking_uri=tracking_uri or default_tracking_uri(runs_dir),
        epochs=record.get("epochs"),
        seed=record.get("seed"),
        max_failures=int(record.get("max_failures", 3)),
        owns_parent=False,
        mixed_precision=bool(record.get("mixed_precision")),
        xla=bool(record.get("xla")),
        relay=relay,
    )


def _recorded_data(record: Mapping[str, Any], name: str) -> Any:
    """The search's data as ``cnn-search run`` recorded it (source, split seed), checked by its fingerprint."""
    from search.data import reload_recorded

    seed, expected = int(record.get("data_seed", 0)), record["data_fingerprint"]
    fix = "A worker on another machine needs the same data at the same path."
    return reload_recorded(record["data"], seed, expected, search=name, fix=fix)


def _wait_for(read: Callable[[], dict[str, Any]], seconds: float) -> str:
    """The search's MLflow parent run id, once the supervisor has recorded it."""
    limit = time.time() + seconds
    while True:
        parent = read().get("mlflow_parent_run_id")
        if parent:
            return str(parent)
        if time.time() > limit:
            raise SearchError(f"the search's MLflow run was not recorded within {seconds:.0f} s")
        time.sleep(0.2)


# -- KerasTuner: its own chief/worker mode on loopback ----------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    from search.engines._keras_tuner import START_TUNERS, make_oracle, serve_oracle

    address = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port())}
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

    from search.engines._keras_tuner import search_keras_tuner, tuner_directory

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
    session = worker_session(name, "keras-tuner", first, runs_dir=runs, tracking_uri=tracking_uri)
    space = session.space
    before = len(_own_rows(directory, name))
    with session.running(_wait_for(state, 120)) as signals:
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

    from search.engines._keras_tuner import _rows_file

    path = _rows_file(directory, name)
    return dict(json.loads(path.read_text())) if path.is_file() else {}
