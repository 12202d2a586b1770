"""A folder's images decoded and resized once, kept on disk, and shared by every process of a search.

A folder source was decoded by each worker's ``tf.data`` pipeline, and held in that worker's memory when
its split fitted in 256 MiB: two workers held two copies, and a folder too big for the in-memory cache was
decoded again every epoch (half of ``tf.data``'s own rate on 10,000 JPEGs, issue 35). Now the first
process that needs a folder's pixels decodes every image once, at the bundle's size and colour, into one
uint8 array file (``.npy``, rows sorted by the files' content digests, so every split, seed and fold of
the same images reads the same file); every process then memory-maps it. The pages are the system's file
cache, shared by all the workers and given back under pressure, so what a search holds does not grow with
the number of images (measured in ``benchmarks/large_folder.py``), and each batch is a copy of its rows.

Decisions:

* where: the ``pixels`` folder of cnn-search's cache (``$CNN_SEARCH_CACHE``, else
  ``$XDG_CACHE_HOME/cnn-search``, else ``~/.cache/cnn-search``), one file per (images, size, colour,
  decoder), named by a digest of them; ``CNN_SEARCH_PIXEL_CACHE=off`` turns it off (the images are then
  decoded by the pipeline each epoch, cached in memory when a split fits in 256 MiB, as before);
* one build at a time: the builder holds an exclusive lock (``flock``) on the file's ``.lock`` while it
  writes a temporary file, renamed into place once whole; another process waits for it and then reads
  the finished file, so two workers never decode the same folder twice, and a build killed half-way
  leaves no file that could be read as whole;
* room: a build needs the array's size free on the disk plus 1 GiB, and the files kept are at most
  ``CNN_SEARCH_PIXEL_CACHE_GB`` (default 50) in all, the least recently used removed first (a process
  that has one mapped keeps reading it: the system frees a removed file's pages once nothing maps them);
  without room, the folder is streamed as without the cache, said once as a warning on the ``search`` logger.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import numpy as np

VERSION: Final = 1
#: Free disk a build leaves beyond the array's own size.
MARGIN_BYTES: Final = 2**30
_LOG = logging.getLogger("search")


def cache_dir() -> Path | None:
    """Where the arrays are kept (see the module docstring); None when turned off."""
    if os.environ.get("CNN_SEARCH_PIXEL_CACHE", "").strip().lower() in ("0", "off", "false", "no"):
        return None
    from search._cache import cache_root

    return cache_root() / "pixels"


def limit_bytes() -> int:
    """``CNN_SEARCH_PIXEL_CACHE_GB`` (default 50) in bytes: the most the kept arrays take in all."""
    text = os.environ.get("CNN_SEARCH_PIXEL_CACHE_GB", "").strip()
    try:
        gigabytes = float(text) if text else 50.0
    except ValueError:
        gigabytes = 50.0
    return int(max(0.0, gigabytes) * 2**30)


class PixelCache:
    """The decoded images of a set of files (``digest -> path``) at ``image_shape``: :meth:`rows` maps a
    split's digests to rows of :meth:`array`, the memory-mapped uint8 array (None when unavailable)."""

    def __init__(self, paths: dict[str, str], image_shape: tuple[int, int, int], *, decoder: str) -> None:
        self.digests = np.array(sorted(paths), dtype="S64")
        self.paths = [paths[d.decode()] for d in self.digests]
        self.shape = (len(self.paths), *image_shape)
        key = hashlib.sha256(repr((VERSION, image_shape, decoder)).encode())
        key.update(b"".join(self.digests.tolist()))
        folder = cache_dir()
        self.path = None if folder is None else folder / f"{key.hexdigest()[:32]}.npy"
        self._array: np.ndarray | None = None
        self._failed = False
        #: Whether this process decoded the images (False when it found them kept).
        self.built = False

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def rows(self, digests: Sequence[str]) -> np.ndarray:
        """The rows holding the images whose content digests are ``digests``, in that order."""
        return np.searchsorted(self.digests, np.array(digests, dtype="S64")).astype(np.int64)

    def array(self, decode_into: Callable[[np.ndarray, list[str]], None]) -> np.ndarray | None:
        """The images, memory-mapped read-only: the kept file, or one built now by ``decode_into(out, paths)``
        (which fills ``out`` with the images of ``paths``, in order); None when the cache is off or there
        is no room (said once)."""
        if self._array is not None or self._failed or self.path is None:
            return self._array
        try:
            found = self._open()
            self._array = found if found is not None else self._build(decode_into)
        except OSError as exc:
            self._array = None
            _LOG.warning("decoded-image cache unavailable (%s): the images are decoded each epoch", exc)
        self._failed = self._array is None
        return self._array

    def _open(self) -> np.ndarray | None:
        """The kept file when it is whole and of the right shape (its use recorded, for eviction); else None."""
        assert self.path is not None
        try:
            array = np.load(self.path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        if array.shape != self.shape or array.dtype != np.uint8:
            return None
        with contextlib.suppress(OSError):
            os.utime(self.path)
        return array

    def _build(self, decode_into: Callable[[np.ndarray, list[str]], None]) -> np.ndarray | None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even if this process dies
            found = self._open()  # built by another process while this one waited
            if found is not None:
                return found
            for stale in self.path.parent.glob(f".{self.path.stem}-*.npy"):  # left by a build killed half-way
                stale.unlink(missing_ok=True)
            if not self._room():
                return None
            tmp = self.path.with_name(f".{self.path.stem}-{os.getpid()}.npy")
            try:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=self.shape)
                decode_into(out, self.paths)
                out.flush()
                del out
                os.replace(tmp, self.path)
                self.built = True
                _LOG.info("decoded %d images into %s", len(self.paths), self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            return self._open()

    def _room(self) -> bool:
        """Whether the array fits (the least recently used arrays removed to keep the limit); said when not."""
        assert self.path is not None
        folder, limit = self.path.parent, limit_bytes()
        kept = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in folder.glob("[!.]*.npy") if p != self.path)
        total = sum(size for _, size, _ in kept)
        while kept and total + self.nbytes > limit:
            _, size, oldest = kept.pop(0)
            with contextlib.suppress(OSError):
                oldest.unlink()
                total -= size
        free = shutil.disk_usage(folder).free
        if self.nbytes > limit or free < self.nbytes + MARGIN_BYTES:
            _LOG.warning(
                "decoded-image cache: no room for %.1f GB in %s (%.1f GB free, limit %.1f GB: "
                "CNN_SEARCH_PIXEL_CACHE_GB): the images are decoded each epoch",
                self.nbytes / 1e9,
                folder,
                free / 1e9,
                limit / 1e9,
            )
            return False
        return True
