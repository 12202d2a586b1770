"""Worker processes: ``cnn-search run --workers N`` supervises them; ``cnn-search worker NAME`` is one.

A worker is a process of its own that loads the study, the space and the data once (from what
``cnn-search run`` recorded in the study), attaches to the search's MLflow parent run, and runs
Optuna trials until the target is met, the deadline passes, or it is recycled (after
``--recycle-after`` trials or above ``--max-worker-rss`` MiB: a fresh process returns the memory
TensorFlow keeps). Workers share the Optuna storage (the default journal file locally, PostgreSQL
across machines) and never end the parent run; the supervisor does, after evaluating and registering
the winner.

The supervisor starts ``N`` workers (default: one per visible GPU, each pinned with
``CUDA_VISIBLE_DEVICES`` and memory growth on; else one), starts a new one whenever one exits while
trials remain, stops after repeated crashes without progress, and on SIGINT/SIGTERM passes SIGTERM
to every worker (each records its running trial as killed) before exiting 130/143.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search.runtime._session import (
    SearchInterrupted,
    Session,
    Signals,
    log,
)
from search.runtime._zygote import WorkerProcess

if TYPE_CHECKING:
    from search.engines import SearchOptions


def visible_gpus() -> list[str]:
    """GPU ids this machine shows (``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``); no TensorFlow import."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def worker_env(index: int, gpus: list[str], workers: int = 1) -> dict[str, str]:
    """The environment of worker ``index``: pinned to one GPU (round robin), taking GPU memory as it needs it
    (the backend's setting, :func:`search._backend.gpu_env`); on a CPU, the cores shared out between the
    ``workers`` (TensorFlow's intra-op threads), unless set."""
    from search._backend import gpu_env, name

    env = dict(os.environ)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
        env.update(gpu_env(name()))
    elif workers > 1:
        env.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    return env


def watch(
    start: Callable[[int], WorkerProcess],
    *,
    workers: int,
    signals: Signals,
    restart_after_exit: Callable[[], bool],
    on_tick: Callable[[], None] = lambda: None,
) -> None:
    """Start ``workers`` processes and look after them until all have exited: a worker that exits 0
    is started again while ``restart_after_exit()``; one that crashes is started again (more than 3
    crashes a worker stop the search); exit code 1 (it refused or failed the search) stops it. On a
    signal or an error every worker gets SIGTERM (each records its running trial as killed)."""
    procs = {i: start(i) for i in range(workers)}
    crashes = 0
    ticked = time.monotonic()
    try:
        while procs:
            if signals.pending is not None:
                raise SearchInterrupted(signals.pending)
            time.sleep(0.1)  # an ended worker is seen at once (the search may be over); progress every 0.5 s
            if time.monotonic() - ticked >= 0.5:
                ticked = time.monotonic()
                on_tick()
            for index, proc in list(procs.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                del procs[index]
                if rc == 1:  # its message is on stderr
                    raise SearchError(f"worker {index} stopped the search (exit 1); see its message above")
                if rc != 0:
                    crashes += 1
                    log.warning("worker %d ended with %s; starting it again", index, _exit_text(rc))
                    if crashes > 3 * workers:
                        raise SearchError(f"workers crashed {crashes} times; the last ended with {_exit_text(rc)}")
                    procs[index] = start(index)
                elif restart_after_exit():
                    procs[index] = start(index)
        on_tick()
    except BaseException:
        _stop(procs, signal.SIGTERM)
        raise


def _exit_text(rc: int) -> str:
    return f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit code {rc}"


def _stop(procs: dict[int, WorkerProcess], sig: int, wait: float = 60) -> None:
    """Pass ``sig`` to every worker and wait for them (SIGKILL after ``wait`` seconds)."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(sig)
    limit = time.time() + wait
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, limit - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


#: Packages Keras imports at start-up, each inside ``try: import X / except ImportError``, for features
#: a worker never uses: scikit-learn (``keras.wrappers``), pandas (DataFrames as inputs), IPython
#: (``keras.saving.KerasFileEditor`` in notebooks), matplotlib (``keras.visualization``). Measured with
#: ``python -X importtime -c "import keras"``: 1.45 s, 0.43 s, 0.40 s and 0.32 s of a 7 s import.
KERAS_EXTRAS = ("sklearn", "pandas", "IPython", "matplotlib")


def import_keras_lean() -> None:
    """Import Keras (and TensorFlow) with :data:`KERAS_EXTRAS` hidden, so that Keras finds them
    missing and carries on without them, as it does where they are not installed. Each worker process
    pays its import on the search's start-up path. Importing them works as usual afterwards (the
    report's pictures import matplotlib); one already imported is left alone."""
    if "keras" in sys.modules:
        return
    hidden = [name for name in KERAS_EXTRAS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # "import name" raises ImportError
    try:
        import keras  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def worker_session(
    name: str, engine: str, record: Mapping[str, Any], options: SearchOptions, *, relay: Path | None = None
) -> Session:
    """A worker's :class:`Session` of search ``name``: its space and data from what the search recorded (the data
    checked by its fingerprint), the rest as ``options`` (the search's, read back from the record:
    :meth:`~search.engines.SearchOptions.from_record`); the search's parent run is left to the process that
    started it. ``relay``: MLflow records go to that spool instead (:mod:`search.tracking._spool`)."""
    from search.space import Space
    from search.tracking import default_tracking_uri

    return Session.from_options(
        options,
        name=name,
        engine=engine,
        space=Space.from_dict(record["space_definition"]),
        data=_recorded_data(record, name),
        tracking_uri=options.tracking_uri or default_tracking_uri(Path(options.runs_dir)),
        owns_parent=False,
        relay=relay,
    )


def _recorded_data(record: Mapping[str, Any], name: str) -> Any:
    """The search's data as ``cnn-search run`` recorded it (source, split seed), checked by its fingerprint."""
    from search.data import reload_recorded

    seed, expected = int(record.get("data_seed", 0)), record["data_fingerprint"]
    fix = "A worker on another machine needs the same data at the same path."
    return reload_recorded(record["data"], seed, expected, search=name, fix=fix)


def wait_for_parent_run(read: Callable[[], dict[str, Any]], seconds: float) -> str:
    """The search's MLflow parent run id, once the supervisor has recorded it."""
    limit = time.time() + seconds
    while True:
        parent = read().get("mlflow_parent_run_id")
        if parent:
            return str(parent)
        if time.time() > limit:
            raise SearchError(f"the search's MLflow run was not recorded within {seconds:.0f} s")
        time.sleep(0.2)


# -- KerasTuner: its own chief/worker mode on loopback ----------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
