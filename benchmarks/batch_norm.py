"""Keras's BatchNormalization against the fused training twin cnn-search trains with (TensorFlow's
``FusedBatchNormV3``, :func:`search.model._builder.fused_batch_norm_class`), side by side.

The same architectures (the shipped spaces' batch-norm start points, and one residual block) are built
twice from the same seed and fitted for the same epochs on the same images, one thread as each of the
two default workers on a 2-core machine gets (``TF_NUM_INTRAOP_THREADS=1``), in alternating order so
that neither side always runs warm. Printed: seconds per fit and the final training loss of each.

    python benchmarks/batch_norm.py [--epochs 3] [--images 2400] [--size 32] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=2400)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import keras
    import numpy as np

    import search
    from search.model import build_model, compile_model
    from search.training._objective import STEPS_PER_EXECUTION

    rng = np.random.default_rng(0)
    shape = (args.size, args.size, 1)
    x = rng.uniform(100, 140, size=(args.images, *shape)).astype("float32")  # low contrast, as the suite's textures
    y = rng.integers(0, 5, size=args.images)
    cases = []
    for name in ("vgg", "resnet"):
        space = search.load_space(name)
        for i, point in enumerate(space.start):
            arch = space.sample(search.FixedParams(point))
            if any(block.batch_norm for block in arch.blocks):
                cases.append((f"{name} start {i}", arch))
    print(f"{args.images} images {args.size}x{args.size}, {args.epochs} epochs a fit, best of {args.repeats}")
    print(f"{'architecture':<16} {'Keras BN s':>10} {'fused s':>8} {'ratio':>6}  {'loss Keras':>10} {'loss fused':>10}")
    for label, arch in cases:
        best: dict[bool, float] = {False: float("inf"), True: float("inf")}
        loss: dict[bool, float] = {}
        for repeat in range(args.repeats):
            for fused in (False, True) if repeat % 2 == 0 else (True, False):
                keras.backend.clear_session(free_memory=False)
                keras.utils.set_random_seed(0)
                model = build_model(arch, shape, 5, input_stats=(120.0, 11.5), fused_batch_norm=fused)
                compile_model(model, arch, steps_per_execution=STEPS_PER_EXECUTION)
                start = time.perf_counter()
                history = model.fit(x, y, batch_size=arch.training.batch_size, epochs=args.epochs, verbose=0)
                best[fused] = min(best[fused], time.perf_counter() - start)
                loss[fused] = history.history["loss"][-1]
        ratio = best[True] / best[False]
        times = f"{best[False]:>10.2f} {best[True]:>8.2f} {ratio:>5.2f}x"
        print(f"{label:<16} {times}  {loss[False]:>10.4f} {loss[True]:>10.4f}")


if __name__ == "__main__":
    main()
