"""Worker processes forked from the forkserver (search/runtime/_zygote.py): forked when the import-time
environment matches, a fresh interpreter when it does not, when asked, or when the forkserver was killed. Real processes, in a process of their own (the forkserver is one per process)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import ENV, cnn_search, faults, study_of
from .test_reliability import NAME, _wait

SCRIPT = """
import os, signal, sys
from multiprocessing import forkserver
from search.runtime._zygote import Forked, Launcher

launcher = Launcher()
launcher.prestart()
env = dict(os.environ)
cases = (("fork", {}), ("exec", {"KERAS_BACKEND": "jax"}), ("asked", {"CNN_SEARCH_WORKER_START": "exec"}), ("killed", {}))
for label, extra in cases:
    if label == "killed":
        os.kill(forkserver._forkserver._forkserver_pid, signal.SIGKILL)
    proc = launcher.start(["no-such-command"], {**env, **extra})
    code = proc.wait(120)
    print(label, type(proc).__name__, code, flush=True)
    print(f"--- {label} done", file=sys.stderr, flush=True)
"""


@pytest.mark.slow
def test_workers_fork_when_the_environment_matches_and_exec_when_it_does_not(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # every worker went through the forkserver; each ended with the CLI's usage error (exit 2)
    assert out.stdout.split("\n")[:4] == ["fork Forked 2", "exec Forked 2", "asked Popen 2", "killed Popen 2"], (
        out.stdout
    )
    said = out.stderr.split("--- ")
    # the fork runs the CLI in the preloaded process (its argv[0] set to cnn-search); the worker whose
    # KERAS_BACKEND differs from the forkserver's replaced itself with `python -m search`
    assert "Usage: cnn-search" in said[0], said[0]
    assert "Usage: python -m search" in said[1], said[1]
    # CNN_SEARCH_WORKER_START=exec in a worker's environment: started by this process, no warning
    assert "Usage: python -m search" in said[2] and "fresh interpreters" not in said[2], said[2]
    # a forkserver killed under the search: this worker and the next start as fresh interpreters, said once
    assert "worker processes start as fresh interpreters from now on" in said[3], said[3]
    assert "Usage: python -m search" in said[3], said[3]


PRELOAD_SCRIPT = """
import os, sys, time
from multiprocessing import forkserver
from pathlib import Path
from search.runtime._zygote import Launcher

sys.path.insert(0, ".")
Launcher().prestart(["engine_extra"])
for _ in range(600):
    if Path("imported_in").exists():
        break
    time.sleep(0.1)
print(Path("imported_in").read_text(), forkserver._forkserver._forkserver_pid, "CNN_SEARCH_PRELOAD" in os.environ)
"""


@pytest.mark.slow
def test_the_forkserver_imports_the_engines_preload(tmp_path):
    """An engine's ``preload`` (Optuna's: optuna and its own module) is imported once, in the forkserver."""
    (tmp_path / "engine_extra.py").write_text("import os\nopen('imported_in', 'w').write(str(os.getpid()))\n")
    env = {**ENV, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ENV.get('PYTHONPATH', '')}"}
    out = subprocess.run(
        [sys.executable, "-c", PRELOAD_SCRIPT], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    imported_in, forkserver_pid, left_set = out.stdout.split()
    assert imported_in == forkserver_pid  # imported by the forkserver, not by the process that started it
    assert left_set == "False"  # the starting process's environment is as it was


def _group(pgid: int) -> dict[int, tuple[str, str]]:
    """The live processes of group ``pgid``: pid -> (name, command line)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or os.getpgid(int(proc.name)) != pgid:
                continue
            if (proc / "stat").read_text().split(") ")[-1].startswith("Z"):  # ended, not yet reaped
                continue
            name = (proc / "comm").read_text().strip()
            found[int(proc.name)] = (name, (proc / "cmdline").read_text().replace("\0", " "))
        except (OSError, ProcessLookupError):
            continue
    return found


@pytest.mark.slow
def test_run_killed_ends_its_forkserver_and_the_rerun_completes(tmp_path):
    """Row 25: ``kill -9`` of ``run`` while its forked workers train. The forkserver ends with it (its
    pipe from ``run`` closes); the workers are left to finish their trials, as fresh-interpreter
    workers were; the same command then completes the search."""
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--trials", "6", "--epochs", "3", "--workers", "2", "--runs-dir", str(runs)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**ENV, **faults(EPOCH_SLEEP="1")},
        start_new_session=True,  # its own process group: every process it started is found by it
    )
    try:
        _wait(runs, proc, lambda ts: sum(t.state.name == "RUNNING" for t in ts) == 2)
        before = _group(proc.pid)
        assert {name for name, _ in before.values()} >= {"cnn-search-w0", "cnn-search-w1"}, before
        assert any(
            "multiprocessing.forkserver" in cmd and not name.startswith("cnn-search-w") for name, cmd in before.values()
        )
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = _group(proc.pid)
            if not [
                p for p, (name, cmd) in left.items() if "forkserver" in cmd and not name.startswith("cnn-search-w")
            ]:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the forkserver outlived run: {left}")
        deadline = time.monotonic() + 180
        while _group(proc.pid) and time.monotonic() < deadline:  # the workers finish what they started
            time.sleep(0.5)
        assert not _group(proc.pid), _group(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    again = cnn_search(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = study_of(runs, NAME).trials
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) >= 6
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
