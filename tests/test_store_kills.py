"""The store's fault-injection test (issue 31; docs/RELIABILITY.md): a search process killed (SIGKILL, no
clean-up) right after each step of a finished trial's record, then run again. Nothing recorded is lost
and every rerun resumes: the trials recorded before the kill keep their MLflow runs, the killed trial is
recorded once (finished, or marked KILLED and retried), nothing is left RUNNING, and the target is met.

The kill comes from ``tests/faults/sitecustomize.py`` (``CNN_SEARCH_TEST_KILL_AT=STEP:TRIAL``) through
``search.hooks``' ``record_step`` call points; the other faults (disk full, store deleted, server down,
torn journal) are in ``test_store_disk.py``, ``test_store_faults.py`` and ``test_servers_down.py``."""

from __future__ import annotations

import pytest

from .helpers import cnn_search, faults, mlflow_client, study_of

NAME = "tiny-digits"
STEPS = ("run", "artifacts", "ended", "attrs", "told")


@pytest.mark.parametrize("step", STEPS)
def test_a_search_killed_at_each_step_of_a_trials_record_loses_nothing_and_resumes(tmp_path, step):
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--epochs", "1", "--seed", "0", "--workers", "1", "--runs-dir", str(runs), "--trials", "3"]
    killed = cnn_search(*args, env=faults(KILL_AT=f"{step}:1"))
    assert killed.returncode == -9, killed.stderr[-2000:]  # it died at that step, with no clean-up
    client = mlflow_client(runs)
    experiment = client.get_experiment_by_name(NAME)
    before = {r.data.tags["trial"]: r for r in client.search_runs([experiment.experiment_id]) if "trial" in r.data.tags}
    assert before["0"].info.status == "FINISHED"

    again = cnn_search(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Traceback" not in again.stderr
    study = study_of(runs, NAME)
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 3  # the target met
    assert not [t for t in study.trials if t.state.name == "RUNNING"]
    after = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id]) if "trial" in r.data.tags}
    assert not [r for r in after.values() if r.info.status == "RUNNING"]
    assert before["0"].info.run_id in after and after[before["0"].info.run_id].data.metrics == before["0"].data.metrics
    for t in study.trials:  # every counted trial of the study has its own finished MLflow run
        if t.state.name in ("COMPLETE", "PRUNED"):
            run = after[t.user_attrs["mlflow_run_id"]]
            assert run.info.status == "FINISHED" and run.data.tags["trial"] == str(t.number)
    (one,) = [r for r in after.values() if r.data.tags["trial"] == "1"]  # the killed trial recorded once
    if step in ("ended", "attrs", "told"):  # its run was written whole before the kill: kept as it was
        assert one.info.run_id == before["1"].info.run_id and one.info.status == "FINISHED"
        assert one.data.metrics == before["1"].data.metrics and one.data.tags["state"] == before["1"].data.tags["state"]
    else:  # half-written: ended KILLED, the trial retried
        assert one.info.status == "KILLED"
