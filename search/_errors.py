"""The small exception family the rest of the package understands.

* :class:`SpaceError` — bad input (a space file or dict): the search stops before it starts.
* :class:`search.DataError` — bad data (unreadable images, too few classes...): stops before the search.
* :class:`InfeasibleError` — a sampled architecture that cannot be trained (a feature map that
  collapses, a budget overrun): the trial ends as pruned, with the reason, without training.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


class SearchError(Exception):
    """Base class of every error raised on purpose by ``search``."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a space: where, what, what was expected and what was received."""

    path: str
    what: str
    expected: str | None = None
    received: str | None = None
    hint: str | None = None
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        # The parts that carry what the user wrote (a value, a key) are cut to an excerpt, so a 1 MB
        # string in a space file gives a short message, not a 1 MB one.
        where = ""
        if self.file is not None:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        text = f"{where}{excerpt(self.path, MAX_SHOWN) or '<top>'}: {excerpt(self.what, MAX_SHOWN)}"
        if self.expected is not None:
            text += f"; expected {self.expected}"
        if self.received is not None:
            text += f", received {excerpt(self.received, MAX_RECEIVED)}"
        text += "."
        if self.hint:
            text += f" {self.hint}"
        return text


MAX_RECEIVED = 80
"""Characters of a received value shown in a message; a longer one is cut, with its length."""
MAX_SHOWN = 200
"""Characters shown of the other parts of a message (the key path and what was wrong), each cut like a value."""
MAX_PROBLEMS = 20
"""Problems listed in a :class:`SpaceError`'s message; all of them stay in ``problems``."""


def excerpt(text: str, limit: int = MAX_RECEIVED) -> str:
    """``text`` itself, or its first ``limit`` characters, '…' and its length when it is longer.

    >>> excerpt("x" * 100, 10)
    'xxxxxxxxxx… (100 characters)'
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


class SpaceError(SearchError, ValueError):
    """A search space that is not valid. ``problems`` lists every problem found, each located.

    The message lists the first ``MAX_PROBLEMS`` of them and how many more there are.
    """

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        shown = [str(p) for p in self.problems[:MAX_PROBLEMS]]
        if len(self.problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(self.problems) - MAX_PROBLEMS:,} more problem(s)")
        super().__init__("\n".join(shown))


class InfeasibleError(SearchError):
    """An architecture that cannot be built or trained within the declared budget.

    ``reason`` is a short machine-readable word (``collapse``, ``max_params``, ``max_flops``,
    ``max_activation_bytes``), ``block`` the index of the block at fault, if any.
    """

    def __init__(self, message: str, *, reason: str, block: int | None = None) -> None:
        self.reason = reason
        self.block = block
        super().__init__(message)


#: How option names are written in error messages: run_search's keywords in Python ("python"), the flags of
#: cnn-search's commands on the command line ("cli", set by :func:`cli_spelling`).
_SPELLING: contextvars.ContextVar[str] = contextvars.ContextVar("cnn_search_spelling", default="python")
#: Flags not spelled ``--`` + the keyword with dashes.
#: Flags that are not ``--`` + the keyword with dashes, filled in from the options' declarations
#: (:func:`search._options.options_of`: ``max_worker_rss_mb`` -> ``--max-worker-rss``).
FLAGS: dict[str, str] = {}


def option(keyword: str) -> str:
    """Option ``keyword`` as the user wrote it: ``workers`` in Python, ``--workers`` on the command line.

    >>> option("max_worker_rss_mb")
    'max_worker_rss_mb'
    >>> import search.engines  # the options' declarations say the flags
    >>> with cli_spelling():
    ...     option("max_worker_rss_mb"), option("recycle_after")
    ('--max-worker-rss', '--recycle-after')
    """
    if _SPELLING.get() == "cli":
        return FLAGS.get(keyword, "--" + keyword.replace("_", "-"))
    return keyword


@contextlib.contextmanager
def cli_spelling() -> Iterator[None]:
    """Inside the block, :func:`option` spells options as command-line flags (what ``cnn-search run`` wraps)."""
    token = _SPELLING.set("cli")
    try:
        yield
    finally:
        _SPELLING.reset(token)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The hint for a misspelt word: the closest candidate, if one is close.

    >>> did_you_mean("relu6", ["relu", "elu", "gelu"])
    "Did you mean 'relu'?"
    """
    match = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    return f"Did you mean {match[0]!r}?" if match else None


def show(value: Any) -> str:
    """A received value in words, with its type where that is the point."""
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value!r} (a float)"
    if isinstance(value, (list, dict)):
        return repr(value)
    return repr(value)
