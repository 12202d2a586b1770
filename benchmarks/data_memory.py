"""Memory of the folder source: a streamed epoch stays bounded, far below the decoded size of the images.

Writes a folder of N small PNG images (default 3000, 128x128 RGB, 10 classes) into a temporary
directory, then, in a fresh process per mode, loads it with ``load_dataset(folder)`` and iterates
one epoch of ``bundle.train(32)``:

* ``stream`` (``cache=False``): files are decoded batch by batch; memory must not grow with N;
* ``cache`` (``cache=True``): decoded images are kept after the first pass, for contrast.

For each it prints the RSS before the epoch, the peak RSS (``resource.getrusage``) and the growth,
next to the decoded size of the training split and of all images::

    python benchmarks/data_memory.py [--images 3000] [--size 128]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 2**20


def rss_mib() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def write_images(root: Path, *, count: int, size: int, classes: int) -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    for i in range(count):
        label = i % classes
        folder = root / f"class_{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        r, g, b = rng.integers(0, 256, 3)
        pixels = np.stack([np.add.outer(ramp, ramp) / 2 * (c / 255) for c in (r, g, b)], axis=-1)
        image = Image.fromarray(pixels.astype(np.uint8))
        x, y = rng.integers(0, size // 2, 2)
        ImageDraw.Draw(image).rectangle((x, y, x + size // 3, y + size // 4), fill=(int(b), int(r), int(g)))
        image.save(folder / f"{i:05d}.png")


def child(root: Path, mode: str, batch_size: int) -> None:
    from search.data import load_dataset

    start = time.perf_counter()
    bundle = load_dataset(root)
    loaded = time.perf_counter() - start
    train = bundle.train(batch_size, cache=mode == "cache")
    before_rss, before_peak = rss_mib(), peak_mib()
    start = time.perf_counter()
    seen = 0
    for images, _ in train:
        seen += int(images.shape[0])
    epoch = time.perf_counter() - start
    h, w, c = bundle.input_shape
    total = sum(bundle.counts.values()) * h * w * c / MIB
    split = bundle.counts["train"] * h * w * c / MIB
    print(
        f"{mode:<7} images {sum(bundle.counts.values())} ({h}x{w}x{c}), train {seen}; "
        f"decoded: all {total:.1f} MiB, train split {split:.1f} MiB | "
        f"RSS before epoch {before_rss:.0f} MiB, peak {peak_mib():.0f} MiB, "
        f"growth during the epoch {peak_mib() - before_peak:.0f} MiB (peak) / {rss_mib() - before_rss:.0f} MiB (now) | "
        f"load+check {loaded:.1f} s, epoch {epoch:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--child", choices=("stream", "cache"), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.root, args.child, args.batch_size)
        return
    with tempfile.TemporaryDirectory(prefix="cnn-search-bench-") as tmp:
        root = Path(tmp) / "images"
        start = time.perf_counter()
        write_images(root, count=args.images, size=args.size, classes=args.classes)
        on_disk = sum(p.stat().st_size for p in root.rglob("*.png")) / MIB
        print(f"wrote {args.images} PNG files ({on_disk:.1f} MiB on disk) in {time.perf_counter() - start:.1f} s")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        for mode in ("stream", "cache"):
            command = [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--root",
                str(root),
                "--batch-size",
                str(args.batch_size),
            ]
            subprocess.run(command, check=True, env=env)


if __name__ == "__main__":
    main()
