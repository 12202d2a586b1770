"""The small exception family the rest of the package understands.

* :class:`SpaceError` — bad input (a space file or dict): the search stops before it starts.
* :class:`search.DataError` — bad data (unreadable images, too few classes...): stops before the search.
* :class:`InfeasibleError` — a sampled architecture that cannot be trained (a feature map that
  collapses, a budget overrun): the trial ends as pruned, with the reason, without training.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        where = ""
        if self.file is not None:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        text = f"{where}{self.path or '<top>'}: {self.what}"
        if self.expected is not None:
            text += f"; expected {self.expected}"
        if self.received is not None:
            text += f", received {self.received}"
        text += "."
        if self.hint:
            text += f" {self.hint}"
        return text


class SpaceError(SearchError, ValueError):
    """A search space that is not valid. ``problems`` lists every problem found, each located."""

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InfeasibleError(SearchError):
    """An architecture that cannot be built or trained within the declared budget.

    ``reason`` is a short machine-readable word (``collapse``, ``max_params``, ``max_flops``,
    ``max_activation_bytes``), ``block`` the index of the block at fault, if any.
    """

    def __init__(self, message: str, *, reason: str, block: int | None = None) -> None:
        self.reason = reason
        self.block = block
        super().__init__(message)
