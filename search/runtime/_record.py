"""A search's life in MLflow, the same for every engine: started in the background, the parent run
ended FINISHED, KILLED or FAILED however the search ends, signals held outside training.

:class:`SearchRecord` is one part of a :class:`~search.runtime._session.Session` (with the
:class:`~search.runtime._winner.Winner` and the trial loop): it owns the search's identity (name,
engine, space, data, where its runs and MLflow store are) and its MLflow experiment and parent run.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search.runtime._signals import Signals, interrupt_on_signals
from search.tracking import Tracker
from search.tracking._disk import check_store_kept
from search.tracking._store import search_lock

if TYPE_CHECKING:
    from search.data import DataBundle
    from search.space import Space

log = logging.getLogger("search")

#: The parent run the engine's own record knows: its id, none, or a function that reads it when MLflow
#: starts (under the search's lock, so a second first run sees the parent the first one recorded).
ParentRun = str | Callable[[], str | None] | None


def say_winner(trial: int, metrics: dict[str, float], seconds: float, uri: str) -> None:
    """The line that says the search's winner is registered (by whichever process registered it), with the
    chance level beside its test accuracy (what answering the largest class alone scores)."""
    chance = metrics.get("chance_accuracy")
    log.info(
        "winner: trial %d, test accuracy %.4f%s (evaluated once, %.1f s), registered as %s",
        trial,
        metrics["test_accuracy"],
        f", chance {chance:.4f}" if chance is not None else "",
        seconds,
        uri,
    )


class SearchRecord:
    """The search's MLflow experiment and parent run (:meth:`running`), and the spool a supervised
    worker writes instead (``relay``)."""

    def __init__(
        self,
        *,
        name: str,
        engine: str,
        space: Space,
        data: DataBundle,
        runs_dir: Path,
        tracking_uri: str,
        relay: Path | None = None,
        owns_parent: bool = True,
        mixed_precision: bool = False,
        xla: bool = False,
        option_params: dict[str, Any] | None = None,
    ) -> None:
        self.name, self.engine, self.space, self.data = name, engine, space, data
        self.runs_dir, self.tracking_uri = runs_dir, tracking_uri
        self.relay = relay  # a supervised worker: MLflow records go to the supervisor through this spool
        self.owns_parent = owns_parent  # a worker of a supervised search leaves the parent run to it
        self.mixed_precision, self.xla = mixed_precision, xla
        #: The options the search was started with (:meth:`~search.engines.SearchOptions.record`), logged as its
        #: parent run's ``option/NAME`` parameters when the run is created (a rerun keeps the first ones).
        self.option_params: dict[str, Any] = dict(option_params or {})
        self._tracking: Future[tuple[Tracker, str, str]] | None = None

    # -- MLflow: started in the background, waited for when a trial is recorded ----------------------
    def begin(self, parent_run_id: ParentRun, on_ready: Callable[[str, str], None] | None = None) -> None:
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

    def _begin(self, parent_run_id: ParentRun) -> tuple[Tracker, str, str]:
        tracker = Tracker(self.tracking_uri, artifact_root=self.runs_dir / "mlartifacts")
        from search._backend import DETERMINISM
        from search._backend import name as backend

        tags = {
            "engine": self.engine,
            "backend": backend(),
            "determinism": DETERMINISM.get(backend(), "not known for this backend"),
            "space": self.space.name,
            "space_fingerprint": self.space.fingerprint(),
            "data": self.data.source,
            "data_fingerprint": self.data.fingerprint,
            "data_seed": str(self.data.seed),
            "skipped_files": str(len(self.data.skipped)),
            **({"data_conversions": "; ".join(self.data.conversions)} if self.data.conversions else {}),
        }
        params = {
            "engine": self.engine,
            "space": self.space.name,
            "data": self.data.source,
            "input_shape": "x".join(map(str, self.data.input_shape)),
            "num_classes": self.data.num_classes,
            "mixed_precision": self.mixed_precision,
            "xla": self.xla,
            **{f"option/{key}": _param(value) for key, value in self.option_params.items()},
        }
        with search_lock(self.runs_dir, self.name):  # two first runs of one search: one experiment, one parent
            if callable(parent_run_id):  # read now, under the lock: another first run may have set it
                parent_run_id = parent_run_id()
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
        return self._drain(*self.tracked())

    def _drain(self, tracker: Tracker, experiment_id: str, parent: str) -> int:
        from search.tracking._spool import drain, spool_dir

        def said(record: dict[str, Any], uri: str) -> None:
            say_winner(record["trial"], record["metrics"], record["seconds"], uri)

        spool = spool_dir(self.runs_dir, self.name)
        return drain(tracker, experiment_id, parent, spool, name=self.name, on_winner=said)

    def tracked(self) -> tuple[Tracker, str, str]:
        """(tracker, experiment id, parent run id), once MLflow has started (waited for)."""
        if self._tracking is None:
            raise RuntimeError("SearchRecord.begin() was not called")
        return self._tracking.result()

    @contextmanager
    def running(
        self,
        parent_run_id: ParentRun = None,
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
        if self.relay is None:  # a parent the search's record knows, in a store that is gone: refused now
            known = parent_run_id() if callable(parent_run_id) else parent_run_id
            check_store_kept(self.tracking_uri, known, self.name)
        gc.collect()
        gc.freeze()
        try:
            with interrupt_on_signals() as signals:
                try:
                    self.begin(parent_run_id, on_ready=on_ready)
                    yield signals
                except KeyboardInterrupt:
                    self._end_after_error("KILLED")
                    raise
                except BaseException:
                    self._end_after_error("FAILED")
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

    def _end_after_error(self, status: str) -> None:
        """End the parent run as the search fails; a store that cannot be written now (a full disk, the
        error being raised) leaves it as it is, for the next run to end: the first error is the one said."""
        try:
            self.end_search(status)
        except Exception as exc:
            log.debug("the parent run could not be ended %s: %s", status, exc)

    def end_search(self, status: str = "FINISHED") -> None:
        """End the parent run with ``status``; nothing to end when MLflow never started."""
        if (
            not self.owns_parent
            or self._tracking is None
            or (self._tracking.done() and self._tracking.exception() is not None)
        ):
            return
        tracker, _, parent = self.tracked()
        tracker.end_search(parent, status)

    def log_search_metrics(self, metrics: dict[str, float]) -> None:
        """Metrics of the search's own run (MLflow), written by the process that owns it."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.tracker.log(self.parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])

    @property
    def tracker(self) -> Tracker:
        return self.tracked()[0]

    @property
    def experiment_id(self) -> str:
        return self.tracked()[1] if self._tracking is not None else ""

    @property
    def parent_run_id(self) -> str:
        return self.tracked()[2] if self._tracking is not None else ""


def _param(value: Any) -> str:
    """An option's value as an MLflow parameter: text, at most MLflow's 6000 characters, a password in a URL
    (``--storage postgresql://user:secret@host/db``) starred out.

    >>> _param("postgresql://me:secret@db:5432/optuna"), _param(["val_accuracy", "params"])
    ('postgresql://me:***@db:5432/optuna', 'val_accuracy,params')
    """
    import re

    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return re.sub(r"(//[^:/@]+):[^@/]+@", r"\1:***@", text)[:6000]
