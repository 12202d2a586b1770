"""What every engine shares: the :class:`Session` of one search invocation, and the events callbacks get.

An engine (``_base.py``) only decides which parameters a trial gets and when trials run. For each
trial it calls :meth:`Session.trial` with a ParamSource; at the end ``session.winner.finish``
(:meth:`search.runtime._winner.Winner.finish`) evaluates the winner once on the test split, logs it
and registers it. In a worker process started by ``cnn-search
run`` (``relay``) the same calls write into the spool instead, and the supervising process writes
MLflow (:mod:`search.tracking._spool`).

A Session is made of parts, each with its own state and ``__init__``: :attr:`Session.record`, the
search's :class:`~search.runtime._record.SearchRecord` (its identity, its life in MLflow, signals);
:attr:`Session.objective`, the :class:`~search.training.Objective` that trains and judges a trial;
:attr:`Session.winner`, the :class:`~search.runtime._winner.Winner` (the best model kept on disk, the
winner evaluated and registered); and the Session itself, the trial loop (one trial sampled, trained,
judged and recorded through the engine's :class:`TrialStore`; consecutive failures counted; callbacks
told). What a search *is* (name, engine, space, data, runs folder, tracking URI) the Session reads
from its record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._backend import name as backend
from search._errors import SearchError
from search._goal import GOAL
from search.model import Architecture
from search.runtime._record import SearchRecord, say_winner
from search.runtime._signals import SearchInterrupted, Signals, interrupt_on_signals
from search.runtime._winner import Winner, atomic_save
from search.space import ParamSource, Space
from search.training import Objective, Reporter, TrialResult

if TYPE_CHECKING:
    from search.data import DataBundle
    from search.engines import SearchOptions

log = logging.getLogger("search")

__all__ = [  # the names engines and tests import from here
    "SearchInterrupted",
    "SearchResult",
    "Session",
    "Signals",
    "TrialEvent",
    "TrialStore",
    "atomic_save",
    "interrupt_on_signals",
    "log",
    "say_winner",
]


@dataclass
class SearchStarted:
    """Passed to ``on_search_begin``: the search's name and engine, trials already done (a resumed
    search), the target, and the most epochs a trial trains."""

    name: str
    engine: str
    done: int
    target: int
    epochs: int


@dataclass
class TrialStarted:
    """Passed to ``on_trial_begin`` when trial ``number`` starts training (``epochs`` at most)."""

    number: int
    epochs: int
    summary: str


@dataclass
class EpochEvent:
    """Passed to ``on_epoch_end`` after each epoch of a trial: ``epoch`` counts from 1; ``metrics`` are
    Keras's logs (``accuracy``, ``val_accuracy``, ``loss``, ``val_loss``; only ``val_accuracy`` for a
    trial running in a worker process); ``seconds`` since the trial started."""

    number: int
    epoch: int
    epochs: int
    metrics: dict[str, float]
    seconds: float


@dataclass
class StepEvent:
    """Passed to ``on_step`` a few times a second while a trial trains in this process: ``step`` batches of
    epoch ``epoch`` (from 1) done, of ``steps`` (0 when unknown); ``seconds`` since the trial started.
    A trial in a worker process reports its epochs only (read from the study), never its steps."""

    number: int
    epoch: int
    epochs: int
    step: int
    steps: int
    seconds: float


def dispatch(callbacks: tuple[Any, ...], method: str, event: Any) -> None:
    """Progress callbacks, the way Keras callbacks work: an object gets the methods it has
    (``on_search_begin``, ``on_trial_begin``, ``on_epoch_end``, ``on_trial_end``); a plain function is
    called with each :class:`TrialEvent` only (``on_trial_end``)."""
    for callback in callbacks:
        if hasattr(callback, method):
            getattr(callback, method)(event)
        elif method == "on_trial_end" and callable(callback):
            callback(event)


@dataclass
class TrialEvent:
    """Passed to progress callbacks after each trial (``on_trial_end``)."""

    number: int
    state: str
    value: float | None
    reason: str | None
    summary: str
    seconds: float
    best_value: float | None
    best_trial: int | None
    done: int
    target: int


@dataclass
class SearchResult:
    """What :func:`search.run_search` returns."""

    name: str
    engine: str
    best_trial: int | None
    best_value: float | None
    architecture: Architecture | None
    test_metrics: dict[str, float]
    model_uri: str | None
    states: dict[str, int]
    wall_seconds: float
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    nothing_to_do: bool = False
    new_trials: int = 0
    #: Every trial, best first, as ``cnn-search trials`` lists them (one dict each; :meth:`dataframe`: a table).
    trials: list[dict[str, Any]] = field(default_factory=list)

    def dataframe(self) -> Any:
        """The trials as a pandas DataFrame (pandas comes with MLflow), one row per trial, best first."""
        import pandas as pd

        return pd.DataFrame(self.trials)


class TrialStore:
    """Where an engine keeps its trials: what :meth:`Session.trial` asks of it, in place of callbacks. An
    engine subclasses it (Optuna's study: :class:`search.engines._optuna._loop.StudyTrial`; KerasTuner's
    rows files) and overrides what it keeps; :meth:`best`, :meth:`record` and :meth:`done` it must."""

    def best(self) -> tuple[float | None, int | None]:
        """(value, trial number) of the engine's best trial so far (other workers' included), or (None, None)."""
        raise NotImplementedError

    def record(self, architecture: Architecture, result: TrialResult, run_id: str) -> None:
        """Keep a finished trial's outcome (its MLflow run is ``run_id``)."""
        raise NotImplementedError

    def done(self) -> int:
        """How many trials count towards the target now."""
        raise NotImplementedError

    def report(self, epoch: int, value: float) -> bool:
        """After each epoch: whether to stop (prune) the trial; never, unless the engine prunes."""
        return False

    def interrupted(self) -> None:
        """The trial was interrupted by a signal (then recorded as killed in MLflow): what the engine keeps of it."""


class Session:
    """One invocation of a search: its record, its objective, its winner, and the trial loop."""

    def __init__(
        self,
        *,
        name: str,
        engine: str,
        space: Space,
        data: DataBundle,
        runs_dir: Path,
        tracking_uri: str,
        epochs: int | None,
        seed: int | None,
        max_failures: int = 3,
        callbacks: tuple[Callable[[TrialEvent], None], ...] = (),
        owns_parent: bool = True,
        mixed_precision: bool = False,
        xla: bool = False,
        relay: Path | None = None,
        measures: dict[str, float | None] | None = None,
        keeps_front: bool = False,
        keeps_candidates: bool = False,
        option_params: dict[str, Any] | None = None,
    ) -> None:
        self.record = SearchRecord(
            name=name, engine=engine, space=space, data=data, runs_dir=runs_dir, tracking_uri=tracking_uri,
            relay=relay, owns_parent=owns_parent, mixed_precision=mixed_precision, xla=xla,
            option_params=option_params,
        )  # fmt: skip
        self.objective = Objective(
            space, data, epochs=epochs, seed=seed, jit_compile=True if xla else "auto", measures=measures
        )
        self.winner = Winner(self.record, self.objective, keeps_front=keeps_front, keeps_candidates=keeps_candidates)
        self.options: SearchOptions | None = None  # what the search was asked (set by from_options)
        self.max_failures = max_failures
        self.callbacks = callbacks
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.started = time.perf_counter()

    # -- what the search is: read from its record ---------------------------------------------------
    @property
    def name(self) -> str:
        return self.record.name

    @property
    def engine(self) -> str:
        return self.record.engine

    @property
    def space(self) -> Space:
        return self.record.space

    @property
    def data(self) -> DataBundle:
        return self.record.data

    @property
    def runs_dir(self) -> Path:
        return self.record.runs_dir

    @property
    def tracking_uri(self) -> str:
        return self.record.tracking_uri

    @classmethod
    def from_options(
        cls,
        options: SearchOptions,
        *,
        name: str,
        engine: str,
        space: Space,
        data: DataBundle,
        tracking_uri: str,
        owns_parent: bool = True,
        relay: Path | None = None,
    ) -> Session:
        """The session of search ``name`` as ``options`` say (``cnn-search run``'s, or those a worker read back
        from the search's record: :meth:`~search.engines.SearchOptions.from_record`)."""
        session = cls(
            name=name,
            engine=engine,
            space=space,
            data=data,
            runs_dir=Path(options.runs_dir),
            tracking_uri=tracking_uri,
            epochs=options.epochs,
            seed=options.seed,
            max_failures=options.max_failures,
            callbacks=tuple(options.callbacks),
            owns_parent=owns_parent,
            mixed_precision=options.mixed_precision,
            xla=options.xla,
            relay=relay,
            measures=options.measures,
            keeps_front=len(options.goal_list) > 1,
            keeps_candidates=options.recheck > 0,
            option_params=options.record(),
        )
        session.options = options
        session.objective.subset = options.subset
        return session

    # -- one trial ---------------------------------------------------------------------------------
    def run_trial(
        self,
        number: int,
        source: ParamSource,
        reporter: Reporter,
        *,
        signals: Signals,
        on_interrupt: Callable[[], None],
        deadline: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> tuple[Architecture, TrialResult, str]:
        """Sample, train and judge one trial, then record it in MLflow in one go (its run carries the
        trial's real start and end times). Signals interrupt only the training; then the trial is
        recorded as killed (engine via ``on_interrupt``, MLflow run KILLED) and the interrupt re-raised.
        ``tags`` are added to the trial's run (``start_point``: the index of the space's start point it tried)."""
        arch = self.space.sample(source)
        started_ms = int(time.time() * 1000)
        epochs = self.objective.epochs or arch.training.epochs
        dispatch(self.callbacks, "on_trial_begin", TrialStarted(number, epochs, arch.summary(self.data.num_classes)))
        t0 = time.perf_counter()

        def on_epoch(epoch: int, logs: dict[str, float]) -> None:
            event = EpochEvent(number, epoch + 1, epochs, logs, time.perf_counter() - t0)
            dispatch(self.callbacks, "on_epoch_end", event)

        def on_step(epoch: int, step: int, steps: int) -> None:
            dispatch(
                self.callbacks, "on_step", StepEvent(number, epoch + 1, epochs, step, steps, time.perf_counter() - t0)
            )

        try:
            with signals.armed():
                result = self.objective(
                    arch, reporter, trial_number=number, deadline=deadline, on_epoch=on_epoch, on_step=on_step
                )
        except KeyboardInterrupt as exc:
            on_interrupt()
            reason = f"killed: {exc}" if str(exc) else "killed: interrupted"
            failed = TrialResult("failed", reason=reason)
            self._record(number, arch, source, started_ms, failed, state="killed", tags=tags)
            raise
        run_id = self._record(number, arch, source, started_ms, result, state=result.state, tags=tags)
        if result.state == "failed":
            self.consecutive_failures += 1
            self.last_error = result.reason
        elif result.state in ("complete", "pruned"):
            self.consecutive_failures = 0
        return arch, result, run_id

    def trial(
        self,
        number: int,
        source: ParamSource,
        store: TrialStore,
        *,
        signals: Signals,
        target: int,
        deadline: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> TrialResult:
        """One trial, the same for every engine: sampled from ``source``, trained, judged and recorded in
        MLflow (:meth:`run_trial`); its model kept when it beats the engine's best so far
        (:meth:`TrialStore.best`); the outcome stored where the engine keeps its trials
        (:meth:`TrialStore.record`); then the callbacks hear of it (:class:`TrialEvent`, with
        :meth:`TrialStore.done` trials counted of ``target``). After each epoch :meth:`TrialStore.report` says
        whether to stop (prune) the trial. Raises :class:`~search._errors.SearchError` when ``max_failures``
        trials failed in a row; returns the trial's result (its model dropped)."""
        t0 = time.perf_counter()
        arch, result, run_id = self.run_trial(
            number, source, store.report, signals=signals, on_interrupt=store.interrupted, deadline=deadline, tags=tags
        )
        if result.state == "complete":
            self.winner.keep_if_best(number, result, *store.best())
        store.record(arch, result, run_id)
        result.model = None
        best_value, best_trial = store.best()
        self.notify(
            TrialEvent(
                number=number,
                state=result.state,
                value=result.value,
                reason=result.reason,
                summary=arch.summary(self.data.num_classes),
                seconds=time.perf_counter() - t0,
                best_value=best_value,
                best_trial=best_trial,
                done=store.done(),
                target=target,
            )
        )
        if self.too_many_failures():
            raise SearchError(f"{self.consecutive_failures} trials failed in a row; the last error: {self.last_error}")
        return result

    def record_killed(self, number: int, params: dict[str, Any], reason: str, *, started: Any = None) -> str:
        """Record in MLflow a trial whose worker died mid-trial (found stale by another worker). A worker
        killed while it was still sampling leaves only some parameters: then the run has those and no
        architecture."""
        from search.space import FixedParams

        source = FixedParams(params)
        started_ms = int(started.timestamp() * 1000) if started is not None else int(time.time() * 1000)
        try:
            arch = self.space.sample(source)
        except SearchError:  # the parameters of a trial killed mid-sampling: an incomplete point
            tracker, experiment_id, parent = self.record.tracked()
            tags = {"engine": self.engine, "data_fingerprint": self.data.fingerprint, "reason": reason}
            return tracker.record_trial(
                experiment_id, parent, number, started_ms=started_ms, state="killed", params=params,
                history={}, final={}, tags=tags, architecture=None,
            )  # fmt: skip
        return self._record(number, arch, source, started_ms, TrialResult("failed", reason=reason), state="killed")

    def _record(
        self,
        number: int,
        arch: Architecture,
        source: ParamSource,
        started_ms: int,
        result: TrialResult,
        *,
        state: str,
        tags: dict[str, str] | None = None,
    ) -> str:
        tracker, experiment_id, parent = self.record.tracked()
        tags = {
            **(tags or {}),
            "engine": self.engine,
            "backend": backend(),
            "architecture": arch.summary(self.data.num_classes),
            "architecture_hash": arch.hash(),
            "data_fingerprint": self.data.fingerprint,
            "reason": result.reason or "",
        }
        return tracker.record_trial(
            experiment_id,
            parent,
            number,
            started_ms=started_ms,
            state=state,
            params=source.params,
            history=result.history,
            final=result.final_metrics(),
            tags=tags,
            architecture=arch.to_dict(),
            traceback=result.traceback,
        )

    def too_many_failures(self) -> bool:
        return self.consecutive_failures >= self.max_failures

    def notify(self, event: TrialEvent) -> None:
        value = f"{GOAL.metric} {event.value:.4f}" if event.value is not None else "no value"
        best = (
            f"best {event.best_value:.4f} (trial {event.best_trial})" if event.best_value is not None else "no best yet"
        )
        reason = f" [{event.reason}]" if event.reason else ""
        log.info(
            "trial %d %s: %s; %s; %.1f s; %s%s",
            event.number,
            event.state,
            value,
            best,
            event.seconds,
            event.summary,
            reason,
        )
        dispatch(self.callbacks, "on_trial_end", event)

    def search_started(self, *, done: int, target: int) -> None:
        """Say what this run does (a resumed search says what it continues) and tell the callbacks."""
        epochs = self.objective.epochs or max(self.space.training["epochs"].values())
        if done:
            log.info("continuing search %s (%s): %d of %d trials done", self.name, self.engine, done, target)
        else:
            log.info("search %s (%s): %d trials of up to %d epochs", self.name, self.engine, target, epochs)
        dispatch(self.callbacks, "on_search_begin", SearchStarted(self.name, self.engine, done, target, epochs))
