"""The checks of a folder's images kept between scans, so that a second scan of 50,000 images opens
only the files that changed.

Every image of a folder is opened, verified and fully decoded once by :func:`search.data._folder.scan_folder`
(a truncated JPEG shows itself only when decoded). What a check found (the file's digest, size and
colour, or why it is skipped) is kept here per file, under the file's identity as the system sees it:
its size, modification time and change time in nanoseconds and its inode, as git's index keeps them.
A file whose identity is unchanged is not opened again; a new, changed or replaced file is checked as
before. The classes, the walk's rules and the order come from the walk each time: only the per-file
checks are kept.

Where: one JSON file per folder (named by a digest of its real path, the pixel limit and the decoder,
whose answers the checks depend on) in the ``scans`` folder of cnn-search's cache (``$CNN_SEARCH_CACHE``,
else ``$XDG_CACHE_HOME/cnn-search``, else ``~/.cache/cnn-search``, as for the empty MLflow store kept
there); ``CNN_SEARCH_SCAN_CACHE=off`` (or a folder that cannot be written) scans without it. It is
written whole and renamed into place, so a scan killed half-way leaves the previous one; an
unreadable or foreign file is ignored and replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

VERSION = 1
#: A check's result as kept: ``[digest, height, width, colour]``, or the reason the file is skipped.
Found = list[Any] | str


def cache_dir() -> Path | None:
    """Where the scans are kept (see the module docstring); None when turned off."""
    if os.environ.get("CNN_SEARCH_SCAN_CACHE", "").strip().lower() in ("0", "off", "false", "no"):
        return None
    from search._cache import cache_root

    return cache_root() / "scans"


def identity(path: str) -> list[int] | None:
    """What says a file is unchanged: size, mtime and ctime in ns, inode; None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class ScanCache:
    """The kept checks of one folder: :meth:`get` a file's, :meth:`put` new ones, :meth:`save` them."""

    def __init__(self, root: Path, *, depends_on: str) -> None:
        self.depends_on = depends_on
        folder = cache_dir()
        key = hashlib.sha256(f"{root.resolve()}\0{depends_on}".encode(errors="surrogateescape")).hexdigest()[:32]
        self.path = None if folder is None else folder / f"{key}.json"
        self.entries: dict[str, list[Any]] = {}
        self.changed = False
        if self.path is not None:
            with contextlib.suppress(OSError, ValueError):
                kept = json.loads(self.path.read_text())
                if kept.get("version") == VERSION and kept.get("depends_on") == depends_on:
                    self.entries = dict(kept["files"])

    def get(self, path: str) -> tuple[Found | None, list[int] | None]:
        """(the kept result for ``path`` if its identity is unchanged, else None; its identity now)."""
        now = identity(path)
        kept = self.entries.get(path)
        if now is None or kept is None or kept[0] != now:
            return None, now
        return kept[1], now

    def put(self, path: str, now: list[int] | None, found: Found) -> None:
        if now is not None:
            self.entries[path] = [now, found]
            self.changed = True

    def save(self, paths: set[str]) -> None:
        """Keep the entries of ``paths`` (the files of this scan), written whole and renamed into place;
        nothing when nothing changed or the folder cannot be written."""
        stale = set(self.entries) - paths
        if self.path is None or not (self.changed or stale):
            return
        kept = {p: e for p, e in self.entries.items() if p in paths}
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".scan-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump({"version": VERSION, "depends_on": self.depends_on, "files": kept}, out)
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
