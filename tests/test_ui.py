"""`cnn-search ui`: the MLflow UI on the search store, on 127.0.0.1 only (RELIABILITY.md row 13)."""

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
