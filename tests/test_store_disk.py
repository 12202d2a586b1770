"""Issue 31, item 5 (docs/RELIABILITY.md): a store deleted under a search, and a disk that is full or fills
mid-search, said in one line with nothing recorded lost.

The full disk is real: a small tmpfs mounted in a private mount namespace (``unshare -rm``: a user
namespace where this user is root, so no privilege is needed and nothing is mounted outside the test's
processes), the search run inside it by a script that fills the disk itself once a trial is recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from .helpers import ENV, cnn_search, runs_of

NAME = "tiny-digits"


def test_a_deleted_store_is_refused_before_a_trial_and_its_restoration_continues_the_search(tmp_path):
    """Deleting mlflow.db (its study kept) gave a traceback on every rerun, each after a wasted trial."""
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--epochs", "1", "--seed", "0", "--runs-dir", str(runs)]
    first = cnn_search(*args, "--trials", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    db = runs / "mlflow.db"
    db.rename(tmp_path / "kept.db")

    for made_again in (False, True):  # the store gone; then a new store made in its place
        if made_again:  # another search run meanwhile made a new store
            other = cnn_search(*args, "--trials", "1", "--name", "other")
            assert other.returncode == 0 and db.exists(), other.stderr[-2000:]
        again = cnn_search(*args, "--trials", "2")
        assert again.returncode == 1, again.stderr[-2000:]
        said = again.stderr.strip().splitlines()[-1]
        assert said.startswith(f"error: search '{NAME}': its study records MLflow parent run"), said
        assert ("does not hold it" if made_again else "is gone") in said and "Put that mlflow.db back" in said
        assert "Traceback" not in again.stderr and "trial 1 started" not in again.stderr  # no trial wasted

    shutil.copyfile(tmp_path / "kept.db", db)
    resumed = cnn_search(*args, "--trials", "2")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    (parent,), children = runs_of(runs, NAME)
    assert [c.data.tags["trial"] for c in children] == ["0", "1"]  # trial 0's record kept, one search
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}


_FULL_DISK = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from pathlib import Path

    mnt, size = Path(sys.argv[1]), sys.argv[2]
    mnt.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
    runs = mnt / "runs"
    env = {**os.environ, "PYTHONPATH": sys.argv[3], "CNN_SEARCH_TEST_EPOCH_SLEEP": "1.5"}
    args = [sys.executable, "-m", "search", "run", "tiny", "--epochs", "2", "--trials", "3", "--seed", "0",
            "--workers", "1", "--runs-dir", str(runs)]
    out = {}
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    said = []
    if sys.argv[4] == "fill":  # once trial 0 is recorded whole (its line said, after its run ended), fill the disk
        for line in proc.stderr:
            said.append(line)
            if line.startswith("trial 0 complete"):
                break
        with open(mnt / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"x" * 65536)
                    f.flush()
            except OSError as exc:
                out["filled"] = exc.errno
    out["first"] = [proc.wait(), "".join(said) + proc.stderr.read()]
    if (mnt / "filler").exists():
        (mnt / "filler").unlink()
        again = subprocess.run(args, env=env, capture_output=True, text=True)
        out["again"] = [again.returncode, again.stderr]
        import optuna
        from mlflow import MlflowClient

        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(runs / "optuna.journal")))
        study = optuna.load_study(study_name="tiny-digits", storage=storage)
        out["study"] = [t.state.name for t in study.trials]
        client = MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
        exp = client.get_experiment_by_name("tiny-digits")
        found = client.search_runs([exp.experiment_id], "tags.state != ''", max_results=100)
        out["mlflow"] = sorted(
            (r.data.tags["trial"], r.info.status, r.data.tags.get("study_state", ""))
            for r in found if "trial" in r.data.tags
        )
    print(json.dumps(out))
    """
)


def _in_a_small_disk(tmp_path, size: str, mode: str) -> dict:
    script = tmp_path / "full_disk.py"
    script.write_text(_FULL_DISK)
    faults = str(Path(__file__).parent / "faults")
    done = subprocess.run(
        ["unshare", "-rm", sys.executable, str(script), str(tmp_path / "disk"), size, faults, mode],
        capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_disk_too_full_for_a_search_is_refused_before_anything_starts(tmp_path):
    """A disk full while the store was created gave a traceback after a wasted trial, on every rerun."""
    out = _in_a_small_disk(tmp_path, "2m", "none")
    code, stderr = out["first"]
    assert code == 1 and "Traceback" not in stderr and "trial 0 started" not in stderr
    (line,) = stderr.strip().splitlines()
    assert "MiB free on its device; expected at least 32 MiB" in line and "choose another --runs-dir" in line


def test_a_disk_that_fills_mid_search_stops_it_in_one_line_and_the_rerun_loses_nothing(tmp_path):
    """A full disk mid-search gave MLflow's "database or disk is full" traceback (and its SQL, logged)."""
    out = _in_a_small_disk(tmp_path, "40m", "fill")
    assert out["filled"] == 28  # ENOSPC: the disk really was full
    code, stderr = out["first"]
    assert code == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "[SQL:" not in stderr and "trial 2 started" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: no space left on the device") and "run the same command again" in last
    code, stderr = out["again"]
    assert code == 0, stderr[-3000:]
    assert out["study"].count("COMPLETE") + out["study"].count("PRUNED") == 3
    statuses = {t: s for t, s, _ in out["mlflow"]}
    assert "RUNNING" not in statuses.values()
    finished = sorted(t for t, s, study in out["mlflow"] if s == "FINISHED" and not study)
    assert "0" in finished and len(finished) == 3  # trial 0's record kept; three counted trials recorded
    # a trial whose MLflow record was written whole but whose study record met the full disk is kept as it
    # was, marked (row 32), and retried: it is never counted twice
    kept = [t for t, s, study in out["mlflow"] if study]
    assert all(statuses[t] == "FINISHED" for t in kept)
    assert out["study"].count("FAIL") >= len(kept)  # each failed in the study, and retried
