"""cnn-search against the loops people write by hand, on the same data, space, trials and epochs.

Data: scikit-learn's digits as uint8 images, 75/25 stratified train/test split, 20% of train for
validation, seed 0. Space: 1-3 conv blocks (benchmarks/spaces/reference.yaml). Each contender runs
TRIALS trials of up to EPOCHS epochs; the test split is used once, on the winner.

    python benchmarks/vs_handwritten.py [--trials 20] [--epochs 20] [--only optuna,keras-tuner,cnn-search]

Prints wall time, time inside model.fit, and test accuracy for each, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent


def reference_data():
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.round(digits.images * 255 / 16).astype("uint8")[..., None]
    y = digits.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    x_tr, x_val, y_tr, y_val = train_test_split(x_train, y_train, test_size=0.2, stratify=y_train, random_state=0)
    return (x_tr, y_tr), (x_val, y_val), (x_test, y_test)


def hand_model(hp_int, hp_choice, hp_float):
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Rescaling(1 / 255)])
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
    model.add(keras.layers.Dense(10, activation="softmax"))
    lr = hp_float("learning_rate", 1e-4, 1e-2, log=True)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def handwritten_optuna(trials: int, epochs: int) -> dict[str, float]:
    """Optuna TPE + MedianPruner, one fit() call per epoch so the pruner can act (the usual recipe)."""
    import keras
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train, val, test = reference_data()
    fit_seconds = 0.0
    best: dict = {"value": -1.0, "model": None}

    def objective(trial: optuna.Trial) -> float:
        nonlocal fit_seconds
        keras.backend.clear_session()
        model = hand_model(
            lambda n, lo, hi: trial.suggest_int(n, lo, hi),
            lambda n, c: trial.suggest_categorical(n, c),
            lambda n, lo, hi, log=False: trial.suggest_float(n, lo, hi, log=log),
        )
        value = 0.0
        for epoch in range(epochs):
            t0 = time.perf_counter()
            history = model.fit(*train, batch_size=32, epochs=1, validation_data=val, verbose=0)
            fit_seconds += time.perf_counter() - t0
            value = max(value, history.history["val_accuracy"][-1])
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if value > best["value"]:
            best.update(value=value, model=model)
        return value

    start = time.perf_counter()
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=0), pruner=optuna.pruners.MedianPruner()
    )
    study.optimize(objective, n_trials=trials)
    _, accuracy = best["model"].evaluate(*test, verbose=0)
    return {"wall": time.perf_counter() - start, "fit": fit_seconds, "test_accuracy": accuracy}


def handwritten_keras_tuner(trials: int, epochs: int) -> dict[str, float]:
    """KerasTuner RandomSearch over the same space, its usual recipe."""
    import keras_tuner as kt

    train, val, test = reference_data()

    def build(hp):
        return hand_model(
            lambda n, lo, hi: hp.Int(n, lo, hi),
            lambda n, c: hp.Choice(n, c),
            lambda n, lo, hi, log=False: hp.Float(n, lo, hi, sampling="log" if log else "linear"),
        )

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tuner = kt.RandomSearch(
            build,
            objective="val_accuracy",
            max_trials=trials,
            seed=0,
            directory=tmp,
            project_name="ref",
            overwrite=True,
        )
        t0 = time.perf_counter()
        tuner.search(*train, batch_size=32, epochs=epochs, validation_data=val, verbose=0)
        search_seconds = time.perf_counter() - t0
        model = tuner.get_best_models(1)[0]
        _, accuracy = model.evaluate(*test, verbose=0)
    return {"wall": time.perf_counter() - start, "fit": search_seconds, "test_accuracy": accuracy}


def cnn_search(trials: int, epochs: int) -> dict[str, float]:
    """cnn-search, the same space as YAML, every trial in MLflow, the winner registered."""
    import search

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = search.run_search(
            HERE / "spaces" / "reference.yaml",
            "digits",
            trials=trials,
            epochs=epochs,
            seed=0,
            runs_dir=tmp,
            report=False,  # the pictures are an extra the hand-written loops do not make
        )
        fit = sum(r["seconds"] or 0 for r in result.trials)
    return {
        "wall": time.perf_counter() - start,
        "fit": fit,
        "test_accuracy": result.test_metrics["test_accuracy"],
        "states": result.states,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--only", default="optuna,keras-tuner,cnn-search")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    contenders = {"optuna": handwritten_optuna, "keras-tuner": handwritten_keras_tuner, "cnn-search": cnn_search}
    if args.child:  # one contender in this fresh process; its imports are paid before the clock starts
        import keras  # noqa: F401
        import mlflow  # noqa: F401
        import optuna  # noqa: F401

        figures = contenders[args.child](args.trials, args.epochs)
        print("RESULT " + json.dumps(figures, default=str))
        return
    print(f"digits, {args.trials} trials x {args.epochs} epochs, seed 0, each contender in a fresh process")
    print(f"{'contender':<24} {'wall s':>8} {'in fit s':>9} {'test acc':>9}  notes")
    for name in args.only.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--trials", str(args.trials), "--epochs", str(args.epochs)],
            capture_output=True,
            text=True,
        )
        line = next((row for row in out.stdout.splitlines() if row.startswith("RESULT ")), None)
        if line is None:
            print(f"{name:<24} failed: {out.stderr[-2000:]}")
            continue
        figures = json.loads(line.removeprefix("RESULT "))
        notes = figures.get("states", "")
        print(
            f"{name:<24} {figures['wall']:8.1f} {figures['fit']:9.1f} {figures['test_accuracy']:9.4f}  {notes}",
            flush=True,
        )


if __name__ == "__main__":
    main()
