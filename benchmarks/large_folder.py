"""A real-size folder: what scanning, feeding and searching 50,000 JPEGs costs on this machine (issue 35).

Generates (deterministically, once: kept in ``--folder``, default ``~/.cache/cnn-search/bench``) a folder of
``--images`` JPEGs (default 50,000) of sizes drawn between 128 and 1024 pixels a side, in ``--classes``
classes (default 10: each class a hue and a shape over a gradient, with noise), then measures, side by side
in one run:

* **scan**: ``scan_folder`` the first time (an empty scan cache) and the second (the cache kept), against
  decoding every file once with Pillow on the same threads (the floor of any scan that decodes);
* **feed**: the one-off decode of the folder into cnn-search's on-disk pixel cache (an empty cache), then
  images per second into ``fit`` for cnn-search's feed (``load_dataset(folder).train(batch)``) from that
  cache and streamed (``CNN_SEARCH_PIXEL_CACHE=off``), against ``tf.data``'s own limit on these cores:
  ``keras.utils.image_dataset_from_directory`` at the same size and batch with ``prefetch(AUTOTUNE)``, as
  the Keras guide does (its ``cache()`` would hold the decoded folder in memory, ~10 GB here: left out),
  over the first ``--feed-batches`` batches after a warm-up of 5; and the feed of the backends without
  tf.data (JAX, PyTorch: ``load_dataset(folder).batches(...)``, a ``keras.utils.PyDataset`` of NumPy
  batches, read in one thread as ``fit`` reads it), from the cache and streamed (a quarter of the batches);
* **search** (``--search-timeout`` seconds, default 1800; 0 skips it): ``cnn-search run vgg`` on the folder
  in a fresh process with an empty cache folder (as a first search), the peaks of the summed resident (RSS)
  and proportional (PSS: a page shared by the workers counted once) memory of its whole process tree
  (supervisor and workers, sampled every 0.5 s), and its winner's test accuracy.

    python benchmarks/large_folder.py [--images 50000] [--classes 10] [--search-timeout 1800]
        [--feed-batches 200] [--batch 64] [--folder DIR] [--parts scan,feed,search] [--search-args "--subset 0.25"]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

MIB = 2**20


def _image(args: tuple[Path, int, int, int]) -> None:
    """One JPEG of the folder, a function of its index only."""
    import numpy as np
    from PIL import Image, ImageDraw

    folder, index, classes, seed = args
    rng = np.random.default_rng(seed * 1_000_003 + index)
    label = index % classes
    height, width = (int(v) for v in rng.integers(128, 1025, 2))
    hue = np.array([(label * 97) % 256, (label * 53 + 80) % 256, (label * 29 + 160) % 256], "float32")
    ramp = np.linspace(0.4, 1.0, width, dtype="float32")[None, :, None]
    pixels = hue[None, None, :] * ramp + rng.normal(0, 18, (height, width, 3)).astype("float32")
    image = Image.fromarray(pixels.clip(0, 255).astype("uint8"))
    draw = ImageDraw.Draw(image)
    x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
    box = (x0, y0, x0 + width // 3, y0 + height // 3)
    fill = tuple(int(255 - v) for v in hue)
    [
        draw.ellipse,
        draw.rectangle,
        lambda b, fill: draw.polygon([(b[0], b[3]), (b[2], b[3]), ((b[0] + b[2]) // 2, b[1])], fill=fill),
    ][label % 3](box, fill=fill)
    target = folder / f"class_{label:02d}" / f"{index:06d}.jpg"
    image.save(target, quality=85)


def generate(folder: Path, images: int, classes: int, seed: int = 0) -> float:
    """The folder, generated unless a complete one is there; the seconds it took (0 when kept)."""
    done = folder / f".complete-{images}-{classes}-{seed}"
    if done.exists():
        return 0.0
    start = time.perf_counter()
    for label in range(classes):
        (folder / f"class_{label:02d}").mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_image, [(folder, i, classes, seed) for i in range(images)], chunksize=64))
    done.write_text("")
    return time.perf_counter() - start


def pillow_once(folder: Path) -> float:
    """Seconds to open and fully decode every image once with Pillow, on the scan's threads."""
    from PIL import Image

    paths = sorted(str(p) for p in folder.glob("class_*/*.jpg"))

    def decode(path: str) -> None:
        with Image.open(path) as image:
            image.load()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        list(pool.map(decode, paths, chunksize=64))
    return time.perf_counter() - start


def scans(folder: Path) -> tuple[float, float]:
    """(first scan, second scan) seconds, the first with an empty scan cache."""
    from search.data._folder import scan_folder

    os.environ["CNN_SEARCH_CACHE"] = tempfile.mkdtemp(prefix="cnn-search-bench-cache-")
    start = time.perf_counter()
    scan_folder(folder)
    first = time.perf_counter() - start
    start = time.perf_counter()
    scan_folder(folder)
    return first, time.perf_counter() - start


def _rate(dataset, batches: int, batch: int) -> float:
    """Images per second over ``batches`` batches of ``dataset`` after 5 of warm-up."""
    iterator = iter(dataset)
    for _ in range(5):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def feeds(folder: Path, batches: int, batch: int) -> dict[str, float | tuple[int, ...]]:
    """The size fed; the seconds of the one-off decode into the on-disk pixel cache (an empty cache folder);
    images/s of cnn-search's feed from that cache, of its streaming feed (``CNN_SEARCH_PIXEL_CACHE=off``) and
    of tf.data's ``image_dataset_from_directory``."""
    import keras
    import tensorflow as tf

    from search.data import load_dataset

    os.environ["CNN_SEARCH_CACHE"] = tempfile.mkdtemp(prefix="cnn-search-bench-cache-")
    bundle = load_dataset(str(folder))
    start = time.perf_counter()
    bundle.store.pixels()  # type: ignore[attr-defined]  # a folder's FileStore: decoded once, to disk
    built = time.perf_counter() - start
    cached = _rate(bundle.train(batch).repeat(), batches, batch)
    numpy_cached = _rate(_forever(bundle.batches("train", batch)), batches, batch)
    os.environ["CNN_SEARCH_PIXEL_CACHE"] = "off"
    try:
        streamed_bundle = load_dataset(str(folder))
        streamed = _rate(streamed_bundle.train(batch, cache=False).repeat(), batches, batch)
        numpy_streamed = _rate(_forever(streamed_bundle.batches("train", batch)), max(1, batches // 4), batch)
    finally:
        del os.environ["CNN_SEARCH_PIXEL_CACHE"]
    keras_ds = keras.utils.image_dataset_from_directory(
        folder, image_size=bundle.input_shape[:2], batch_size=batch, shuffle=True, seed=0, verbose=False
    )
    theirs = _rate(keras_ds.repeat().prefetch(tf.data.AUTOTUNE), batches, batch)
    return {
        "shape": bundle.input_shape, "built": built, "cached": cached, "streamed": streamed, "tf.data": theirs,
        "numpy cached": numpy_cached, "numpy streamed": numpy_streamed,
    }  # fmt: skip


def _forever(batches: Any) -> Any:
    """A ``keras.utils.PyDataset`` (the JAX and PyTorch feed: NumPy batches, no tf.data) read as Keras's
    fit reads it, epoch after epoch, in this thread."""
    while True:
        for index in range(len(batches)):
            yield batches[index]
        batches.on_epoch_end()


def _tree_memory(pid: int) -> tuple[int, int]:
    """(resident bytes, proportional-set bytes) of ``pid`` and every descendant (Linux /proc): the summed RSS
    counts the pages of the memory-mapped pixel cache once per process that touched them; PSS shares them."""
    rss = pss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup", encoding="ascii") as rollup:
                fields = dict(line.split()[:2] for line in rollup if line.split()[0] in ("Rss:", "Pss:"))
            rss += int(fields["Rss:"]) * 1024
            pss += int(fields["Pss:"]) * 1024
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as children:
                    todo += [int(c) for c in children.read().split()]
        except (OSError, ValueError, KeyError):
            continue
    return rss, pss


def search(folder: Path, timeout: int, extra: list[str]) -> tuple[float, float, str, float]:
    """(peaks of the summed RSS and PSS of the search's process tree in MiB, its winner line, wall seconds)."""
    runs = Path(tempfile.mkdtemp(prefix="cnn-search-bench-runs-"))
    command = [sys.executable, "-m", "search", "run", "vgg", "--data", str(folder), "--timeout", str(timeout), *extra]
    start = time.perf_counter()
    cold = {**os.environ, "CNN_SEARCH_CACHE": tempfile.mkdtemp(prefix="cnn-search-bench-cache-")}  # as a first search
    proc = subprocess.Popen([*command, "--runs-dir", str(runs), "--no-report"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=cold)  # fmt: skip
    peak = [0, 0]

    def sample() -> None:
        while proc.poll() is None:
            rss, pss = _tree_memory(proc.pid)
            peak[:] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.5)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    output, _ = proc.communicate()
    watcher.join()
    winner = next((line for line in output.splitlines() if line.startswith("winner:")), output[-400:])
    return peak[0] / MIB, peak[1] / MIB, winner, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--folder", type=Path, default=Path.home() / ".cache" / "cnn-search" / "bench")
    parser.add_argument("--feed-batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--search-timeout", type=int, default=1800)
    parser.add_argument("--parts", default="scan,feed,search", help="which measurements (default: all three)")
    parser.add_argument("--search-args", default="", help='more options of the search ("--subset 0.25")')
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    folder = args.folder / f"large-{args.images}-{args.classes}"
    made = generate(folder, args.images, args.classes)
    print(f"folder: {folder} ({args.images:,} JPEGs, 128-1024 px a side; generated in {made:.0f} s, 0: kept)")
    if "scan" in parts:
        _print_scans(folder)
    if "feed" in parts:
        _print_feeds(folder, args.feed_batches, args.batch)
    if args.search_timeout > 0 and "search" in parts:
        rss, pss, winner, wall = search(folder, args.search_timeout, args.search_args.split())
        print(f"search vgg --timeout {args.search_timeout} {args.search_args}: {wall:.0f} s; peaks over its "
              f"process tree: summed RSS {rss:,.0f} MiB, summed PSS {pss:,.0f} MiB (shared pages once)")  # fmt: skip
        print("  " + " ".join(winner.split()))


def _print_scans(folder: Path) -> None:
    floor = pillow_once(folder)
    first, second = scans(folder)
    print(f"{'scan':<38}{'seconds':>10}")
    print(f"{'  Pillow, decode every file once':<38}{floor:>10.1f}")
    print(f"{'  cnn-search, first scan':<38}{first:>10.1f}")
    print(f"{'  cnn-search, second scan (cached)':<38}{second:>10.2f}")


def _print_feeds(folder: Path, batches: int, batch: int) -> None:
    fed = feeds(folder, batches, batch)
    size = "x".join(map(str, fed["shape"]))  # type: ignore[arg-type]
    print(f"{'decode into the pixel cache, once':<38}{fed['built']:>10.1f} s")
    print(f"{'feed at ' + size + f', batch {batch}':<38}{'images/s':>10}")
    print(f"{'  tf.data image_dataset_from_dir':<38}{fed['tf.data']:>10.0f}")
    for key, label in (
        ("cached", "from the pixel cache"),
        ("streamed", "streamed (cache off)"),
        ("numpy cached", "JAX's feed, pixel cache"),
        ("numpy streamed", "JAX's feed, cache off"),
    ):
        share = 100 * fed[key] / fed["tf.data"]  # type: ignore[operator]
        print(f"{'  cnn-search, ' + label:<38}{fed[key]:>10.0f}  ({share:.0f}% of tf.data)")


if __name__ == "__main__":
    main()
