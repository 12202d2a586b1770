"""In-memory sources: scikit-learn's digits, the Keras datasets, an ``.npz`` file.

Each gives a :class:`Pool`: raw uint8 images, int32 labels, class names, and the source's own
test split when it ships one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from search.data._arrays import as_images, as_labels, check_label_range
from search.data._errors import DataError, fail, special_kind

_DOWNLOAD_TIMEOUT_S: Final = 30.0

_FASHION: Final = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_CIFAR10: Final = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_CIFAR100_WORDS: Final = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger "
    "tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
)
_CIFAR100: Final = tuple(_CIFAR100_WORDS.split())

#: Keras dataset name -> (class names, the cached file or folder under ``<keras home>/datasets``).
KERAS_DATASETS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "mnist": (tuple(str(d) for d in range(10)), "mnist.npz"),
    "fashion_mnist": (_FASHION, "fashion-mnist/ (4 files: train-images-idx3-ubyte.gz, ...)"),
    "cifar10": (_CIFAR10, "cifar-10-batches-py-target_archive (cifar-10-python.tar.gz)"),
    "cifar100": (_CIFAR100, "cifar-100-python-target_archive (cifar-100-python.tar.gz)"),
}

_NPZ_KEYS: Final = ("x", "y", "x_train", "y_train", "x_test", "y_test", "class_names")


@dataclass(frozen=True)
class Pool:
    """Images and labels of a source before splitting; ``x_test``/``y_test`` when it ships a test split."""

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


def load_digits() -> Pool:
    """scikit-learn's bundled 8x8 digits (1,797 images), 0..16 rescaled to 0..255."""
    from sklearn.datasets import load_digits as sklearn_digits

    data: Any = sklearn_digits()
    x = np.rint(data.images * 255.0 / 16.0).astype(np.uint8)[..., np.newaxis]
    return Pool(x, data.target.astype(np.int32), tuple(str(d) for d in range(10)))


def keras_home() -> Path:
    """Where Keras keeps its cache: ``$KERAS_HOME`` (read when Keras is imported), else ``~/.keras``."""
    try:
        from keras.src.backend.config import keras_home as home

        base = Path(os.path.expanduser(home()))
    except ImportError:  # pragma: no cover - a Keras without the private accessor
        base = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    if base.exists() and not os.access(base, os.W_OK):
        base = Path("/tmp/.keras")  # what keras.utils.get_file falls back to
    return base


def load_keras(name: str) -> Pool:
    """``keras.datasets.<name>.load_data()``; a failed download is a :class:`DataError` saying what to do."""
    import keras

    class_names, cached = KERAS_DATASETS[name]
    loader: Callable[[], Any] = getattr(keras.datasets, name).load_data
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        (x, y), (x_test, y_test) = loader()
    except Exception as exc:
        where = keras_home() / "datasets" / cached
        cause = " ".join(str(exc).split())
        cause = cause if len(cause) <= 200 else cause[:197] + "..."
        raise DataError(
            f"{name}: the download failed and no cached copy was found ({type(exc).__name__}: {cause}); "
            f"expected the file at {where}. Put the file there (copy ~/.keras/datasets from a machine with network "
            f"access, or set KERAS_HOME to a folder holding datasets/), or pass your own images: --data path.npz "
            f"(keys x_train, y_train, x_test, y_test) or --data a folder of class sub-folders."
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    pool = Pool(
        as_images(np.asarray(x), name=f"{name} x_train"),
        as_labels(np.asarray(y), name=f"{name} y_train", count=len(x)),
        class_names,
        as_images(np.asarray(x_test), name=f"{name} x_test"),
        as_labels(np.asarray(y_test), name=f"{name} y_test", count=len(x_test)),
    )
    return pool


def load_npz(path: Path) -> Pool:
    """An ``.npz`` with ``x``/``y`` or ``x_train``/``y_train`` (and ``x_test``/``y_test``), ``class_names`` optional."""
    import zipfile

    if not path.is_file():
        kind = special_kind(path)
        raise fail(
            f"{path}: " + (f"not a file but {kind}" if kind else "no such file"),
            expected="an .npz file with arrays x and y",
            received=kind or str(path),
            hint="A folder of class sub-folders is read as images when its name does not end in .npz."
            if kind == "a folder"
            else None,
        )
    try:
        with path.open("rb") as file:
            head = file.read(64)
    except OSError as exc:
        raise fail(f"{path}: cannot read", expected="a readable .npz file", received=exc.strerror or str(exc)) from None
    if not head.startswith(_ZIP_MAGIC):  # np.load would try it as a pickle, and say "pickled data"
        raise fail(
            f"{path}: not an .npz (zip) archive",
            expected="a zip archive of NumPy arrays, as np.savez or np.savez_compressed write",
            received=_describe(head),
            hint="Save the arrays with np.savez(path, x=images, y=labels).",
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as exc:  # object arrays, which need pickle
        raise fail(
            f"{path}: cannot read",
            expected="plain numeric arrays (no pickled objects)",
            received=" ".join(str(exc).split()),
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise fail(
            f"{path}: cannot read",
            expected="a complete NumPy .npz file",
            received=f"a damaged zip archive ({' '.join(str(exc).split())})",
        ) from None
    return _pool_from_npz(path, arrays)


_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")


def _describe(head: bytes) -> str:
    """What a file that is not a zip archive looks like, from its first bytes."""
    if not head:
        return "an empty file (0 bytes)"
    if head.startswith(b"\x93NUMPY"):
        return "a single-array .npy file (np.save), not an .npz archive"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "a Python pickle"
    text = head.decode("utf-8", errors="ignore")
    if text and len(text) >= len(head) // 2 and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.splitlines()[0] if text.strip() else text
        return f"a text file starting with {first[:40]!r}"
    return f"binary data starting with bytes {head[:8].hex(' ')}"


def _pool_from_npz(path: Path, arrays: dict[str, np.ndarray]) -> Pool:
    from search._errors import did_you_mean

    keys = sorted(arrays)
    unknown = [k for k in keys if k not in _NPZ_KEYS]
    if unknown:
        raise fail(
            f"{path}: unknown array {unknown[0]!r}",
            expected="arrays " + ", ".join(_NPZ_KEYS),
            received="arrays " + ", ".join(keys),
            hint=did_you_mean(unknown[0], _NPZ_KEYS),
        )
    plain, split = "x" in arrays or "y" in arrays, "x_train" in arrays or "y_train" in arrays
    pairs = [("x", "y")] if plain and not split else [("x_train", "y_train")]
    if "x_test" in arrays or "y_test" in arrays:
        pairs.append(("x_test", "y_test"))
    needed = [k for pair in pairs for k in pair]
    if (plain and split) or any(k not in arrays for k in needed):
        raise fail(
            f"{path}: wrong arrays",
            expected="x and y, or x_train and y_train (optionally x_test and y_test), and optionally class_names",
            received="arrays " + ", ".join(keys),
        )
    loaded = []
    for xk, yk in pairs:
        x = as_images(arrays[xk], name=f"{path}: {xk}")
        loaded.append((x, as_labels(arrays[yk], name=f"{path}: {yk}", count=len(x))))
    if len(loaded) == 2 and loaded[0][0].shape[1:] != loaded[1][0].shape[1:]:
        raise fail(
            f"{path}: x_test does not match x_train",
            expected=f"images shaped {loaded[0][0].shape[1:]}",
            received=f"{loaded[1][0].shape[1:]}",
        )
    class_names = _class_names(path, arrays.get("class_names"), loaded)
    check_label_range([(f"{path}: {yk}", y) for (_, yk), (_, y) in zip(pairs, loaded, strict=True)], class_names)
    (x, y), rest = loaded[0], loaded[1:]
    return Pool(x, y, class_names, *(rest[0] if rest else (None, None)))


def _class_names(path: Path, raw: np.ndarray | None, loaded: list[tuple[np.ndarray, np.ndarray]]) -> tuple[str, ...]:
    if raw is None:
        top = max((int(y.max()) for _, y in loaded if y.size), default=-1)
        return tuple(str(i) for i in range(top + 1))
    if raw.ndim != 1 or raw.dtype.kind not in "UST":
        raise fail(
            f"{path}: class_names: wrong type",
            expected="a 1-D array of strings",
            received=f"{raw.dtype} array shaped {raw.shape}",
        )
    names = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in raw.tolist())
    if len(set(names)) != len(names):
        raise fail(f"{path}: class_names: duplicate names", expected="distinct names", received=repr(list(names)))
    return names
