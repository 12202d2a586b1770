"""The Objective: one Architecture, trained on the train split, judged on validation.

It is the same for every engine. Feasibility comes first (a refused architecture costs
milliseconds and no model is built); then the model is built, compiled and fitted with one callback
that, each epoch, records the metrics, reports the validation metric to the engine (which may
prune), stops on a non-finite loss, stops a trial that measures a pitfall rather than the
architecture (see :class:`Health`), stops when validation accuracy has not improved for the
architecture's ``patience`` epochs or is perfect (1.0: no later epoch can beat it), and keeps the
weights of the best epoch.

Three things make a short trial measure the architecture: the model standardises its input with the
training split's pixel statistics (:attr:`DataBundle.pixel_stats`); BatchNormalization's momentum
comes from the number of steps in an epoch (:func:`search.model._builder.bn_momentum`), so its
moving statistics are right at the first validation however short the training; and (``training.ema``,
on by default) each epoch is judged, and the best kept, with an exponential moving average of the
weights over about the last quarter of the epoch (:func:`search.model._builder.ema_momentum`,
:class:`_AveragedWeights`), not the noisy weights of the last step. With the TensorFlow
backend the data reaches ``fit`` as ``tf.data`` pipelines (batched gathers, 32 steps per execution);
with another backend as NumPy arrays. A trial's fixed cost on a CPU is mostly tracing its functions,
so a validation split held in memory (up to :data:`EAGER_VALIDATION_MAX` images) is judged by eager
calls after each epoch rather than by a traced test function, and the optimizer's variables are made
before the first trace (:func:`search.model.compile_model`). With TensorFlow, batch norm, Adam and
AdamW train with TensorFlow's fused kernels (:mod:`search.model._fused`: fewer ops to trace and to
run) and the model kept afterwards holds plain built-in layers. The test split is never seen here.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import sys
import time
import traceback as tb
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from search._backend import is_oom
from search._errors import InfeasibleError, SearchError
from search._goal import ACCURACY, GOAL, LOSS, VAL_ACCURACY, at_chance
from search.model import Architecture, build_model, compile_model, for_saving
from search.training._callbacks import _AveragedWeights, _EagerValidation, _Epochs, _planned
from search.training._eager import judging_batch
from search.training._measure import over_limit

if TYPE_CHECKING:
    import keras

    from search.data import DataBundle
    from search.space import Space

log = logging.getLogger("search")
State = Literal["complete", "pruned", "infeasible", "failed"]
#: Called after each epoch with (epoch, validation metric); returns True to prune the trial.
Reporter = Callable[[int, float], bool]

#: Batches run per call into the compiled train function: tiny CNNs on a CPU spend most of a step
#: in Python and dispatch overhead (measured: a 20-epoch digits trial 6.0 s -> 3.2 s with tf.data).
STEPS_PER_EXECUTION = 32
#: ... unless an epoch is this many steps or fewer: then one step per call. Running several steps per call
#: costs a traced loop (a while loop and a condition around the step: ~0.2 s more tracing a trial) that an
#: epoch of a few steps cannot pay back. Measured (the README's space, 6 trials x 5 epochs, no pruner,
#: two runs each): fewshot (4 steps an epoch) 8.6 s of training -> 7.3 s with one step per call; digits
#: (34 steps) 14.3 -> 13.3 s, within noise; textures (75 steps) 47.6 -> 54.9 s and shapes (60) 45.4 ->
#: 51.5 s, slower: there the loop pays.
ONE_STEP_EPOCHS = 8


def steps_per_execution(steps: int) -> int:
    """Batches per call into the train function for an epoch of ``steps`` batches.

    >>> steps_per_execution(4), steps_per_execution(8), steps_per_execution(9), steps_per_execution(75)
    (1, 1, 32, 32)
    """
    return 1 if steps <= ONE_STEP_EPOCHS else STEPS_PER_EXECUTION


@dataclass(frozen=True)
class Health:
    """Stops a trial whose numbers say nothing about its architecture, with the reason.

    ``chance`` is the share of the largest class (train and validation each): what predicting one
    class scores. After each epoch:

    * ``val_collapse`` (any epoch): training accuracy at least half-way from chance to 1 while
      validation accuracy is within :data:`NEAR_CHANCE` of chance: the model is not judged on what it
      learnt (e.g. normalisation statistics that differ between training and inference).
    * ``not_learning`` (from the second epoch): training accuracy within :data:`NEAR_CHANCE` of chance
      and the training loss not below :data:`LOSS_FALLING` of the first epoch's (e.g. a learning rate
      that diverges); the sampler learns the trial was bad, without spending its other epochs. Or
      training accuracy at chance, the loss no lower than ``prior_loss`` (the cross-entropy of always
      answering the training classes' frequencies: ln K for K balanced classes) and not falling since
      the epoch before: a network that settled on answering the class frequencies learnt nothing,
      however high its first epoch's loss was (a diverged start: AdamW at 0.0073 on the suite's
      textures went 1.768, 1.611, 1.611, 1.611, 1.611 for 5 epochs, ln 5 = 1.609).

    >>> h = Health(train_chance=0.2, val_chance=0.2, prior_loss=1.609)
    >>> h.verdict(0, {LOSS: 1.2, ACCURACY: 0.97, VAL_ACCURACY: 0.2}, first_loss=1.2)
    'val_collapse: validation accuracy 0.200 at chance (0.200) while training accuracy 0.970'
    >>> print(h.verdict(1, {LOSS: 1.61, ACCURACY: 0.21, VAL_ACCURACY: 0.2}, first_loss=1.6))
    not_learning: training accuracy 0.210 at chance (0.200) and the loss not falling (1.600 -> 1.610) after 2 epochs
    >>> settled = {LOSS: 1.611, ACCURACY: 0.19, VAL_ACCURACY: 0.2}  # ln 5 = 1.609
    >>> h.verdict(1, settled, first_loss=1.768, previous_loss=1.768)  # still falling
    >>> print(h.verdict(2, settled, first_loss=1.768, previous_loss=1.611))  # doctest: +NORMALIZE_WHITESPACE
    not_learning: training accuracy 0.190 at chance (0.200) and the loss no lower than answering the class
    frequencies (1.609) and not falling (1.611 -> 1.611) after 3 epochs
    >>> h.verdict(1, {LOSS: 1.2, ACCURACY: 0.4, VAL_ACCURACY: 0.35}, first_loss=1.6) is None
    True
    """

    train_chance: float
    val_chance: float
    prior_loss: float = math.inf

    def verdict(
        self, epoch: int, logs: dict[str, Any], *, first_loss: float, previous_loss: float | None = None
    ) -> str | None:
        acc, val, loss = (float(logs.get(k, math.nan)) for k in (ACCURACY, VAL_ACCURACY, LOSS))
        tc, vc = self.train_chance, self.val_chance
        if acc >= tc + 0.5 * (1 - tc) and at_chance(val, vc):
            return f"val_collapse: validation accuracy {val:.3f} at chance ({vc:.3f}) while training accuracy {acc:.3f}"
        if epoch >= 1 and at_chance(acc, tc):
            if loss >= LOSS_FALLING * first_loss:
                return (
                    f"not_learning: training accuracy {acc:.3f} at chance ({tc:.3f}) and the loss not falling "
                    f"({first_loss:.3f} -> {loss:.3f}) after {epoch + 1} epochs"
                )
            if (
                previous_loss is not None
                and loss >= LOSS_FALLING * self.prior_loss
                and loss >= LOSS_FALLING * previous_loss
            ):
                return (
                    f"not_learning: training accuracy {acc:.3f} at chance ({tc:.3f}) and the loss no lower than "
                    f"answering the class frequencies ({self.prior_loss:.3f}) and not falling "
                    f"({previous_loss:.3f} -> {loss:.3f}) after {epoch + 1} epochs"
                )
        return None


#: "Loss not falling": the epoch's training loss is at least this fraction of the first epoch's.
LOSS_FALLING = 0.98


def prior_loss(labels: Any, num_classes: int) -> float:
    """Cross-entropy of answering every image with the class frequencies of ``labels`` (ln K for K
    balanced classes): the training loss of a network that learnt nothing from the images."""
    import numpy as np

    counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(float)
    p = counts[counts > 0] / max(counts.sum(), 1)
    return float(-(p * np.log(p)).sum())


def chance(labels: Any, num_classes: int) -> float:
    """Share of the most frequent class in ``labels`` (what always answering that class scores)."""
    import numpy as np

    counts = np.bincount(np.asarray(labels), minlength=num_classes)
    return float(counts.max() / max(counts.sum(), 1))


@dataclass
class TrialResult:
    """What one trial produced. ``value`` is the best epoch's validation accuracy."""

    state: State
    value: float | None = None
    reason: str | None = None
    best_epoch: int | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    params: int | None = None
    flops: int | None = None
    #: Goals and constraints measured on the built model before training (``{"latency_ms:tflite": 0.3}``).
    measured: dict[str, float] = field(default_factory=dict)
    traceback: str | None = None
    model: keras.Model | None = field(default=None, repr=False)
    #: Training images of the first epoch when it trained on a stratified subset (``Objective.subset``).
    subset_images: int | None = None

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))

    def final_metrics(self) -> dict[str, float]:
        metrics: dict[str, float] = {"epochs_run": self.epochs_run, "train_seconds": self.train_seconds}
        if self.value is not None:
            metrics[GOAL.best_metric] = self.value
        if self.best_epoch is not None:
            metrics["best_epoch"] = self.best_epoch
        if self.params is not None:
            metrics["num_params"] = self.params
        if self.flops is not None:
            metrics["flops"] = self.flops
        if self.subset_images is not None:
            metrics["subset_images"] = self.subset_images
        if self.measured:
            from search._goal import goal_named

            metrics.update({goal_named(k).mlflow_metric: v for k, v in self.measured.items()})
        return metrics

    def goal_value(self, goal: Any) -> float | None:
        """This trial's value of ``goal`` (a :class:`search._goal.Goal`): accuracy, a size from the plan, or
        a measured one."""
        if goal.measured_on is not None:
            return self.measured.get(goal.metric)
        value = self.value if goal.metric == VAL_ACCURACY else getattr(self, goal.metric)
        return None if value is None else float(value)


class Objective:
    """Train one architecture of ``space`` on ``data``; ``epochs`` overrides the architecture's."""

    def __init__(
        self,
        space: Space,
        data: DataBundle,
        *,
        epochs: int | None = None,
        seed: int | None = None,
        keep_model: bool = True,
        jit_compile: bool | str = "auto",
        measures: dict[str, float | None] | None = None,
        keep_last_epoch: bool = False,
    ) -> None:
        if epochs is not None and epochs < 1:  # zero epochs train nothing: no trial could ever count
            raise ValueError(f"epochs: expected a whole number >= 1 or None (the space's), received {epochs}")
        self.space = space
        self.data = data
        self.epochs = epochs
        self.seed = seed
        self.keep_model = keep_model
        #: Keep the last epoch's weights, not the best epoch's (a refit: its "validation" images are trained on).
        self.keep_last_epoch = keep_last_epoch
        self.jit_compile = jit_compile
        #: What to measure on each trial's built model before it trains (:mod:`search.training._measure`):
        #: metric -> the most allowed (a constraint) or None (a goal only).
        self.measures = dict(measures or {})
        #: The last trial's goals of size, known before it trained: ``params`` and ``flops`` from its plan, and
        #: what was measured (the several-goal pruner reads them while it trains).
        self.last_sizes: dict[str, float] = {}
        #: A fraction of the training images (0 to 1, exclusive): each trial's first epoch trains on that
        #: stratified subset (:meth:`DataBundle.subset`), so the pruner judges it at that fraction of an
        #: epoch's cost; the later epochs train on every image. None: every epoch on every image.
        self.subset: float | None = None
        k = data.num_classes
        train = data.labels("train")
        self.health = Health(chance(train, k), chance(data.labels("validation"), k), prior_loss(train, k))

    def __call__(
        self,
        arch: Architecture,
        reporter: Reporter,
        *,
        trial_number: int = 0,
        deadline: float | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        on_step: Callable[[int, int, int], None] | None = None,
    ) -> TrialResult:
        """Train and judge ``arch``. KeyboardInterrupt and SystemExit propagate; any other exception
        becomes a failed result with its traceback (reason ``oom`` for out-of-memory, else ``error``).
        Out of memory is retried once at half the batch size. ``deadline`` (``time.time()``) is the
        search's hard time limit: training stops there and keeps what it reached. ``on_epoch(epoch,
        logs)`` is called after every epoch (from 0) with Keras's logs, ``on_step(epoch, step, steps)``
        within an epoch (a few times a second, :data:`search.training._callbacks.STEP_EVERY`; ``steps``
        0 when unknown), for progress displays."""
        try:
            plan = self.space.check(arch, self.data.input_shape, self.data.num_classes)
        except InfeasibleError as exc:
            return TrialResult("infeasible", reason=f"{exc.reason}: {exc}")
        measured = self._measure(arch, plan) if self.measures else {}  # before training: no epoch spent over a limit
        self.last_sizes = {"params": plan.params, "flops": plan.flops, **measured}
        why = over_limit(measured, {k: v for k, v in self.measures.items() if v is not None})
        if why is not None:
            return TrialResult("infeasible", reason=why, params=plan.params, flops=plan.flops, measured=measured)
        return self._train(
            arch, plan, measured, reporter, trial_number=trial_number, deadline=deadline, hooks=(on_epoch, on_step)
        )

    def _train(
        self,
        arch: Architecture,
        plan: Any,
        measured: dict[str, float],
        reporter: Reporter,
        *,
        trial_number: int,
        deadline: float | None,
        hooks: tuple[Callable[[int, dict[str, float]], None] | None, Callable[[int, int, int], None] | None],
    ) -> TrialResult:
        """Build, compile, fit and judge a feasible ``arch``; out of memory is retried once at half the batch
        size. ``hooks``: the progress callbacks ``(on_epoch, on_step)`` of :meth:`__call__`."""
        import keras

        batch = arch.training.batch_size
        n_train = len(self.data.labels("train"))
        fused = keras.backend.backend() == "tensorflow"  # TensorFlow's fused kernels while training
        for attempt in (0, 1):
            result = TrialResult("complete", params=plan.params, flops=plan.flops, measured=measured)
            # Keras's own gc.collect() walks every TensorFlow object (0.4 s a trial); run_search freezes the
            # heap after start-up (gc.freeze) so the collector only scans what trials made.
            keras.backend.clear_session(free_memory=False)
            gc.collect()
            if self.seed is not None:
                keras.utils.set_random_seed(self.seed * 1_000_003 + trial_number)
            steps = math.ceil(n_train / batch)  # per epoch
            start = time.perf_counter()
            try:
                model = self._compiled(arch, plan, steps, fused=fused)
                callback = _Epochs.make(
                    result,
                    reporter,
                    trial_number,
                    arch.training.patience,
                    attempt=attempt,
                    deadline=deadline,
                    health=self.health,
                    on_epoch=hooks[0],
                    on_step=hooks[1],
                )
                self._fit(model, arch, batch, callback, result)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # any failure of one trial is recorded, the search goes on
                oom = _failed(result, exc, batch, start)
                if oom and attempt == 0 and batch > 1:
                    batch //= 2  # retried once at half the batch size
                    continue
                return result
            result.train_seconds = time.perf_counter() - start
            if attempt == 1:
                result.reason = f"oom_retried: out of memory at batch size {batch * 2}; trained at {batch}"
            break
        return self._judge(result, callback, model)

    def _compiled(self, arch: Architecture, plan: Any, steps: int, *, fused: bool) -> keras.Model:
        """The model of ``arch`` built and compiled to train epochs of ``steps`` batches."""
        from search.model._builder import bn_momentum, ema_momentum

        model = build_model(
            arch,
            self.data.input_shape,
            self.data.num_classes,
            plan=plan,
            input_stats=self.data.pixel_stats,
            bn_momentum=bn_momentum(steps),
            fused=fused,
        )
        compile_model(
            model,
            arch,
            steps_per_execution=steps_per_execution(steps),
            jit_compile=self.jit_compile,
            fused=fused,
            ema_momentum=ema_momentum(steps) if arch.training.ema else None,
        )
        return model

    def _measure(self, arch: Architecture, plan: Any) -> dict[str, float]:
        """The measured goals and constraints of ``arch``, on the model as it would be exported (plain layers,
        input standardisation included, initial weights)."""
        import keras

        from search.training._measure import measure

        keras.backend.clear_session(free_memory=False)
        model = build_model(
            arch, self.data.input_shape, self.data.num_classes, plan=plan, input_stats=self.data.pixel_stats
        )
        x, _ = self.data.arrays("validation")
        return measure(model, self.measures, x[:1])

    def _judge(self, result: TrialResult, callback: Any, model: keras.Model) -> TrialResult:
        """A trained trial's state, reason and value from what its epochs callback saw; a complete trial
        keeps its best epoch's weights as its model (with ``keep_model``)."""
        if callback.non_finite:
            result.state, result.reason = "failed", "non_finite: the loss became NaN or infinite"
            return result
        result.value = callback.best if math.isfinite(callback.best) else None
        if callback.unhealthy:
            result.state, result.reason = "pruned", callback.unhealthy
        elif callback.pruned:
            ran, planned = len(result.history["loss"]), _planned(callback)  # said 1-based, as Keras's progress
            of = f" of {planned}" if planned < sys.maxsize else ""
            result.state, result.reason = "pruned", f"pruner: stopped after epoch {ran}{of}"
        elif callback.timed_out:
            done = len(result.history.get("loss", []))
            result.reason = f"timeout: stopped at the search's hard time limit after {done} epoch(s)"
            if result.value is None:
                result.state = "pruned"
        if result.state == "complete" and result.value is None:  # no epoch reported a value: nothing to count
            result.state, result.reason = "failed", "error: training ended without a validation accuracy"
        if result.state == "complete" and self.keep_model:
            if callback.weights is not None and not self.keep_last_epoch:
                model.set_weights(callback.weights)
            result.model = for_saving(model)  # what is saved, registered and exported
        return result

    def _fit(self, model: keras.Model, arch: Architecture, batch: int, callback: Any, result: TrialResult) -> None:
        """Fit ``model``: with :attr:`subset`, its first epoch on the subset, then (unless that epoch stopped
        the trial) the others on every image; else every epoch on every image."""
        epochs = self.epochs or arch.training.epochs
        eager = self.data.in_memory and len(self.data.labels("validation")) <= EAGER_VALIDATION_MAX
        callbacks = [_EagerValidation.make(*self.data.arrays("validation")), callback] if eager else [callback]
        if arch.training.ema:
            callbacks.insert(0, _AveragedWeights.make())
        first, callback.planned_epochs = 0, epochs
        if self.subset is not None and epochs > 1:
            sample = self.data.subset(self.subset)
            result.subset_images = len(sample.labels("train"))
            self._fit_on(sample, model, arch, batch, callbacks, eager, (0, 1))
            if model.stop_training:
                return
            first = 1
        self._fit_on(self.data, model, arch, batch, callbacks, eager, (first, epochs))

    @staticmethod
    def _fit_on(
        data: DataBundle, model: keras.Model, arch: Architecture, batch: int, callbacks: list[Any], eager: bool,
        epochs: tuple[int, int],
    ) -> None:  # fmt: skip
        """``model.fit`` on ``data``'s training split from epoch ``epochs[0]`` up to ``epochs[1]`` (Keras's
        ``initial_epoch`` and ``epochs``), fed as the backend takes it best."""
        import keras

        augment = arch.training.augment
        initial, epochs_to = epochs
        judged = judging_batch(data.input_shape, batch)
        kept = {"epochs": epochs_to, "initial_epoch": initial, "callbacks": callbacks, "verbose": 0}
        feed = FEED if FEED != "auto" else "tf.data" if keras.backend.backend() == "tensorflow" else "numpy"
        if feed == "numpy" and not (data.in_memory and not augment):
            feed = "pydataset"  # on disk or augmented: batch by batch
        if feed == "pydataset":
            # no tf.data on JAX or PyTorch: NumPy batches (decoded from disk, augmented) from a PyDataset
            validation = None if eager else data.batches("validation", judged)
            model.fit(data.batches("train", batch, augment=augment), validation_data=validation, **kept)
        elif feed == "numpy":
            x, y = data.arrays("train")  # NumPy reaches fit on any Keras backend
            validation = None if eager else data.arrays("validation")
            model.fit(x, y, batch_size=batch, validation_data=validation, shuffle=True, **kept)
        else:
            validation = None if eager else data.validation(judged)
            model.fit(  # the pipeline reshuffles every epoch itself
                data.train(batch, augment=augment), validation_data=validation, shuffle=False, **kept
            )


def _failed(result: TrialResult, exc: Exception, batch: int, start: float) -> bool:
    """Mark ``result`` failed by ``exc`` (being handled) at ``batch`` images a step; True when it ran out of memory."""
    result.state = "failed"
    oom = is_oom(exc)  # TensorFlow's, JAX's or PyTorch's out-of-memory error
    result.reason = f"oom: at batch size {batch}: {exc}" if oom else f"error: {type(exc).__name__}: {exc}"
    result.traceback = tb.format_exc()
    result.train_seconds = time.perf_counter() - start
    return oom


#: How the training images reach ``fit``: ``auto`` (``tf.data`` on TensorFlow; on another backend NumPy arrays
#: when the split is in memory and not augmented, else a ``PyDataset`` of NumPy batches), or one of ``tf.data``,
#: ``numpy``, ``pydataset`` to compare them on one backend (``CNN_SEARCH_FEED``, benchmarks/data_paths.py).
FEED = os.environ.get("CNN_SEARCH_FEED", "auto")

#: Validation splits up to this many images (in memory) are judged by eager calls after each epoch
#: instead of Keras's validation pass, which traces a test function per trial (0.2-0.3 s for a tiny
#: CNN on a CPU, and a per-epoch set-up) for a pass that takes milliseconds on so few images.
EAGER_VALIDATION_MAX = 4096


def retrain_epochs(arch: Architecture, best_epoch: int | None) -> int:
    """Epochs a trial is retrained for: up to its best epoch, or all of the architecture's when unknown."""
    return (best_epoch if best_epoch is not None else arch.training.epochs - 1) + 1


def retrain(
    space: Space, data: DataBundle, arch: Architecture, *, trial: int, best_epoch: int | None, seed: int | None = None
) -> keras.Model:
    """A trial's model trained again when its weights were not kept (another worker's trial, a crash), for
    its best epoch count (``best_epoch + 1``; every epoch of the architecture when that is unknown): the one
    place the winner is retrained, by the search's end and by ``cnn-search export``. Said as a warning."""
    epochs = retrain_epochs(arch, best_epoch)
    log.warning("the weights of trial %d were not kept; retraining it for %d epochs", trial, epochs)
    result = Objective(space, data, epochs=epochs, seed=seed)(arch, lambda epoch, value: False, trial_number=trial)
    if result.model is None:
        raise SearchError(f"could not retrain trial {trial}: {result.reason}")
    return result.model


def pooled(data: DataBundle) -> DataBundle:
    """``data`` with its validation images added to its training split (the validation split kept as it is,
    for the figures Keras reports; a refit trains on it): what :func:`refit` trains on."""
    import numpy as np

    x_train, y_train = data.arrays("train")
    x_val, y_val = data.arrays("validation")
    both = (np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val]))
    return resplit(data, both, (x_val, y_val), "pooled")


def resplit(data: DataBundle, train: tuple[Any, Any], validation: tuple[Any, Any], tag: str) -> DataBundle:
    """``data`` with other training and validation images (``(x, y)`` each), its test split as it was, its
    fingerprint marked ``-TAG``: a refit's (:func:`pooled`), a re-check's fold (:mod:`search.runtime._recheck`)."""
    from search.data import DataBundle
    from search.data._store import ArrayStore

    store = ArrayStore({"train": train, "validation": validation, "test": data.arrays("test")})
    return DataBundle(
        data.source, data.class_names, data.input_shape, f"{data.fingerprint}-{tag}", store, seed=data.seed
    )


def refit(
    space: Space, data: DataBundle, arch: Architecture, *, trial: int, best_epoch: int | None, seed: int | None = None
) -> tuple[keras.Model, dict[str, float]]:
    """The champion trained afresh on training + validation images (:func:`pooled`) for its best epoch count
    (``best_epoch + 1``), no early stopping, its last epoch's weights kept (as AutoKeras hands over its
    model). Returns the model and what it trained on: ``refit_images`` (per epoch), ``refit_epochs``."""
    import dataclasses

    epochs = retrain_epochs(arch, best_epoch)
    data = pooled(data)
    arch = dataclasses.replace(arch, training=dataclasses.replace(arch.training, patience=None))
    log.info(
        "refitting trial %d on %d training + validation images for %d epochs", trial, len(data.labels("train")), epochs
    )
    objective = Objective(space, data, epochs=epochs, seed=seed, keep_last_epoch=True)
    result = objective(arch, lambda epoch, value: False, trial_number=trial)
    if result.model is None:
        raise SearchError(f"could not refit trial {trial}: {result.reason}")
    return result.model, {"refit_images": float(len(data.labels("train"))), "refit_epochs": float(result.epochs_run)}
