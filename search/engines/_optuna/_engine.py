"""The Optuna engine (:class:`OptunaEngine`, ``--engine optuna``): the study opened or continued, the search's
settings recorded for its workers, its trials run here or in worker processes, the winner registered."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError, option
from search._goal import GOAL
from search.engines._base import Engine, SearchOptions, check_same_search, register_engine, seed_everything
from search.engines._optuna._factories import PRUNERS, SAMPLERS, limits_of, make_pruner, make_sampler
from search.engines._optuna._liveness import fail_stale_trials, heartbeat_seconds, wait_for_others
from search.engines._optuna._loop import optimize
from search.engines._optuna._options import OptunaOptions, own_options
from search.engines._optuna._pareto import mark_front
from search.engines._optuna._reading import result_of, trial_rows
from search.engines._optuna._study import best_trial, counted, goals_of
from search.engines._optuna._winner import finish_search
from search.engines._optuna._workers import RECYCLE_AFTER, load_study, run_worker, supervise
from search.runtime._session import SearchResult, Session, Signals, log
from search.runtime._zygote import LAUNCHER

if TYPE_CHECKING:
    import optuna

    from search.space import Space


def enqueue_start_points(study: optuna.Study, points: tuple[dict[str, Any], ...]) -> None:
    """Queue the space's start points as the first trials of a new study (``start_point`` = index);
    a study that has trials already (a resumed search) is left as it is."""
    if study.get_trials(deepcopy=False):
        return
    for i, point in enumerate(points):
        study.enqueue_trial(point, user_attrs={"start_point": i}, skip_if_exists=False)


def open_study(session: Session, options: SearchOptions, storage_url: str) -> optuna.Study:
    """The search's study, created or continued (refused when it has another space or other data), with
    the goal's metric named, the space's start points queued (a new study only), and the sampler seeded
    past the trials it has (a resumed seeded search continues the random sequence instead of replaying it)."""
    import optuna

    from search.runtime._storage import get_storage

    space = session.space
    goals = options.goal_list
    own = own_options(options)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=session.name,
        storage=get_storage(storage_url),
        directions=[g.direction for g in goals],
        load_if_exists=True,
        sampler=make_sampler(own.sampler, options.seed, limits_of(options.measures), local_after=own.local_after),
        pruner=make_pruner(
            own.pruner,
            options.planned_epochs(space),
            start_points=len(space.start),
            validation_images=session.data.counts["validation"],
        ),
    )
    identity = check_same_search(dict(study.user_attrs), space, session.data, session.name)
    recorded_goals = tuple(g.metric for g in goals_of(study)) if study.trials else None
    if recorded_goals is not None and recorded_goals != options.goals:
        raise SearchError(
            f"search {session.name!r} already exists with goals {','.join(recorded_goals)}; received "
            f"{option('goals')} {','.join(options.goals or ())}. Use another {option('name')}, or the same goals to "
            "continue it."
        )
    study.set_user_attr("goals", list(options.goals or (GOAL.metric,)))
    study.set_user_attr("val_chance", session.objective.health.val_chance)  # the front leaves out trials at chance
    if "data_fingerprint" not in study.user_attrs:
        for key, value in identity.items():
            study.set_user_attr(key, value)
        study.set_user_attr("engine", OptunaEngine.name)
    if study.metric_names is None:  # optuna-dashboard and Optuna's plots then name the goal's metric
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([g.metric for g in goals])
    enqueue_start_points(study, space.start)
    if options.seed is not None:
        study.sampler = make_sampler(
            own.sampler, options.seed + len(study.trials), limits_of(options.measures), local_after=own.local_after
        )
    return study


@register_engine
class OptunaEngine(Engine):
    """Optuna's ask/tell: ``--sampler`` chooses the trials, ``--pruner`` stops hopeless ones after an epoch,
    the study (``--storage``, default a journal file under ``runs/``) is the source of truth; trials run
    in this process or in supervised worker processes (``--workers``; one per GPU, or two on a 2-core
    CPU for a search of more than seconds: :func:`search._run.default_workers`)."""

    name = "optuna"
    options = OptunaOptions
    workers = True
    cpu_workers = True
    preload = ("optuna", "search.engines._optuna")  # the package: the forkserver imports the whole engine
    several_goals = True
    rechecks = True
    resumes = (
        "the study: finished trials are kept, a trial left running by a process that ended is failed and "
        "retried once, start points are not tried again, and the target --trials counts them all"
    )

    def default_name(self, space: Space, data: str) -> str:
        """``SPACE-DATA``: Optuna is the default engine, its searches carry no suffix."""
        from search._names import safe_name

        return safe_name(f"{space.name}-{Path(str(data)).stem}")

    def check(self, options: SearchOptions, space: Space) -> SearchOptions:
        options = super().check(options, space)
        heartbeat_seconds()  # a bad CNN_SEARCH_HEARTBEAT_SECONDS is refused before anything is written
        own = own_options(options)
        if own.sampler not in SAMPLERS:
            make_sampler(own.sampler, None)  # the error that names the choices
        if own.pruner not in PRUNERS:
            make_pruner(own.pruner, 1)
        if len(options.goal_list) > 1 and own.pruner == "hyperband":
            raise SearchError(
                f"{option('pruner')}: hyperband prunes on one objective; with several goals "
                f"({','.join(options.goals or ())}) use median (a trial is stopped below the finished trials "
                "no larger than it) or none"
            )
        sqlite = options.storage is not None and options.storage.startswith("sqlite")
        if options.supervised and sqlite:
            raise SearchError(
                f"{option('storage')}: several worker processes need a journal file (the default) or a database server "
                f"(postgresql://, mysql://); received {options.storage!r} (Optuna advises against SQLite for "
                "parallel workers)"
            )
        if options.supervised and not options.recycles:  # TensorFlow keeps ~5-6 MB a trial in a process
            options = dataclasses.replace(options, recycle_after=RECYCLE_AFTER)
        return options

    def run(self, session: Session, options: SearchOptions) -> SearchResult:
        from search.runtime._storage import default_storage_url

        supervised = options.supervised
        if supervised and not options.gpus:
            LAUNCHER.prestart(self.preload)  # the workers' imports start now, beside this process's own start-up
        storage_url = options.storage or default_storage_url(session.runs_dir)
        if not supervised:  # trials run here; worker processes seed themselves (this one never imports Keras)
            seed_everything(options.seed)
        study = open_study(session, options, storage_url)
        deadline, hard_deadline = options.deadlines()
        _record_settings(study, session, options, deadline=deadline, hard_deadline=hard_deadline)
        best = best_trial(study)
        already_final = counted(study) >= options.trials and study.user_attrs.get("champion_trial") == (
            best.number if best is not None else None
        )

        def recorded(experiment_id: str, parent_run_id: str) -> None:  # workers elsewhere wait for it
            if study.user_attrs.get("mlflow_parent_run_id") != parent_run_id:
                study.set_user_attr("mlflow_parent_run_id", parent_run_id)
                study.set_user_attr("mlflow_experiment_id", experiment_id)

        ran = 0
        if not already_final:
            session.search_started(done=counted(study), target=options.trials)

        # MLflow starts in the background, inside the block: a signal during start-up ends the parent run too
        def parent() -> str | None:  # read when MLflow starts: the study's attributes then, not now
            return study.user_attrs.get("mlflow_parent_run_id")

        with session.record.running(parent, on_ready=recorded, trains=not supervised) as signals:
            stale = fail_stale_trials(study, session)
            if stale:
                log.warning("trial(s) %s were left running by a process that ended: failed, retried once", stale)
            if not already_final:
                ran = _search(
                    session,
                    study,
                    options,
                    storage_url=storage_url,
                    signals=signals,
                    deadline=deadline,
                    hard_deadline=hard_deadline,
                )
            study.set_user_attr("mlflow_parent_run_id", session.record.parent_run_id)
            study.set_user_attr("mlflow_experiment_id", session.record.experiment_id)
        return result_of(session, study, ran=ran, nothing_to_do=already_final)

    def trial_rows(
        self, name: str, *, runs_dir: Path, storage: str | None = None
    ) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
        import optuna

        from search.runtime._storage import default_storage_url, get_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=name, storage=get_storage(storage or default_storage_url(runs_dir)))
        return trial_rows(study), study.user_attrs

    def worker(self, name: str, **options: Any) -> int:
        return run_worker(name, **options)

    def recorded_options(self, name: str, *, runs_dir: Path, storage: str | None = None) -> SearchOptions:
        """The options search ``name`` recorded in its study, as its workers read them back."""
        from search.runtime._storage import default_storage_url

        _, attrs = load_study(name, storage or default_storage_url(runs_dir))
        return SearchOptions.from_record(attrs)


def _record_settings(
    study: optuna.Study,
    session: Session,
    options: SearchOptions,
    *,
    deadline: float | None,
    hard_deadline: float | None,
) -> None:
    """Record the search's settings in the study's attributes, where its workers read them: its options
    (:meth:`~search.engines.SearchOptions.record`, read back by
    :meth:`~search.engines.SearchOptions.from_record`) and what this run of it decided."""
    settings: dict[str, Any] = {  # what workers read (several machines included)
        **options.record(),
        "data_seed": session.data.seed,
        "target_trials": options.trials,
        "deadline": deadline,
        "hard_deadline": hard_deadline,
        "measures": options.measures,
    }
    for key, value in settings.items():
        study.set_user_attr(key, value)


def _search(
    session: Session,
    study: optuna.Study,
    options: SearchOptions,
    *,
    storage_url: str,
    signals: Signals,
    deadline: float | None,
    hard_deadline: float | None,
) -> int:
    """Run the search's trials, in supervised worker processes or here, then register the winner, mark the
    Pareto front (several goals) and draw the pictures (``--report``). Returns how many trials ran."""
    if options.supervised:
        ran = supervise(
            session,
            study,
            workers=options.workers or 1,
            trials=options.trials,
            storage_url=storage_url,
            deadline=deadline,
            signals=signals,
            recycle_after=options.recycle_after,
            max_rss_mb=options.max_worker_rss_mb,
            gpus=list(options.gpus),
        )
    else:
        ran = optimize(
            session, study, trials=options.trials, signals=signals, deadline=deadline,
            hard_deadline=hard_deadline,
        )  # fmt: skip
        limit = None if hard_deadline is None else hard_deadline - time.time()
        wait_for_others(study, session, signals, limit=limit)
    finish_search(session, study)  # done already when a worker finished it
    if len(options.goal_list) > 1:
        mark_front(session, study)
    if options.report:
        session.winner.pictures()
    return ran
