"""The ``--out`` folder of an export: what may be written there, and how, so that nothing a user owns is lost.

An export used to replace ``--out`` whole: a folder holding a user's own files was emptied, and
``--out runs`` deleted every search in the store. Now, before anything is loaded or converted,
:func:`check_out` decides how the bundle goes in, the way MLflow's ``save_model`` (refuses a path that
exists and is not empty) and Hugging Face's ``save_pretrained`` (writes beside what is there) do:

* **new**: ``--out`` does not exist. The bundle is built in a hidden sibling folder and renamed into
  place whole.
* **swap**: ``--out`` is a bundle an earlier export wrote (it has ``SHA256SUMS`` and ``model_card.json``
  and every file in it is listed in ``SHA256SUMS``). It is replaced atomically: built beside, then two
  renames (the old bundle aside, the new one in); a kill before them leaves the old bundle as it was,
  a kill between them is repaired by the next export (:func:`recover`). A bundle that is the current
  folder, or above it, is written **into** instead.
* **into**: ``--out`` is an empty folder, or holds other files and ``--force`` was given. The bundle's
  files are built beside, then moved in one by one (``SHA256SUMS`` last, so a kill midway leaves a folder
  whose sums do not check), replacing only files and folders of the bundle's own names; every other file
  stays. The folder itself is never renamed or removed (it may be the current directory).
* Anything else (a folder with files that are not a bundle, ``--force`` not given) is refused with the
  files it holds and the fix: ``--out`` a new folder, or ``--force``.

``--out`` is made absolute first, so ``--out .`` is the current folder by its name; ``--out /`` is
refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from search._errors import SearchError

log = logging.getLogger("search")

Mode = Literal["new", "swap", "into"]
SUMS = "SHA256SUMS"
CARD = "model_card.json"
_FIX = "Pass --out a folder you can write to"


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` (links included, not followed), as POSIX paths relative to it."""
    found = []
    for root, dirs, names in os.walk(folder):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.append(Path(root, name).relative_to(folder).as_posix())
    return sorted(found)


def is_bundle(folder: Path) -> bool:
    """``folder`` holds a bundle of this package and nothing else (every file listed in its ``SHA256SUMS``)."""
    sums, card = folder / SUMS, folder / CARD
    if not (sums.is_file() and card.is_file()):
        return False
    try:
        listed = {line.split("  ", 1)[1] for line in sums.read_text().splitlines() if "  " in line}
    except (OSError, UnicodeDecodeError):
        return False
    return all(f in listed for f in _files(folder) if f != SUMS)


def check_out(out: Path, *, force: bool = False) -> tuple[Path, Mode]:
    """(the absolute ``out``, how the bundle goes in): see the module docstring. Refuses, before any work,
    an ``out`` that cannot be written or that holds files the export would not keep."""
    out = Path(os.path.abspath(out))
    if out == out.parent:
        raise SearchError(f"--out {out}: the root folder; expected a folder for the bundle. {_FIX}.")
    _check_writable(out)
    if not os.path.lexists(out):
        return out, "new"
    others = _files(out)
    if not others:
        return out, "into"
    if is_bundle(out):  # replaced whole, unless it is the current folder (or above it): a shell stays in it
        here = Path(os.path.abspath(os.getcwd()))
        return out, "into" if here == out or out in here.parents else "swap"
    if force:
        return out, "into"
    shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    raise SearchError(
        f"--out {out}: holds {len(others)} file(s) that are not a cnn-search bundle ({shown}); expected a new or "
        "empty folder, or a bundle an earlier export wrote. Nothing was written. Pass --out a new folder, or "
        "--force to write the bundle's files into it beside the others (files of the bundle's names are replaced)."
    )


def _check_writable(out: Path) -> None:
    """Refuse an ``out`` the bundle cannot be written to, before anything is made.

    The bundle is built in a sibling of ``out`` and moved into place, so what must be writable is
    ``out``'s parent, or the nearest folder above it that exists (the missing ones are created). It
    is probed by creating (and removing) an empty folder there: permission bits alone do not tell
    (root ignores them, a read-only mount or ``/proc`` refuses root too).
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise SearchError(
            f"--out {out}: not a folder; expected a folder for the bundle (existing or to be created), "
            f"received a file. {_FIX}, or move the file away."
        )
    base = out.parent
    while not os.path.exists(base) and base != base.parent:
        base = base.parent
    if not os.path.isdir(base):
        raise SearchError(
            f"--out {out}: cannot create the bundle folder, {base} is a file; expected a path whose parents are "
            f"folders, received a file at {base}. {_FIX}."
        )
    try:
        probe = tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=base)
    except OSError as exc:
        raise SearchError(
            f"--out {out}: cannot write there; expected a folder where the bundle can be created, received an "
            f"error creating a folder in {base}: {exc.strerror or exc}. {_FIX}, or make {base} writable "
            "(chmod u+w, or a read-write mount)."
        ) from None
    os.rmdir(probe)


def partial_folder(out: Path) -> Path:
    """A fresh folder beside ``out`` that the bundle is written into before it is published (an earlier
    export's leftovers recovered first)."""
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        recover(out)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as exc:  # what the probe of _check_writable could not foresee (a folder that cannot be searched)
        raise SearchError(f"--out {out}: cannot write there ({exc}); no bundle written. {_FIX}.") from None
    return tmp


def publish(tmp: Path, out: Path, mode: Mode) -> None:
    """Put the bundle built in ``tmp`` at ``out`` as ``mode`` says (module docstring); ``tmp`` is gone after."""
    if mode == "into":
        _move_into(tmp, out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if mode == "swap" and out.exists():
        os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _move_into(tmp: Path, out: Path) -> None:
    """Move each entry of ``tmp`` into the existing folder ``out``, replacing only entries of the same names;
    ``SHA256SUMS`` last."""
    entries = sorted(tmp.iterdir(), key=lambda p: p.name == SUMS)
    for entry in entries:
        target = out / entry.name
        if target.is_dir() and not target.is_symlink():
            aside = out.parent / f".{out.name}.old-{os.getpid()}-{entry.name}"
            os.rename(target, aside)
            os.rename(entry, target)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(entry, target)
    tmp.rmdir()


def recover(out: Path) -> None:
    """Undo what a killed export left: a missing bundle with its previous copy aside, partial folders."""
    olds = sorted(out.parent.glob(f".{out.name}.old-*"), key=lambda p: p.stat().st_mtime)
    whole = [p for p in olds if p.name.removeprefix(f".{out.name}.old-").isdigit()]  # a swapped-out bundle
    if not out.exists() and whole:
        os.rename(whole[-1], out)
        log.warning("restored the previous bundle %s left aside by an interrupted export", out)
    for leftover in [*out.parent.glob(f".{out.name}.old-*"), *out.parent.glob(f".{out.name}.partial-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_bundle(bundle: Path) -> list[str]:
    """Files of ``bundle`` whose SHA-256 differs from ``SHA256SUMS`` (or that are missing)."""
    bad = []
    for line in (bundle / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        path = bundle / name
        if not path.is_file() or sha256(path) != digest:
            bad.append(name)
    return bad
