"""`cnn-search ui`: the MLflow UI on the search store, on 127.0.0.1 only (RELIABILITY.md row 13)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

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


def test_ui_serves_the_store_on_loopback_only(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", "ui", "--runs-dir", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        body = ""
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    body = response.read().decode()
                    break
            except OSError:
                time.sleep(1)
        assert "<html" in body.lower()
        assert _listening(port) == {"0100007F"}  # 127.0.0.1, and nothing else
        assert (tmp_path / "mlflow.db").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


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
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", "ui", "--runs-dir", str(runs), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
        start_new_session=True,
    )
    artifacts = Path(__file__).resolve().parent.parent / ".test-artifacts"
    artifacts.mkdir(exist_ok=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
                break
            except OSError:
                time.sleep(1)
        url = f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs"
        common = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000"]
        common += ["--virtual-time-budget=30000", f"--user-data-dir={tmp_path / 'profile'}"]
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
        shot = artifacts / "ui_runs.png"
        subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, timeout=180)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    import re

    text = " ".join(re.sub(r"<[^>]+>", " ", dom).split())
    assert "tiny-digits" in text  # the search's parent run
    assert f"{len(children) + 1} matching runs" in text  # and its trial runs, nested under it
    assert shot.is_file() and shot.stat().st_size > 10_000
