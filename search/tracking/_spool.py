"""What the worker processes of ``cnn-search run`` write into MLflow, handed to the process that runs them.

A worker started by ``cnn-search run`` never imports MLflow. Measured on a 2-core machine: importing
MLflow and opening the store is 1.8 s of CPU per process; in a worker it ran in a thread beside the
first trial, and both are Python-bound, so the first trial took 3.1-4.4 s instead of 1.3-1.5 s, in
every worker, while the supervising process (which starts MLflow anyway, for the search's run) slept.
So each worker writes what it would have written into MLflow as one JSON file in
``runs/spool/<search>/`` (written to a temporary name, then renamed: never half a file), and the
supervising process writes them into MLflow every half second and once more after its last worker
ended, in the order they were written:

* ``trial``: a finished (or killed) trial's child run, exactly what :meth:`Tracker.record_trial` takes;
* ``winner``: the search's winner, evaluated on the test split by the worker (which has Keras and
  the data loaded): its metrics and confusion matrix on the search's run, and its saved ``.keras``
  file registered as the search's model (:func:`search.tracking.register_keras_file`, no Keras
  needed), alias ``champion``.

A file is taken by renaming it (two processes never apply one file) and removed once applied. A
process killed in between leaves it taken: whoever drains next (the search run again, any process
that opens the search's MLflow run) takes it back once its taker is dead, and applies it again: a trial
whose run exists already is not written twice. A worker started by hand (``cnn-search worker``, on
another machine) writes into MLflow itself, as before.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.tracking._mlflow import Tracker

log = logging.getLogger("search")

_count = itertools.count()


def spool_dir(runs_dir: str | Path, name: str) -> Path:
    """Where the workers of search ``name`` leave their records."""
    return Path(runs_dir) / "spool" / name


def put(directory: Path, kind: str, record: dict[str, Any]) -> Path:
    """Write one record (``kind``: ``trial`` or ``winner``); the file appears whole or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{time.time_ns():020d}-{os.getpid()}-{next(_count):06d}"
    tmp = directory / f".{stem}.tmp"
    tmp.write_text(json.dumps({"kind": kind, **record}))
    final = directory / f"{stem}.json"
    os.replace(tmp, final)
    return final


class RelayTracker:
    """What a supervised worker's session records through: the spool, not MLflow (same methods as
    :class:`Tracker` for what a worker writes)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def record_trial(self, experiment_id: str, parent_run_id: str, number: int, **record: Any) -> str:
        put(self.directory, "trial", {"number": number, **record})
        return ""  # the run id exists once the supervisor has written it

    def log_winner(self, parent_run_id: str, name: str, record: dict[str, Any]) -> str:
        put(self.directory, "winner", record)
        return f"models:/{name}@champion"


def _taken_by_the_dead(path: Path) -> bool:
    import socket

    from search._process import dead_here

    return dead_here(f"{socket.gethostname()}:{path.name.rpartition('.taken-')[2]}")


def drain(
    tracker: Tracker,
    experiment_id: str,
    parent_run_id: str,
    directory: Path,
    *,
    name: str,
    on_winner: Callable[[dict[str, Any], str], None] | None = None,
) -> int:
    """Write every record waiting in ``directory`` into MLflow, oldest first; returns how many.
    ``on_winner(record, model_uri)`` is called once the winner is registered."""
    if not directory.is_dir():
        return 0
    waiting = [*directory.glob("*.json"), *(p for p in directory.glob("*.taken-*") if _taken_by_the_dead(p))]
    done = 0
    for path in sorted(waiting, key=lambda p: p.name):  # names begin with the time they were written
        taken = directory / f"{path.name.partition('.json')[0]}.json.taken-{os.getpid()}"
        try:
            os.replace(path, taken)
        except FileNotFoundError:  # another process took it first
            continue
        record = json.loads(taken.read_text())
        kind = record.pop("kind")
        if kind == "trial":
            number = int(record.pop("number"))
            if tracker.trial_run(experiment_id, parent_run_id, number) is None or record["state"] == "killed":
                tracker.record_trial(experiment_id, parent_run_id, number, **record)
        elif kind == "winner":
            uri = tracker.log_winner(parent_run_id, name, record)
            if on_winner is not None:
                on_winner(record, uri)
        else:
            log.warning("%s: unknown record kind %r, left out of MLflow", taken, kind)
        taken.unlink()
        done += 1
    return done
