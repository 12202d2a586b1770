"""What every engine shares: the MLflow contract, the Objective, the best model, the winner.

An engine (Optuna, KerasTuner, AutoKeras) only decides which parameters a trial gets
and when trials run. For each trial it calls :meth:`Session.run_trial` with a ParamSource and a
pruning reporter; at the end :meth:`Session.finish` evaluates the winner once on the test split,
logs it and registers it. In a worker process started by ``cnn-search run`` (``relay``) the same calls
write into the spool instead, and the supervising process writes MLflow (:mod:`search.tracking._spool`).

"Best" (README): the completed trial with the highest validation accuracy at its best epoch; its
model is that epoch's weights (no retraining on train+validation), kept on disk as
``runs/models/<name>/trial-<n>.keras`` as soon as trial n beats the previous best (which is then
deleted). Ties keep the earlier trial. If that file is missing, the winner is retrained.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search._goal import GOAL
from search.model import Architecture
from search.space import ParamSource, Space
from search.tracking import Tracker
from search.tracking._store import search_lock
from search.training import Objective, Reporter, TrialResult

if TYPE_CHECKING:
    from search.data import DataBundle

log = logging.getLogger("search")


class SearchInterrupted(KeyboardInterrupt):
    """Raised by SIGINT/SIGTERM during a search; ``exit_code`` is 130 or 143."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(signal.Signals(signum).name)


class Signals:
    """SIGINT/SIGTERM during a search. Inside :meth:`armed` (a trial's training) a signal raises
    :class:`SearchInterrupted` at once; anywhere else (recording a trial, the winner) it is held and
    raised at the next :meth:`check`, so bookkeeping is never cut in half.

    The handler runs wherever Python checks for signals, C code included: TensorFlow may catch the
    exception and go on, or turn it into another one (CI saw ``SystemError: Objects/listobject.c:338:
    bad argument to internal function``), so the trial would end "failed" and the search go on.
    :meth:`armed` therefore remembers the signal it raised and raises it again on the way out, whatever
    became of the first exception."""

    def __init__(self) -> None:
        self.is_armed = False
        self.pending: int | None = None
        self.fired: int | None = None  # the signal raised inside the current armed block

    def handler(self, signum: int, frame: Any) -> None:
        if self.is_armed:
            self.is_armed = False  # a second signal while unwinding is held, not raised
            self.fired = signum
            raise SearchInterrupted(signum)
        self.pending = signum

    def check(self) -> None:
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise SearchInterrupted(signum)

    @contextmanager
    def armed(self) -> Iterator[None]:
        self.check()
        self.is_armed, self.fired = True, None
        try:
            yield
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a library turned the interrupt into another exception
            if self.fired is not None:
                raise SearchInterrupted(self.fired) from exc
            raise
        finally:
            self.is_armed = False
        if self.fired is not None:  # a library swallowed the interrupt
            raise SearchInterrupted(self.fired)


@contextmanager
def interrupt_on_signals() -> Iterator[Signals]:
    """Install :class:`Signals` for SIGINT and SIGTERM (main thread only; elsewhere none are caught)."""
    import threading

    signals = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    previous = {s: signal.signal(s, signals.handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


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
    trials: list[dict[str, Any]] = field(default_factory=list)


def atomic_save(model: Any, path: Path) -> None:
    """Save a Keras model so that a kill mid-write leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def say_winner(trial: int, test_accuracy: float, seconds: float, uri: str) -> None:
    """The line that says the search's winner is registered (by whichever process registered it)."""
    log.info(
        "winner: trial %d, test accuracy %.4f (evaluated once, %.1f s), registered as %s",
        trial,
        test_accuracy,
        seconds,
        uri,
    )


class Session:
    """One invocation of a search: the tracker, the objective and the bookkeeping."""

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
    ) -> None:
        self.name, self.engine, self.space, self.data = name, engine, space, data
        self.relay = relay  # a supervised worker: MLflow records go to the supervisor through this spool
        self.owns_parent = owns_parent  # a worker of a supervised search leaves the parent run to it
        self.runs_dir = runs_dir
        self.tracking_uri = tracking_uri
        self.mixed_precision, self.xla = mixed_precision, xla
        self.objective = Objective(space, data, epochs=epochs, seed=seed, jit_compile=True if xla else "auto")
        self.max_failures = max_failures
        self.callbacks = callbacks
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.models_dir = runs_dir / "models" / name
        self.started = time.perf_counter()
        self._tracking: Future[tuple[Tracker, str, str]] | None = None

    # -- MLflow: started in the background, waited for when a trial is recorded ----------------------
    def begin(self, parent_run_id: str | None, on_ready: Callable[[str, str], None] | None = None) -> None:
        """Start MLflow (import, store, experiment, parent run, reconciliation) in a background thread:
        it overlaps the first trial's training instead of delaying it. ``on_ready(experiment_id,
        parent_run_id)`` is called from that thread once the parent run exists. A supervised worker
        (``relay``) starts no MLflow: its records go to the spool, ``on_ready`` is not called."""
        from concurrent.futures import ThreadPoolExecutor

        if self.relay is not None:
            from search.tracking._spool import RelayTracker

            self._tracking = Future()
            self._tracking.set_result((RelayTracker(self.relay), "", ""))  # type: ignore[arg-type]
            return

        def begin() -> tuple[Tracker, str, str]:
            tracked = self._begin(parent_run_id)
            if on_ready is not None:
                on_ready(tracked[1], tracked[2])
            return tracked

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnn-search-mlflow")
        self._tracking = pool.submit(begin)
        pool.shutdown(wait=False)

    def _begin(self, parent_run_id: str | None) -> tuple[Tracker, str, str]:
        tracker = Tracker(self.tracking_uri, artifact_root=self.runs_dir / "mlartifacts")
        tags = {
            "engine": self.engine,
            "space": self.space.name,
            "space_fingerprint": self.space.fingerprint(),
            "data": self.data.source,
            "data_fingerprint": self.data.fingerprint,
            "data_seed": str(self.data.seed),
            "skipped_files": str(len(self.data.skipped)),
        }
        params = {
            "engine": self.engine,
            "space": self.space.name,
            "data": self.data.source,
            "input_shape": "x".join(map(str, self.data.input_shape)),
            "num_classes": self.data.num_classes,
            "mixed_precision": self.mixed_precision,
            "xla": self.xla,
        }
        with search_lock(self.runs_dir, self.name):  # two first runs of one search: one experiment, one parent
            experiment_id = tracker.experiment(self.name)
            parent, created = tracker.start_search(
                experiment_id, name=self.name, parent_run_id=parent_run_id, tags=tags, params=params
            )
        recorded = tracker.client.get_run(parent).data.tags.get("engine", self.engine)
        if recorded != self.engine:
            raise SearchError(
                f"MLflow experiment {self.name!r} belongs to a {recorded} search; received engine "
                f"{self.engine!r}. Use another --name."
            )
        killed = (
            []
            if created
            else tracker.reconcile(experiment_id, parent, killed_reason="killed: the process running it ended")
        )
        if killed:
            log.warning("%d trial run(s) left RUNNING by an earlier process marked KILLED in MLflow", len(killed))
        tracker.client.log_text(parent, json.dumps(self.space.to_dict(), indent=2), "space.json")
        if self.data.skipped:
            tracker.log(parent, tags={"skipped_files": str(len(self.data.skipped))})
            skipped = [{"path": path, "reason": reason} for path, reason in self.data.skipped]
            tracker.client.log_dict(parent, {"skipped": skipped}, "skipped_files.json")
        self._drain(tracker, experiment_id, parent)  # records an earlier run's workers left unwritten
        return tracker, experiment_id, parent

    def drain(self, *, wait: bool = True) -> int:
        """Write what this search's supervised workers left in the spool into MLflow
        (:mod:`search.tracking._spool`); ``wait=False`` does nothing while MLflow is still starting."""
        if self.relay is not None or self._tracking is None or (not wait and not self._tracking.done()):
            return 0
        return self._drain(*self._tracked())

    def _drain(self, tracker: Tracker, experiment_id: str, parent: str) -> int:
        from search.tracking._spool import drain, spool_dir

        def said(record: dict[str, Any], uri: str) -> None:
            say_winner(record["trial"], record["metrics"]["test_accuracy"], record["seconds"], uri)

        spool = spool_dir(self.runs_dir, self.name)
        return drain(tracker, experiment_id, parent, spool, name=self.name, on_winner=said)

    def _tracked(self) -> tuple[Tracker, str, str]:
        if self._tracking is None:
            raise RuntimeError("Session.begin() was not called")
        return self._tracking.result()

    @contextmanager
    def running(
        self,
        parent_run_id: str | None = None,
        on_ready: Callable[[str, str], None] | None = None,
        *,
        trains: bool = True,
    ) -> Iterator[Signals]:
        """The life of one invocation, the same for every engine: MLflow started (:meth:`begin`, with
        ``parent_run_id`` and ``on_ready``) once signals are caught, start-up objects kept out of garbage
        collection (``gc.freeze``; Keras's per-trial ``gc.collect`` otherwise walks every TensorFlow
        object), SIGINT/SIGTERM held outside training, and the parent run ended FINISHED, KILLED or
        FAILED however the block ends. A signal held until the block's work is done (the winner was being
        registered) does not undo it: the parent run ends FINISHED and the signal is said, not raised.
        ``trains=False``: trials run in worker processes, not here; Keras is not imported now (3 s of CPU
        the workers' start-up needs on a small machine)."""
        import gc

        if trains:
            import keras  # (imported before the heap is frozen)

            if self.mixed_precision:  # float16 compute, float32 weights; the softmax output stays float32
                keras.mixed_precision.set_global_policy("mixed_float16")
        gc.collect()
        gc.freeze()
        try:
            with interrupt_on_signals() as signals:
                try:
                    self.begin(parent_run_id, on_ready=on_ready)
                    yield signals
                except KeyboardInterrupt:
                    self.end_search("KILLED")
                    raise
                except BaseException:
                    self.end_search("FAILED")
                    raise
                if signals.pending is not None:
                    log.warning(
                        "%s received while the search was finishing: everything was recorded, it ended normally",
                        signal.Signals(signals.pending).name,
                    )
                    signals.pending = None
                self.end_search()
        finally:
            gc.unfreeze()

    def end_search(self, status: str = "FINISHED") -> None:
        """End the parent run with ``status``; nothing to end when MLflow never started."""
        if (
            not self.owns_parent
            or self._tracking is None
            or (self._tracking.done() and self._tracking.exception() is not None)
        ):
            return
        tracker, _, parent = self._tracked()
        tracker.end_search(parent, status)

    @property
    def tracker(self) -> Tracker:
        return self._tracked()[0]

    @property
    def experiment_id(self) -> str:
        return self._tracked()[1] if self._tracking is not None else ""

    @property
    def parent_run_id(self) -> str:
        return self._tracked()[2] if self._tracking is not None else ""

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

        try:
            with signals.armed():
                result = self.objective(arch, reporter, trial_number=number, deadline=deadline, on_epoch=on_epoch)
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
        *,
        signals: Signals,
        target: int,
        best: Callable[[], tuple[float | None, int | None]],
        record: Callable[[Architecture, TrialResult, str], None],
        done: Callable[[], int],
        reporter: Reporter | None = None,
        on_interrupt: Callable[[], None] | None = None,
        deadline: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> TrialResult:
        """One trial, the same for every engine: sampled from ``source``, trained, judged and recorded in
        MLflow (:meth:`run_trial`); its model kept when it beats ``best()`` (the engine's best so far:
        (value, trial number) or (None, None)); ``record(architecture, result, mlflow_run_id)`` stores the
        outcome where the engine keeps its trials; then the callbacks hear of it (:class:`TrialEvent`,
        with ``done()`` trials counted of ``target``). ``reporter(epoch, value)`` says whether to stop
        (prune) the trial after an epoch (default: never). Raises :class:`~search._errors.SearchError` when
        ``max_failures`` trials failed in a row; returns the trial's result (its model dropped)."""
        t0 = time.perf_counter()
        arch, result, run_id = self.run_trial(
            number,
            source,
            reporter or (lambda epoch, value: False),
            signals=signals,
            on_interrupt=on_interrupt or (lambda: None),
            deadline=deadline,
            tags=tags,
        )
        if result.state == "complete":
            self.keep_if_best(number, result, *best())
        record(arch, result, run_id)
        result.model = None
        best_value, best_trial = best()
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
                done=done(),
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
            tracker, experiment_id, parent = self._tracked()
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
        tracker, experiment_id, parent = self._tracked()
        tags = {
            **(tags or {}),
            "engine": self.engine,
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

    def model_path(self, trial: int) -> Path:
        return self.models_dir / f"trial-{trial}.keras"

    def keep_if_best(
        self, number: int, result: TrialResult, previous_best: float | None, previous_trial: int | None
    ) -> bool:
        """Save the trial's model (named after the trial, so a kill between steps can never pair one
        trial's weights with another's number) when it beats ``previous_best``; drop the previous one."""
        if result.model is None or result.value is None:
            return False
        if not GOAL.better(result.value, than=previous_best):
            return False
        atomic_save(result.model, self.model_path(number))
        if previous_trial is not None and previous_trial != number:
            self.model_path(previous_trial).unlink(missing_ok=True)
        return True

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

    def pictures(self) -> None:
        """Draw the report's pictures (:mod:`search.report`) and log them on the search's run; a picture
        never fails a search (what went wrong is a warning)."""
        from search.report import make_report

        t0 = time.perf_counter()
        try:
            made = make_report(self.name, runs_dir=self.runs_dir, tracking_uri=self.tracking_uri, data=self.data)
        except Exception as exc:  # whatever goes wrong with a picture, the search stands
            log.warning("report pictures not made: %s: %s", type(exc).__name__, exc)
            return
        log.info("%d pictures in %s (%.1f s)", len(made.pictures), made.html, time.perf_counter() - t0)

    def search_started(self, *, done: int, target: int) -> None:
        """Say what this run does (a resumed search says what it continues) and tell the callbacks."""
        epochs = self.objective.epochs or max(self.space.training["epochs"].values())
        if done:
            log.info("continuing search %s (%s): %d of %d trials done", self.name, self.engine, done, target)
        else:
            log.info("search %s (%s): %d trials of up to %d epochs", self.name, self.engine, target, epochs)
        dispatch(self.callbacks, "on_search_begin", SearchStarted(self.name, self.engine, done, target, epochs))

    # -- the winner --------------------------------------------------------------------------------
    def finish(
        self, *, best_trial: int, best_params: dict[str, Any], best_epoch: int | None
    ) -> tuple[dict[str, float], str]:
        """Evaluate the winner once on the test split, log and register it. Returns (metrics, model URI)."""
        import keras
        import numpy as np

        from search.space import FixedParams

        started = time.perf_counter()
        arch = self.space.sample(FixedParams(best_params))
        if self.model_path(best_trial).is_file():
            model = keras.saving.load_model(self.model_path(best_trial), safe_mode=True)
        else:  # the best trial's weights were not kept (another worker, a crash): retrain it
            from search.training import retrain

            model = retrain(
                self.space, self.data, arch, trial=best_trial, best_epoch=best_epoch, seed=self.objective.seed
            )
        x_test, y_test = self.data.arrays("test")
        from search.training._eager import predict_eagerly, scores

        probabilities = predict_eagerly(model, x_test)
        y = y_test.astype(int)
        k = self.data.num_classes
        confusion = np.bincount(y * k + probabilities.argmax(axis=1), minlength=k * k).reshape(k, k)
        accuracy, loss = scores(probabilities, y)
        metrics = {"test_accuracy": accuracy, "test_loss": loss}
        example = x_test[:5]  # the signature: its input, and the model's answers to it
        seconds = time.perf_counter() - started
        uri = self._log_winner(model, arch, best_trial, metrics, confusion, example, probabilities[:5], seconds)
        return metrics, uri

    def _log_winner(
        self,
        model: Any,
        arch: Architecture,
        trial: int,
        metrics: dict[str, float],
        confusion: Any,
        example: Any,
        answers: Any,
        seconds: float,
    ) -> str:
        """The winner into MLflow (:meth:`Tracker.log_winner`), or, for a supervised worker, into the spool
        for its supervisor to write (:mod:`search.tracking._spool`). The model goes as the file kept for
        the trial, saved here if it was retrained."""
        import keras

        from search.tracking._mlflow import tensor_spec

        path = self.model_path(trial)
        if not path.is_file():
            atomic_save(model, path)
        record = {
            "trial": trial,
            "summary": arch.summary(self.data.num_classes),
            "architecture": arch.to_dict(),
            "metrics": metrics,
            "confusion": {
                "class_names": list(self.data.class_names),
                "matrix": confusion.tolist(),
                "rows": "true class",
                "columns": "predicted class",
            },
            "model_file": str(path.resolve()),
            "inputs": tensor_spec(example),
            "outputs": tensor_spec(answers),
            "backend": keras.backend.backend(),
            "seconds": seconds,
        }
        return self.tracker.log_winner(self.parent_run_id, self.name, record)
