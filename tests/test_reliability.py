"""docs/RELIABILITY.md rows 1, 4, 7, 8 and the time budget, with real processes, signals and storage.
(Rows 2, 3, 5, 6, 15 are in test_run.py; 9-11 in test_space_errors and tests/data; 12-14 in
test_export and test_ui.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from search.space import spaces_dir

from .helpers import ENV, cnn_search, faults, runs_of, study_of

NAME = "tiny-digits"


def _popen(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "search", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, **env},
    )


def _wait(runs, proc, predicate, limit=180):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        if (runs / "optuna.journal").exists():
            try:
                trials = study_of(runs, NAME).trials
            except KeyError:
                trials = []
            if predicate(trials):
                return trials
        time.sleep(0.3)
    raise AssertionError("the search never reached the expected state")


@pytest.mark.slow
def test_sigkill_mid_trial_then_rerun_retries_the_killed_trial_once(tmp_path):
    """Row 1."""
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--trials", "4", "--epochs", "3", "--runs-dir", str(runs), "--seed", "0"]
    proc = _popen(*args, env=faults(EPOCH_SLEEP="1"))
    _wait(runs, proc, lambda ts: any(t.state.name == "COMPLETE" for t in ts) and ts[-1].state.name == "RUNNING")
    time.sleep(1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    killed = study_of(runs, NAME).trials[-1]
    assert killed.state.name == "RUNNING"  # what Optuna alone leaves behind

    again = cnn_search(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"trial(s) [{killed.number}] were left running by a process that ended: failed, retried once" in (
        again.stderr.replace("\n", " ")
    )
    study = study_of(runs, NAME)
    failed = study.trials[killed.number]
    assert failed.state.name == "FAIL" and failed.user_attrs["state"] == "killed"
    assert "its worker process ended" in failed.user_attrs["reason"]
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == killed.number]
    assert len(retries) == 1 and retries[0].params == killed.params  # retried once, same point
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 4  # the target is reached
    parents, children = runs_of(runs, NAME)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert not [c for c in children if c.info.status == "RUNNING"]
    record = [c for c in children if c.data.tags["trial"] == str(killed.number)]
    assert len(record) == 1 and record[0].info.status == "KILLED"
    retry = [c for c in children if c.data.tags["trial"] == str(retries[0].number)]
    assert retry[0].data.tags["retry_of"] == str(killed.number)  # the MLflow run says what it reruns


@pytest.mark.slow
@pytest.mark.parametrize("start", ["fork", "exec"])
def test_two_workers_share_one_study(tmp_path, start):
    """Row 4: both finish, unique trial numbers, no lock errors; MLflow has every trial once. The
    workers never import MLflow (their records reach it through the supervisor: search.tracking._spool)
    and the supervisor never imports Keras (its report pictures do: left out); seen at each process's
    exit by a ``sitecustomize``. Workers are forks of the forkserver that imported Keras once
    (search.runtime._zygote), or with ``CNN_SEARCH_WORKER_START=exec`` fresh interpreters started by ``run``."""
    runs = tmp_path / "runs"
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(
        "import atexit, os, sys\n"
        "def said():\n"
        f"    with open({str(tmp_path / 'modules.txt')!r}, 'a') as f:\n"
        "        comm = open('/proc/self/comm').read().strip()\n"
        "        f.write(f\"{(sys.argv[1:2] or ['-'])[0]} {os.getpid()} {os.getppid()} {comm} \"\n"
        "                f\"mlflow={'mlflow' in sys.modules} keras={'keras' in sys.modules}\\n\")\n"
        "atexit.register(said)\n"
    )
    out = cnn_search(
        "run", "tiny", "--trials", "8", "--epochs", "2", "--workers", "2", "--runs-dir", str(runs), "--no-report",
        env={"PYTHONPATH": str(probe), "CNN_SEARCH_WORKER_START": start},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    said = [line.split() for line in (tmp_path / "modules.txt").read_text().splitlines()]
    run = [line for line in said if line[0] == "run"]
    workers = [line for line in said if line[0] == "worker"]
    assert len(run) == 1 and run[0][4:] == ["mlflow=True", "keras=False"], said
    assert workers and {tuple(w[4:]) for w in workers} == {("mlflow=False", "keras=True")}, said
    started_by = {w[2] for w in workers}
    if start == "fork":  # forked by the forkserver (run's child), not started by run
        assert run[0][1] not in started_by and len(started_by) == 1, said
        assert {w[3] for w in workers} == {"cnn-search-w0", "cnn-search-w1"}, said  # named for top and ps
    else:
        assert started_by == {run[0][1]}, said
    assert list((runs / "spool" / NAME).iterdir()) == []  # every record written into MLflow
    assert "locked" not in out.stderr.lower() and "Traceback" not in out.stderr
    study = study_of(runs, NAME)
    numbers = [t.number for t in study.trials if t.user_attrs.get("state") != "surplus"]
    assert len(numbers) == len(set(numbers)) and len(numbers) == 8  # no overshoot either
    assert len({t.user_attrs["worker"] for t in study.trials if t.number in numbers}) == 2  # both workers ran trials
    parents, children = runs_of(runs, NAME)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(c.data.tags["trial"]) for c in children) == numbers
    assert "[worker 0] ran" in out.stderr and "[worker 1] ran" in out.stderr
    # the run process shows its workers' trials epoch by epoch (read from the study), as for its own
    assert sum(f"trial {n} epoch 1/2: val_accuracy" in out.stderr for n in numbers) >= 4
    assert study.user_attrs["recycle_after"] == 50  # supervised workers are recycled by default
    kept = list((runs / "models" / NAME).glob("*.keras"))
    assert [p.name for p in kept] == [f"trial-{parents[0].data.tags['best_trial']}.keras"]
    # the last worker out evaluated the winner (Keras loaded there), the supervisor registered it and said so, once
    winner = [line for line in out.stderr.splitlines() if "winner: trial" in line]
    assert len(winner) == 1 and winner[0].startswith("winner: trial"), winner
    assert "Successfully registered" not in out.stderr  # MLflow's own line would cut into the live display
    assert study.user_attrs["champion_trial"] == int(parents[0].data.tags["best_trial"])
    # no worker was started again for trials the other was running: two "ran" lines, not three
    assert out.stderr.count("] ran ") == 2


@pytest.mark.slow
def test_a_worker_that_dies_on_sigterm_before_recording_its_trial_leaves_no_trial_running(tmp_path):
    """Seen in CI under load: SIGTERM reached a worker inside TensorFlow's C code, it died with a SystemError
    before recording its trial, and the trial stayed RUNNING. Here the workers die at once on SIGTERM
    (``os._exit``): the supervisor fails their trials as it ends."""
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--trials", "6", "--epochs", "3", "--workers", "2", "--runs-dir", str(runs)]
    proc = _popen(*args, env=faults(EPOCH_SLEEP="1", DIE_ON_SIGTERM="1"))
    _wait(runs, proc, lambda ts: sum(t.state.name == "RUNNING" for t in ts) == 2)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-3000:]
    study = study_of(runs, NAME)
    assert not [t.number for t in study.trials if t.state.name == "RUNNING"], stderr[-4000:]
    assert "left running by a worker that ended: failed" in stderr
    _, children = runs_of(runs, NAME)
    assert not [c for c in children if c.info.status == "RUNNING"]


@pytest.mark.slow
def test_sigterm_stops_every_worker_and_the_rerun_completes(tmp_path):
    """Row 2 with worker processes."""
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--trials", "6", "--epochs", "3", "--workers", "2", "--runs-dir", str(runs)]
    proc = _popen(*args, env=faults(EPOCH_SLEEP="1"))
    _wait(runs, proc, lambda ts: sum(t.state.name == "RUNNING" for t in ts) == 2)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-3000:]
    assert "interrupted (SIGTERM)" in stderr
    study = study_of(runs, NAME)
    assert not [t.number for t in study.trials if t.state.name == "RUNNING"], stderr[-4000:]
    killed = [t for t in study.trials if t.user_attrs.get("state") == "killed"]
    assert len(killed) == 2, stderr[-4000:]
    parents, children = runs_of(runs, NAME)
    assert parents[0].info.status == "KILLED"
    assert sum(c.info.status == "KILLED" for c in children) == 2 and not [
        c for c in children if c.info.status == "RUNNING"
    ]
    again = cnn_search(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study_of(runs, NAME).trials) >= 6


@pytest.mark.slow
@pytest.mark.backends
def test_out_of_memory_is_retried_at_half_the_batch_then_recorded(tmp_path):
    """Row 7: an injected out-of-memory error of the backend's own class (TensorFlow's ResourceExhaustedError;
    JAX's RESOURCE_EXHAUSTED runtime error under marker backends)."""
    runs = tmp_path / "runs"
    out = cnn_search(
        "run",
        "tiny",
        "--trials",
        "4",
        "--epochs",
        "1",
        "--runs-dir",
        str(runs),
        "--pruner",
        "none",
        env=faults(OOM_TRIALS="1,2!"),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    _, children = runs_of(runs, NAME)
    by = {int(c.data.tags["trial"]): c for c in children}
    assert by[1].data.tags["state"] == "complete"
    assert by[1].data.tags["reason"] == "oom_retried: out of memory at batch size 64; trained at 32"
    assert by[2].data.tags["state"] == "failed" and by[2].data.tags["reason"].startswith("oom: at batch size 32")
    assert by[3].data.tags["state"] == "complete" and by[3].data.tags["reason"] == ""  # the next trial is normal


@pytest.mark.slow
def test_workers_are_recycled_after_their_trials(tmp_path):
    """Row 8: a fresh worker process every 2 trials (the memory figures are in benchmarks/worker_memory.py)."""
    runs = tmp_path / "runs"
    out = cnn_search("run", "tiny", "--trials", "5", "--epochs", "1", "--recycle-after", "2", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-3000:]
    workers = [t.user_attrs["worker"] for t in study_of(runs, NAME).trials]
    assert len(workers) == 5 and len(set(workers)) == 3  # 2 + 2 + 1 trials in three processes
    assert out.stderr.count("worker recycled after 2 trials") == 2
    assert study_of(runs, NAME).user_attrs["recycle_after"] == 2


@pytest.mark.slow
def test_timeout_is_a_wall_clock_budget_and_the_winner_is_still_registered(tmp_path):
    runs = tmp_path / "runs"
    space = tmp_path / "tiny.yaml"  # the tiny space without early stopping: its first trial outlasts the budget
    shipped = (spaces_dir() / "tiny.yaml").read_text()
    space.write_text(shipped.replace("  epochs: 3\n", "  epochs: 3\n  patience: null\n"))
    assert "patience: null" in space.read_text()
    t0 = time.monotonic()
    out = cnn_search(
        "run",
        str(space),
        "--name",
        NAME,
        "--trials",
        "50",
        "--epochs",
        "40",
        "--timeout",
        "30",  # TensorFlow's import and the first epoch (~10 s here) fit in it on a slow day (8 s did not)
        "--workers",
        "1",
        "--runs-dir",
        str(runs),
        "--pruner",
        "none",
        "--no-report",  # the pictures' seconds are not the budget's question
        env=faults(EPOCH_SLEEP="1"),  # 40 epochs outlast the budget: the trial is stopped
    )
    wall = time.monotonic() - t0
    assert out.returncode == 0, out.stderr[-3000:]
    assert "--timeout reached: no new trial starts" in out.stderr or "hard time limit" in out.stderr
    parents, children = runs_of(runs, NAME)
    stopped = [c for c in children if c.data.tags["reason"].startswith("timeout: stopped at the search's hard time")]
    assert stopped, [c.data.tags["reason"] for c in children]
    assert "test_accuracy" in parents[0].data.metrics and parents[0].data.tags.get("best_trial") is not None
    assert wall < 30 * 1.1 + 40  # start-up, the stopped epoch and the winner's evaluation on top of the budget


def test_stale_trials_of_other_machines_are_found_by_their_heartbeat(tmp_path):
    import optuna

    from search.engines._optuna import fail_stale_trials, grace_seconds
    from search.runtime._storage import get_storage

    storage = get_storage(str(tmp_path / "s.journal"))
    study = optuna.create_study(study_name="s", storage=storage)
    old, fresh = study.ask(), study.ask()
    for trial, beat in ((old, time.time() - grace_seconds() - 5), (fresh, time.time())):
        trial.suggest_int("blocks/depth", 1, 3)
        trial.set_user_attr("worker", "another-machine:4242")
        trial.set_user_attr("heartbeat", beat)
    assert fail_stale_trials(study) == [old.number]
    trials = study.trials
    assert trials[old.number].state.name == "FAIL" and trials[fresh.number].state.name == "RUNNING"
    assert "no heartbeat for" in trials[old.number].user_attrs["reason"]
    retry = study.ask()  # the enqueued retry comes first, with the same point
    assert retry.params == {} and retry.suggest_int("blocks/depth", 1, 3) == trials[old.number].params["blocks/depth"]
    assert retry.user_attrs["retry_of"] == old.number
    retry.set_user_attr("worker", "another-machine:4243")
    retry.set_user_attr("heartbeat", time.time() - grace_seconds() - 5)
    assert fail_stale_trials(study) == [retry.number]
    assert not [t for t in study.trials if t.user_attrs.get("retry_of") == retry.number]  # retried once only


def test_of_two_workers_that_ask_for_the_last_trial_at_once_exactly_one_gives_way(tmp_path):
    """Workers share only the storage: two that both saw one trial to go both ask for it. The rule each
    applies after ask() lets the smaller number run; a failure ahead makes the other one needed again."""
    import optuna

    from search.engines._optuna import SURPLUS, summarize, surplus, trial_rows
    from search.runtime._storage import get_storage

    storage = get_storage(str(tmp_path / "s.journal"))
    mine = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    theirs = optuna.load_study(study_name="s", storage=storage)  # another worker's handle on the same file
    for study, value in ((mine, 0.5), (theirs, 0.6)):
        trial = study.ask()
        study.tell(trial, value)
    first, second = theirs.ask(), mine.ask()  # both counted 2 of 3 and asked
    assert not surplus(theirs, first.number, 3) and surplus(mine, second.number, 3)
    assert not surplus(mine, first.number, 3)  # the same answer from either handle
    theirs.tell(first, state=optuna.trial.TrialState.FAIL)  # the one ahead failed: the other is needed now
    assert not surplus(mine, second.number, 3)
    mine.tell(second, 0.7)
    extra = theirs.ask()
    assert surplus(theirs, extra.number, 3)
    extra.set_user_attr("state", SURPLUS)
    theirs.tell(extra, state=optuna.trial.TrialState.FAIL)
    assert [r["trial"] for r in trial_rows(mine)] == [second.number, 1, 0, first.number]  # the surplus one left out
    assert summarize(mine) == {"complete": 3, "fail": 1}


def test_gpu_workers_are_pinned_one_gpu_each():
    """No GPU here: the pinning is plain environment, checked as such (see also the run below)."""
    from search.runtime._workers import visible_gpus, worker_env

    assert worker_env(1, ["0", "1"])["CUDA_VISIBLE_DEVICES"] == "1"
    assert worker_env(2, ["0", "1"])["CUDA_VISIBLE_DEVICES"] == "0"
    assert worker_env(0, ["0"])["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    import os

    assert worker_env(0, []).get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES")  # CPU: as is

    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        os.environ["CUDA_VISIBLE_DEVICES"] = "2,3"
        assert visible_gpus() == ["2", "3"]
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        assert visible_gpus() == []
    finally:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


@pytest.mark.slow
@pytest.mark.backends
def test_two_visible_gpus_start_two_pinned_workers_and_gpu_flags_are_recorded(tmp_path):
    """CUDA_VISIBLE_DEVICES=0,1 on this CPU machine: the supervisor starts a worker per id, each
    pinned with the backend's memory setting (the backend finds no GPU and trains on the CPU). Mixed
    precision and XLA run (slowly) on a CPU; on a GPU they are measured by benchmarks/gpu.py, not here."""
    from search._backend import gpu_env
    from search._backend import name as backend

    runs = tmp_path / "runs"
    out = cnn_search(
        "run",
        "tiny",
        "--trials",
        "4",
        "--epochs",
        "1",
        "--runs-dir",
        str(runs),
        "--mixed-precision",
        "--xla",
        env={"CUDA_VISIBLE_DEVICES": "0,1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    trials = study_of(runs, NAME).trials
    assert {t.user_attrs["cuda_visible_devices"] for t in trials} == {"0", "1"}
    setting = ",".join(f"{k}={v}" for k, v in gpu_env(backend()).items())  # TF: memory growth; JAX: no preallocation
    assert {t.user_attrs["gpu_memory"] for t in trials} == {setting} and setting
    parents, children = runs_of(runs, NAME)
    assert parents[0].data.params["mixed_precision"] == "True" and parents[0].data.params["xla"] == "True"
    assert any(c.data.tags["state"] == "complete" for c in children)


def test_worker_options_are_checked(tmp_path):
    cases = [
        (["--workers", "0"], "--workers: expected a whole number >= 1, received 0"),
        (["--workers", "2", "--engine", "autokeras"], "worker processes run the optuna and keras-tuner engines"),
        (["--engine", "keras-tuner", "--recycle-after", "2"], "KerasTuner's workers are not recycled"),
        (["--workers", "2", "--storage", f"sqlite:///{tmp_path}/o.db"], "several worker processes need a journal"),
        (["--timeout", "0"], "--timeout: expected a finite number of seconds > 0, received 0.0"),
    ]
    for extra, message in cases:
        out = cnn_search("run", "tiny", "--runs-dir", str(tmp_path / "runs"), *extra)
        assert out.returncode == 1 and message in out.stderr, (extra, out.stderr[-1500:])
    missing = cnn_search("worker", "nope", "--runs-dir", str(tmp_path / "runs"))
    assert missing.returncode == 1 and "no search named 'nope'" in missing.stderr


@pytest.mark.slow
def test_keras_tuner_workers_use_its_chief_worker_mode(tmp_path):
    """KerasTuner's own distributed mode on loopback: this process serves the oracle, two workers train."""
    import json

    runs = tmp_path / "runs"
    args = ["run", "tiny", "--engine", "keras-tuner", "--workers", "2", "--trials", "6", "--epochs", "2"]
    out = cnn_search(*args, "--runs-dir", str(runs), env=faults(EPOCH_SLEEP="1"))  # both get trials
    assert out.returncode == 0, out.stderr[-3000:]
    folder = runs / "keras_tuner" / "tiny-digits-keras-tuner"
    per_worker = {p.name: json.loads(p.read_text()) for p in folder.glob("cnn_search_trials.tuner*.json")}
    assert sorted(per_worker) == ["cnn_search_trials.tuner0.json", "cnn_search_trials.tuner1.json"]
    assert all(per_worker.values())  # both workers ran trials
    numbers = [int(n) for rows in per_worker.values() for n in rows]
    assert sorted(numbers) == list(range(6))  # unique trial numbers from the chief's oracle
    parents, children = runs_of(runs, "tiny-digits-keras-tuner")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and "test_accuracy" in parents[0].data.metrics
    assert sorted(int(c.data.tags["trial"]) for c in children) == list(range(6))
    assert all(c.info.status == "FINISHED" for c in children)
