"""The same small search on every Keras backend this machine has, on its GPU(s) and on the CPU for scale.

For each backend that imports here (TensorFlow, JAX, PyTorch; ``--backends`` to choose), one search in a fresh
process, ``KERAS_BACKEND=<backend> cnn-search run SPACE --data DATA --trials T --epochs E --seed 0 --workers 1``,
on the GPUs the backend sees; then the first backend once more with ``CUDA_VISIBLE_DEVICES=""`` (the CPU).
Printed side by side: the device each ran on (as the backend reports it), trials per hour, seconds per epoch
(training time over epochs trained, every trial), the champion's test accuracy, the search's wall time.

    python benchmarks/gpu.py [--space vgg] [--data digits] [--trials 6] [--epochs 3] [--backends jax,torch]
        [--mixed-precision] [--no-cpu] [--json FILE]

On a GPU machine without network and without TensorFlow (JAX and/or PyTorch with CUDA installed): carry the
wheels ``benchmarks/gpu_wheels.sh`` downloads on a connected machine (about 40 MiB: cnn-search and the small
packages its search path needs, TensorFlow left out), then ``pip install --no-index --no-deps wheels/*.whl`` there
and run this script. No figure is written when no GPU is seen: the CPU line is then the only one and says so.
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

PROBE = {  # prints the devices the backend computes on, in its own words; exits 1 when it does not import
    "tensorflow": "import tensorflow as tf; g = tf.config.list_physical_devices('GPU'); "
    "print(','.join(d.name for d in g) or 'cpu')",
    "jax": "import jax; print(','.join(str(d) for d in jax.devices()))",
    "torch": "import torch; n = torch.cuda.device_count(); "
    "print(','.join('cuda:' + torch.cuda.get_device_name(i) for i in range(n)) "
    "or 'cpu')",
}


def probe(backend: str, env: dict[str, str]) -> str | None:
    """The devices ``backend`` sees in a fresh process with ``env``, or None when it does not import."""
    out = subprocess.run([sys.executable, "-c", PROBE[backend]], capture_output=True, text=True, env=env, timeout=300)
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else None


def one(backend: str, env: dict[str, str], runs: Path, args: argparse.Namespace, label: str) -> dict[str, object]:
    """One search on ``backend`` with ``env``; its figures from its MLflow record."""
    name = f"gpu-{label}"
    command = [
        sys.executable, "-m", "search", "run", args.space, "--data", args.data, "--trials", str(args.trials),
        "--epochs", str(args.epochs), "--seed", "0", "--workers", "1", "--no-report", "--runs-dir", str(runs),
        "--name", name, *(["--mixed-precision"] if args.mixed_precision else []),
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**env, "KERAS_BACKEND": backend})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"label": label, "backend": backend, "error": done.stderr.strip().splitlines()[-1:]}
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    found = client.search_runs([experiment.experiment_id], max_results=1000)
    parent = next(r for r in found if r.data.tags.get("role") == "search")
    trials = [r for r in found if "trial" in r.data.tags]
    seconds = sum(r.data.metrics.get("train_seconds", 0.0) for r in trials)
    epochs = sum(r.data.metrics.get("epochs_run", 0.0) for r in trials)
    return {
        "label": label,
        "backend": parent.data.tags.get("backend", backend),
        "trials": len(trials),
        "trials_per_hour": len(trials) / wall * 3600,
        "seconds_per_epoch": seconds / epochs if epochs else None,
        "test_accuracy": parent.data.metrics.get("test_accuracy"),
        "wall_seconds": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="vgg")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU line")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    cpu_env = {**env, "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    devices = {b: probe(b, env) for b in args.backends.split(",") if b in PROBE}
    available = {b: d for b, d in devices.items() if d is not None}
    for b, d in devices.items():
        print(f"{b}: {'not importable here' if d is None else d}", flush=True)
    if not available:
        raise SystemExit("no Keras backend imports here; expected one of tensorflow, jax, torch")
    runs = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    rows = []
    for backend, device in available.items():
        rows.append(one(backend, env, runs, args, backend) | {"device": device})
        print(rows[-1], flush=True)
    if not args.no_cpu:
        first = next(iter(available))
        rows.append(one(first, cpu_env, runs, args, f"{first}-cpu") | {"device": probe(first, cpu_env) or "cpu"})
        print(rows[-1], flush=True)
    if not any("gpu" in str(r.get("device", "")).lower() or "cuda" in str(r.get("device", "")).lower() for r in rows):
        print("no GPU seen by any backend: these are CPU figures only", flush=True)
    print(f"\n{args.space} on {args.data}, {args.trials} trials x {args.epochs} epochs, seed 0, one worker")
    print(f"{'run':<16} {'device':<28} {'trials/h':>9} {'s/epoch':>8} {'test acc':>9} {'wall s':>7}")
    for r in rows:
        if "error" in r:
            print(f"{r['label']:<16} failed: {r['error']}")
            continue
        spe = f"{r['seconds_per_epoch']:.2f}" if r["seconds_per_epoch"] is not None else "-"
        acc = f"{r['test_accuracy']:.4f}" if r["test_accuracy"] is not None else "-"
        print(
            f"{r['label']:<16} {str(r['device'])[:28]:<28} {r['trials_per_hour']:>9.0f} {spe:>8} {acc:>9} "
            f"{r['wall_seconds']:>7.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
