"""`cnn-search run` end to end, in real processes, read back from the real MLflow and Optuna stores."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search import load_space

from .helpers import ENV, cnn_search, faults, mlflow_client, runs_of, study_of

pytestmark = pytest.mark.slow

EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def test_run_records_every_trial_registers_the_winner_and_resumes(tmp_path):
    runs = tmp_path / "runs"
    out = cnn_search(
        "run", "tiny", "--data", "digits", "--trials", "3", "--epochs", "1", "--runs-dir", str(runs), "--seed", "0"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "best: trial" in out.stdout and "models:/tiny-digits@champion" in out.stdout
    assert "cnn-search ui --runs-dir" in out.stdout and "/#/experiments/" in out.stdout

    parents, children = runs_of(runs, "tiny-digits")
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert 0 <= parent.data.metrics["test_accuracy"] <= 1 and "best_trial" in parent.data.tags
    client = mlflow_client(runs)
    parent_files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"best_architecture.json", "confusion_matrix.json", "space.json"} <= parent_files
    confusion = json.loads(
        Path(client.download_artifacts(parent.info.run_id, "confusion_matrix.json", str(tmp_path))).read_text()
    )
    assert sum(map(sum, confusion["matrix"])) == 450  # the 25% test split of 1,797 digits, used once
    chance = max(map(sum, confusion["matrix"])) / 450  # the largest class's share of the test split (rows: truth)
    assert parent.data.metrics["chance_accuracy"] == pytest.approx(chance)
    assert f"evaluated once; chance {chance:.4f})" in out.stdout  # said beside the test accuracy, as recorded
    assert f", chance {chance:.4f} (evaluated once" in out.stderr  # and on the winner's line

    assert study_of(runs, "tiny-digits").metric_names == ["val_accuracy"]  # named in optuna-dashboard too
    assert children[0].data.tags["start_point"] == "0"  # tiny.yaml's start point runs first, and says so
    start = load_space("tiny").start[0]
    assert {k: children[0].data.params[k] for k in start} == {k: str(v) for k, v in start.items()}
    assert all("start_point" not in c.data.tags for c in children[1:])
    for n, child in enumerate(children):
        assert child.info.run_name == f"trial-{n}"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        tags = child.data.tags
        assert tags["engine"] == "optuna" and tags["state"] == "complete" and tags["reason"] == ""
        assert len(tags["architecture_hash"]) == 16 and tags["architecture"].endswith("softmax10")
        assert tags["data_fingerprint"] == parent.data.tags["data_fingerprint"]
        assert child.data.params["blocks/depth"] in ("1", "2") and "block_0/filters" in child.data.params
        assert "training/learning_rate" in child.data.params
        for key in EPOCH_METRICS:
            history = client.get_metric_history(child.info.run_id, key)
            assert [m.step for m in history] == [0], key
        for key in ("best_val_accuracy", "num_params", "flops", "train_seconds", "epochs_run", "best_epoch"):
            assert key in child.data.metrics, key
        files = {f.path for f in client.list_artifacts(child.info.run_id)}
        assert "architecture.json" in files

    version = client.get_model_version_by_alias("tiny-digits", "champion")
    assert str(version.version) == "1" and version.tags["trial"] == parent.data.tags["best_trial"]

    again = cnn_search("run", "tiny", "--trials", "5", "--epochs", "1", "--runs-dir", str(runs), "--seed", "0")
    assert again.returncode == 0, again.stderr[-3000:]
    parents, children = runs_of(runs, "tiny-digits")
    assert len(parents) == 1 and [c.info.run_name for c in children] == [f"trial-{n}" for n in range(5)]
    assert [c.data.tags.get("start_point") for c in children] == ["0", None, None, None, None]  # not queued again

    done = cnn_search("run", "tiny", "--trials", "5", "--epochs", "1", "--runs-dir", str(runs), "--seed", "0")
    assert done.returncode == 0
    assert "nothing to do" in done.stderr
    assert len(runs_of(runs, "tiny-digits")[1]) == 5

    table = cnn_search("trials", "tiny-digits", "--runs-dir", str(runs), "--format", "json")
    rows = json.loads(table.stdout)
    assert len(rows) == 5 and rows[0]["val_accuracy"] == max(r["val_accuracy"] for r in rows)
    csv = cnn_search("trials", "tiny-digits", "--runs-dir", str(runs), "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("trial,state,val_accuracy") and len(csv.stdout.splitlines()) == 6


def test_a_different_space_under_an_existing_name_is_refused(tmp_path):
    runs = tmp_path / "runs"
    first = cnn_search("run", "tiny", "--name", "mine", "--trials", "1", "--epochs", "1", "--runs-dir", str(runs))
    assert first.returncode == 0, first.stderr[-2000:]
    other = cnn_search("run", "lenet", "--name", "mine", "--trials", "2", "--epochs", "1", "--runs-dir", str(runs))
    assert other.returncode == 1
    assert "error: search 'mine' already exists with a different space ('tiny'" in other.stderr
    assert "received space 'lenet'" in other.stderr
    assert len(runs_of(runs, "mine")[1]) == 1  # nothing recorded is lost, nothing added


def test_infeasible_samples_are_pruned_trials_not_crashes(tmp_path):
    space = tmp_path / "deep.yaml"
    space.write_text(
        "name: deep\nblocks:\n  depth: [1, 4]\n  filters: 4\n  pooling: max\n"
        "head: {dense_layers: 0}\ntraining: {epochs: 1, batch_size: 128}\n"
    )
    runs = tmp_path / "runs"
    out = cnn_search("run", str(space), "--trials", "6", "--runs-dir", str(runs), "--sampler", "random", "--seed", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    _, children = runs_of(runs, "deep-digits")
    states = [c.data.tags["state"] for c in children]
    assert "infeasible" in states and "complete" in states, states
    for child in children:
        if child.data.tags["state"] == "infeasible":
            assert child.data.tags["reason"].startswith("collapse: block 3:")
            assert child.data.metrics["epochs_run"] == 0 and child.info.status == "FINISHED"
    study = study_of(runs, "deep-digits")
    assert {t.state.name for t in study.trials} == {"COMPLETE", "PRUNED"}


def test_failures_are_recorded_and_the_search_goes_on(tmp_path):
    runs = tmp_path / "runs"
    env = faults(FAIL_TRIALS="1", NAN_TRIALS="2")
    out = cnn_search(
        "run",
        "tiny",
        "--trials",
        "3",
        "--epochs",
        "2",
        "--runs-dir",
        str(runs),
        "--pruner",
        "none",
        "--seed",
        "0",
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    parents, children = runs_of(runs, "tiny-digits")
    assert len(children) == 5  # two failed trials do not count toward the target of 3
    failed = {int(c.data.tags["trial"]): c for c in children if c.data.tags["state"] == "failed"}
    assert set(failed) == {1, 2}
    assert failed[1].info.status == "FAILED"
    assert (
        failed[1].data.tags["reason"]
        == "error: RuntimeError: injected failure in trial 1 (CNN_SEARCH_TEST_FAIL_TRIALS)"
    )
    client = mlflow_client(runs)
    tb = Path(client.download_artifacts(failed[1].info.run_id, "traceback.txt", str(tmp_path))).read_text()
    assert "Traceback (most recent call last)" in tb and "RuntimeError" in tb
    assert failed[2].data.tags["reason"].startswith("non_finite")
    assert parents[0].data.tags["best_trial"] not in ("1", "2")


def test_consecutive_failures_stop_the_search_with_the_last_error(tmp_path):
    runs = tmp_path / "runs"
    out = cnn_search(
        "run",
        "tiny",
        "--trials",
        "5",
        "--epochs",
        "1",
        "--runs-dir",
        str(runs),
        env=faults(FAIL_TRIALS="0,1,2,3"),
    )
    assert out.returncode == 1
    assert (
        "error: 3 trials failed in a row; the last error: error: RuntimeError: injected failure in trial 2"
        in out.stderr
    )
    parents, children = runs_of(runs, "tiny-digits")
    assert parents[0].info.status == "FAILED" and len(children) == 3
    assert all(c.info.status == "FAILED" for c in children)


def _wait_for_running_trial(runs: Path, name: str, proc: subprocess.Popen[str], limit: float = 120) -> None:
    """Wait until the search's storage shows a trial RUNNING (trial runs reach MLflow when they end)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        if (runs / "optuna.journal").exists():
            try:
                states = [t.state.name for t in study_of(runs, name).trials]
            except KeyError:  # the study is not created yet
                states = []
            if "RUNNING" in states:
                time.sleep(1.5)  # well inside the trial's (slowed) training
                return
        time.sleep(0.5)
    raise AssertionError("no trial started")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_trial_exits_cleanly_and_the_rerun_completes(tmp_path, signum):
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--trials", "2", "--epochs", "3", "--runs-dir", str(runs)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, **faults(EPOCH_SLEEP="2")},
    )
    _wait_for_running_trial(runs, "tiny-digits", proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, stderr[-2000:]
    name = signal.Signals(signum).name
    assert (
        f"interrupted ({name}): completed trials are kept, a running one is marked failed; run the same "
        "command to resume"
    ) in stderr
    parents, children = runs_of(runs, "tiny-digits")
    assert parents[0].info.status == "KILLED"
    assert not [c for c in children if c.info.status == "RUNNING"]
    killed = [c for c in children if c.info.status == "KILLED"]
    assert len(killed) == 1 and killed[0].data.tags["reason"] == f"killed: {name}"
    assert [t.state.name for t in study_of(runs, "tiny-digits").trials][-1] == "FAIL"

    again = cnn_search(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    parents, children = runs_of(runs, "tiny-digits")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    # the target counts finished trials: a sample may be stopped as pruned / not_learning, which counts too
    assert sum(c.data.tags["state"] in ("complete", "pruned") for c in children) == 2
    assert not [c for c in children if c.info.status == "RUNNING"]


@pytest.mark.backends
def test_same_seed_same_architectures_and_metrics(tmp_path):
    """On a CPU, on TensorFlow and (marker backends) on JAX: what --seed repeats (search/_backend.DETERMINISM)."""
    results = []
    for i in range(2):
        runs = tmp_path / f"runs{i}"
        out = cnn_search(
            "run", "tiny", "--trials", "3", "--epochs", "2", "--runs-dir", str(runs), "--seed", "7", "--pruner", "none"
        )
        assert out.returncode == 0, out.stderr[-2000:]
        _, children = runs_of(runs, "tiny-digits")
        results.append(
            [
                (
                    c.data.tags["architecture_hash"],
                    c.data.params,
                    c.data.metrics["best_val_accuracy"],
                    c.data.metrics["num_params"],
                )
                for c in children
            ]
        )
    first, second = results
    assert [r[0] for r in first] == [r[0] for r in second]
    assert [r[1] for r in first] == [r[1] for r in second]
    assert [r[2] for r in first] == pytest.approx([r[2] for r in second], abs=1e-6)


def test_a_seeded_search_continued_does_not_replay_its_first_trials(tmp_path):
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--epochs", "1", "--runs-dir", str(runs), "--seed", "3", "--sampler", "random"]
    assert cnn_search(*args, "--trials", "2").returncode == 0
    again = cnn_search(*args, "--trials", "4")
    assert again.returncode == 0, again.stderr[-2000:]
    params = [t.params for t in study_of(runs, "tiny-digits").trials]
    assert len(params) == 4 and params[2:] != params[:2]


@pytest.mark.slow
def test_a_search_writes_nothing_outside_its_runs_dir(tmp_path):
    """MLflow 3 files a logged model under the active experiment; left as experiment 0 that was
    ./mlruns in whatever folder the user ran the command from."""
    out = cnn_search("run", "tiny", "--trials", "1", "--epochs", "1", "--runs-dir", "runs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]
    assert list((tmp_path / "runs" / "mlartifacts" / "tiny-digits" / "models").glob("m-*/artifacts/MLmodel"))


def test_run_search_from_python_talks_like_keras_fit(tmp_path):
    """``run_search(verbose=...)`` (search/_talk.py): by default a line per finished trial, the winner and the
    best; ``verbose=2`` also each epoch; ``verbose=0`` nothing; a rerun says it had nothing to do; no
    TensorFlow C++ start-up lines; the trials as a DataFrame. A fresh process each, as a user's script."""
    env = {k: v for k, v in ENV.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell: nothing set

    def python(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from search import run_search\n" + code], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=600)  # fmt: skip

    search = "run_search('tiny', epochs=1, seed=0, workers=1, report=False, name='talk', trials={})"
    first = python(f"r = {search.format('2')}\nprint(type(r.dataframe()).__name__, len(r.dataframe()))")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.split()[-2:] == ["DataFrame", "2"]
    said = first.stderr
    assert "trial 0 complete: val_accuracy" in said and "trial 1 " in said
    assert "winner: trial" in said and "best: trial" in said and "test_accuracy" in said and "; chance 0." in said
    assert "epoch 1/1" not in said  # epoch lines are verbose=2's
    assert "oneDNN" not in said and "absl::InitializeLog" not in said and "cuda" not in said.lower()

    again = python(search.format("2"))
    assert again.returncode == 0 and "nothing to do: search 'talk' already has 2 trials" in again.stderr

    chatty = python(search.format("3, verbose=2"))
    assert chatty.returncode == 0 and "trial 2 started" in chatty.stderr and "trial 2 epoch 1/1:" in chatty.stderr

    mute = python(search.format("4, verbose=0"))
    assert mute.returncode == 0 and "trial" not in mute.stderr and "winner" not in mute.stderr
