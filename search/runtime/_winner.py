"""The winner: the best trial's model kept on disk as trials finish, then evaluated once on the test split,
logged and registered (:meth:`Winner.finish`), and the report's pictures.

"Best" (README): the completed trial best by the search's goal (:data:`~search._goal.GOAL`) at its best
epoch; its model is that epoch's weights (no retraining on train+validation), kept on disk as
``runs/models/<name>/trial-<n>.keras`` as soon as trial n beats the previous best (which is then
deleted). Ties keep the earlier trial. If that file is missing, the winner is retrained. A search of several
goals, or one to be re-checked, keeps every complete trial's model until its champion is known.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._goal import GOAL

if TYPE_CHECKING:
    from search.model import Architecture
    from search.runtime._record import SearchRecord
    from search.training import Objective, TrialResult

log = logging.getLogger("search")


def _ranks_above(value: float, trial: int, best: float | None, best_trial: int | None) -> bool:
    """Whether trial ``trial`` with ``value`` ranks above the best so far (``None``: nothing yet)."""
    if best is None or best_trial is None:
        return True
    return GOAL.sort_key(value, trial) < GOAL.sort_key(best, best_trial)


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


def _on_test(model: Any, x_test: Any) -> Any:
    """The model's probabilities on the test split: every evaluation of the test split goes through here, and
    the ``test_evaluated`` hook (:mod:`search.hooks`) sees each."""
    from search import hooks
    from search.training._eager import predict_eagerly

    if hooks.registered():
        hooks.call("test_evaluated", model=model, images=len(x_test))
    return predict_eagerly(model, x_test)


class Winner:
    """One part of a :class:`~search.runtime._session.Session`: the trials' model files, and the winner
    evaluated once on the test split and registered, through the search's :class:`SearchRecord`."""

    def __init__(
        self, record: SearchRecord, objective: Objective, *, keeps_front: bool = False, keeps_candidates: bool = False
    ) -> None:
        self.record, self.objective = record, objective
        self.models_dir = record.runs_dir / "models" / record.name
        #: A search of several goals keeps every complete trial's model until its end, then those of its Pareto
        #: front (:meth:`keep_only`): ``cnn-search export --pick`` exports any point of the front as trained.
        self.keeps_front = keeps_front
        #: A re-checked search (``--recheck``) keeps every complete trial's model until the champion is crowned,
        #: then the champion's alone: the best mean's own model is registered, not retrained.
        self.keeps_candidates = keeps_candidates

    def model_path(self, trial: int) -> Path:
        return self.models_dir / f"trial-{trial}.keras"

    def keep_if_best(
        self, number: int, result: TrialResult, previous_best: float | None, previous_trial: int | None
    ) -> bool:
        """Save the trial's model (named after the trial, so a kill between steps can never pair one
        trial's weights with another's number) when it ranks above ``previous_best``; drop the previous one.
        A tie ranks by trial number, as the winner is chosen (:meth:`search._goal.Goal.sort_key`): with two
        workers an earlier trial can finish after a later one with the same value (both at 1.0 on a saturated
        validation split), and it is the earlier one that wins, so its weights are the ones kept (else the
        winner is retrained at the end). With several goals (:attr:`keeps_front`) or a re-check to come
        (:attr:`keeps_candidates`) every complete trial's model is saved and none dropped."""
        if result.model is None or result.value is None:
            return False
        keeps_all = self.keeps_front or self.keeps_candidates
        if not keeps_all and not _ranks_above(result.value, number, previous_best, previous_trial):
            return False
        atomic_save(result.model, self.model_path(number))
        if not keeps_all and previous_trial is not None and previous_trial != number:
            self.model_path(previous_trial).unlink(missing_ok=True)
        return True

    def keep_only(self, trials: set[int]) -> None:
        """Delete the kept models of every trial but ``trials`` (the champion; with several goals, the front)."""
        for path in self.models_dir.glob("trial-*.keras"):  # several workers may have kept one each
            number = path.stem.removeprefix("trial-").removesuffix("-refit")
            if not (number.isdigit() and int(number) in trials):
                path.unlink(missing_ok=True)

    def pictures(self) -> None:
        """Draw the report's pictures (:mod:`search.report`) and log them on the search's run; a picture
        never fails a search (what went wrong is a warning)."""
        from search.report import make_report

        record = self.record
        t0 = time.perf_counter()
        try:
            made = make_report(
                record.name, runs_dir=record.runs_dir, tracking_uri=record.tracking_uri, data=record.data
            )
        except Exception as exc:  # whatever goes wrong with a picture, the search stands
            log.warning("report pictures not made: %s: %s", type(exc).__name__, exc)
            return
        log.info("%d pictures in %s (%.1f s)", len(made.pictures), made.html, time.perf_counter() - t0)

    def test_accuracy_of(self, trial: int) -> float | None:
        """The test accuracy of trial ``trial``'s kept model (None when it was not kept): for reports beside the
        champion's, never to choose it."""
        import keras

        from search.training._eager import scores

        path = self.model_path(trial)
        if not path.is_file():
            return None
        x_test, y_test = self.record.data.arrays("test")
        model = keras.saving.load_model(path, safe_mode=True)
        return float(scores(_on_test(model, x_test), y_test.astype(int))[0])

    def beside_single_run(self, metrics: dict[str, float], *, single: int, champion: int) -> None:
        """Beside a re-checked champion's test figures (``metrics``, updated), what the best single run
        (trial ``single``) tests, logged on the search's run: for the record, never to choose."""
        other = metrics["test_accuracy"] if single == champion else self.test_accuracy_of(single)
        if other is not None:
            metrics["single_run_test_accuracy"] = other
            self.record.log_search_metrics({"single_run_test_accuracy": other})

    # -- the winner --------------------------------------------------------------------------------
    def finish(
        self, *, best_trial: int, best_params: dict[str, Any], best_epoch: int | None, refit: bool = False
    ) -> tuple[dict[str, float], str]:
        """Evaluate the winner once on the test split, log and register it. Returns (metrics, model URI).

        ``refit``: the winner is also trained afresh on training + validation images for its best epoch count
        (:func:`search.training.refit`); that model is evaluated once on the test split and registered, and the
        searched model's test accuracy is kept beside it (``unrefitted_test_accuracy``)."""
        import keras
        import numpy as np

        from search.space import FixedParams

        started = time.perf_counter()
        space, data = self.record.space, self.record.data
        arch = space.sample(FixedParams(best_params))
        if self.model_path(best_trial).is_file():
            model = keras.saving.load_model(self.model_path(best_trial), safe_mode=True)
        else:  # the best trial's weights were not kept (another worker, a crash): retrain it
            from search.training import retrain

            model = retrain(space, data, arch, trial=best_trial, best_epoch=best_epoch, seed=self.objective.seed)
        x_test, y_test = self.record.data.arrays("test")
        probabilities = _on_test(model, x_test)
        y = y_test.astype(int)
        k = self.record.data.num_classes
        from search.training._eager import scores

        accuracy, loss = scores(probabilities, y)
        metrics = {"test_accuracy": accuracy, "test_loss": loss}
        path = self.model_path(best_trial)
        if refit:  # decided before any test figure was seen: the refitted model is the one handed over
            from search.training import refit as refit_model

            model, trained = refit_model(
                space, data, arch, trial=best_trial, best_epoch=best_epoch, seed=self.objective.seed
            )
            probabilities = _on_test(model, x_test)
            accuracy, loss = scores(probabilities, y)
            metrics = {
                "test_accuracy": accuracy,
                "test_loss": loss,
                "unrefitted_test_accuracy": metrics["test_accuracy"],
            }
            metrics |= trained
            path = self.models_dir / f"trial-{best_trial}-refit.keras"
            atomic_save(model, path)
            log.info(
                "refitted trial %d: test accuracy %.4f, %.4f without the refit",
                best_trial, accuracy, metrics["unrefitted_test_accuracy"],
            )  # fmt: skip
        confusion = np.bincount(y * k + probabilities.argmax(axis=1), minlength=k * k).reshape(k, k)
        # what answering the largest class alone scores on the test split: the level every accuracy is read against
        metrics["chance_accuracy"] = float(np.bincount(y, minlength=k).max() / max(len(y), 1))
        example = x_test[:5]  # the signature: its input, and the model's answers to it
        seconds = time.perf_counter() - started
        uri = self._log_winner(
            model, arch, best_trial, metrics, confusion, example, probabilities[:5], seconds, path=path
        )
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
        *,
        path: Path | None = None,
    ) -> str:
        """The winner into MLflow (:meth:`Tracker.log_winner`), or, for a supervised worker, into the spool
        for its supervisor to write (:mod:`search.tracking._spool`). The model goes as the file kept for
        the trial, saved here if it was retrained."""
        import keras

        from search.tracking._mlflow import tensor_spec

        path = path or self.model_path(trial)
        if not path.is_file():
            atomic_save(model, path)
        record = {
            "trial": trial,
            "summary": arch.summary(self.record.data.num_classes),
            "architecture": arch.to_dict(),
            "metrics": metrics,
            "confusion": {
                "class_names": list(self.record.data.class_names),
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
        return self.record.tracker.log_winner(self.record.parent_run_id, self.record.name, record)
