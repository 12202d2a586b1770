"""The spool between a supervised search's workers and MLflow (search/tracking/_spool.py), with a real
MLflow store, real files and real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from search.tracking import Tracker
from search.tracking._spool import RelayTracker, drain, put, spool_dir

from .helpers import ENV


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _trial(number: int, state: str = "complete") -> dict:
    return {
        "number": number,
        "started_ms": 1_700_000_000_000 + number,
        "state": state,
        "params": {"blocks/depth": 1},
        "history": {"val_accuracy": [0.5, 0.75]},
        "final": {"val_accuracy": 0.75},
        "tags": {"reason": ""},
        "architecture": {"blocks": []},
        "traceback": None,
    }


def test_records_are_written_once_in_order_and_a_dead_takers_file_is_taken_back(tmp_path: Path) -> None:
    """What a worker relays arrives in MLflow as the run it would have written; a file taken by a
    process that died before removing it is applied by the next drain, without a second run for a
    trial whose run was already written."""
    runs = tmp_path / "runs"
    tracker = Tracker(f"sqlite:///{runs / 'mlflow.db'}", artifact_root=runs / "mlartifacts")
    experiment = tracker.experiment("s")
    parent, _ = tracker.start_search(experiment, name="s", parent_run_id=None, tags={}, params={})
    spool = spool_dir(runs, "s")
    relay = RelayTracker(spool)
    record = _trial(0)
    assert relay.record_trial("", "", record.pop("number"), **record) == ""
    put(spool, "trial", _trial(1, "pruned"))
    assert sorted(p.suffix for p in spool.iterdir()) == [".json", ".json"]  # never a temporary name left
    assert drain(tracker, experiment, parent, spool, name="s") == 2
    assert list(spool.iterdir()) == []
    first = tracker.trial_run(experiment, parent, 0)
    assert first is not None
    run = tracker.client.get_run(first)
    assert run.data.tags["state"] == "complete" and run.data.metrics["val_accuracy"] == 0.75
    assert run.info.start_time == 1_700_000_000_000 and run.info.status == "FINISHED"
    assert tracker.client.get_run(tracker.trial_run(experiment, parent, 1)).data.tags["state"] == "pruned"
    # a drainer killed between writing trial 0's run and removing its file, and one killed before trial 2's
    again = put(spool, "trial", _trial(0))
    again.rename(again.with_name(f"{again.name}.taken-{_dead_pid()}"))
    later = put(spool, "trial", _trial(2))
    later.rename(later.with_name(f"{later.name}.taken-{_dead_pid()}"))
    live = put(spool, "trial", _trial(3))
    live_taken = live.with_name(f"{live.name}.taken-1")  # pid 1 lives: its taker may still apply it
    live.rename(live_taken)
    assert drain(tracker, experiment, parent, spool, name="s") == 2
    assert [p.name for p in spool.iterdir()] == [live_taken.name]
    children = tracker.client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(r.data.tags["trial"] for r in children) == ["0", "1", "2"]


def test_the_winner_is_registered_from_its_file_without_keras_and_loads_in_both_flavors(tmp_path: Path) -> None:
    """The supervisor (MLflow, no Keras) registers a worker's winner from the ``.keras`` file: the
    model loads with mlflow.keras and mlflow.pyfunc and answers as the saved model does."""
    runs = tmp_path / "runs"
    model_file = tmp_path / "trial-3.keras"
    make = textwrap.dedent(
        f"""
        import numpy as np, keras
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
        m.save({str(model_file)!r})
        np.save({str(tmp_path / "answers.npy")!r}, m.predict(np.ones((2, 4, 4, 1), "float32"), verbose=0))
        """
    )
    out = subprocess.run([sys.executable, "-c", make], capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    register = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from search.tracking import Tracker
        from search.tracking._spool import drain, put
        tracker = Tracker("sqlite:///{runs / "mlflow.db"}", artifact_root=Path({str(runs / "mlartifacts")!r}))
        experiment = tracker.experiment("s")
        parent, _ = tracker.start_search(experiment, name="s", parent_run_id=None, tags={{}}, params={{}})
        record = {{"trial": 3, "summary": "flatten → softmax3", "architecture": {{"blocks": []}},
                  "metrics": {{"test_accuracy": 0.5, "test_loss": 1.0}},
                  "confusion": {{"class_names": ["a", "b", "c"], "matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 0]]}},
                  "model_file": {str(model_file)!r}, "inputs": [[4, 4, 1], "float32"], "outputs": [[3], "float32"],
                  "backend": "tensorflow", "seconds": 0.25}}
        put(Path({str(runs / "spool")!r}), "winner", record)
        said = []
        drain(tracker, experiment, parent, Path({str(runs / "spool")!r}), name="s", on_winner=lambda r, uri: said.append(uri))
        print(said, "keras" in sys.modules, "tensorflow" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", register], capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["['models:/s@champion']", "False", "False"]
    load = textwrap.dedent(
        f"""
        import json, numpy as np, mlflow
        mlflow.set_tracking_uri("sqlite:///{runs / "mlflow.db"}")
        x = np.ones((2, 4, 4, 1), "float32")
        a = mlflow.keras.load_model("models:/s@champion").predict(x, verbose=0)
        b = mlflow.pyfunc.load_model("models:/s@champion").predict(x)
        v = mlflow.MlflowClient().get_model_version_by_alias("s", "champion")
        [run] = mlflow.search_runs(experiment_names=["s"], output_format="list")
        print(json.dumps({{"a": a.tolist(), "b": np.asarray(b).tolist(), "trial": v.tags["trial"],
                          "best": run.data.tags["best_trial"], "test": run.data.metrics["test_accuracy"]}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.splitlines()[-1])
    import numpy as np

    expected = np.load(tmp_path / "answers.npy")
    assert np.allclose(got["a"], expected, atol=1e-6) and np.allclose(got["b"], expected, atol=1e-6)
    assert (got["trial"], got["best"], got["test"]) == ("3", "3", 0.5)
