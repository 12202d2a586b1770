"""Several goals, measured: what measuring costs, a latency constraint against the unconstrained champion,
and the front of a multi-objective search against a random search's.

For each task of benchmarks/suite.py (its cached ``.npz`` files), each search in a fresh process
(``cnn-search run vgg --data TASK.npz --trials T --epochs E --seed 0 --no-report``, ``--workers 1`` so
that the searches compared repeat):

1. ``cost``: seconds to write and measure ``vgg``'s start points on each runtime (TFLite, ONNX, Keras),
   as every trial of a search with a measured goal or constraint pays them.
2. ``constraint``: the README's search; its champion exported to TFLite and its latency measured afresh
   (L); the same search with ``--max-latency-ms L/2``; that champion exported and measured afresh. Target
   (issue 16): it loses at most 1 point of test accuracy, and its exported file meets L/2.
3. ``front``: ``--goals val_accuracy,params`` with TPE (the default) against ``--sampler random``, same
   trials: the hypervolume of each front (accuracy up, params down; reference point accuracy 0 and the
   space's ``max_params``; higher is better). Target: TPE's front dominates or equals random's.

    python benchmarks/goals.py [--tasks digits,fewshot] [--trials 10] [--epochs 3] [--only cost,constraint,front]
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
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _tasks import TASKS, default_cache, write_task  # noqa: E402

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, env=ENV)


def search(npz: Path, runs: Path, name: str, trials: int, epochs: int, *extra: str) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    done = cli(
        "run", "vgg", "--data", str(npz), "--trials", str(trials), "--epochs", str(epochs), "--seed", "0",
        "--workers", "1", "--runs-dir", str(runs), "--no-report", "--name", name, *extra,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{name}: exit {done.returncode}: {done.stderr[-1500:]}")
    rows = json.loads(cli("trials", name, "--runs-dir", str(runs), "--format", "json").stdout)
    return wall, rows


def champion(runs: Path, name: str, npz: Path) -> dict[str, Any]:
    """The search's registered champion: test accuracy (MLflow), its TFLite file's latency measured afresh."""
    from search.export._runtimes import latency_ms, load_runner

    out = runs / "exports" / name
    done = cli("export", name, "--runs-dir", str(runs), "--format", "tflite", "--out", str(out))
    if done.returncode != 0:
        raise RuntimeError(f"export {name}: {done.stderr[-1500:]}")
    card = json.loads((out / "model_card.json").read_text())
    row = json.loads(cli("compare", name, "--runs-dir", str(runs), "--format", "json").stdout)[0]
    import numpy as np

    image = np.load(npz)["x_test"][:1].astype("float32")
    latency = latency_ms(load_runner("tflite", out / "model.tflite"), image)
    return {"trial": card["trial"], "test_accuracy": row["test_accuracy"], "latency_ms": latency}


def hypervolume(points: list[tuple[float, float]], max_params: float) -> float:
    """Area dominated by ``points`` (accuracy, params), up to accuracy 0 and ``max_params``, normalised to 1."""
    pts = sorted({(a, p / max_params) for a, p in points if p <= max_params}, key=lambda t: t[1])
    area, best = 0.0, 0.0
    for i, (acc, size) in enumerate(pts):  # sweep by size: each step adds the accuracy gained so far
        best = max(best, acc)
        right = pts[i + 1][1] if i + 1 < len(pts) else 1.0
        area += best * (right - size)
    return area


def cost(npz: Path) -> list[str]:
    from search import FixedParams, build_model, load_dataset, load_space
    from search.training._measure import measure

    data, space = load_dataset(str(npz)), load_space("vgg")
    lines = []
    for i, point in enumerate(space.start):
        arch = space.sample(FixedParams(dict(point)))
        model = build_model(arch, data.input_shape, data.num_classes, input_stats=data.pixel_stats)
        image = data.arrays("validation")[0][:1]
        parts = []
        for runtime in ("tflite", "onnx", "keras"):
            t0 = time.perf_counter()
            found = measure(model, [f"latency_ms:{runtime}", f"model_bytes:{runtime}"], image)
            parts.append(
                f"{runtime} {time.perf_counter() - t0:.2f} s ({found[f'latency_ms:{runtime}']:.3f} ms, "
                f"{found[f'model_bytes:{runtime}'] / 1024:.0f} KiB)"
            )
        lines.append(f"  start point {i} ({model.count_params():,} params): " + "; ".join(parts))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--only", default="cost,constraint,front")
    parser.add_argument("--cache", type=Path, default=default_cache())
    args = parser.parse_args()
    parts = set(args.only.split(","))
    from search import load_space

    max_params = float(load_space("vgg").budget["max_params"])
    for name in args.tasks.split(","):
        npz = write_task(name, args.cache, seed=0, quick=False)
        print(f"== {name} ({args.trials} trials x {args.epochs} epochs)", flush=True)
        if "cost" in parts:
            print("measuring one trial's model, each runtime (write + 3 warm-ups + 30 runs):")
            print("\n".join(cost(npz)), flush=True)
        runs = Path(tempfile.mkdtemp(prefix=f"goals-{name}-"))
        if "constraint" in parts:
            wall_a, _ = search(npz, runs, "free", args.trials, args.epochs)
            free = champion(runs, "free", npz)
            limit = free["latency_ms"] / 2
            try:
                wall_b, rows = search(npz, runs, "capped", args.trials, args.epochs, "--max-latency-ms", f"{limit:.6g}")
            except RuntimeError as exc:  # no trial met the limit: said, and the target fails
                print(f"unconstrained: test {free['test_accuracy']:.4f}, TFLite {free['latency_ms']:.4f} ms afresh")
                print(f"--max-latency-ms {limit:.4g}: FAILS, no trial completed ({str(exc).splitlines()[-1][:200]})")
                rows = []
            if not rows:
                continue
            capped = champion(runs, "capped", npz)
            refused = sum(r["state"] == "infeasible" for r in rows)
            lost = 100 * (free["test_accuracy"] - capped["test_accuracy"])
            print(
                f"unconstrained: test {free['test_accuracy']:.4f}, TFLite {free['latency_ms']:.4f} ms afresh, "
                f"{wall_a:.1f} s\n"
                f"--max-latency-ms {limit:.4g}: test {capped['test_accuracy']:.4f} ({lost:+.1f} points lost), "
                f"TFLite {capped['latency_ms']:.4f} ms afresh ({'meets' if capped['latency_ms'] <= limit else 'OVER'} "
                f"the limit), {refused} of {len(rows)} trials refused before training, {wall_b:.1f} s",
                flush=True,
            )
        if "front" in parts:
            out = {}
            for sampler in ("tpe", "random"):
                wall, rows = search(
                    npz, runs, f"front-{sampler}", args.trials, args.epochs, "--goals", "val_accuracy,params",
                    "--sampler", sampler,
                )  # fmt: skip
                points = [(r["val_accuracy"], r["params"]) for r in rows if r["state"] == "complete"]
                front = [r["trial"] for r in rows if r.get("pareto_front")]
                out[sampler] = hypervolume(points, max_params)
                print(f"{sampler:>6}: front {sorted(front)}, hypervolume {out[sampler]:.4f}, {wall:.1f} s", flush=True)
            verdict = "holds" if out["tpe"] >= out["random"] else "FAILS"
            print(f"front target (TPE >= random): {verdict}", flush=True)


if __name__ == "__main__":
    main()
