"""Keras's own BatchNormalization and Adam/AdamW against the fused training twins cnn-search trains
with (TensorFlow's ``FusedBatchNormV3`` and ``ResourceApplyAdam``, :mod:`search.model._fused`), side by side.

The shipped spaces' start points are built twice from the same seed and fitted on the same images,
one thread as each of the two default workers on a 2-core machine gets (``TF_NUM_INTRAOP_THREADS=1``),
the two sides in alternating order so that neither always runs warm, fed as trials are fed (tf.data,
32 steps per execution). Printed per architecture, best of ``--repeats``: the first epoch (the train
function's trace included), the later epochs, and the final training loss of each side.

``--compare ema`` measures the other training extra the same way: both sides fused, the second also
keeping the moving average of the weights that trials are judged with (``training.ema``,
:func:`search.model._builder.ema_momentum`), to show what the average costs a step. Its loss columns are
not comparable: Keras puts the average into the weights at the end of every ``fit``, and the later
epochs here are a second ``fit``.

    python benchmarks/fused.py [--epochs 4] [--images 2400] [--size 32] [--repeats 2] [--spaces vgg,resnet]
    python benchmarks/fused.py --compare ema
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--images", type=int, default=2400)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--spaces", default="vgg,resnet")
    parser.add_argument("--compare", choices=("fused", "ema"), default="fused")
    args = parser.parse_args()
    sides = ("Keras", "fused") if args.compare == "fused" else ("no EMA", "EMA")

    import keras
    import numpy as np
    import tensorflow as tf

    import search
    from search.model import build_model, compile_model
    from search.model._builder import ema_momentum
    from search.training._objective import STEPS_PER_EXECUTION

    rng = np.random.default_rng(0)
    shape = (args.size, args.size, 1)
    x = rng.uniform(100, 140, size=(args.images, *shape)).astype("float32")  # low contrast, as the suite's textures
    y = rng.integers(0, 5, size=args.images)
    cases = []
    for name in args.spaces.split(","):
        space = search.load_space(name)
        cases += [(f"{name} start {i}", space.sample(search.FixedParams(p))) for i, p in enumerate(space.start)]
    print(f"{args.images} images {args.size}x{args.size}, {args.epochs} epochs a fit, best of {args.repeats}; seconds")
    a, b = sides
    head = f"{'architecture':<16} {'1st epoch: ' + a:>18} {b:>6} {'later: ' + a:>14} {b:>6}"
    print(f"{head}  {'loss ' + a:>12} {b:>7}")
    totals = {False: 0.0, True: 0.0}
    for label, arch in cases:
        first: dict[bool, float] = {False: float("inf"), True: float("inf")}
        later: dict[bool, float] = {False: float("inf"), True: float("inf")}
        loss: dict[bool, float] = {}
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(arch.training.batch_size).cache()
        momentum = ema_momentum(-(-args.images // arch.training.batch_size))
        for repeat in range(args.repeats):
            for second in (False, True) if repeat % 2 == 0 else (True, False):
                fused = second or args.compare == "ema"
                ema = momentum if second and args.compare == "ema" else None
                keras.backend.clear_session(free_memory=False)
                keras.utils.set_random_seed(0)
                model = build_model(arch, shape, 5, input_stats=(120.0, 11.5), fused=fused)
                compile_model(model, arch, steps_per_execution=STEPS_PER_EXECUTION, fused=fused, ema_momentum=ema)
                start = time.perf_counter()
                model.fit(data, epochs=1, verbose=0, shuffle=False)
                middle = time.perf_counter()
                history = model.fit(data, epochs=args.epochs - 1, verbose=0, shuffle=False)
                first[second] = min(first[second], middle - start)
                later[second] = min(later[second], time.perf_counter() - middle)
                loss[second] = history.history["loss"][-1]
        for second in (False, True):
            totals[second] += first[second] + later[second]
        print(
            f"{label:<16} {first[False]:>18.2f} {first[True]:>6.2f} {later[False]:>14.2f} {later[True]:>6.2f}  "
            f"{loss[False]:>12.4f} {loss[True]:>7.4f}"
        )
    print(f"all fits: {a} {totals[False]:.1f} s, {b} {totals[True]:.1f} s ({totals[True] / totals[False]:.2f}x)")


if __name__ == "__main__":
    main()
