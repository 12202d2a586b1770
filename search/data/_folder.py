"""A folder of class sub-folders: list the images and check every file up front, by path, with Pillow.

Rules (decisions recorded here and in the README):

* classes are the non-hidden sub-folders of the root, sorted by name; images are found at any depth
  inside them; hidden files and folders (``.name``) are ignored, and so are files whose extension is
  not an image one (``.png .jpg .jpeg .bmp .gif``, matched case-insensitively);
* every image is opened, verified and fully decoded once (a 0-byte file, a truncated JPEG, a text
  file named ``.png``, a format TensorFlow cannot decode); a bad file is skipped and reported with
  its reason, or the whole folder is refused under ``strict=True``; what each check found is kept
  between scans (search/data/_scan_cache.py), so a rescan opens only new or changed files;
* a symbolic link that resolves outside the root is refused the same way (skipped, or an error
  under ``strict``): it is not followed, not even once (the root is the dataset a search records and
  reloads; a link out of it may reach anything, ``/`` included); inside the root, every real folder is
  walked first, then the class folders that are links, then the links to folders inside the classes,
  each real folder once (by its real path): a link back into the walk (a loop, a second way to the
  same images, a class folder linked to another class's) is skipped and said with the number of
  images it would have counted again ("its N image(s) counted once"), and a link that cannot be
  followed (links pointing at each other) is skipped with the system's reason, so a walk always ends,
  no folder's images count twice and the images of a class stay in it; a link to one file inside
  the root is an image of the link's class (a deliberate reuse, as before);
* a class folder whose name is not UTF-8 is named with those bytes escaped (``c\\xe9t``), and the
  paths go to ``tf.data`` as bytes, so such files are read (a data root not UTF-8 is refused by
  :func:`search.data.load_dataset`: MLflow cannot record it);
* an image with more pixels than Pillow's ``Image.MAX_IMAGE_PIXELS`` (a decompression-bomb guard)
  is skipped the same way, its size and the limit given as the reason; Pillow's warning between
  the limit and twice it counts as the refusal too (:mod:`search.data._pixels`);
* a class folder with no image is an error naming it (a class without images can be neither
  learned nor evaluated), and so are fewer than two classes.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from search.data._errors import DataError, fail
from search.data._pixels import bomb_types, bomb_warnings_as_errors, image_pixels, pixel_limit

if TYPE_CHECKING:
    from PIL import Image

IMAGE_EXTENSIONS: Final = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
#: What ``tf.io.decode_image`` reads; anything else Pillow opens (TIFF, WebP...) is skipped.
_DECODABLE: Final = ("PNG", "JPEG", "BMP", "GIF")
GREY_MODES: Final = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


@dataclass(frozen=True)
class ImageFile:
    """One checked image: its path, class index, content digest, size (height, width), colour or not."""

    path: str
    label: int
    digest: str
    size: tuple[int, int]
    color: bool


@dataclass(frozen=True)
class Scan:
    """The result of checking a folder: classes in order, the usable images, the skipped files."""

    root: Path
    class_names: tuple[str, ...]
    files: tuple[ImageFile, ...]
    skipped: tuple[tuple[str, str], ...]


def scan_folder(root: Path, *, strict: bool = False) -> Scan:
    """List and check every image under ``root``; see the module docstring for the rules."""
    if not root.is_dir():
        raise fail(f"{root}: no such folder", expected="a folder of class sub-folders", received=str(root))
    skipped: list[tuple[str, str]] = []
    classes = _walk(root, root.resolve(), skipped)
    _check_classes(root, classes, dict(skipped))
    paths = [(path, label) for label, (_, files) in enumerate(classes) for path in files]
    results = _checked(root, paths)
    files = tuple(r for r in results if isinstance(r, ImageFile))
    skipped += [(path, r) for (path, _), r in zip(paths, results, strict=True) if isinstance(r, str)]
    skipped.sort()
    if strict and skipped:
        listing = "\n".join(f"  {path}: {reason}" for path, reason in skipped)
        raise DataError(
            f"{root}: {len(skipped)} unusable file(s), refused under strict mode; expected readable PNG, JPEG, "
            f"BMP or GIF images inside the dataset root, received:\n{listing}",
            paths=[path for path, _ in skipped],
        )
    names = class_names([name for name, _ in classes])
    kept = {f.label for f in files}
    for label, (name, _) in enumerate(classes):
        if label not in kept:
            bad = [path for path, reason in skipped if Path(path).is_relative_to(Path(root) / name)]
            raise fail(
                f"{Path(root) / name}: class {names[label]!r} has no readable image",
                expected="at least one readable image per class",
                received=f"{len(bad)} file(s), all skipped (" + "; ".join(_reasons(bad, skipped)) + ")",
            )
    return Scan(root, names, files, tuple(skipped))


def _checked(root: Path, paths: list[tuple[str, int]]) -> list[ImageFile | str]:
    """:func:`_check_image` of every ``(path, label)``, in order: the files unchanged since the last scan
    of ``root`` from its kept checks (search/data/_scan_cache.py), the others opened and checked."""
    from search._backend import name
    from search.data._scan_cache import ScanCache

    cache = ScanCache(root, depends_on=f"pixels<={pixel_limit()};decoder={name()}")
    kept = [cache.get(path) for path, _ in paths]
    todo = [i for i, (found, _) in enumerate(kept) if found is None]
    with bomb_warnings_as_errors(), ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        fresh = dict(zip(todo, pool.map(lambda i: _check_image(*paths[i]), todo), strict=True))
    results: list[ImageFile | str] = []
    for i, ((path, label), (found, now)) in enumerate(zip(paths, kept, strict=True)):
        if i in fresh:
            result = fresh[i]
            cache.put(path, now, result if isinstance(result, str) else [result.digest, *result.size, result.color])
        elif isinstance(found, str):
            result = found
        else:
            digest, height, width, color = found  # type: ignore[misc]
            result = ImageFile(path, label, digest, (height, width), color)
        results.append(result)
    cache.save({path for path, _ in paths})
    return results


def class_names(folders: list[str]) -> tuple[str, ...]:
    """The class names of the class folders: a folder name whose bytes are not UTF-8 (kept by Python as
    surrogates, which no file, JSON or MLflow text can hold) is named with those bytes escaped
    (``c\\xe9t``); two folders that would then share a name are refused."""
    names = tuple(os.fsencode(name).decode("utf-8", "backslashreplace") for name in folders)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise fail(
            f"two class folders named {twice[0]!r}",
            expected="class folder names that differ once their bytes that are not UTF-8 are escaped",
            received=", ".join(repr(f) for f, n in zip(folders, names, strict=True) if n == twice[0]),
            hint="Rename one of them (UTF-8 names).",
        )
    return names


def _walk(root: Path, real_root: Path, skipped: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """The class folders of ``root`` and the image paths of each, sorted by class name: the real class folders
    first, then the class folders that are links (a link to the root or to a folder already walked is no
    class: skipped and said), then the links to folders found inside them (:func:`_follow`)."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise fail(
            f"{root}: cannot read this folder ({exc.strerror or exc})",
            expected="a readable folder of class sub-folders",
            received=str(root),
            hint="Check its permissions.",
        ) from None
    seen: dict[Path, str] = {real_root: str(root)}  # every folder walked, by its real path: the path reaching it
    found: list[tuple[str, list[str], list[Path]]] = []  # (class name, its images, its links to folders)
    for link in (False, True):
        for entry in entries:
            try:
                if entry.name.startswith(".") or entry.is_symlink() != link or not entry.is_dir():
                    continue
            except OSError as exc:
                skipped.append((entry.path, f"a symbolic link that cannot be followed ({exc.strerror or exc})"))
                continue
            if not _outside(entry, real_root, skipped) and _first(Path(entry.path), seen, skipped):
                links: list[Path] = []
                found.append((entry.name, list(_images(Path(entry.path), real_root, skipped, seen, links)), links))
    found.sort(key=lambda item: item[0])
    classes = [(name, files) for name, files, _ in found]
    _follow(classes, [links for _, _, links in found], real_root, skipped, seen)
    return classes


def _reasons(bad: list[str], skipped: list[tuple[str, str]]) -> list[str]:
    reasons = dict(skipped)
    return [f"{Path(p).name}: {reasons[p]}" for p in bad[:3]] + (["..."] if len(bad) > 3 else [])


def _check_classes(root: Path, classes: list[tuple[str, list[str]]], reasons: dict[str, str]) -> None:
    empty = [name for name, files in classes if not files]
    unread = next((name for name in empty if str(root / name) in reasons), None)
    if unread is not None:  # a class folder the system would not list: not "empty"
        raise fail(
            f"{root / unread}: class folder {unread!r} cannot be read",
            expected="a class folder whose images can be listed",
            received=reasons[str(root / unread)],
            hint="Check its permissions (the user running the search must be able to list it).",
        )
    if empty:
        raise fail(
            f"{root / empty[0]}: empty class folder {empty[0]!r}"
            + (f" (and {', '.join(repr(e) for e in empty[1:])})" if len(empty) > 1 else ""),
            expected="at least one image (" + " ".join(IMAGE_EXTENSIONS) + ") in every class folder",
            received="none",
            hint="Remove the folder or add images to it.",
        )
    if len(classes) < 2:
        loose = sum(1 for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        raise fail(
            f"{root}: fewer than two classes",
            expected="at least 2 class sub-folders, each holding the images of one class",
            received=f"{len(classes)} class folder(s)"
            + (f" ({classes[0][0]!r})" if classes else "")
            + (f" and {loose} image(s) directly in the root" if loose else ""),
        )


def _outside(entry: os.DirEntry[str], real_root: Path, skipped: list[tuple[str, str]]) -> bool:
    """True (and recorded) when ``entry`` is a symbolic link that resolves outside the root."""
    if not entry.is_symlink():
        return False
    target = Path(entry.path).resolve()
    if target.is_relative_to(real_root):
        return False
    skipped.append((entry.path, f"symbolic link resolves outside the dataset root (to {target})"))
    return True


def _images(
    folder: Path, real_root: Path, skipped: list[tuple[str, str]], seen: dict[Path, str], links: list[Path]
) -> Iterator[str]:
    """Image paths under ``folder``, sorted, depth first, walked with a stack of listings (not recursion, so
    a folder nested thousands deep is walked too). Links to folders are not followed here but put in
    ``links``, followed once the real folders are all walked (:func:`_follow`); ``seen`` maps each real
    folder walked to the path it was reached by."""
    stack = [(_listing(folder, skipped), folder.resolve())]  # (entries left, the folder's real path)
    while stack:
        listing, real = stack[-1]
        entry = next(listing, None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        try:
            is_dir, is_file = entry.is_dir(), entry.is_file()
        except OSError as exc:  # ELOOP: links that point at each other
            skipped.append((entry.path, f"a symbolic link that cannot be followed ({exc.strerror or exc})"))
            continue
        image = Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS
        if not (is_dir or image) or _outside(entry, real_root, skipped):
            continue
        if is_dir and entry.is_symlink():
            links.append(Path(entry.path))
        elif is_dir and _first(Path(entry.path), seen, skipped, real / entry.name):  # no link: no resolve
            stack.append((_listing(Path(entry.path), skipped), real / entry.name))
        elif is_file:
            yield entry.path
        elif not is_dir:
            skipped.append((entry.path, "not a regular file (a broken link?)"))


def _listing(folder: Path, skipped: list[tuple[str, str]]) -> Iterator[os.DirEntry[str]]:
    """The entries of ``folder`` sorted by name; none (the folder skipped and said) when it cannot be read."""
    try:
        with os.scandir(folder) as scan:
            return iter(sorted(scan, key=lambda e: e.name))
    except OSError as exc:
        skipped.append((str(folder), f"cannot read this folder ({exc.strerror or exc})"))
        return iter(())


def _first(folder: Path, seen: dict[Path, str], skipped: list[tuple[str, str]], target: Path | None = None) -> bool:
    """Whether ``folder`` (whose real path is ``target``, found when not given) is reached for the first time
    (recorded); else it is skipped and said, with the number of images the link would have counted again."""
    target = folder.resolve() if target is None else target
    if target in seen:
        n = _count_images(target)
        skipped.append(
            (str(folder), f"the same folder as {seen[target]} (reached again by a link): its {n} image(s) counted once")
        )
        return False
    seen[target] = str(folder)
    return True


def _count_images(folder: Path) -> int:
    """Image files under ``folder``, links not followed (so the count always ends): for the message only."""
    count, stack = 0, [folder]
    while stack:
        for entry in _listing(stack.pop(), []):
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                    count += 1
            except OSError:
                continue
    return count


def _follow(
    classes: list[tuple[str, list[str]]],
    links_of: list[list[Path]],
    real_root: Path,
    skipped: list[tuple[str, str]],
    seen: dict[Path, str],
) -> None:
    """Walk the links to folders found in each class, once every real folder is walked: a link into the
    walk (a loop, a second way to the same images) is skipped and said; one to a folder not walked yet
    is walked once, its images in the class of the link."""
    for (_, files), links in zip(classes, links_of, strict=True):
        while links:
            link = links.pop(0)
            if _first(link, seen, skipped):
                files.extend(_images(link, real_root, skipped, seen, links))


#: A JPEG is checked (decoded, its colour looked at) at the smallest DCT scale (1/2 to 1/8) that keeps both
#: sides at least this long: a truncated or corrupt file still fails, since every byte is still decoded, and
#: colour is seen in any patch of 8x8 pixels or more; the first scan of a folder of photos then costs less
#: than decoding its files once (docs/results.md: the large-folder benchmark).
_DRAFT_SIDE = 64


def _check_image(path: str, label: int) -> ImageFile | str:
    """An :class:`ImageFile`, or the reason the file cannot be used."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"cannot read the file ({exc.strerror or exc})"
    if not data:
        return "empty file (0 bytes)"
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            mode = image.mode
            if kind == "JPEG":  # DCT scaling: every byte is still read, the pixels are made at 1/2-1/8 scale
                image.draft(mode, (_DRAFT_SIDE, _DRAFT_SIDE))
            image.load()  # verify() does not decode: this catches truncated files
            color = has_color(image)
    except UnidentifiedImageError:
        return "not an image (no known image format in its bytes)"
    except bomb_types() as exc:  # over Pillow's Image.MAX_IMAGE_PIXELS: refused before decoding
        return f"image too large: {image_pixels(exc, data)}, over the limit of {pixel_limit()}"
    except Exception as exc:  # any other decoder failure means a corrupt or truncated file
        text = " ".join(str(exc).split()) or type(exc).__name__
        return f"corrupt or truncated image ({text[:120]})"
    if kind not in _DECODABLE:
        return f"{kind} data, which TensorFlow cannot decode (expected PNG, JPEG, BMP or GIF)"
    if kind == "BMP" and not _tf_reads(data):
        return f"a BMP variant (mode {mode}) that TensorFlow cannot decode"
    return ImageFile(path, label, hashlib.sha256(data).hexdigest(), (height, width), color)


def has_color(image: Image.Image) -> bool:
    """True when some pixel of ``image`` is not grey (R, G and B differ); grey modes never have colour."""
    import numpy as np

    if image.mode in GREY_MODES:
        return False
    rgb = np.asarray(image.convert("RGB"))
    return bool(np.any(rgb[..., 0] != rgb[..., 1]) or np.any(rgb[..., 1] != rgb[..., 2]))


def _tf_reads(data: bytes) -> bool:
    """Whether the training decoder reads ``data``: ``tf.io.decode_image`` on TensorFlow; without it, Pillow
    (the files were already narrowed to the formats ``tf.io`` reads, so both backends keep the same files)."""
    from search._backend import name

    if name() != "tensorflow":
        import io

        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as image:
                image.convert("RGB")
        except Exception:
            return False
        return True
    import tensorflow as tf

    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError):
        return False
    return True
