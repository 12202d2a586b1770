"""How a space's start points train on the suite's tasks, under training settings side by side.

Every start point of SPACE (and ``--random N`` seeded samples of it, the same ones for every variant)
is trained with cnn-search's own :class:`search.training.Objective` (seed 0, ``--epochs`` epochs, no
pruning) on each task of benchmarks/suite.py, once per variant; a variant overrides the start
points' training settings (``batch_size=32,learning_rate=0.002``; ``as-written`` is the space's own). Prints
validation and test accuracy and seconds per point, then the means per variant. This is what chose
the vgg space's start points' batch size and learning rate (spaces/vgg.yaml), and measured the
weights' moving average (``--variants "ema=0;as-written"``: trials judged on the last step's weights or
on the average, ``training.ema``).

``--points FILE.yaml`` trains other candidate points instead of the space's own (a mapping of names to
points, each written as under ``start:``, checked against the space like them), ``--seeds 0,1`` each
once per training seed; the end of the output gives every point's mean over tasks and seeds. This is
what chose the vgg space's start points themselves (``benchmarks/spaces/vgg_start_candidates.yaml``).

    python benchmarks/start_points.py --variants "as-written;batch_size=64,learning_rate=0.001;batch_size=32"
    python benchmarks/start_points.py --points benchmarks/spaces/vgg_start_candidates.yaml \\
        --variants as-written --seeds 0,1
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

from _tasks import TASKS, default_cache, write_task


def parse_variant(text: str) -> dict[str, float | int | bool]:
    """``batch_size=32,learning_rate=0.002`` -> ``{"batch_size": 32, "learning_rate": 0.002}``;
    ``ema=0`` -> ``{"ema": False}``; ``as-written`` -> ``{}``."""
    if text.strip() in ("", "as-written"):
        return {}
    out: dict[str, float | int | bool] = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        key, number = key.strip(), float(value)
        out[key] = bool(number) if key == "ema" else int(number) if key == "batch_size" else number
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="vgg")
    parser.add_argument("--variants", default="as-written;batch_size=64,learning_rate=0.001", help="';'-separated")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--random", type=int, default=0, help="also this many seeded samples (variants not applied)")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--points", type=Path, default=None, help="YAML mapping of names to candidate points")
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated")
    args = parser.parse_args()

    from search.data import load_dataset
    from search.space import FixedParams, RandomParams, load_space
    from search.training import Objective
    from search.training._eager import predict_eagerly, scores

    space = load_space(args.space)
    variants = [v.strip() for v in args.variants.split(";")]
    totals: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    if args.points is not None:
        import yaml

        named = {str(k): dict(v) for k, v in yaml.safe_load(args.points.read_text()).items()}
    else:
        named = {f"start{i}": dict(p) for i, p in enumerate(space.start)}
    per_point: dict[str, list[float]] = {name: [] for name in named}
    print(f"{'task':9} {'seed':4} {'point':14} " + " ".join(f"{v[:30]:>30}" for v in variants))
    runs = [(task, int(seed)) for task in args.tasks.split(",") for seed in args.seeds.split(",")]
    for task, seed in runs:
        data = load_dataset(write_task(task, args.cache or default_cache()), seed=0)
        objective = Objective(space, data, epochs=args.epochs, seed=seed)
        x_test, y_test = data.arrays("test")
        n_train = len(data.labels("train"))
        starts = [space.sample(FixedParams(point)) for point in named.values()]
        samples = [space.sample(RandomParams(100 + i)) for i in range(args.random)]
        labels = list(named) + [f"rand{i}" for i in range(args.random)]
        for index, base in enumerate(starts + samples):
            cells = []
            for variant in variants:
                arch = base
                if index < len(starts):
                    training = dataclasses.replace(base.training, **parse_variant(variant))
                    arch = dataclasses.replace(base, training=training)
                started = time.perf_counter()
                result = objective(arch, lambda epoch, value: False, trial_number=index)
                seconds = time.perf_counter() - started
                test = math.nan
                if result.model is not None:
                    test = scores(predict_eagerly(result.model, x_test), y_test.astype(int))[0]
                val = result.value if result.value is not None else math.nan
                if index < len(starts):
                    totals[variant].append((val, test, seconds))
                    per_point[labels[index]].append(val)
                steps = math.ceil(n_train / arch.training.batch_size)
                cells.append(f"val {val:.3f} test {test:.3f} {seconds:4.1f}s {steps:3d}st")
            print(f"{task:9} {seed:4} {labels[index]:14} " + " ".join(f"{c:>30}" for c in cells), flush=True)
    print("\nstart points, mean over tasks and points:")
    for variant, rows in totals.items():
        n = len(rows)
        print(
            f"  {variant:40} val {sum(r[0] for r in rows) / n:.3f}  test {sum(r[1] for r in rows) / n:.3f}"
            f"  {sum(r[2] for r in rows):.0f} s"
        )
    print("\nper point, mean validation accuracy over tasks, seeds and variants (a point that failed counts 0):")
    for name, values in sorted(per_point.items(), key=lambda item: -sum(0 if math.isnan(v) else v for v in item[1])):
        print(f"  {name:20} {sum(0 if math.isnan(v) else v for v in values) / max(len(values), 1):.3f}")


if __name__ == "__main__":
    main()
