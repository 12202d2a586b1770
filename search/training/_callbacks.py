"""The Keras callbacks a trial fits with (:class:`search.training._objective.Objective`): the epochs
callback that records, reports, stops and keeps the best weights; the eager validation pass; the
optimizer's moving average of the weights swapped in for judging each epoch."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from search import hooks
from search._goal import GOAL, LOSS, VAL_ACCURACY, VAL_LOSS

if TYPE_CHECKING:
    import keras

    from search.training._objective import Health, Reporter, TrialResult

#: Seconds between two ``on_step`` calls (the steps within an epoch shown live): a few a second at most,
#: whatever the number of batches, so a long epoch moves on screen and a short one costs nothing. Keras
#: calls the batch hook once per ``steps_per_execution`` batches (32 for epochs of more than 8 steps:
#: :func:`search.training._objective.steps_per_execution`), so the steps move by up to 32 at a time.
STEP_EVERY = 0.5


class _Epochs:
    """Keras callback; built lazily so this module imports without Keras."""

    @staticmethod
    def make(
        result: TrialResult,
        reporter: Reporter,
        trial_number: int,
        patience: int | None,
        *,
        attempt: int = 0,
        deadline: float | None = None,
        health: Health | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        on_step: Callable[[int, int, int], None] | None = None,
    ) -> keras.callbacks.Callback:
        import keras

        class Epochs(keras.callbacks.Callback):
            best: float = GOAL.worst
            weights: list[Any] | None = None
            pruned = False
            non_finite = False
            stopped_early = False
            timed_out = False
            unhealthy: str | None = None
            epoch = 0
            said = 0.0  # when on_step was last called (time.perf_counter)

            def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
                if hooks.registered() and not result.history:  # once: not again after a subset's first epoch
                    hooks.call("trial_start", trial=trial_number, attempt=attempt, model=self.model)

            def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                self.epoch = epoch

            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                if deadline is not None and time.time() >= deadline:  # the search's hard time limit
                    self.timed_out = True
                    self.model.stop_training = True
                if on_step is not None and time.perf_counter() - self.said >= STEP_EVERY:
                    self.said = time.perf_counter()
                    steps = int(self.params.get("steps") or 0)  # Keras calls here once per steps_per_execution
                    on_step(self.epoch, min(batch + 1, steps) if steps else batch + 1, steps)

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                logs = logs or {}
                for key, value in logs.items():
                    result.history.setdefault(key, []).append(float(value))
                if on_epoch is not None:
                    on_epoch(epoch, {key: float(value) for key, value in logs.items()})
                if not all(math.isfinite(float(logs.get(k, 0.0))) for k in (LOSS, VAL_LOSS)):
                    self.non_finite = True
                    self.model.stop_training = True
                    return
                value = float(logs.get(GOAL.metric, GOAL.worst))
                if GOAL.better(value, than=self.best):
                    self.best, result.best_epoch = value, epoch
                    self.weights = self.model.get_weights()
                if hooks.registered():
                    hooks.call("epoch_end", trial=trial_number, epoch=epoch, logs=dict(logs))
                _stop_if_done(self, epoch, logs, value, result, reporter, patience, deadline, health)

        return Epochs()


def _stop_if_done(
    callback: Any,
    epoch: int,
    logs: dict[str, Any],
    value: float,
    result: TrialResult,
    reporter: Reporter,
    patience: int | None,
    deadline: float | None,
    health: Health | None,
) -> None:
    """Stop ``callback``'s training, flagging why, when the trial is unhealthy, out of time, pruned or done."""
    losses = result.history["loss"]
    verdict = health and health.verdict(
        epoch, logs, first_loss=losses[0], previous_loss=losses[-2] if len(losses) > 1 else None
    )
    if verdict:
        reporter(epoch, value)  # the engine records this epoch too, as for every other stop
        callback.unhealthy = verdict
        callback.model.stop_training = True
    elif deadline is not None and time.time() >= deadline:
        callback.timed_out = True
        callback.model.stop_training = True
    elif reporter(epoch, value) and epoch + 1 < _planned(callback):  # after the last epoch: it ran them all
        callback.pruned = True
        callback.model.stop_training = True
    elif patience is not None and result.best_epoch is not None and epoch - result.best_epoch >= patience:
        callback.stopped_early = True  # no improvement for `patience` epochs: no wasted work
        callback.model.stop_training = True
    elif patience is not None and GOAL.reached_perfect(value):
        callback.stopped_early = True  # every validation image right: no later epoch can do better
        callback.model.stop_training = True


def _planned(callback: Any) -> int:
    """The epochs the trial was planned for (``planned_epochs``, set when its epochs span two ``fit`` calls: a
    subset's, then the rest), else its ``fit``'s (Keras's ``params``), or no bound when neither says."""
    planned = getattr(callback, "planned_epochs", None) or (getattr(callback, "params", None) or {}).get("epochs")
    return int(planned) if planned else sys.maxsize


class _EagerValidation:
    """Keras callback writing ``val_loss`` and ``val_accuracy`` into the epoch's logs (before the other
    callbacks and the History read them), computed as Keras's validation pass computes them."""

    @staticmethod
    def make(x: Any, y: Any) -> keras.callbacks.Callback:
        import keras

        from search.training._eager import predict_eagerly, scores

        labels = y.astype(int)

        class EagerValidation(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if logs is None:
                    return
                probabilities = predict_eagerly(self.model, x)
                logs[VAL_ACCURACY], logs[VAL_LOSS] = scores(probabilities, labels)

        return EagerValidation()


class _AveragedWeights:
    """Keras callback: from the end of an epoch's training to the start of the next epoch the model holds
    the optimizer's moving average of its weights (``use_ema``), so the validation pass (Keras's or
    :class:`_EagerValidation`), the epochs callback that keeps the best epoch's weights, and the model
    left after ``fit`` all see the average; the raw weights come back before training goes on. First in
    the callback list. Keras's own ``SwapEMAWeights`` swaps back after validation, so the weights kept
    would be the raw ones."""

    @staticmethod
    def make() -> keras.callbacks.Callback:
        import keras

        class AveragedWeights(keras.callbacks.Callback):
            raw: list[Any] | None = None

            def _pairs(self) -> list[tuple[Any, Any]]:
                optimizer = self.model.optimizer
                return list(zip(optimizer._trainable_variables, optimizer._model_variables_moving_average, strict=True))

            def _average_in(self) -> None:
                if self.raw is None:
                    pairs = self._pairs()
                    self.raw = [variable.numpy() for variable, _ in pairs]
                    for variable, average in pairs:  # a copy: JAX donates the average's buffer at the next step
                        variable.assign(average.numpy())

            def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
                self._average_in()  # Keras's validation pass, after the epoch's training

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                self._average_in()

            def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if self.raw is not None:
                    for (variable, _), raw in zip(self._pairs(), self.raw, strict=True):
                        variable.assign(raw)
                    self.raw = None

        return AveragedWeights()
