"""Re-checking the top candidates (issue 17), measured: does the best mean of fresh runs test better than the
best single run, and what does it cost?

For each task of benchmarks/suite.py (its cached ``.npz`` files) and each search seed, one search in a fresh
process: ``cnn-search run vgg --data TASK.npz --trials T --epochs E --seed S --workers 1 --no-report
--recheck K``. The search is the same with or without re-checking (the re-check runs after the last trial),
so one search gives both figures: the re-checked champion's test accuracy (``test_accuracy``) and the best
single run's (``single_run_test_accuracy``, evaluated beside it, never used to choose). The cost is the
re-check's own wall time (``recheck_seconds``) against the search's without it.

    python benchmarks/recheck.py [--tasks fewshot,digits] [--seeds 5] [--trials 10] [--epochs 5] [--recheck 3]
        [--within 2]

With ``--refit --recheck 0``: the champion refitted on training + validation images (``test_accuracy``)
against the same champion as searched (``unrefitted_test_accuracy``), both from one search; the lines then
read "as searched -> refitted".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _tasks import default_cache, write_task  # noqa: E402

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def one(npz: Path, runs: Path, seed: int, args: argparse.Namespace) -> dict[str, float]:
    name = f"{npz.stem}-seed{seed}"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "search", "run", "vgg", "--data", str(npz), "--trials", str(args.trials),
         "--epochs", str(args.epochs), "--seed", str(seed), "--workers", "1", "--runs-dir", str(runs),
         "--no-report", "--name", name, "--recheck", str(args.recheck), "--recheck-runs", str(args.runs),
         "--recheck-within", str(args.within),
         *(["--refit"] if args.refit else [])],
        capture_output=True, text=True, env=ENV,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{name}: exit {done.returncode}: {done.stderr[-1500:]}")
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    parent = client.search_runs([experiment.experiment_id], "tags.role = 'search'", max_results=1)[0]
    metrics, tags = parent.data.metrics, parent.data.tags
    recheck = float(tags.get("recheck_seconds", 0.0))
    summary = json.loads(tags.get("recheck") or "{}")
    single_best = max(summary, key=lambda t: (summary[t]["search"], -int(t))) if summary else None
    if args.refit:  # the refitted model against the same champion as searched
        return {
            "rechecked": metrics["test_accuracy"],
            "single": metrics["unrefitted_test_accuracy"],
            "search_seconds": wall,
            "recheck_seconds": 0.0,
            "changed": 0.0,
            "candidates": 0.0,
        }
    return {
        "rechecked": metrics["test_accuracy"],
        "single": metrics.get("single_run_test_accuracy", metrics["test_accuracy"]),
        "search_seconds": wall - recheck,
        "recheck_seconds": recheck,
        "changed": float(bool(summary) and tags.get("best_trial") != single_best),
        "candidates": float(len(summary)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="fewshot,digits")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--recheck", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--within",
        type=float,
        default=2.0,
        help="--recheck-within: standard errors (inf: the top K whatever their gap)",
    )
    parser.add_argument("--refit", action="store_true", help="measure --refit instead: refitted against as searched")
    parser.add_argument("--cache", type=Path, default=default_cache())
    args = parser.parse_args()
    print(
        f"vgg, {args.trials} trials x {args.epochs} epochs, --recheck {args.recheck} --recheck-runs {args.runs} "
        f"--recheck-within {args.within:g}"
    )
    for task in args.tasks.split(","):
        npz = write_task(task, args.cache, seed=0, quick=False)
        runs = Path(tempfile.mkdtemp(prefix=f"recheck-{task}-"))
        rows = []
        for seed in range(args.seeds):
            row = one(npz, runs, seed, args)
            rows.append(row)
            print(
                f"{task} seed {seed}: test {row['single']:.4f} {'as searched' if args.refit else 'best single run'} -> "
                f"{row['rechecked']:.4f} {'refitted' if args.refit else 're-checked'}"
                f"{' (another champion)' if row['changed'] else ''}; {row['candidates']:.0f} candidates re-checked; "
                f"search {row['search_seconds']:.0f} s + "
                f"re-check {row['recheck_seconds']:.0f} s",
                flush=True,
            )
        n = len(rows)
        single = sum(r["single"] for r in rows) / n
        rechecked = sum(r["rechecked"] for r in rows) / n
        better = sum(r["rechecked"] > r["single"] for r in rows)
        worse = sum(r["rechecked"] < r["single"] for r in rows)
        extra = sum(r["recheck_seconds"] for r in rows) / sum(r["search_seconds"] for r in rows)
        print(
            f"== {task}: mean test {single:.4f} {'as searched' if args.refit else 'best single run'}, {rechecked:.4f} "
            f"{'refitted' if args.refit else 're-checked'} "
            f"({100 * (rechecked - single):+.2f} points; better {better}, worse {worse}, same {n - better - worse} "
            f"of {n}); re-checking costs {100 * extra:.0f}% more wall time",
            flush=True,
        )


if __name__ == "__main__":
    main()
