"""What every engine implements, and the registry ``run_search``, the CLI, the workers and the tests read.

An engine chooses the parameters of trials and schedules them; everything else is shared: the space,
the data, the :class:`~search.runtime._session.Session` (MLflow, signals, the failure policy, the model
files, the winner) and its one trial loop, :meth:`~search.runtime._session.Session.trial`. The shape
follows Optuna's ``BaseSampler`` (a few methods to implement) and timm's model registry (engines are
found by name, ``register_engine`` adds one):

* :meth:`Engine.check` refuses what the engine cannot do with these :class:`SearchOptions`, before
  anything is created, and fills in its defaults (``--tuner``);
* :meth:`Engine.run` runs (or continues) the search's trials through the session and returns the
  :class:`~search.runtime._session.SearchResult`;
* :meth:`Engine.trial_rows` reads a search back from where the engine keeps it (``cnn-search trials``);
* :attr:`Engine.resumes` says what a rerun with the same ``--name`` continues, :attr:`Engine.workers`
  whether it runs trials in worker processes (``--workers``), :meth:`Engine.worker` runs one.

The engine that ran a search is recorded once, when it starts (:func:`record_engine`: ``runs/searches/NAME.json``,
and the ``engine`` tag of its MLflow run), and read back from there (:func:`engine_of`), not guessed from folders.

Adding an engine is one module with one :class:`Engine` subclass, registered with
:func:`register_engine`, plus its name in the contract suite (``tests/test_engines.py``);
``tests/test_engines.py::test_an_engine_is_one_class`` builds one in a few lines.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from search._errors import SearchError, option
from search._goal import DEFAULT_RUNTIME, Goal, parse_goals
from search._options import (
    Option,
    check,
    count,
    declare,
    from_record,
    number,
    options_of,
    own_of,
    recorded,
    refuse_foreign,
    whole,
)

if TYPE_CHECKING:
    from search.data import DataBundle
    from search.runtime._session import SearchResult, Session, TrialEvent
    from search.space import Space


#: The engine a search runs on when none is named (``--engine``), and the one whose searches live in ``--storage``.
DEFAULT_ENGINE = "optuna"

#: A running trial is stopped at this multiple of --timeout (no new trial starts after --timeout).
HARD_LIMIT = 1.1


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """Everything a search was asked to do besides its space and data (``run_search``'s keywords, the
    ``cnn-search run`` options), each declared once with :func:`~search._options.declare` (help, flag,
    check, engines: :mod:`search._options`), checked once by :meth:`checked`; engines read them, never
    change them (:func:`dataclasses.replace` makes the engine's filled-in copy). An engine's own options
    (Optuna's sampler, say) are its :attr:`Engine.options` dataclass, held in :attr:`own`."""

    engine: str = declare(DEFAULT_ENGINE, "optuna, keras-tuner or autokeras.")
    tuner: str | None = declare(
        None,
        "keras-tuner: random (default), bayesian, hyperband or grid; autokeras: greedy (default), random, bayesian "
        "or hyperband.",
        engines=("keras-tuner", "autokeras"),
    )
    name: str | None = declare(None, "Search name (default: SPACE-DATA).")
    trials: int = declare(20, "Total trials to reach (a rerun continues).", check=whole(1))
    timeout: float | None = declare(
        None,
        "Seconds after which no new trial starts.",
        check=number(above=0, what="a finite number of seconds", optional=True),
    )
    epochs: int | None = declare(
        None, "Epochs per trial (overrides the space).", check=whole(1, "a whole number of epochs", optional=True)
    )
    #: The goals (:data:`search._goal.GOALS`): ``val_accuracy`` alone, or with goals of size (a Pareto front).
    goals: tuple[str, ...] | str | None = declare(
        None,
        "val_accuracy alone (default), or with params, flops, model_bytes:RUNTIME, latency_ms:RUNTIME (RUNTIME "
        "keras, tflite or onnx; optuna): a Pareto front, e.g. val_accuracy,latency_ms:tflite.",
    )
    #: Constraints a trial must meet (added to the space's ``budget``): refused before training when over.
    max_params: int | None = declare(
        None, "Constraint: most parameters a trial may have (100k, 2M).", check=whole(1, optional=True), parse=count
    )
    max_flops: int | None = declare(
        None, "Constraint: most FLOPs per image a trial may take (50M).", check=whole(1, optional=True), parse=count
    )
    #: Measured constraints (on the runtime of a latency or size goal if one is named, else TFLite), checked
    #: right after a trial's model is built, before it trains.
    max_latency_ms: float | None = declare(
        None,
        "Constraint: most ms per image (batch 1) on the runtime of --goals' latency_ms, else TFLite; measured "
        "before training.",
        check=number(above=0, optional=True),
    )
    max_model_kb: float | None = declare(
        None,
        "Constraint: most KiB of the model file (format of --goals' model_bytes, else TFLite).",
        check=number(above=0, optional=True),
    )
    #: Re-check the top ``recheck`` distinct architectures with ``recheck_runs`` fresh runs each and crown the
    #: best mean (:mod:`search.runtime._recheck`); 0: the single best run is the champion.
    recheck: int = declare(
        0,
        "After the search, train the top K distinct architectures again (fresh seeds; other validation folds under "
        "500 validation images) and crown the best mean; 0: the best single run.",
        check=whole(0, note=" (0: off)"),
    )
    recheck_runs: int = declare(2, "Re-runs of each re-checked architecture.", check=whole(1))
    #: Re-check only candidates within this many standard errors of the best's validation accuracy
    #: (:func:`search.runtime._recheck.within_noise`); ``inf``: the top ``recheck`` whatever their gap.
    recheck_within: float = declare(
        2.0,
        "Re-check only candidates within this many standard errors of the best's validation accuracy (inf: the top "
        "K whatever their gap).",
        check=number(
            at_least=0, what="a number of standard errors", finite=False, note=" (inf: the top K whatever their gap)"
        ),
    )
    #: Train the champion afresh on training + validation images and hand that model over (its test accuracy
    #: beside the searched model's): :meth:`search.runtime._winner.Winner.finish`.
    refit: bool = declare(
        False,
        "Train the champion afresh on training + validation images for its best epoch count and register that "
        "model; the searched model's test accuracy is shown beside it.",
    )
    #: Data size as a fidelity (:mod:`search.data._subset`): each trial's first epoch on a stratified fraction
    #: of the training images, judged there by the pruner; the later epochs on every image.
    subset: float | None = declare(
        None,
        "Train each trial's first epoch on this stratified fraction of the training images (0.25: a quarter), so "
        "the pruner judges it at that share of an epoch's cost; later epochs use every image.",
        check=lambda value: (
            None
            if value is None or (isinstance(value, float | int) and not isinstance(value, bool) and 0 < value < 1)
            else "expected a fraction between 0 and 1 (0.25: a quarter of the training images), or none"
        ),
    )
    seed: int | None = declare(None, "Seed: same architectures and metrics on CPU.")
    runs_dir: Path = declare(lambda: Path("runs"), "Where the local store lives (MLflow, Optuna, models).")
    storage: str | None = declare(
        None, "Optuna storage URL (default: RUNS_DIR/optuna.journal; postgresql://... for many machines)."
    )
    tracking_uri: str | None = declare(None, "MLflow tracking URI (default: sqlite:///RUNS_DIR/mlflow.db).")
    max_failures: int = declare(3, "Failed trials in a row that stop the search.", check=whole(1), cli=False)
    callbacks: tuple[Callable[[TrialEvent], None] | Any, ...] = declare(
        (), "Keras-style callbacks (run_search only).", cli=False, recorded=False
    )
    data_options: Mapping[str, Any] | None = declare(
        None, "Keywords of load_dataset (run_search only).", cli=False, recorded=False
    )
    workers: int | None = declare(
        None,
        "Worker processes (optuna; default: one per visible GPU; on a CPU, 2 for a search of 40+ trial-epochs and "
        "no --timeout under 15 s, else 1 in this process). --seed repeats a search exactly with --workers 1.",
        check=whole(1, optional=True),
    )
    recycle_after: int | None = declare(
        None,
        "Start a fresh worker process after this many trials.",
        check=whole(1, "a whole number of trials", optional=True),
    )
    max_worker_rss_mb: float | None = declare(
        None,
        "Start a fresh worker process above this RSS (MiB).",
        flag="--max-worker-rss",
        check=number(above=0, what="MiB", optional=True),
    )
    mixed_precision: bool = declare(False, "mixed_float16 (for GPUs; untested on GPU here).")
    xla: bool = declare(False, "XLA-compile training steps (for GPUs).")
    report: bool = declare(True, "Skip the pictures logged on the search's run.", flag="--no-report")
    #: The GPUs this process sees (``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi``), filled in by ``run_search``.
    gpus: tuple[str, ...] = declare((), "The GPUs this process sees (filled in).", cli=False, recorded=False)
    #: The engine's own options (:attr:`Engine.options`), by name; :meth:`own_options` reads them typed.
    own: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def checked(self) -> SearchOptions:
        """These options, or a :class:`~search._errors.SearchError` naming the first one out of range
        (what was expected, what was received), then the engine's own ones and any given that this
        engine does not take. The engine's own checks come after (:meth:`Engine.check`).

        >>> SearchOptions(trials=0).checked()
        Traceback (most recent call last):
        ...
        search._errors.SearchError: trials: expected a whole number >= 1, received 0
        >>> SearchOptions(engine="grid").checked()
        Traceback (most recent call last):
        ...
        search._errors.SearchError: engine: unknown engine 'grid'; expected one of optuna, keras-tuner, autokeras

        Errors name the keyword in Python, the flag on the command line (:func:`~search._errors.cli_spelling`):

        >>> from search._errors import cli_spelling
        >>> with cli_spelling():
        ...     SearchOptions(workers=0).checked()
        Traceback (most recent call last):
        ...
        search._errors.SearchError: --workers: expected a whole number >= 1, received 0
        """
        from search._names import check_name

        engine = get_engine(self.engine)
        check(self, SHARED)
        if self.name is not None:
            check_name(self.name, option=option("name"))
        refuse_foreign(self.engine, dict(self.own), every_option())  # (a shared one's engines: Engine.check)
        if engine.options is not None:
            own = engine.own_options(self)
            check(own, options_of(engine.options))
            self = dataclasses.replace(self, own=dataclasses.asdict(own))  # every one of them, defaults filled in
        goals = tuple(g.metric for g in parse_goals(self.goals, what=option("goals")))
        return dataclasses.replace(self, runs_dir=Path(self.runs_dir), callbacks=tuple(self.callbacks), goals=goals)

    def record(self) -> dict[str, Any]:
        """What the search records for its workers and as its MLflow parameters: the recorded options
        (:func:`search._options.recorded`) and the engine's own, flat (names are unique across them)."""
        engine = get_engine(self.engine)
        own = {} if engine.options is None else recorded(engine.own_options(self), options_of(engine.options))
        return {**recorded(self, SHARED), **own}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SearchOptions:
        """The options a search recorded (:meth:`record`), as a worker reads them back; what an older
        record lacks keeps its default."""
        shared = from_record(cls, record)
        engine = get_engine(shared.engine)
        own = (
            {}
            if engine.options is None
            else {o.name: record[o.name] for o in options_of(engine.options) if o.name in record}
        )
        return dataclasses.replace(shared, own=own)

    @property
    def goal_list(self) -> tuple[Goal, ...]:
        """The goals as :class:`~search._goal.Goal` objects, accuracy first."""
        return parse_goals(self.goals, what=option("goals"))

    @property
    def measures(self) -> dict[str, float | None]:
        """What each trial's built model is measured for before it trains: the measured goals (limit None)
        and the measured constraints (``latency_ms:tflite`` -> 2.0 ms; ``model_bytes:tflite`` -> bytes).

        >>> SearchOptions(goals="val_accuracy,latency_ms:onnx", max_latency_ms=2, max_model_kb=256).measures
        {'latency_ms:onnx': 2, 'model_bytes:tflite': 262144}
        """
        goals = self.goal_list
        found: dict[str, float | None] = {g.metric: None for g in goals if g.measured_on}

        def runtime(family: str) -> str:
            named = (g.measured_on for g in goals if g.measured_on and g.metric.startswith(family + ":"))
            return next(named, DEFAULT_RUNTIME)

        if self.max_latency_ms is not None:
            found[f"latency_ms:{runtime('latency_ms')}"] = self.max_latency_ms
        if self.max_model_kb is not None:
            found[f"model_bytes:{runtime('model_bytes')}"] = self.max_model_kb * 1024
        return found

    @property
    def constraints(self) -> dict[str, int]:
        """The constraints given (``max_params``, ``max_flops``), for the space's budget."""
        return {k: v for k in ("max_params", "max_flops") if (v := getattr(self, k)) is not None}

    @property
    def recycles(self) -> bool:
        """Whether worker processes were asked to be recycled (``--recycle-after``, ``--max-worker-rss``)."""
        return self.recycle_after is not None or self.max_worker_rss_mb is not None

    @property
    def supervised(self) -> bool:
        """Whether trials run in supervised worker processes rather than in this process: several
        workers, recycling asked for, or GPUs (one worker pinned to each)."""
        return (self.workers or 1) > 1 or self.recycles or bool(self.gpus)

    def deadlines(self) -> tuple[float | None, float | None]:
        """(no trial starts after, a running trial is stopped at) as ``time.time()`` values, from
        ``--timeout`` counted from now; (None, None) without one. The second is :data:`HARD_LIMIT` times
        the timeout.

        >>> SearchOptions().deadlines()
        (None, None)
        """
        import time

        if self.timeout is None:
            return None, None
        now = time.time()
        return now + self.timeout, now + self.timeout * HARD_LIMIT

    def planned_epochs(self, space: Space) -> int:
        """The most epochs a trial trains: ``--epochs``, else the space's largest ``training.epochs``."""
        return self.epochs if self.epochs is not None else max(space.training["epochs"].values())


class Engine(abc.ABC):
    """One way of choosing trials (see the module docstring). Subclasses set :attr:`name` and implement
    :meth:`run` and :meth:`trial_rows`; the rest has defaults."""

    #: The name users give (``--engine``), and the ``engine`` tag of the search's MLflow runs.
    name: ClassVar[str]
    #: The ``--tuner`` choices, the default first; () for an engine without tuners.
    tuners: ClassVar[tuple[str, ...]] = ()
    #: Whether the engine runs trials in worker processes (``--workers N``).
    workers: ClassVar[bool] = False
    #: Whether, with no ``--workers`` on a machine without GPUs, a search longer than seconds runs in
    #: :data:`search._run.CPU_WORKERS` processes (:func:`search._run.default_workers`; measured for Optuna).
    cpu_workers: ClassVar[bool] = False
    #: Modules the forkserver its worker processes are forked from imports ahead of them
    #: (:meth:`search.runtime._zygote.Launcher.prestart`), beside what every worker needs.
    preload: ClassVar[tuple[str, ...]] = ()
    #: Whether the engine searches several goals at once (``--goals val_accuracy,params``): a Pareto front.
    several_goals: ClassVar[bool] = False
    #: Whether the engine re-checks its top candidates (``--recheck K``, :mod:`search.runtime._recheck`).
    rechecks: ClassVar[bool] = False
    #: What a rerun with the same ``--name`` continues (said in ``cnn-search run --help`` and the README).
    resumes: ClassVar[str] = "nothing: a rerun starts the search again"
    #: The engine's own options: a frozen dataclass whose fields are declared with
    #: :func:`search._options.declare` (Optuna's ``sampler``, ``pruner``...), or None. They become flags of
    #: ``cnn-search run``, keywords of ``run_search``, entries of the workers' record and MLflow parameters;
    #: given with another engine, they are refused.
    options: ClassVar[type | None] = None

    def own_options(self, options: SearchOptions) -> Any:
        """This engine's own options (an instance of :attr:`options`) from ``options.own``; None without any."""
        return None if self.options is None else own_of(self.options, options.own)

    def check(self, options: SearchOptions, space: Space) -> SearchOptions:
        """Refuse, before anything is created, what this engine cannot do with ``options`` on ``space``;
        return the options with the engine's defaults filled in. The default checks ``--tuner`` and
        refuses worker processes unless :attr:`workers`."""
        if self.tuners:
            tuner = options.tuner or self.tuners[0]
            if tuner not in self.tuners:
                raise SearchError(
                    f"{option('tuner')}: unknown {self.name} tuner {tuner!r}; expected one of {', '.join(self.tuners)}"
                )
            options = dataclasses.replace(options, tuner=tuner)
        elif options.tuner is not None:
            raise SearchError(f"{option('tuner')}: the {self.name} engine has no tuners; received {options.tuner!r}")
        goals = options.goals or ()
        if not self.several_goals and len(goals) > 1:
            able = " and ".join(n for n, e in ENGINES.items() if e.several_goals)
            raise SearchError(
                f"{option('goals')}: the {self.name} engine optimises one objective and cnn-search does not "
                f"scalarise goals for it (a weighted sum hides the trade-off a front shows); received "
                f"{','.join(goals)}. Several goals run on the {able} engine; constraints ({option('max_params')}, "
                f"{option('max_flops')}) work on every engine"
                + (
                    f". The goals are the space {space.name!r}'s: "
                    f"{option('goals')} val_accuracy searches accuracy alone"
                    if tuple(space.goals) == tuple(goals)
                    else ""
                )
            )
        if options.refit and not self.rechecks:
            able = ", ".join(n for n, e in ENGINES.items() if e.rechecks)
            raise SearchError(
                f"{option('refit')}: refitting the champion runs on the {able} engines (not yet on {self.name})"
            )
        if options.recheck and not self.rechecks:
            able = ", ".join(n for n, e in ENGINES.items() if e.rechecks)
            raise SearchError(
                f"{option('recheck')}: re-checking the top candidates runs on the {able} engines (not yet on "
                f"{self.name}); received {option('recheck')} {options.recheck}. {option('recheck')} 0 keeps the "
                "best single run"
            )
        if options.recheck and len(goals) > 1:
            raise SearchError(
                f"{option('recheck')}: re-checking judges accuracy alone and a search of several goals crowns a point "
                f"of its Pareto front; received {option('goals')} {','.join(goals)} with {option('recheck')} "
                f"{options.recheck}. Pass one of them"
            )
        if not self.workers and ((options.workers or 1) > 1 or options.recycles):
            asked = "/".join(option(k) for k in ("workers", "recycle_after", "max_worker_rss_mb"))
            able = " and ".join(n for n, e in ENGINES.items() if e.workers)
            raise SearchError(f"{asked}: worker processes run the {able} engines; received engine {self.name!r}")
        return options

    def default_name(self, space: Space, data: str) -> str:
        """The search's name when ``--name`` is not given: ``SPACE-DATA-ENGINE`` (one MLflow experiment each)."""
        from search._names import safe_name

        return safe_name(f"{space.name}-{Path(str(data)).stem}-{self.name}")

    @abc.abstractmethod
    def run(self, session: Session, options: SearchOptions) -> SearchResult:
        """Run (or continue) the search's trials, each through :meth:`Session.trial`; register the winner
        (``session.winner.finish``) and return what was done."""

    @abc.abstractmethod
    def trial_rows(
        self, name: str, *, runs_dir: Path, storage: str | None = None
    ) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
        """Search ``name``'s trials as plain dicts, best first (``cnn-search trials``), and what the engine
        recorded about the search (``space_definition`` among it). ``KeyError`` when it has no such search."""

    def recorded_options(self, name: str, *, runs_dir: Path, storage: str | None = None) -> SearchOptions:
        """The options search ``name`` was started with, read back from where the engine records them for
        its workers (:meth:`SearchOptions.from_record`); ``KeyError`` when it has no such search."""
        raise KeyError(name)

    def worker(self, name: str, **options: Any) -> int:
        """Run one worker process of search ``name`` (``cnn-search worker --engine``); returns its trials."""
        raise SearchError(f"--engine: the {self.name} engine has no worker processes; received --engine {self.name}")


#: The engines by name, in the order ``--help`` lists them.
ENGINES: dict[str, Engine] = {}

#: The options every engine reads (:class:`SearchOptions`), in ``--help``'s order.
SHARED: tuple[Option, ...] = options_of(SearchOptions)
SHARED_NAMES = frozenset(o.name for o in SHARED)


def every_option() -> dict[str, Option]:
    """Every option by name: the shared ones, then each registered engine's own (:attr:`Engine.options`;
    one name declared by several engines is one option that those engines take)."""
    found = {o.name: o for o in SHARED}
    for engine in ENGINES.values():
        for o in options_of(engine.options) if engine.options is not None else ():
            known = found.get(o.name)
            engines = (*known.engines, engine.name) if known is not None and known.engines else (engine.name,)
            found[o.name] = dataclasses.replace(o, engines=engines)
    return found


def split_keywords(options: SearchOptions | None, keywords: Mapping[str, Any]) -> SearchOptions:
    """``options`` (default :class:`SearchOptions`) with ``keywords``: the shared ones as fields, any other
    (an engine's own option, or a misspelt one: refused by :meth:`SearchOptions.checked`) in ``own``."""
    base = options or SearchOptions()
    shared = {k: v for k, v in keywords.items() if k in SHARED_NAMES}
    own = {**base.own, **{k: v for k, v in keywords.items() if k not in SHARED_NAMES and k != "own"}}
    return dataclasses.replace(base, **shared, own={**own, **dict(keywords.get("own") or {})})


def register_engine(engine: type[Engine]) -> type[Engine]:
    """Add ``engine`` (a class) to :data:`ENGINES` under its :attr:`Engine.name`; use as a class decorator."""
    if not getattr(engine, "name", ""):
        raise TypeError(f"{engine.__name__}: an engine needs a name")
    ENGINES[engine.name] = engine()
    return engine


def get_engine(name: str) -> Engine:
    """The registered engine called ``name``, or an error that lists them."""
    # (importing this module imported the package first, and with it the engines that come with cnn-search)
    if name not in ENGINES:
        raise SearchError(f"{option('engine')}: unknown engine {name!r}; expected one of {', '.join(ENGINES)}")
    return ENGINES[name]


def _engine_file(runs_dir: Path, name: str) -> Path:
    return Path(runs_dir) / "searches" / f"{name}.json"


def record_engine(runs_dir: Path, name: str, engine: str) -> None:
    """Record once, under ``runs_dir/searches/NAME.json``, which engine search ``name`` belongs to (read
    back by :func:`engine_of` without importing MLflow); a search of another engine under that name is
    refused (the same rule as its MLflow run's ``engine`` tag, checked seconds later)."""
    import json
    import os

    path = _engine_file(runs_dir, name)
    recorded = engine_of(name, runs_dir=runs_dir)
    if recorded is not None and recorded != engine:
        raise SearchError(
            f"search {name!r} belongs to the {recorded} engine ({path}); received engine {engine!r}. "
            f"Use another {option('name')}."
        )
    if recorded is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"engine": engine}))
        os.replace(tmp, path)


def engine_of(name: str, *, runs_dir: Path, tracking_uri: str | None = None) -> str | None:
    """The engine search ``name`` was recorded with: :func:`record_engine`'s file, else (a search started
    elsewhere, or by an older cnn-search) the ``engine`` tag of its MLflow run when ``tracking_uri`` is
    given; None when neither knows it."""
    import json

    path = _engine_file(runs_dir, name)
    try:
        return str(json.loads(path.read_text())["engine"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if tracking_uri is None:
        return None
    from search.tracking._searches import recorded_engine

    return recorded_engine(tracking_uri, name)


def check_same_search(recorded: Mapping[str, Any], space: Space, data: DataBundle, name: str) -> dict[str, Any]:
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


def seed_everything(seed: int | None) -> None:
    """Seed Keras (Python, NumPy, the backend) and make TensorFlow's ops deterministic; None: nothing."""
    if seed is None:
        return
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def states_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Trials by state, in first-seen order.

    >>> states_of([{"state": "complete"}, {"state": "pruned"}, {"state": "complete"}])
    {'complete': 2, 'pruned': 1}
    """
    states: dict[str, int] = {}
    for row in rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    return states
