"""Which process does what: ``host:pid`` names, and whether such a process is gone."""

from __future__ import annotations

import os
import socket


def worker_id() -> str:
    """This process as ``host:pid`` (recorded on the trials it runs and the MLflow runs it writes)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def dead_here(worker: str) -> bool:
    """True when ``worker`` (``host:pid``) is a process of this host that no longer runs; False for
    this process, another host's, or a name that is not ``host:pid``.

    >>> dead_here(worker_id())
    False
    """
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
