"""``load_dataset``: one entry point for every source, strings turned into a source once, here."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from search.data._arrays import COLOR_MODES, ColorMode, color_note, convert_color, resize
from search.data._bundle import DataBundle, fingerprint
from search.data._errors import DataError, fail
from search.data._folder import scan_folder
from search.data._shapes import make_shapes
from search.data._sources import KERAS_DATASETS, Pool, load_digits, load_keras, load_npz
from search.data._split import (
    SPLITS,
    TEST_FRACTION,
    VALIDATION_FRACTION,
    Split,
    check_fraction,
    check_seed,
    split_indices,
    stratified_take,
)
from search.data._store import ArrayStore, FileStore

#: The named sources; anything else is a folder of class sub-folders or an ``.npz`` file.
SOURCES: Final = ("digits", "shapes", *KERAS_DATASETS)
#: A folder's images are fed at their most common size up to this many pixels a side; larger ones are
#: resized so that their longer side is this (the aspect ratio kept), unless a size is asked for.
#: Keras's ``image_dataset_from_directory`` resizes to 256x256 unless told; at native size a folder
#: of 4000x4000 photos built a first model whose activations alone need gigabytes per batch (the
#: kernel killed the search at 6.7 GB). Said at load time (a warning on the ``search`` logger).
DEFAULT_SIDE: Final = 256


def default_size(common: tuple[int, int]) -> tuple[int, int]:
    """The size a folder is fed at when none is asked for: its most common size ``common`` (height,
    width) when no side is over :data:`DEFAULT_SIDE`, else scaled to a longer side of that.

    >>> default_size((64, 48)), default_size((4000, 4000)), default_size((3000, 4000)), default_size((5000, 10))
    ((64, 48), (256, 256), (192, 256), (256, 1))
    """
    longer = max(common)
    if longer <= DEFAULT_SIDE:
        return common
    return (max(1, round(common[0] * DEFAULT_SIDE / longer)), max(1, round(common[1] * DEFAULT_SIDE / longer)))


def load_dataset(
    source: str | os.PathLike[str],
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: ColorMode | None = None,
    validation_fraction: float = VALIDATION_FRACTION,
    test_fraction: float | None = None,
    seed: int = 0,
    limit: int | None = None,
    strict: bool = False,
    count: int | None = None,
    num_classes: int | None = None,
) -> DataBundle:
    """Load ``source`` and split it into train, validation and test, stratified by class.

    ``source``: ``digits`` (scikit-learn's 8x8 digits, offline), ``shapes`` (synthetic; ``count``,
    ``num_classes``), ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100`` (Keras datasets, from
    the Keras cache or downloaded), a folder of class sub-folders, or an ``.npz`` file.

    ``image_size`` resizes (an int for square images); ``color_mode`` (``grayscale`` or ``rgb``)
    converts (default: the source's own; for a folder ``rgb`` if any image has colour). The test
    split is ``test_fraction`` of the images (default 0.25) unless the source ships its own test
    split; validation is ``validation_fraction`` of the rest (default 0.2). ``limit`` keeps a
    stratified sample of that many images. ``strict`` refuses a folder holding any unusable file
    instead of skipping it. Bad input raises :class:`DataError`.

    >>> bundle = load_dataset("digits", limit=400)
    >>> bundle.input_shape, bundle.num_classes, bundle.counts
    ((8, 8, 1), 10, {'train': 240, 'validation': 60, 'test': 100})
    """
    size = _check_size(image_size)
    mode = _check_color_mode(color_mode)
    validation_fraction = check_fraction("validation_fraction", validation_fraction)
    if test_fraction is not None:
        test_fraction = check_fraction("test_fraction", test_fraction)
    seed = check_seed(seed)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise fail("limit: wrong value", expected="an integer >= 1", received=repr(limit))
    shaping = _Shaping(size, mode, validation_fraction, test_fraction, seed, limit)
    text = _check_text(os.fspath(source))
    if text != "shapes":
        for name, value in (("count", count), ("num_classes", num_classes)):
            if value is not None:
                raise fail(f"{name}: only for the shapes source", expected="no value", received=repr(value))
    path = Path(text)
    pool = None
    if text in SOURCES:
        pool = _named(text, size=size, mode=mode, seed=seed, count=count, num_classes=num_classes)
    elif path.suffix.lower() == ".npz":
        pool = load_npz(path)
    if pool is not None:
        return _from_pool(text, pool, shaping)
    if path.is_dir():
        return _from_folder(path, shaping, strict=strict)
    raise _not_a_source(text, path)


@dataclass(frozen=True)
class _Shaping:
    """:func:`load_dataset`'s checked options on how to size, colour, sample and split the images."""

    size: tuple[int, int] | None
    mode: ColorMode | None
    validation_fraction: float
    test_fraction: float | None
    seed: int
    limit: int | None


def _not_a_source(text: str, path: Path) -> DataError:
    """The error for a ``source`` that is neither a named source, an ``.npz`` file nor a folder."""
    from search._errors import did_you_mean

    expected = "one of " + ", ".join(SOURCES) + ", a folder of class sub-folders, or an .npz file"
    if path.exists():
        return fail(f"{text}: not a dataset", expected=expected, received="a file that is not .npz")
    what = f"no such folder {text!r}" if os.sep in text or "/" in text else f"unknown dataset {text!r}"
    return fail(what, expected=expected, received=repr(text), hint=did_you_mean(text, SOURCES))


def _named(
    name: str,
    *,
    size: tuple[int, int] | None,
    mode: ColorMode | None,
    seed: int,
    count: int | None,
    num_classes: int | None,
) -> Pool:
    if name == "digits":
        return load_digits()
    if name == "shapes":
        if size is not None and size[0] != size[1]:
            raise fail("image_size: shapes are square", expected="one size, or (n, n)", received=repr(size))
        x, y, names = make_shapes(
            count=1000 if count is None else count,
            image_size=32 if size is None else size[0],
            channels=3 if mode == "rgb" else 1,
            num_classes=4 if num_classes is None else num_classes,
            seed=seed,
        )
        return Pool(x, y, names)
    if name in KERAS_DATASETS:
        return load_keras(name)
    raise ValueError(f"unknown source {name!r}")  # pragma: no cover - SOURCES and this chain are kept in step


def _from_pool(source: str, pool: Pool, shaping: _Shaping) -> DataBundle:
    size, mode, seed, limit = shaping.size, shaping.mode, shaping.seed, shaping.limit
    validation_fraction, test_fraction = shaping.validation_fraction, shaping.test_fraction
    x, y, x_test, y_test = pool.x, pool.y, pool.x_test, pool.y_test
    if x_test is not None and y_test is not None:
        if test_fraction is not None:
            raise fail(
                f"test_fraction: {source} ships its own test split",
                expected="no test_fraction",
                received=repr(test_fraction),
            )
        if limit is not None and limit < len(y) + len(y_test):
            train_share = round(limit * len(y) / (len(y) + len(y_test)))
            keep = stratified_take(y, train_share, seed=seed)
            keep_test = stratified_take(y_test, limit - train_share, seed=seed)
            x, y, x_test, y_test = x[keep], y[keep], x_test[keep_test], y_test[keep_test]
        parts = split_indices(y, validation_fraction=validation_fraction, test_fraction=None, seed=seed)
        splits: dict[Split, tuple[np.ndarray, np.ndarray]] = {
            "train": (x[parts["train"]], y[parts["train"]]),
            "validation": (x[parts["validation"]], y[parts["validation"]]),
            "test": (x_test, y_test),
        }
    else:
        if limit is not None:
            keep = stratified_take(y, limit, seed=seed)
            x, y = x[keep], y[keep]
        parts = split_indices(
            y,
            validation_fraction=validation_fraction,
            test_fraction=TEST_FRACTION if test_fraction is None else test_fraction,
            seed=seed,
        )
        splits = {s: (x[parts[s]], y[parts[s]]) for s in SPLITS}
    final: dict[Split, tuple[np.ndarray, np.ndarray]] = {}
    for split, (images, labels) in splits.items():
        if mode is not None:
            images = convert_color(images, mode)
        if size is not None:
            images = resize(images, size)
        final[split] = (np.ascontiguousarray(images), labels.astype(np.int32))
    store = ArrayStore(final)
    return DataBundle(
        source=source,
        class_names=pool.class_names,
        input_shape=store.image_shape,
        fingerprint=fingerprint(store, pool.class_names),
        store=store,
        seed=seed,
        conversions=_said(source, _pool_note(x, mode)),
    )


def _pool_note(x: np.ndarray, mode: ColorMode | None) -> str | None:
    """What ``mode`` changes in arrays ``x`` (all RGB, or all grey): None when it converts nothing."""
    if mode is None or x.shape[-1] == (1 if mode == "grayscale" else 3):
        return None
    return color_note(mode, coloured=len(x) if x.shape[-1] == 3 else 0, total=len(x))


def _said(source: str, note: str | None) -> tuple[str, ...]:
    """``note`` (a colour conversion) logged as a warning on the ``search`` logger, so a search says it on
    screen (``run`` shows the ``search`` logger), and kept for the bundle; nothing when None."""
    if note is None:
        return ()
    import logging

    logging.getLogger("search").warning("%s: %s", source, note)
    return (note,)


def _from_folder(root: Path, shaping: _Shaping, *, strict: bool) -> DataBundle:
    size, mode, seed, limit = shaping.size, shaping.mode, shaping.seed, shaping.limit
    validation_fraction, test_fraction = shaping.validation_fraction, shaping.test_fraction
    scan = scan_folder(root, strict=strict)
    files = scan.files
    labels = np.array([f.label for f in files], dtype=np.int32)
    notes: list[str | None] = []
    if size is None:  # the most common size (ties go to the larger image), at most DEFAULT_SIDE a side
        common = max(Counter(f.size for f in files).items(), key=lambda item: (item[1], item[0]))[0]
        size = default_size(common)
        if size != common:
            notes.append(
                f"most images are {common[0]}x{common[1]}, over {DEFAULT_SIDE} pixels a side: every image is "
                f"resized to {size[0]}x{size[1]} (choose another size with input: {{image_size: N}} in the "
                "space, or image_size= in Python)"
            )
    coloured = sum(f.color for f in files)
    if mode is not None:
        notes.append(color_note(mode, coloured=coloured, total=len(files)))
    if mode is None:
        mode = "rgb" if coloured else "grayscale"
    if limit is not None:
        keep = stratified_take(labels, limit, seed=seed)
        files, labels = tuple(files[i] for i in keep), labels[keep]
    parts = split_indices(
        labels,
        validation_fraction=validation_fraction,
        test_fraction=TEST_FRACTION if test_fraction is None else test_fraction,
        seed=seed,
    )
    shape = (size[0], size[1], 1 if mode == "grayscale" else 3)
    store = FileStore(
        {s: ([files[i].path for i in parts[s]], labels[parts[s]]) for s in SPLITS},
        shape,
        digests={s: [files[i].digest for i in parts[s]] for s in SPLITS},
    )
    return DataBundle(
        source=str(root),
        class_names=scan.class_names,
        input_shape=shape,
        fingerprint=fingerprint(store, scan.class_names),
        store=store,
        seed=seed,
        skipped=list(scan.skipped),
        conversions=tuple(said for note in notes if note for said in _said(str(root), note)),
    )


def _check_text(text: str) -> str:
    """A source whose name is not UTF-8 (bytes Python keeps as surrogates) is refused: the search records
    it in MLflow and loads it again from there, and neither takes such a name."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(text).decode("utf-8", "backslashreplace")
        raise fail(
            f"{shown}: the path is not UTF-8 text",
            expected="a dataset path whose name is UTF-8 (it is recorded in MLflow and reloaded from there)",
            received=f"a name holding bytes that are not UTF-8 ({shown})",
            hint="Rename the folder, or make a link to it with a UTF-8 name and pass the link.",
        ) from None
    return text


def _check_size(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    values = (image_size, image_size) if isinstance(image_size, int) else image_size
    ok = (
        isinstance(values, (tuple, list))
        and len(values) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in values)
    )
    if not ok:
        raise fail(
            "image_size: wrong value", expected="an integer 1..4096 or (height, width)", received=repr(image_size)
        )
    return (int(values[0]), int(values[1]))


def _check_color_mode(color_mode: str | None) -> ColorMode | None:
    if color_mode is None or color_mode in COLOR_MODES:
        return color_mode
    from search._errors import did_you_mean

    raise fail(
        f"unknown color_mode {color_mode!r}",
        expected="one of " + ", ".join(COLOR_MODES),
        received=repr(color_mode),
        hint=did_you_mean(str(color_mode), COLOR_MODES),
    )


def reload_recorded(source: str, seed: int, expected: str | None, *, search: str, fix: str) -> DataBundle:
    """A search's data loaded again as the search recorded it (``source``, split ``seed``) and checked by
    its ``expected`` fingerprint, the one place that does it (workers, export, report). A mismatch (the
    folder changed, another source) raises :class:`DataError` naming both fingerprints and ``fix``."""
    from search.data._errors import DataError

    bundle = load_dataset(source, seed=seed)
    if bundle.fingerprint != expected:
        raise DataError(
            f"the data of search {search!r} cannot be reloaded as it was: expected fingerprint {expected} "
            f"({source!r}, seed {seed}), received {bundle.fingerprint}." + (f" {fix}" if fix else "")
        )
    return bundle
