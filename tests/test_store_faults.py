"""RELIABILITY rows 17-20 and 23 (docs/RELIABILITY.md): faults that used to break a store for good, with
real processes, real signals, real files and a real MLflow store and Optuna journal."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import ENV, cnn_search, mlflow_client, runs_of, study_of

NAME = "tiny-digits"


def _popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "search", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, **(env or {})},
    )


def _wait_for(predicate, proc, limit=120.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    raise AssertionError("never happened")


def _tiny_session(runs: Path, name: str):
    """A real Session of the tiny space on digits, MLflow under ``runs`` (for in-process fault tests)."""
    from search.data import load_dataset
    from search.runtime._session import Session
    from search.space import load_space
    from search.tracking import default_tracking_uri

    return Session(
        name=name,
        engine="optuna",
        space=load_space("tiny"),
        data=load_dataset("digits"),
        runs_dir=runs,
        tracking_uri=default_tracking_uri(runs),
        epochs=1,
        seed=0,
    )


def _two_trials(tmp_path: Path) -> tuple[Path, list[str], Path, bytes]:
    """A finished 2-trial tiny search: (runs dir, its run arguments, its journal, the journal's bytes)."""
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--epochs", "1", "--seed", "0", "--runs-dir", str(runs)]
    first = cnn_search(*args, "--trials", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    journal = runs / "optuna.journal"
    return runs, args, journal, journal.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "-3"], "--epochs: expected a whole number of epochs >= 1, received -3"),
        (["--epochs", "0"], "--epochs: expected a whole number of epochs >= 1, received 0"),
        (["--timeout", "nan"], "--timeout: expected a finite number of seconds > 0, received nan"),
        (["--name", "../../../evil"], "--name: '../../../evil' is not a valid search name"),
        (["--name", "a/b"], "received '/' in it"),
        (["--name", ".hidden"], "received '.' first"),
    ],
    ids=["epochs-negative", "epochs-zero", "timeout-nan", "name-dotdot", "name-slash", "name-dot"],
)
def test_out_of_range_options_are_refused_before_anything_is_written(tmp_path, args, message):
    """Rows 19, 20: --epochs -3 used to run an endless search (0-epoch trials never counted); a name with
    `..` wrote models and MLflow artifacts outside the runs dir."""
    cwd = tmp_path / "a" / "b" / "c"
    cwd.mkdir(parents=True)
    out = cnn_search("run", "tiny", "--trials", "3", "--runs-dir", "runs", *args, cwd=cwd, timeout=60)
    assert out.returncode == 1, out.stderr[-2000:]
    assert message in out.stderr and "Traceback" not in out.stderr
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing written, inside or outside


def test_an_objective_of_zero_epochs_is_refused():
    from search.data import load_dataset
    from search.space import load_space
    from search.training import Objective

    with pytest.raises(ValueError, match="epochs: expected a whole number >= 1 or None"):
        Objective(load_space("tiny"), load_dataset("digits"), epochs=0)


def test_more_workers_than_the_machine_or_the_trials_allow_are_capped_and_said(tmp_path):
    """Row 19: --workers 64 on 2 cores used to start 64 TensorFlow processes for 3 trials."""
    runs = tmp_path / "runs"
    out = cnn_search("run", "tiny", "--trials", "1", "--epochs", "1", "--workers", "64", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-2000:]
    said = " ".join(out.stderr.split())
    assert "--workers 64: running 1 worker process(es) (capped by" in said and "1 trials" in said
    assert len(study_of(runs, NAME).trials) == 1


def test_a_torn_journal_tail_is_dropped_with_a_backup_and_the_rerun_completes(tmp_path):
    """Row 18: a journal cut mid-line (a kill or a full disk during a write) used to be appended to,
    and every later command failed with a JSONDecodeError."""
    runs, args, journal, whole = _two_trials(tmp_path)
    os.truncate(journal, len(whole) - 40)

    again = cnn_search(*args, "--trials", "3")
    assert again.returncode == 0, again.stderr[-2000:]
    said = " ".join(again.stderr.split())
    assert "its last line was cut mid-write" in said and "dropped it, the whole file is kept as" in said
    (backup,) = runs.glob("optuna.journal.torn-*")
    assert backup.read_bytes() == whole[:-40]  # the file as it was, torn line included
    assert journal.read_bytes().endswith(b"\n")
    study = study_of(runs, NAME)
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 3
    listed = cnn_search("trials", NAME, "--runs-dir", str(runs))
    assert listed.returncode == 0, listed.stderr[-2000:]


def test_a_file_that_is_not_a_journal_or_a_store_is_refused_and_left_as_it_is(tmp_path):
    """Row 23: a store of random bytes was found only after a trial had started ("file is not a database")."""
    runs = tmp_path / "runs"
    runs.mkdir()
    store = runs / "mlflow.db"
    store.write_bytes(bytes(range(256)) * 20)
    out = cnn_search("run", "tiny", "--trials", "1", "--runs-dir", str(runs), timeout=60)
    said = " ".join(out.stderr.split())
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"MLflow store {store}: not an SQLite database" in said and f"mv {store} {store}.bad" in said
    assert store.read_bytes() == bytes(range(256)) * 20
    assert not (runs / "optuna.journal").exists()  # refused before the search was created

    store.unlink()
    journal = runs / "optuna.journal"
    journal.write_text("hello\nworld\n")
    out = cnn_search("run", "tiny", "--trials", "1", "--runs-dir", str(runs), timeout=60)
    said = " ".join(out.stderr.split())
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"{journal}: line 1 is not an Optuna journal record" in said and "received 'hello'" in said
    assert journal.read_text() == "hello\nworld\n"

    # a runs dir that cannot be made (root ignores permission bits; a file in the way stops anyone)
    out = cnn_search("run", "tiny", "--trials", "1", "--runs-dir", str(journal / "runs"), timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"--runs-dir {journal / 'runs'}: cannot write there" in " ".join(out.stderr.split())


@pytest.mark.slow
def test_two_first_runs_at_once_share_one_store_one_parent_and_one_registration(tmp_path):
    """Row 17: two first runs on an empty runs dir used to race MLflow's migrations ("table ... already
    exists") and registered the winner once per process."""
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--trials", "4", "--epochs", "1", "--seed", "0", "--runs-dir", str(runs)]
    procs = [_popen(*args) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, stderr) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr and "alembic" not in stderr
    parents, children = runs_of(runs, NAME)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sum(c.data.tags["state"] in ("complete", "pruned") for c in children) == 4
    versions = mlflow_client(runs).search_model_versions(f"name='{NAME}'")
    assert len(versions) == 1  # the champion is registered once, by whichever process got there first


@pytest.mark.slow
def test_a_kill_while_the_store_is_created_leaves_nothing_half_made(tmp_path):
    """Row 17: kill -9 during MLflow's first set-up used to leave a store every later run failed on.
    An empty cache: the store is made by MLflow's migrations, not copied from a template."""
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--trials", "2", "--epochs", "1", "--runs-dir", str(runs)]
    proc = _popen(*args, env={"CNN_SEARCH_CACHE": str(tmp_path / "cache")})
    _wait_for(lambda: any(runs.glob(".mlflow.db.creating-*")), proc)
    time.sleep(0.6)
    proc.kill()
    proc.communicate(timeout=30)
    assert not (runs / "mlflow.db").exists()  # made under another name, renamed only when whole

    again = cnn_search(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not list(runs.glob(".mlflow.db.creating-*"))  # the leftover is cleaned up
    parents, _ = runs_of(runs, NAME)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


def test_a_half_made_store_without_runs_is_moved_aside_and_made_again(tmp_path):
    """Row 17: what an older version left after a kill mid-migration: tables, no alembic_version."""
    from search.tracking import check_store

    runs = tmp_path / "runs"
    runs.mkdir()
    store = runs / "mlflow.db"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("CREATE TABLE runs (run_uuid TEXT PRIMARY KEY)")
    check_store(f"sqlite:///{store}")
    assert not store.exists() and len(list(runs.glob("mlflow.db.broken-*"))) == 1

    with sqlite3.connect(store) as db:  # one that holds runs is never moved: the message names the fix
        db.execute("CREATE TABLE runs (run_uuid TEXT PRIMARY KEY)")
        db.execute("INSERT INTO runs VALUES ('abc')")
    from search._errors import SearchError

    with pytest.raises(SearchError, match=r"holds 1 runs; expected a complete store. Try: mlflow db upgrade"):
        check_store(f"sqlite:///{store}")
    assert store.exists()


@pytest.mark.slow
def test_a_signal_during_start_up_leaves_no_running_parent(tmp_path):
    """Row 2 at start-up: the parent run used to be created in the background after SIGINT had already
    ended the process, and stayed RUNNING until the next run."""
    runs = tmp_path / "runs"
    proc = _popen("run", "tiny", "--trials", "2", "--epochs", "1", "--runs-dir", str(runs))
    _wait_for(lambda: (runs / "mlflow.db.lock").exists(), proc)  # MLflow is being set up
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-3000:]
    parents, children = runs_of(runs, NAME)
    assert [p.info.status for p in parents] == ["KILLED"]
    assert not [c for c in children if c.info.status == "RUNNING"]


def test_a_signal_while_the_winner_is_registered_does_not_undo_the_search(tmp_path):
    """SIGTERM held during registration used to mark a search KILLED although its model was registered."""

    runs = tmp_path / "runs"
    session = _tiny_session(runs, "held")
    with session.record.running():
        session.record.parent_run_id  # noqa: B018 (MLflow is ready)
        os.kill(os.getpid(), signal.SIGTERM)  # a real signal, held: no trial is training
    parent = mlflow_client(runs).get_run(session.record.parent_run_id)
    assert parent.info.status == "FINISHED"


def test_search_names_are_checked_once_and_default_names_made_safe():
    from search._errors import SearchError
    from search._names import check_name, safe_name
    from search._run import default_name
    from search.space import load_space

    for bad in ("..", "a b", "x" * 101, "", "-x", "é"):
        with pytest.raises(SearchError, match="is not a valid search name"):
            check_name(bad)
    assert default_name(load_space("tiny"), str(Path("/data/my photos (2)"))) == "tiny-my-photos-2"
    assert check_name(safe_name("../../x y")) == "x-y"


def test_a_journal_path_that_is_not_a_writable_file_is_refused(tmp_path):
    from search._errors import SearchError
    from search.runtime._storage import get_storage

    folder = tmp_path / "optuna.journal"
    folder.mkdir()
    with pytest.raises(SearchError, match="not a file this user can read and write"):
        get_storage(str(folder))


@pytest.mark.slow
def test_a_rerun_that_must_register_the_winner_does_not_deadlock(tmp_path):
    """Found by benchmarks/soak.py: a `run` killed after reaching the target but before registering left a
    rerun waiting forever on its own search lock (held while MLflow's start-up thread waited for it)."""
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--trials", "2", "--epochs", "1", "--seed", "0", "--runs-dir", str(runs)]
    first = cnn_search(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    study_of(runs, NAME).set_user_attr("champion_trial", -1)  # as if killed before registering
    again = cnn_search(*args, timeout=180)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "winner: trial" in again.stderr
    assert len(mlflow_client(runs).search_model_versions(f"name='{NAME}'")) == 2


def test_reconcile_kills_only_runs_whose_writer_is_gone_and_a_killed_trial_reuses_its_half_written_run(tmp_path):
    """Found by benchmarks/soak.py: a worker starting up marked KILLED the run another live worker was
    writing; a trial killed mid-record got a second KILLED run."""
    from search._process import worker_id
    from search.tracking import Tracker, default_tracking_uri

    tracker = Tracker(default_tracking_uri(tmp_path))
    experiment = tracker.experiment("s")
    parent, created = tracker.start_search(experiment, name="s", parent_run_id=None, tags={}, params={})
    assert created  # a new parent: nothing under it to reconcile, the search skips the query
    assert tracker.start_search(experiment, name="s", parent_run_id=None, tags={}, params={}) == (parent, False)

    def running(number: int, worker: str | None) -> str:
        tags = {"mlflow.parentRunId": parent, "trial": str(number)} | ({"worker": worker} if worker else {})
        return str(tracker.client.create_run(experiment, run_name=f"trial-{number}", tags=tags).info.run_id)

    live = running(0, worker_id())  # this process: alive, still writing
    gone = running(1, f"{worker_id().rpartition(':')[0]}:{2**22 + 12345}")  # no such pid
    old = running(2, None)  # written by a version without the tag
    assert sorted(tracker.reconcile(experiment, parent, killed_reason="killed: gone")) == sorted([gone, old])
    assert tracker.client.get_run(live).info.status == "RUNNING"

    again = tracker.record_trial(
        experiment, parent, 0, started_ms=0, state="killed", params={}, history={}, final={},
        tags={"reason": "killed: its worker process ended"}, architecture=None,
    )  # fmt: skip
    assert again == live and tracker.client.get_run(live).info.status == "KILLED"


def test_a_killed_trial_without_its_retry_gets_one_at_the_next_look(tmp_path):
    """Found by benchmarks/soak.py: a worker killed between failing a stale trial and queueing its retry
    lost the retry for good."""
    import optuna

    from search.engines._optuna import fail_stale_trials
    from search.runtime._storage import get_storage

    study = optuna.create_study(study_name="s", storage=get_storage(str(tmp_path / "optuna.journal")))
    trial = study.ask()
    trial.suggest_int("blocks/depth", 1, 3)
    trial.set_user_attr("state", "killed")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # failed, then the process died
    assert fail_stale_trials(study) == []  # nothing stale now...
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == trial.number]
    assert len(retries) == 1 and retries[0].state.name == "WAITING"  # ...but the retry is queued
    fail_stale_trials(study)
    assert len([t for t in study.trials if t.user_attrs.get("retry_of") == trial.number]) == 1  # once


def test_a_trial_killed_while_sampling_is_recorded_and_retried_without_stopping_the_worker(tmp_path):
    """Found by benchmarks/soak.py: a trial killed before all its parameters were sampled made every
    later worker fail ("blocks/depth: missing parameter") while recording it."""
    import optuna

    from search.engines._optuna import fail_stale_trials
    from search.runtime._storage import get_storage

    runs = tmp_path / "runs"
    study = optuna.create_study(study_name="half", storage=get_storage(str(runs / "optuna.journal")))
    trial = study.ask()
    trial.suggest_float("training/learning_rate", 1e-4, 1e-2, log=True)  # the process died here
    trial.set_user_attr("state", "killed")
    trial.set_user_attr("reason", "killed: its worker process ended")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    session = _tiny_session(runs, "half")
    with session.record.running():
        fail_stale_trials(study, session)
    _, children = runs_of(runs, "half")
    assert [(c.info.status, c.data.tags["state"]) for c in children] == [("KILLED", "killed")]
    assert "training/learning_rate" in children[0].data.params
    assert [t.user_attrs.get("retry_of") for t in study.trials] == [None, trial.number]


def test_two_workers_failing_the_same_stale_trial_do_not_crash(tmp_path, monkeypatch):
    """Found by benchmarks/soak.py (400 trials, 52 kills): a worker that listed a stale trial just before
    another failed it crashed with UpdateFinishedTrialError while marking it."""
    import optuna

    from search.engines._optuna import fail_stale_trials
    from search.runtime._storage import get_storage

    path = str(tmp_path / "optuna.journal")
    study = optuna.create_study(study_name="s", storage=get_storage(path))
    trial = study.ask()
    trial.suggest_int("blocks/depth", 1, 3)
    trial.set_user_attr("worker", "gone-host:1")
    trial.set_user_attr("heartbeat", 1.0)  # stale: no heartbeat since 1970
    snapshot = study.get_trials(deepcopy=True)  # what the slower worker listed
    other = optuna.load_study(study_name="s", storage=get_storage(path))
    assert fail_stale_trials(other) == [trial.number]  # the faster worker failed it
    listed = study.get_trials

    def stale_once(*args, **kwargs):
        monkeypatch.setattr(study, "get_trials", listed)
        return [t for t in snapshot if t.state.name == "RUNNING"]

    monkeypatch.setattr(study, "get_trials", stale_once)
    assert fail_stale_trials(study) == []  # found finished: left to the worker that failed it
    assert [t.user_attrs.get("retry_of") for t in study.trials].count(trial.number) == 1


def test_a_journal_that_lost_only_its_last_newline_keeps_its_last_record(tmp_path):
    """Issue 31, item 4: an append that lost only its newline left a whole last record; it was dropped as
    torn and a finished trial's record lost."""
    runs, args, journal, whole = _two_trials(tmp_path)
    assert whole.endswith(b"\n")
    records = whole.count(b"\n")
    journal.write_bytes(whole[:-1])

    listed = cnn_search("trials", NAME, "--runs-dir", str(runs))
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "the line end was added" in " ".join(listed.stderr.split())
    assert journal.read_bytes() == whole  # the record kept, its newline written
    assert list(runs.glob("optuna.journal.torn-*")) == []  # nothing was torn, nothing set aside
    again = cnn_search(*args, "--trials", "3")
    assert again.returncode == 0, again.stderr[-2000:]
    assert journal.read_bytes().count(b"\n") > records
    study = study_of(runs, NAME)
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 3


def test_a_deleted_journal_starts_a_new_parent_run_beside_the_earlier_search(tmp_path):
    """Issue 31, item 3: with optuna.journal deleted and mlflow.db kept, the rerun's new study logged its
    trials under the earlier search's parent run, two searches mixed in one."""
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--epochs", "1", "--seed", "0", "--runs-dir", str(runs), "--trials", "2"]
    first = cnn_search(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    (old_parent,), old_children = runs_of(runs, NAME)
    (runs / "optuna.journal").unlink()

    again = cnn_search(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    said = " ".join(again.stderr.split())
    assert f"MLflow keeps a parent run ({old_parent.info.run_id}) with trial runs" in said
    assert "tagged role=earlier-search" in said and "restore its optuna.journal" in said
    (new_parent,), children = runs_of(runs, NAME)
    assert new_parent.info.run_id != old_parent.info.run_id
    assert len(old_children) == 2 and len(children) == 4
    under = {c.data.tags["mlflow.parentRunId"] for c in children}
    assert under == {old_parent.info.run_id, new_parent.info.run_id}
    new = [c for c in children if c.data.tags["mlflow.parentRunId"] == new_parent.info.run_id]
    assert sorted(int(c.data.tags["trial"]) for c in new) == [0, 1]  # the new study's own trials
    earlier = mlflow_client(runs).get_run(old_parent.info.run_id)
    assert earlier.data.tags["role"] == "earlier-search" and "was gone" in earlier.data.tags["replaced"]
    assert earlier.data.metrics == old_parent.data.metrics  # the earlier search's record kept as it was
    listed = cnn_search("trials", NAME, "--runs-dir", str(runs))
    assert listed.returncode == 0, listed.stderr[-2000:]
