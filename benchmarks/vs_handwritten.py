"""cnn-search against the loops people write by hand, on the same data, space, trials and epochs.

Data: scikit-learn's digits as uint8 images, 75/25 stratified train/test split, 20% of train for
validation, seed 0. Space: 1-3 conv blocks (benchmarks/spaces/reference.yaml). Each contender runs
TRIALS trials of up to EPOCHS epochs; the test split is used once, on the winner.

    python benchmarks/vs_handwritten.py [--trials 20] [--epochs 20] [--only optuna,keras-tuner,cnn-search]

Prints wall time, time inside model.fit, and test accuracy for each, side by side. The hand-written
loops and their model live in benchmarks/_handwritten.py (shared with benchmarks/suite.py).
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
sys.path.insert(0, str(HERE))

from _handwritten import keras_tuner_loop, optuna_loop  # noqa: E402


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


def handwritten_optuna(trials: int, epochs: int) -> dict[str, float]:
    """Optuna TPE + MedianPruner, one fit() call per epoch so the pruner can act (the usual recipe)."""
    train, val, test = reference_data()
    return optuna_loop(train, val, test, trials=trials, epochs=epochs)


def handwritten_keras_tuner(trials: int, epochs: int) -> dict[str, float]:
    """KerasTuner RandomSearch over the same space, its usual recipe."""
    train, val, test = reference_data()
    return keras_tuner_loop(train, val, test, trials=trials, epochs=epochs)


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
