"""The one exception of the data layer: bad data input, found before any training starts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from search._errors import Problem, SearchError


class DataError(SearchError, ValueError):
    """A data source that cannot be used: missing, unreadable, mislabelled or too small.

    The message says what is wrong, what was expected and what was received. ``paths`` lists the
    files at fault, when there are files at fault (a folder refused under ``strict=True``).
    """

    def __init__(self, message: str, *, paths: Sequence[str] = ()) -> None:
        self.paths = tuple(paths)
        super().__init__(message)

    @classmethod
    def from_problems(cls, problems: Iterable[Problem]) -> DataError:
        """One error listing every problem, one per line."""
        return cls("\n".join(str(p) for p in problems))


def fail(what: str, *, expected: str | None = None, received: str | None = None, hint: str | None = None) -> DataError:
    """A :class:`DataError` phrased "what; expected X, received Y. Hint"."""
    text = what
    if expected is not None:
        text += f"; expected {expected}"
    if received is not None:
        text += f", received {received}" if expected is not None else f"; received {received}"
    text += "."
    if hint:
        text += f" {hint}"
    return DataError(text)


def special_kind(path: Path) -> str | None:
    """What stands at ``path`` when it is there but is no regular file ("a folder", "a FIFO (named pipe)",
    a socket, a device: reading a FIFO would hang), or None when nothing is there or it is a regular file."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    return mode_kind(mode)


def mode_kind(mode: int) -> str | None:
    """:func:`special_kind` of a file's ``st_mode``: None for a regular file."""
    import stat

    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")
