"""How the images reach ``fit``, measured: ``tf.data`` on TensorFlow against NumPy arrays and a ``PyDataset`` of
NumPy batches, on TensorFlow and on JAX, for the same trial (issue 18).

For each (backend, feed) pair, a fresh process trains the same architecture (the space's first start point, else
its seed-0 sample) with the same seed on the same data, ``--repeats`` times (the first pays the tracing), through
the Objective with ``CNN_SEARCH_FEED`` set (search/training/_objective.py). Printed side by side: training seconds
of each repeat and the validation accuracy.

    python benchmarks/data_paths.py [--data digits,shapes] [--space vgg] [--epochs 5] [--repeats 2]
        [--backends tensorflow,jax]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

FEEDS = {
    "tensorflow": ("tf.data", "numpy", "pydataset"),
    "jax": ("numpy", "pydataset"),
    "torch": ("numpy", "pydataset"),
}

CHILD = """
import json, sys
from search import FixedParams, RandomParams, load_dataset, load_space
from search.training import Objective
space = load_space(sys.argv[1]); data = load_dataset(sys.argv[2], seed=0)
source = FixedParams(dict(space.start[0])) if space.start else RandomParams(seed=0)
arch = space.sample(source)
rows = []
for _ in range(int(sys.argv[4])):
    r = Objective(space, data, epochs=int(sys.argv[3]), seed=0)(arch, lambda e, v: False, trial_number=0)
    rows.append({"seconds": r.train_seconds, "value": r.value, "state": r.state})
print("ROWS " + json.dumps({"arch": arch.summary(data.num_classes), "rows": rows}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="digits,shapes")
    parser.add_argument("--space", default="vgg")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backends", default="tensorflow,jax")
    args = parser.parse_args()
    print(f"{args.space}, {args.epochs} epochs, seed 0, {args.repeats} trainings per process (the first traces)")
    for data in args.data.split(","):
        print(f"\n{data}")
        heads = " ".join(f"{'train s #' + str(i + 1):>11}" for i in range(args.repeats))
        print(f"{'backend':<11} {'feed':<10} {heads}  val acc")
        for backend in args.backends.split(","):
            for feed in FEEDS[backend]:
                env = {**os.environ, "KERAS_BACKEND": backend, "CNN_SEARCH_FEED": feed, "TF_CPP_MIN_LOG_LEVEL": "3"}
                command = [sys.executable, "-c", CHILD, args.space, data, str(args.epochs), str(args.repeats)]
                out = subprocess.run(command, capture_output=True, text=True, env=env)
                line = next((x for x in out.stdout.splitlines() if x.startswith("ROWS ")), None)
                if out.returncode != 0 or line is None:
                    print(f"{backend:<11} {feed:<10} failed: {out.stderr.strip().splitlines()[-1:]}")
                    continue
                rows = json.loads(line[5:])["rows"]
                seconds = " ".join(f"{r['seconds']:>11.2f}" for r in rows)
                print(f"{backend:<11} {feed:<10} {seconds}  {rows[-1]['value']:.4f}", flush=True)


if __name__ == "__main__":
    main()
