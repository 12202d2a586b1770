"""What keeps a search's fixed costs down (issue 12), each with real processes, studies and models:
no worker started for trials already running, the supervising process never importing Keras
(the last worker out evaluates and registers the winner), the winner judged without tracing, and the
console entry point ending without the interpreter's teardown while losing nothing.
(The time each saves is measured in benchmarks/suite.py, not here.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from search.engines._optuna import more_work
from search.runtime._workers import watch

from .helpers import faults

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(complete: int, running: int) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for _ in range(complete):
        study.add_trial(optuna.trial.create_trial(value=0.5, state=optuna.trial.TrialState.COMPLETE))
    for _ in range(running):
        study.ask()  # RUNNING
    return study


def test_a_worker_is_not_started_again_for_trials_other_workers_are_running() -> None:
    assert more_work(_study(complete=8, running=0), trials=10, deadline=None)
    assert more_work(_study(complete=8, running=1), trials=10, deadline=None)
    # the last two trials are running elsewhere: nothing left to start
    assert not more_work(_study(complete=8, running=2), trials=10, deadline=None)
    assert not more_work(_study(complete=10, running=0), trials=10, deadline=None)
    # the budget is spent: nothing either
    assert not more_work(_study(complete=0, running=0), trials=10, deadline=time.time() - 1)


class _NoSignals:
    pending = None


def test_watch_starts_a_worker_again_only_when_told() -> None:
    started: list[int] = []
    restarts = iter([True, False, False])  # the first exit is started again, then no more

    def start(index: int) -> subprocess.Popen[bytes]:
        started.append(index)
        return subprocess.Popen([sys.executable, "-c", "pass"])

    watch(start, workers=2, signals=_NoSignals(), restart_after_exit=lambda: next(restarts))  # type: ignore[arg-type]
    assert len(started) == 3  # two workers, one of them once more


def test_the_supervising_process_does_not_import_keras_to_start_a_search(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from search.data import load_dataset
        from search.runtime._session import Session
        from search.space import load_space
        from search.tracking import default_tracking_uri

        runs = Path({str(tmp_path)!r})
        session = Session(name="s", engine="optuna", space=load_space("tiny"), data=load_dataset("digits"),
                          runs_dir=runs, tracking_uri=default_tracking_uri(runs), epochs=1, seed=0)
        with session.record.running(trains=False):
            session.record.tracker  # MLflow ready: the parent run exists
        print("keras" in sys.modules, "tensorflow" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["False", "False"]


def test_the_winner_is_judged_without_tracing_and_scores_as_evaluate_does() -> None:
    import keras

    from search.training._eager import predict_eagerly, sparse_crossentropy

    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (600, 8, 8, 1)).astype("uint8")  # more than one batch of 256, raw pixels
    y = rng.integers(0, 3, 600)
    loss, accuracy = model.evaluate(x, y, verbose=0, batch_size=256)
    probabilities = predict_eagerly(model, x)
    assert probabilities.shape == (600, 3)
    assert model.predict_function is None  # nothing was traced for it
    assert float(np.mean(probabilities.argmax(axis=1) == y)) == pytest.approx(accuracy, abs=1e-6)
    assert sparse_crossentropy(probabilities, y) == pytest.approx(loss, rel=1e-5)


def _fast_exit_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        import atexit, sys, threading, time
        import tensorflow  # the fast exit is for processes that imported it
        import search.cli as cli
        marker = {str(tmp_path / "atexit.txt")!r}
        atexit.register(lambda: open(marker, "w").write("ran"))
        def late():
            time.sleep(0.5)
            open({str(tmp_path / "thread.txt")!r}, "w").write("joined")
        threading.Thread(target=late, name="cnn-search-late").start()  # cnn-search's own, not a daemon: waited for
        # a library's idle pool thread (not a daemon, waits for work forever): not waited for
        import concurrent.futures
        concurrent.futures.ThreadPoolExecutor(max_workers=1).submit(lambda: None).result()
        sys.stdout.write("buffered, not yet flushed")
        """
    )
    return subprocess.run([sys.executable, "-c", code + body], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("body", "rc"), [("cli._fast_exit(3)", 3), ("cli._fast_exit('bad input')", 1)])
def test_the_fast_exit_keeps_exit_code_output_atexit_and_threads(tmp_path: Path, body: str, rc: int) -> None:
    out = _fast_exit_script(tmp_path, body)
    assert out.returncode == rc, out.stderr[-2000:]
    assert out.stdout == "buffered, not yet flushed"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert (tmp_path / "thread.txt").read_text() == "joined"
    if rc == 1:
        assert out.stderr.rstrip().endswith("bad input")


def test_the_console_entry_point_exits_with_the_command_s_code_after_tensorflow(tmp_path: Path) -> None:
    """A search whose trials all fail (injected; 3 failures in a row stop it) exits 1 after training: through the fast exit, with
    its message and its record kept (the MLflow store and the Optuna journal are readable after)."""
    import os

    runs = tmp_path / "runs"
    args = ["run", "tiny", "--data", "digits", "--trials", "1", "--epochs", "1", "--workers", "1"]
    out = subprocess.run(
        [sys.executable, "-m", "search", *args, "--runs-dir", str(runs), "--name", "t", "--quiet"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **faults(FAIL_TRIALS="0,1,2,3")},
    )
    assert out.returncode == 1, out.stderr[-2000:]
    assert "3 trials failed in a row" in out.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "search", "trials", "t", "--runs-dir", str(runs)], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "failed" in shown.stdout


def test_eager_validation_logs_what_keras_s_validation_pass_computes() -> None:
    import keras

    from search.training._objective import _EagerValidation

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x, y = rng.random((96, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 96)
    xv, yv = rng.random((300, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 300)
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[_EagerValidation.make(xv, yv)])
    loss, accuracy = model.evaluate(xv, yv, verbose=0)  # Keras's own pass, on the final weights
    assert history.history["val_accuracy"][-1] == pytest.approx(accuracy, abs=1e-6)
    assert history.history["val_loss"][-1] == pytest.approx(loss, rel=1e-5)


def test_a_trial_on_data_in_memory_traces_no_test_function() -> None:
    from search.data import load_dataset
    from search.space import FixedParams, load_space
    from search.training import Objective

    space = load_space("tiny")
    data = load_dataset("digits")
    arch = space.sample(FixedParams(space.start[0]))  # the tiny space's first start point
    result = Objective(space, data, epochs=2, seed=0)(arch, lambda epoch, value: False)
    assert result.state == "complete", result.reason
    assert len(result.history["val_accuracy"]) == 2 and result.value == max(result.history["val_accuracy"])
    assert result.model is not None and result.model.test_function is None  # judged eagerly
    assert result.model.optimizer.built  # its slots were made before the first trace


def test_a_worker_imports_keras_while_it_waits_for_the_supervisor(tmp_path: Path) -> None:
    """A worker's Keras import (3-4 s) overlaps the supervisor's MLflow start-up: it is done before
    the worker waits for the search's parent run (here never recorded: the wait times out). It skips
    scikit-learn, which Keras imports only for its scikit-learn wrappers (0.77 s of CPU); afterwards
    ``import sklearn`` works as usual."""
    rng = np.random.default_rng(0)
    images = tmp_path / "images.npz"
    np.savez(images, x=rng.integers(0, 255, (60, 8, 8, 1), dtype="uint8"), y=np.arange(60) % 3)
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import optuna
        from search._errors import SearchError
        from search.data import load_dataset
        from search.runtime._storage import default_storage_url, get_storage
        from search.engines._optuna import run_worker
        from search.space import load_space

        runs = Path({str(tmp_path)!r})
        study = optuna.create_study(study_name="w", storage=get_storage(default_storage_url(runs)))
        data = load_dataset({str(images)!r})
        attrs = {{"space_definition": load_space("tiny").to_dict(), "target_trials": 2, "data": {str(images)!r},
                  "data_seed": 0, "data_fingerprint": data.fingerprint, "sampler": "tpe", "pruner": "median",
                  "epochs": 1, "seed": 0}}
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        assert "keras" not in sys.modules and "sklearn" not in sys.modules
        try:
            run_worker("w", runs_dir=runs, wait_for_parent=1)
        except SearchError as exc:
            print("waited:", exc, file=sys.stderr)
        print("keras" in sys.modules, "sklearn" in sys.modules)
        import sklearn.base
        print(sklearn.base.BaseEstimator.__module__)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "waited:" in out.stderr
    assert out.stdout.split()[-3:] == ["True", "False", "sklearn.base"]
