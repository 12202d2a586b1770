"""The loops people write by hand, shared by benchmarks/vs_handwritten.py and benchmarks/suite.py.

Space (the same as benchmarks/spaces/reference.yaml): Rescaling(1/255), 1-3 blocks of Conv2D (filters
16/32/64, kernel 3/5, relu/elu, padding same) + MaxPooling2D(2), Flatten, Dense(32/64/128, relu),
Dropout(0..0.5), softmax; Adam with learning rate 1e-4..1e-2 (log); batch 32; no batch norm.

- :func:`optuna_loop`: Optuna TPE (seeded with ``seed``, 0 when None) + MedianPruner, one ``fit`` call
  per epoch so the pruner can act; the trial's value is its best validation accuracy; the winner's model
  (as it stands after its last epoch) is evaluated once on the test split.
- :func:`keras_tuner_loop`: KerasTuner RandomSearch (seeded alike), its usual recipe
  (``tuner.search(..., epochs=E, validation_data=...)``), ``get_best_models(1)`` evaluated once on test.

Both take a wall-clock budget, counted from where the search starts (after imports, as
``study.optimize(timeout=...)`` counts): no trial starts after ``timeout`` seconds, and a running trial
is stopped after the batch that passes ``hard_timeout`` seconds, keeping what it reached (the rule
cnn-search's ``--timeout`` applies at 1.1x). ``seed`` seeds Keras (``keras.utils.set_random_seed``)
once before the search; None (vs_handwritten.py) leaves weights unseeded. ``num_classes`` defaults to
the largest label + 1; the input shape is the images'.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

Split = tuple[np.ndarray, np.ndarray]


def split_validation(x: np.ndarray, y: np.ndarray, *, fraction: float = 0.2, seed: int = 0) -> tuple[Split, Split]:
    """Train and validation: ``fraction`` of ``x`` for validation, stratified (scikit-learn, ``random_state=seed``)."""
    from sklearn.model_selection import train_test_split

    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=fraction, stratify=y, random_state=seed)
    return (x_tr, y_tr), (x_val, y_val)


def hand_model(
    hp_int: Callable[..., int],
    hp_choice: Callable[..., Any],
    hp_float: Callable[..., float],
    input_shape: tuple[int, ...] = (8, 8, 1),
    num_classes: int = 10,
) -> Any:
    """The 1-3-block CNN, its hyperparameters drawn with the given functions (Optuna's or KerasTuner's)."""
    import keras

    model = keras.Sequential([keras.Input(tuple(input_shape)), keras.layers.Rescaling(1 / 255)])
    for i in range(hp_int("n_blocks", 1, 3)):
        model.add(
            keras.layers.Conv2D(
                hp_choice(f"filters_{i}", [16, 32, 64]),
                hp_choice(f"kernel_{i}", [3, 5]),
                padding="same",
                activation=hp_choice(f"activation_{i}", ["relu", "elu"]),
            )
        )
        model.add(keras.layers.MaxPooling2D(pool_size=2))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(hp_choice("units", [32, 64, 128]), activation="relu"))
    model.add(keras.layers.Dropout(hp_float("dropout", 0.0, 0.5)))
    model.add(keras.layers.Dense(num_classes, activation="softmax"))
    lr = hp_float("learning_rate", 1e-4, 1e-2, log=True)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _deadline_callback(hard_deadline: float) -> Any:
    """Stops ``fit`` after the batch that passes ``hard_deadline`` (``time.time()``)."""
    import keras

    class StopAtDeadline(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if time.time() >= hard_deadline:
                self.model.stop_training = True

    return StopAtDeadline()


def _prepare(
    train: Split, val: Split, test: Split, *, seed: int | None, num_classes: int | None
) -> tuple[tuple[int, ...], int]:
    """Seed Keras once (as cnn-search's --seed does) and size the model: (input shape, classes)."""
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    classes = num_classes or int(max(train[1].max(), val[1].max(), test[1].max())) + 1
    return tuple(train[0].shape[1:]), classes


def _hard_limit(hard_timeout: float | None) -> tuple[float | None, list[Any]]:
    """The budget's hard limit from now (``time.time()``) and the callbacks that stop a fit there."""
    if hard_timeout is None:
        return None, []
    hard_deadline = time.time() + hard_timeout
    return hard_deadline, [_deadline_callback(hard_deadline)]


def optuna_loop(
    train: Split,
    val: Split,
    test: Split,
    *,
    trials: int,
    epochs: int,
    timeout: float | None = None,
    hard_timeout: float | None = None,
    seed: int | None = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Optuna TPE + MedianPruner, one fit() call per epoch so the pruner can act (the usual recipe)."""
    import keras
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    input_shape, num_classes = _prepare(train, val, test, seed=seed, num_classes=num_classes)
    fit_seconds = 0.0
    best: dict = {"value": -1.0, "model": None}
    hard_deadline, callbacks = _hard_limit(hard_timeout)

    def objective(trial: optuna.Trial) -> float:
        nonlocal fit_seconds
        keras.backend.clear_session()
        model = hand_model(
            lambda n, lo, hi: trial.suggest_int(n, lo, hi),
            lambda n, c: trial.suggest_categorical(n, c),
            lambda n, lo, hi, log=False: trial.suggest_float(n, lo, hi, log=log),
            input_shape,
            num_classes,
        )
        value = 0.0
        for epoch in range(epochs):
            t0 = time.perf_counter()
            history = model.fit(*train, batch_size=32, epochs=1, validation_data=val, verbose=0, callbacks=callbacks)
            fit_seconds += time.perf_counter() - t0
            value = max(value, history.history["val_accuracy"][-1])
            if hard_deadline is not None and time.time() >= hard_deadline:
                break  # the budget's hard limit: keep what this trial reached
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if value > best["value"]:
            best.update(value=value, model=model)
        return value

    start = time.perf_counter()
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed or 0), pruner=optuna.pruners.MedianPruner()
    )
    study.optimize(objective, n_trials=trials, timeout=timeout)
    _, accuracy = best["model"].evaluate(*test, verbose=0)
    return {
        "wall": time.perf_counter() - start,
        "fit": fit_seconds,
        "test_accuracy": float(accuracy),
        "best_val_accuracy": float(best["value"]),
        "trials": len(study.trials),
        "states": dict(Counter(t.state.name.lower() for t in study.trials)),
    }


def keras_tuner_loop(
    train: Split,
    val: Split,
    test: Split,
    *,
    trials: int,
    epochs: int,
    timeout: float | None = None,
    hard_timeout: float | None = None,
    seed: int | None = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """KerasTuner RandomSearch over the same space, its usual recipe. With ``timeout``, the same
    random search through ``kt.Tuner`` with an oracle that ends the search once the budget is spent
    (an oracle's ``populate_space`` answering ``STOPPED`` is KerasTuner's own way to end a search)."""
    import keras
    import keras_tuner as kt

    input_shape, num_classes = _prepare(train, val, test, seed=seed, num_classes=num_classes)

    def build(hp: kt.HyperParameters) -> keras.Model:
        return hand_model(
            lambda n, lo, hi: hp.Int(n, lo, hi),
            lambda n, c: hp.Choice(n, c),
            lambda n, lo, hi, log=False: hp.Float(n, lo, hi, sampling="log" if log else "linear"),
            input_shape,
            num_classes,
        )

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        common = {"directory": tmp, "project_name": "ref", "overwrite": True}
        if timeout is None:
            tuner = kt.RandomSearch(build, objective="val_accuracy", max_trials=trials, seed=seed or 0, **common)
        else:
            deadline = time.time() + timeout  # counted from here, as cnn-search and Optuna count theirs

            class BudgetOracle(kt.oracles.RandomSearchOracle):
                def populate_space(self, trial_id: str) -> dict[str, Any]:
                    if time.time() >= deadline:
                        return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
                    return super().populate_space(trial_id)

            oracle = BudgetOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=trials, seed=seed or 0)
            tuner = kt.Tuner(oracle=oracle, hypermodel=build, **common)
        _, callbacks = _hard_limit(hard_timeout)
        t0 = time.perf_counter()
        tuner.search(*train, batch_size=32, epochs=epochs, validation_data=val, verbose=0, callbacks=callbacks)
        search_seconds = time.perf_counter() - t0
        model = tuner.get_best_models(1)[0]
        _, accuracy = model.evaluate(*test, verbose=0)
        done = list(tuner.oracle.trials.values())
        best_trial = tuner.oracle.get_best_trials(1)[0]
    return {
        "wall": time.perf_counter() - start,
        "fit": search_seconds,
        "test_accuracy": float(accuracy),
        "best_val_accuracy": float(best_trial.score) if best_trial.score is not None else None,
        "trials": len(done),
        "states": dict(Counter({"COMPLETED": "complete"}.get(t.status, str(t.status).lower()) for t in done)),
    }


# -- the competent loop (issue 32; ../shared/BENCHMARKING.md "the strongest version of the alternative") -------------
def competent_model(trial: Any, input_shape: tuple[int, ...], num_classes: int, train_x: np.ndarray) -> Any:
    """:func:`hand_model`'s space with what a competent user adds: inputs standardised by a
    ``keras.layers.Normalization`` adapted on the training split (not x/255 alone)."""
    import keras

    normalise = keras.layers.Normalization(axis=None)
    normalise.adapt(train_x.astype("float32"))
    inner = hand_model(
        lambda n, lo, hi: trial.suggest_int(n, lo, hi),
        lambda n, c: trial.suggest_categorical(n, c),
        lambda n, lo, hi, log=False: trial.suggest_float(n, lo, hi, log=log),
        input_shape,
        num_classes,
    )
    model = keras.Sequential([keras.Input(input_shape), normalise, *inner.layers[1:]])  # Normalization for Rescaling
    model.compile(optimizer=inner.optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


#: Epochs without a better validation accuracy after which a competent trial stops.
PATIENCE = 3


def _competent_worker(args: tuple[Any, ...]) -> None:
    """One process of :func:`competent_loop` (one TensorFlow thread), on the shared journal."""
    npz_split, journal, folder, trials, epochs, seed, deadline, hard_deadline = args
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    import keras
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with np.load(npz_split) as d:
        train, val = (d["x_tr"], d["y_tr"]), (d["x_val"], d["y_val"])
        num_classes = int(d["classes"])
    keras.utils.set_random_seed(seed + os.getpid() % 1000)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.load_study(study_name="competent", storage=storage, sampler=optuna.samplers.TPESampler(seed=None))
    callbacks = [_deadline_callback(hard_deadline)] if hard_deadline else []

    def objective(trial: optuna.Trial) -> float:
        keras.backend.clear_session()
        model = competent_model(trial, tuple(train[0].shape[1:]), num_classes, train[0])
        best, waited = 0.0, 0
        for epoch in range(epochs):  # one fit per epoch: Optuna's pruner, and Keras's EarlyStopping by hand
            # (restore_best_weights: the best epoch's model is the one saved)
            history = model.fit(*train, batch_size=32, epochs=1, validation_data=val, verbose=0, callbacks=callbacks)
            value = history.history["val_accuracy"][-1]
            if value > best:
                best, waited = value, 0
                model.save(os.path.join(folder, f"trial-{trial.number}.keras"))  # its best epoch, kept
            else:
                waited += 1
            if waited >= PATIENCE or (hard_deadline and time.time() >= hard_deadline):
                break
            trial.report(best, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return best

    remaining = None if deadline is None else max(0.0, deadline - time.time())
    study.optimize(
        objective,
        timeout=remaining,
        callbacks=[optuna.study.MaxTrialsCallback(trials, states=None)],
    )


def competent_loop(
    train: Split,
    val: Split,
    test: Split,
    *,
    trials: int,
    epochs: int,
    timeout: float | None = None,
    hard_timeout: float | None = None,
    seed: int | None = None,
    num_classes: int | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    """The loop a competent user writes: the same space and TPE + MedianPruner, inputs standardised
    (:func:`competent_model`), early stopping (patience 3) that keeps each trial's best epoch, the best
    trial's best-epoch model tested once, and as many processes as cnn-search uses (``workers`` on one
    ``JournalStorage``, Optuna's documented way, one TensorFlow thread each)."""
    import multiprocessing

    import keras
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _, num_classes = _prepare(train, val, test, seed=seed, num_classes=num_classes)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        journal = os.path.join(folder, "study.journal")
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
        optuna.create_study(
            study_name="competent", storage=storage, direction="maximize", pruner=optuna.pruners.MedianPruner()
        )
        split = os.path.join(folder, "split.npz")
        np.savez(split, x_tr=train[0], y_tr=train[1], x_val=val[0], y_val=val[1], classes=num_classes)
        deadline = None if timeout is None else time.time() + timeout
        hard = None if hard_timeout is None else time.time() + hard_timeout
        job = (split, journal, folder, trials, epochs, seed or 0, deadline, hard)
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            pool.map(_competent_worker, [job] * workers)
        study = optuna.load_study(study_name="competent", storage=storage)
        best = study.best_trial
        model = keras.saving.load_model(os.path.join(folder, f"trial-{best.number}.keras"))
        _, accuracy = model.evaluate(*test, verbose=0)
        done = study.trials
    return {
        "wall": time.perf_counter() - start,
        "test_accuracy": float(accuracy),
        "best_val_accuracy": float(best.value),
        "trials": len(done),
        "states": dict(Counter(t.state.name.lower() for t in done)),
    }
