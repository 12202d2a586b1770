"""Worker memory and throughput (issue 7 targets: <= 2 MB growth per trial; 2 workers >= 1.7x the
trials per hour of 1 on this 2-core machine).

1. Memory: 30 trials of ``tiny`` in one worker process without recycling, then with
   ``--recycle-after 10``. Each trial records the worker's resident memory after it
   (``worker_rss_mb``); printed: first, last, peak and growth per trial (least squares over trials
   5..N, after TensorFlow's own warm-up).
2. Throughput: the same 16 trials (``tiny``, 3 epochs, pruner off) with 1 worker in the ``run``
   process, 1 supervised worker process, and 2 worker processes; trials per hour measured from the
   first trial's start to the last trial's end (start-up excluded), and the whole command's wall time.
3. Start: the README's search (``vgg`` on ``digits``, 10 trials x 5 epochs, seed 0, no pictures) with
   its 2 workers forked from the forkserver that imported Keras once (the default,
   search/runtime/_zygote.py) and as fresh interpreters (``CNN_SEARCH_WORKER_START=exec``), taking
   turns, ``--start-rounds`` times each; the whole command's wall time.

    python benchmarks/workers.py [--memory-trials 30] [--throughput-trials 16] [--start-rounds 4]
                                 [--only memory,throughput,start]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _run(runs: Path, *args: str, space: str = "tiny", env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "search", "run", space, "--runs-dir", str(runs), "--seed", "0", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    return time.perf_counter() - t0


def _trials(runs: Path) -> list:
    import optuna

    from search.runtime._storage import default_storage_url, get_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="tiny-digits", storage=get_storage(default_storage_url(runs))).trials


def _slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def memory(trials: int) -> None:
    print(f"memory: {trials} trials of tiny (2 epochs, pruner off) in one worker process")
    print(f"{'mode':<24} {'first MiB':>10} {'last MiB':>9} {'peak MiB':>9} {'MB/trial':>9} {'processes':>10}")
    for label, extra in (
        ("no recycling", ["--recycle-after", str(trials + 1)]),
        ("--recycle-after 10", ["--recycle-after", "10"]),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            runs = Path(tmp)
            _run(runs, "--trials", str(trials), "--epochs", "2", "--pruner", "none", *extra)
            done = sorted(_trials(runs), key=lambda t: t.number)
            rss = [float(t.user_attrs["worker_rss_mb"]) for t in done]
            xs = [float(i) for i in range(5, len(rss))]
            growth = _slope(xs, rss[5:]) * 1.048576  # MiB -> MB
            workers = len({t.user_attrs["worker"] for t in done})
            print(f"{label:<24} {rss[0]:>10.0f} {rss[-1]:>9.0f} {max(rss):>9.0f} {growth:>9.2f} {workers:>10}")


def throughput(trials: int) -> None:
    print(f"\nthroughput: {trials} trials of tiny (3 epochs, pruner off)")
    print(f"{'mode':<28} {'wall s':>7} {'trial span s':>13} {'trials/hour':>12} {'vs 1':>6}")
    base = None
    modes = (
        ("1 worker (in the run process)", []),
        ("1 worker process", ["--workers", "1", "--recycle-after", "1000"]),
        ("2 worker processes", ["--workers", "2"]),
    )
    for label, extra in modes:
        with tempfile.TemporaryDirectory() as tmp:
            runs = Path(tmp)
            wall = _run(runs, "--trials", str(trials), "--epochs", "3", "--pruner", "none", *extra)
            done = _trials(runs)
            span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
            per_hour = len(done) / span * 3600
            base = base or per_hour
            print(f"{label:<28} {wall:>7.1f} {span:>13.1f} {per_hour:>12.0f} {per_hour / base:>5.2f}x")


def start(rounds: int) -> None:
    print(f"\nstart: vgg on digits, 10 trials x 5 epochs, 2 workers; {rounds} rounds, taking turns")
    walls: dict[str, list[float]] = {"fork": [], "exec": []}
    for _ in range(rounds):
        for mode, times in walls.items():
            with tempfile.TemporaryDirectory() as tmp:
                args = ("--data", "digits", "--trials", "10", "--epochs", "5", "--workers", "2", "--no-report")
                times.append(_run(Path(tmp), *args, space="vgg", env={"CNN_SEARCH_WORKER_START": mode}))
    for mode, label in (("fork", "forked from the forkserver"), ("exec", "fresh interpreters")):
        times = walls[mode]
        shown = " ".join(f"{t:.1f}" for t in times)
        print(f"  {label:<28} mean {sum(times) / len(times):5.1f} s  ({shown})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory-trials", type=int, default=30)
    parser.add_argument("--throughput-trials", type=int, default=16)
    parser.add_argument("--start-rounds", type=int, default=4)
    parser.add_argument("--only", default="memory,throughput,start")
    args = parser.parse_args()
    parts = args.only.split(",")
    if "memory" in parts:
        memory(args.memory_trials)
    if "throughput" in parts:
        throughput(args.throughput_trials)
    if "start" in parts:
        start(args.start_rounds)


if __name__ == "__main__":
    main()
