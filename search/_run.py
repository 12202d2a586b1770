"""``run_search``: the one function behind ``cnn-search run``."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import option
from search._goal import GOAL
from search.engines._base import DEFAULT_ENGINE, Engine, SearchOptions, get_engine, record_engine, split_keywords
from search.space import Space, load_space

if TYPE_CHECKING:
    from search.data import DataBundle
    from search.runtime._session import SearchResult, Session

log = logging.getLogger("search")

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


def default_workers(engine: Engine, gpus: tuple[str, ...] | list[str], *, trials: int, epochs: int,
                    timeout: float | None) -> int:  # fmt: skip
    """Workers when ``--workers`` is not given: for an engine that runs worker processes, one per visible
    GPU; on a CPU, one per core (at most :data:`CPU_WORKERS`) for a search of an engine with
    :attr:`~search.engines.Engine.cpu_workers` (Optuna) of at least
    :data:`AUTO_WORKERS_MIN_EPOCHS` trial-epochs whose ``--timeout``, if any, is at least
    :data:`AUTO_WORKERS_MIN_SECONDS`; else one in this process.

    >>> from search.engines import get_engine
    >>> optuna = get_engine("optuna")
    >>> default_workers(optuna, [], trials=20, epochs=20, timeout=None) == min(CPU_WORKERS, os.cpu_count() or 1)
    True
    >>> default_workers(optuna, [], trials=3, epochs=1, timeout=None)
    1
    >>> default_workers(optuna, ["0", "1"], trials=3, epochs=1, timeout=None)  # one per GPU
    2
    >>> default_workers(optuna, [], trials=100, epochs=5, timeout=10)  # a search of seconds: in this process
    1
    >>> default_workers(get_engine("autokeras"), ["0", "1"], trials=3, epochs=1, timeout=None)  # in-process only
    1
    """
    if not engine.workers:
        return 1
    if gpus:
        return len(gpus)
    long = trials * epochs >= AUTO_WORKERS_MIN_EPOCHS and (timeout is None or timeout >= AUTO_WORKERS_MIN_SECONDS)
    return max(1, min(CPU_WORKERS, os.cpu_count() or 1)) if engine.cpu_workers and long else 1


def plan_workers(options: SearchOptions, engine: Engine, space: Space) -> SearchOptions:
    """``options`` with the GPUs this process sees and the worker processes to run: ``--workers`` as asked,
    else :func:`default_workers` (one with a SQLite ``--storage``, which is not for parallel workers;
    said when ``--seed`` then cannot repeat the search exactly), capped by :func:`cap_workers`."""
    from search.runtime._workers import visible_gpus

    gpus = tuple(visible_gpus())
    workers = options.workers
    if workers is None:
        planned = options.planned_epochs(space)
        workers = default_workers(engine, gpus, trials=options.trials, epochs=planned, timeout=options.timeout)
        if options.storage is not None and options.storage.startswith("sqlite"):
            workers = 1  # SQLite is not for parallel workers (refused by the engine when asked for explicitly)
        if workers > 1 and options.seed is not None:
            log.warning(
                "%s %s with %d worker processes: every trial is seeded, but which worker takes which "
                "trial depends on timing; %s 1 repeats the search exactly",
                option("seed"),
                options.seed,
                workers,
                option("workers"),
            )
    capped, why = cap_workers(workers, trials=options.trials)
    if why is not None:
        log.warning("%s %d: running %d worker process(es) (capped by %s)", option("workers"), workers, capped, why)
    return dataclasses.replace(options, workers=capped, gpus=gpus if engine.workers else ())


def default_name(space: Space, data: str, engine: str = DEFAULT_ENGINE) -> str:
    """The search's name without ``--name``: ``SPACE-DATA`` for Optuna, ``SPACE-DATA-ENGINE`` for the others."""
    return get_engine(engine).default_name(space, data)


def run_search(
    space: str | Path | Space,
    data: str | Path | DataBundle = "digits",
    options: SearchOptions | None = None,
    *,
    verbose: int = 1,
    **keywords: Any,
) -> SearchResult:
    """Search ``space`` on ``data``; every trial lands in MLflow; the winner is evaluated once on the test
    split and registered as the search's name with alias ``champion``.

    The options are :class:`~search.engines.SearchOptions` (give one, or its fields as keywords):
    ``engine`` (``optuna``; ``keras-tuner`` with ``tuner`` random (default), bayesian, hyperband or grid;
    ``autokeras`` with greedy (default), random, bayesian or hyperband; :data:`search.engines.ENGINES`),
    ``name``, ``trials``, ``timeout``, ``epochs``, ``sampler``, ``pruner``, ``seed``, ``runs_dir``,
    ``storage``, ``tracking_uri``, ``max_failures``, ``callbacks``, ``data_options``, ``workers``,
    ``recycle_after``, ``max_worker_rss_mb``, ``mixed_precision``, ``xla``, ``report``.

    ``trials`` is the total target: running again with the same ``name`` continues the search (what an
    engine continues: its ``resumes``) and does nothing when the target is met. ``epochs`` overrides the
    space's ``training.epochs``. ``seed`` makes a CPU search reproducible (same architectures in the
    same order, same metrics). Defaults keep everything under ``runs_dir`` with no server.

    ``timeout`` (seconds) is a wall-clock budget: no trial starts after it, a running one is stopped
    at ``HARD_LIMIT`` times it, and the winner is still evaluated and registered. ``workers`` (default
    :func:`default_workers`: one per visible GPU, else two on a 2-core CPU for an Optuna search longer
    than a few seconds) runs trials in worker processes; one worker runs in this process unless
    ``recycle_after`` (trials) or ``max_worker_rss_mb`` ask for recycling. With several workers,
    ``seed`` seeds every trial but which worker takes which trial depends on timing: ``workers=1``
    repeats a search exactly (said at launch).
    ``callbacks`` follow Keras's callback pattern: an object gets ``on_search_begin(SearchStarted)``,
    ``on_trial_begin(TrialStarted)``, ``on_step(StepEvent)`` (within an epoch, a few times a second;
    trials in this process only), ``on_epoch_end(EpochEvent)`` and ``on_trial_end(TrialEvent)``,
    whichever it has; a plain function gets each :class:`TrialEvent`.
    ``mixed_precision`` and ``xla`` are for GPUs (they run, slowly, on a CPU). ``report`` draws the
    search's pictures (:mod:`search.report`) and logs them on its MLflow run when trials ran.

    ``goals`` (``"val_accuracy,params"``; :data:`search._goal.GOALS`) adds goals of size to accuracy:
    the search then has several objectives (Optuna only), every goal is a metric of every trial, and the
    trials on the Pareto front are tagged ``pareto_front`` in MLflow; the champion is
    :data:`search._goal.CHAMPION_RULE`. ``max_params`` and ``max_flops`` are constraints: they tighten the
    space's ``budget`` (the lower limit holds), so a trial over them is refused before any layer is built.
    The space's own ``goals`` are the search's when ``goals`` is not given, and its ``budget``'s
    ``max_latency_ms`` and ``max_model_kb`` hold as those options do (the lower limit, again).

    ``verbose`` (as Keras's ``fit``; :mod:`search._talk`): 1 a line per finished trial, what the search found
    and the winner; 2 also each trial's start and epochs; 0 nothing. A rerun with nothing left to do says so.
    ``result.dataframe()`` is the trials as a pandas DataFrame.
    """
    from search._talk import talking

    with talking(verbose) as lines:
        if lines:
            given = keywords.get("callbacks", options.callbacks if options is not None else ())
            keywords = {**keywords, "callbacks": (*given, *lines)}
        result = _run_search(space, data, options, keywords)
        if lines is not None:
            _say(result)
    return result


def _say(result: SearchResult) -> None:
    """What a search from Python says at its end (``cnn-search run`` prints its own table instead)."""
    if result.nothing_to_do:
        log.info(
            "nothing to do: search %r already has %d trials, its target (raise %s to add more)",
            result.name, len(result.trials), option("trials"),
        )  # fmt: skip
    if result.best_trial is not None:
        test, chance = result.test_metrics.get("test_accuracy"), result.test_metrics.get("chance_accuracy")
        beside = f"; chance {chance:.4f}" if chance is not None else ""
        log.info(
            "best: trial %d, %s %.4f%s; result.dataframe() has every trial",
            result.best_trial, GOAL.metric, result.best_value,
            f", test_accuracy {test:.4f} (test split, evaluated once{beside})" if test is not None else "",
        )  # fmt: skip


def _run_search(
    space: str | Path | Space, data: str | Path | DataBundle, options: SearchOptions | None, keywords: dict[str, Any]
) -> SearchResult:
    """:func:`run_search`'s work, once its talking is set up."""
    given = split_keywords(options, keywords)
    options = given.checked()
    check_servers(options)  # a storage that is the tracking store, a server down: refused before anything starts
    engine = get_engine(options.engine)
    space = load_space(space)
    options = with_space_goals(given, space).checked()
    if options.constraints:
        space = space.with_budget(**options.constraints)
    options = engine.check(plan_workers(options, engine, space), space)  # refused before anything is created
    session = open_session(options, engine, space, data)
    record_engine(options.runs_dir, session.name, engine.name)
    return engine.run(session, options)


def check_servers(options: SearchOptions) -> None:
    """The search's stores checked before anything starts (:mod:`search.tracking._reach`): ``--storage`` not the
    tracking store's own database, a tracking server or a PostgreSQL/MySQL database reached once."""
    from search.tracking import default_tracking_uri
    from search.tracking._reach import check_servers as check

    check(options.storage, options.tracking_uri or default_tracking_uri(options.runs_dir))


def with_space_goals(options: SearchOptions, space: Space) -> SearchOptions:
    """``options`` (as given, before :meth:`~SearchOptions.checked`) with what the space's YAML says of goals:
    its ``goals`` when none were given, its measured limits (``budget.max_latency_ms``,
    ``budget.max_model_kb``) where they are lower than the options'.

    >>> from search.space import Space
    >>> space = Space("s", goals=["val_accuracy", "params"], budget={"max_latency_ms": 2})
    >>> o = with_space_goals(SearchOptions(max_latency_ms=5), space)
    >>> o.goals, o.max_latency_ms, o.max_model_kb
    (('val_accuracy', 'params'), 2.0, None)
    >>> with_space_goals(SearchOptions(goals="val_accuracy,flops"), space).checked().goals
    ('val_accuracy', 'flops')
    """
    changes: dict[str, Any] = {}
    if space.goals and not options.goals:
        changes["goals"] = space.goals
    for key, limit in space.measured_budget.items():
        given = getattr(options, key)
        changes[key] = limit if given is None else min(given, limit)
    return dataclasses.replace(options, **changes)


def open_session(options: SearchOptions, engine: Engine, space: Space, data: str | Path | DataBundle) -> Session:
    """The search's data loaded (unusable files said), its name, a writable ``runs_dir`` and a usable MLflow
    store checked, and the :class:`~search.engines.Session` every engine runs its trials through."""
    from search.data import DataBundle, load_dataset
    from search.model._memory import check_fits
    from search.runtime._session import Session
    from search.tracking import check_store, check_writable, default_tracking_uri
    from search.tracking._disk import check_free_space

    if not isinstance(data, DataBundle):
        data = load_dataset(data, seed=options.seed or 0, **(options.data_options or {}))
    bundle = data
    space.check_input(bundle.input_shape)
    check_fits(space, bundle.input_shape, bundle.num_classes, available_mib())  # a kill by the kernel, refused
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
    runs = options.runs_dir
    runs_dir = option("runs_dir")
    check_writable(runs, what=runs_dir, fix=f"choose another {runs_dir} or fix its permissions")
    check_free_space(runs, what=runs_dir)
    tracking_uri = options.tracking_uri or default_tracking_uri(runs)
    check_store(tracking_uri)  # a store that cannot be used is refused before any trial
    name = options.name or engine.default_name(space, bundle.source)
    return Session.from_options(
        options, name=name, engine=engine.name, space=space, data=bundle, tracking_uri=tracking_uri
    )
