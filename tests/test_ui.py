"""`cnn-search ui`: the MLflow UI on the search store, on 127.0.0.1 only (docs/RELIABILITY.md rows 13, 22)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from .helpers import ENV

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> set[str]:
    """Local addresses listening on ``port`` (IPv4 and IPv6), from /proc/net/tcp*."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


@contextmanager
def _ui(runs_dir) -> Iterator[tuple[int, str]]:
    """`cnn-search ui` on a free port: (port, its home page) once it serves; stopped afterwards. Its
    output goes to a file, not a pipe: nobody reads it while the server runs."""
    import tempfile

    port = _free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "search", "ui", "--runs-dir", str(runs_dir), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=ENV,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            body = ""
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    log.seek(0)
                    raise AssertionError(log.read()[-3000:])
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                        body = response.read().decode()
                        break
                except OSError:
                    time.sleep(1)
            yield port, body
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def test_ui_serves_the_store_on_loopback_only(tmp_path):
    with _ui(tmp_path) as (port, body):
        assert "<html" in body.lower()
        assert _listening(port) == {"0100007F"}  # 127.0.0.1, and nothing else
        assert (tmp_path / "mlflow.db").exists()


def _browser() -> str:
    import shutil

    found = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    assert found, "a headless browser is needed: Debian's chromium (.ci/run installs it when missing)"
    return found


def test_the_ui_lists_a_search_in_a_real_browser(tmp_path):
    """`cnn-search ui` opened in headless chromium: the experiment's runs page renders the search and
    its trial runs; the screenshot is kept in .test-artifacts/ui_runs.png."""
    from pathlib import Path

    from .helpers import cnn_search, runs_of

    runs = tmp_path / "runs"
    out = cnn_search("run", "tiny", "--trials", "3", "--epochs", "1", "--runs-dir", str(runs), "--no-report")
    assert out.returncode == 0, out.stderr[-2000:]
    parents, children = runs_of(runs, "tiny-digits")
    experiment = parents[0].info.experiment_id
    artifacts = Path(__file__).resolve().parent.parent / ".test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with _ui(runs) as (port, _):
        url = f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs"
        common = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000"]
        common += ["--virtual-time-budget=30000", f"--user-data-dir={tmp_path / 'profile'}"]
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
        shot = artifacts / "ui_runs.png"
        subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, timeout=180)
    import re

    text = " ".join(re.sub(r"<[^>]+>", " ", dom).split())
    assert "tiny-digits" in text  # the search's parent run
    assert f"{len(children) + 1} matching runs" in text  # and its trial runs, nested under it
    assert shot.is_file() and shot.stat().st_size > 10_000


def _stat(pid: str) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, from /proc; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2])


def _processes() -> dict[int, tuple[str, int, int]]:
    found = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit() and (stat := _stat(pid)) is not None:
            found[int(pid)] = stat
    return found


def _group(pgid: int) -> list[int]:
    """The processes of group ``pgid`` (zombies included: `os.killpg(pgid, 0)` sees them too)."""
    return [pid for pid, (_, _, group) in _processes().items() if group == pgid]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_ui_stops_the_server_and_all_its_processes(tmp_path, signum):
    """SIGINT/SIGTERM to `cnn-search ui` (exit 130/143) take the MLflow server's whole process group
    with it: mlflow, uvicorn, its workers; the port is free again. The banner only comes once the
    server answers."""
    import threading

    port = _free_port()
    with open(tmp_path / "ui.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "search", "ui", "--runs-dir", str(tmp_path), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=ENV,
        )
    banner: list[str] = []
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:  # the pipe is drained to the end, so the server never blocks on it
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("MLflow UI on ") and not ready.is_set():
                banner.append(line)
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    pgid = None
    try:
        assert ready.wait(timeout=240), "".join(lines)[-2000:] + (tmp_path / "ui.log").read_text()[-2000:]
        assert banner[0].startswith(f"MLflow UI on http://127.0.0.1:{port} ")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:  # at once, no retry
            assert response.status == 200
        children = [pid for pid, (_, ppid, _) in _processes().items() if ppid == proc.pid]
        assert len(children) == 1, children
        pgid = children[0]
        assert _processes()[pgid][2] == pgid != os.getpgid(proc.pid)  # mlflow leads its own group
        assert len(_group(pgid)) >= 3, _group(pgid)  # mlflow, uvicorn, its workers...

        proc.send_signal(signum)
        assert proc.wait(timeout=30) == 128 + signum
        deadline = time.monotonic() + 15
        while (_listening(port) or _group(pgid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _listening(port) == set()
        assert _group(pgid) == [], {pid: _processes().get(pid) for pid in _group(pgid)}
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
        if pgid is not None and _group(pgid):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_a_port_in_use_is_an_error_before_mlflow_starts(tmp_path):
    from .helpers import cnn_search

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = cnn_search("ui", "--runs-dir", str(tmp_path), "--port", str(port), timeout=60)
    assert out.returncode != 0
    assert out.stderr == f"error: 127.0.0.1:{port} is already in use; choose another port with --port N\n"
    assert "MLflow UI on" not in out.stdout
    assert not (tmp_path / "mlflow.db").exists()  # mlflow never ran on the store


def test_a_store_that_is_not_one_is_said_before_the_server_starts(tmp_path):
    from .helpers import cnn_search

    store = tmp_path / "mlflow.db"
    store.write_bytes(b"not a database at all" * 100)
    out = cnn_search("ui", "--runs-dir", str(tmp_path), "--port", str(_free_port()), timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"MLflow store {store}: not an SQLite database" in " ".join(out.stderr.split())
    assert store.read_bytes() == b"not a database at all" * 100
