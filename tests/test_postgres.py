"""Several machines, simulated on loopback: a real PostgreSQL server (Debian's package, installed by
.ci/run when missing) holds the Optuna study and the MLflow store; ``cnn-search run`` and a separate
``cnn-search worker`` share one study."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .helpers import ENV, faults

pytestmark = pytest.mark.slow
NAME = "tiny-digits"


def _pg_bin(tool: str) -> str:
    found = shutil.which(tool) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))), None)
    assert found, f"PostgreSQL's {tool} is not installed (.ci/run installs Debian's postgresql package)"
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres():
    home = Path(tempfile.mkdtemp(prefix="cnn-search-pg-"))
    data, sockets = home / "data", home / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run(_as_postgres([_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]), **run)
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
    pg_ctl = _pg_bin("pg_ctl")
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(home / "log"), "-w", "start"]), **run
    )
    try:
        for db in ("optuna", "mlflow"):
            subprocess.run(
                _as_postgres([_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", db]), **run
            )
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def test_run_and_a_worker_from_elsewhere_share_one_study_on_postgresql(postgres, tmp_path):
    import optuna
    from mlflow import MlflowClient

    storage, tracking = f"{postgres}/optuna", f"{postgres}/mlflow"
    common = ["--storage", storage, "--tracking-uri", tracking, "--runs-dir", str(tmp_path / "runs")]
    env = {**ENV, **faults(EPOCH_SLEEP="1")}  # trials long enough for the worker to join
    run = subprocess.Popen(
        [sys.executable, "-m", "search", "run", "tiny", "--trials", "8", "--epochs", "2", *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 180
    while True:  # the second worker joins once the search has its MLflow run
        assert run.poll() is None, run.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the search never started"
        try:
            if optuna.load_study(study_name=NAME, storage=storage).user_attrs.get("mlflow_parent_run_id"):
                break
        except (KeyError, Exception):
            pass
        time.sleep(0.5)
    worker = subprocess.run(
        [sys.executable, "-m", "search", "worker", NAME, *common, "--index", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    _, run_err = run.communicate(timeout=600)
    assert run.returncode == 0, run_err[-3000:]
    assert worker.returncode == 0, worker.stderr[-3000:]
    study = optuna.load_study(study_name=NAME, storage=storage)
    numbers = [t.number for t in study.trials if t.user_attrs.get("state") != "surplus"]  # a race lost: never run
    assert len(numbers) == len(set(numbers)) == 8
    assert all(t.state.name == "FAIL" for t in study.trials if t.number not in numbers)
    assert len({study.trials[n].user_attrs["worker"] for n in numbers}) == 2, worker.stderr[-3000:]  # both ran
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 8
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("role") == "search"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(c.data.tags["trial"]) for c in children) == numbers
    best = max((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert parents[0].data.tags["best_trial"] == str(best.number)  # chosen among both workers' trials
    assert client.get_model_version_by_alias(NAME, "champion").tags["trial"] == str(best.number)


def test_processes_opening_a_new_optuna_database_at_once_all_get_it(postgres):
    """The first processes to open a new database race to create Optuna's tables (a search and its
    workers start together; seen in CI: ``duplicate key ... (studydirection, 2200)``): every one of
    them gets the storage. Six real processes, released at the same instant after their imports."""
    port = postgres.rsplit(":", 1)[1]
    subprocess.run(
        _as_postgres([_pg_bin("createdb"), "-h", "127.0.0.1", "-p", port, "-U", "postgres", "race"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    start = time.time() + 8
    code = (
        "import time, optuna, sqlalchemy\n"
        "from search.runtime._storage import get_storage\n"
        f"time.sleep(max(0.0, {start} - time.time()))\n"
        f"get_storage('{postgres}/race')\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
        )
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=120)[1][-1500:] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, "\n".join(errors)
