"""Servers that are down, hang or are the wrong store (issue 31, items 8, 9 and 12): real processes against
real loopback sockets: a port nobody listens on (bound, read, closed), a socket that listens and never
answers, a tiny HTTP server that answers MLflow's ``/health`` and hangs every API call."""

from __future__ import annotations

import http.server
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from .helpers import ENV, cnn_search, faults


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent() -> Iterator[str]:
    """A loopback address that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def hanging() -> Iterator[str]:
    """An MLflow-like server on loopback: ``/health`` answers OK, every API call hangs."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/health"):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")
                return
            time.sleep(600)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _one_line(out: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert out.returncode == 1, out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-2000:]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_a_tracking_server_that_is_down_is_refused_in_one_line_by_every_command(tmp_path):
    uri = f"http://127.0.0.1:{_dead_port()}"
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs), "--tracking-uri", uri]
    for command in (
        ["run", "tiny", "--trials", "1", "--epochs", "1"],
        ["worker", "tiny-digits"],
        ["searches"],
        ["trials", "tiny-digits"],
        ["compare", "tiny-digits"],
        ["export", "tiny-digits"],
        ["report", "tiny-digits"],
    ):
        started = time.monotonic()
        out = cnn_search(*command, *common, timeout=60)
        _one_line(out, uri, "connection refused", "--tracking-uri")
        assert time.monotonic() - started < 20, command
    assert not runs.exists()  # refused before anything was written


def test_a_server_that_never_answers_is_refused_within_the_timeout(silent, tmp_path):
    started = time.monotonic()
    out = cnn_search("searches", "--tracking-uri", silent, "--runs-dir", str(tmp_path), timeout=60)
    _one_line(out, silent, "no answer in 3 s")
    assert time.monotonic() - started < 15


def test_sigterm_while_the_tracking_server_hangs_exits_within_10_s(hanging, tmp_path):
    """The server answers the check, then hangs: the trial trains, its record waits on MLflow; SIGTERM then
    (and at the check, against a silent one) ends the process within 10 s in one line, no traceback."""
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "search", "run", "tiny", "--trials", "2", "--epochs", "1", "--runs-dir", str(runs)]
    proc = subprocess.Popen(
        [*cmd, "--tracking-uri", hanging], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not any("epoch 1/1" in line for line in lines):  # trained: now its record waits on the server
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    proc.wait(timeout=60)
    assert time.monotonic() - sent < 10, "".join(lines)[-3000:]
    reader.join(timeout=5)
    said = "".join(lines)
    assert proc.returncode == 143 and "Traceback" not in said, said[-3000:]
    assert "interrupted (SIGTERM)" in said


def test_sigterm_during_the_check_of_a_silent_server_exits_at_once(silent, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", "searches", "--tracking-uri", silent, "--runs-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    time.sleep(1.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10 and proc.returncode != 0
    assert "Traceback" not in err, err[-3000:]


def test_a_postgresql_that_is_down_or_without_its_driver_is_one_line(tmp_path):
    url = f"postgresql://postgres@127.0.0.1:{_dead_port()}/optuna"
    runs = tmp_path / "runs"
    for command in (["run", "tiny", "--trials", "1", "--epochs", "1"], ["trials", "tiny-digits"]):
        out = cnn_search(*command, "--storage", url, "--runs-dir", str(runs), timeout=60)
        _one_line(out, "--storage", "127.0.0.1", "cannot connect to the database")
    hidden = faults(HIDE_MODULES="psycopg,psycopg2")
    for option in ("--storage", "--tracking-uri"):
        out = cnn_search("run", "tiny", "--trials", "1", option, url, "--runs-dir", str(runs), env=hidden, timeout=60)
        _one_line(out, option, "driver psycopg is not installed", 'pip install "cnn-search[postgres]"')
    assert not runs.exists()


def test_a_storage_that_is_the_tracking_database_is_refused_before_anything_is_written(tmp_path):
    runs = tmp_path / "runs"
    (tmp_path / "elsewhere").mkdir()
    spellings = [f"sqlite:///{runs}/mlflow.db", f"sqlite:///{tmp_path}/elsewhere/../runs/./mlflow.db"]
    for storage in spellings:
        out = cnn_search("run", "tiny", "--trials", "1", "--storage", storage, "--runs-dir", str(runs), timeout=120)
        _one_line(out, "--storage", "the same database as the MLflow store", "optuna.db")
    out = cnn_search(  # relative, from the runs dir's parent
        "run", "tiny", "--trials", "1", "--storage", "sqlite:///runs/mlflow.db", "--runs-dir", "runs", cwd=tmp_path
    )
    _one_line(out, "the same database as the MLflow store")
    assert not runs.exists()
    from mlflow import MlflowClient  # an MLflow store, named as a storage where no tracking store says it

    other = tmp_path / "other"
    other.mkdir()
    MlflowClient(tracking_uri=f"sqlite:///{other / 'mlflow.db'}").search_experiments()
    before = (other / "mlflow.db").read_bytes()
    out = cnn_search("trials", "tiny-digits", "--storage", f"sqlite:///{other / 'mlflow.db'}", "--runs-dir", str(runs))
    _one_line(out, "an MLflow tracking store", "optuna.db")
    assert (other / "mlflow.db").read_bytes() == before


def test_a_search_not_found_suggests_the_options_of_another_store(tmp_path):
    out = cnn_search("trials", "tiny-digits", "--runs-dir", str(tmp_path / "runs"))
    line = _one_line(out, "no search named 'tiny-digits'", str(tmp_path / "runs"))
    assert "--storage or --tracking-uri" in line
    out = cnn_search("export", "tiny-digits", "--runs-dir", str(tmp_path / "runs"))
    _one_line(out, "no search named 'tiny-digits'", "--storage or --tracking-uri")
