"""Search + tracking overhead against bare ``model.fit`` of the same architectures (target: <= 5%).

Runs a cnn-search (Optuna, MLflow, feasibility, best-model keeping, winner registration) with the
pruner off, then, in the same process, builds and fits the very same architectures for the same
number of epochs each trial ran, with nothing around them but a loop. Both sides feed fit the same
way (tf.data, 32 steps per execution), so the difference is what the search adds.

    python benchmarks/overhead.py [--trials 10] [--epochs 10] [--space benchmarks/spaces/reference.yaml]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--space", default=str(HERE / "spaces" / "reference.yaml"))
    args = parser.parse_args()

    import keras
    import mlflow  # noqa: F401  (import costs are paid before either clock starts)
    import optuna  # noqa: F401

    import search
    from search.model import compile_model
    from search.training._eager import judging_batch
    from search.training._objective import STEPS_PER_EXECUTION

    data = search.load_dataset("digits")
    space = search.load_space(args.space)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = search.run_search(
            space, data, trials=args.trials, epochs=args.epochs, seed=0, runs_dir=tmp, pruner="none", report=False
        )
        searched = time.perf_counter() - start
    rows = [r for r in result.trials if r["state"] == "complete"]
    start = time.perf_counter()
    for row in rows:
        arch = space.sample(search.FixedParams(row["hyperparameters"]))
        keras.backend.clear_session(free_memory=False)
        model = compile_model(
            search.build_model(arch, data.input_shape, data.num_classes), arch, steps_per_execution=STEPS_PER_EXECUTION
        )
        model.fit(
            data.train(arch.training.batch_size),
            epochs=row["epochs_run"],
            validation_data=data.validation(judging_batch(data.input_shape, arch.training.batch_size)),
            verbose=0,
        )
    bare = time.perf_counter() - start
    in_trials = sum(r["seconds"] for r in rows)
    print(f"{len(rows)} architectures, {sum(r['epochs_run'] for r in rows)} epochs in all")
    print(f"bare build+compile+fit loop:            {bare:7.1f} s")
    print(f"cnn-search run_search, whole call:      {searched:7.1f} s  ({100 * (searched / bare - 1):+.1f}%)")
    print(f"  of which inside trials (build..fit):  {in_trials:7.1f} s")
    print(f"  outside trials (start-up, MLflow, Optuna, winner): {searched - in_trials:5.1f} s")


if __name__ == "__main__":
    main()
