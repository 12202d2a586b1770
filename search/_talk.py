"""What ``run_search`` says from Python, like Keras's ``fit(verbose=...)``: ``verbose=1`` (the default) a
line per finished trial, what the search found and the winner; ``2`` also a line per trial start and per
epoch; ``0`` nothing. TensorFlow's and MLflow's own noise is quieted as ``cnn-search run`` quiets it
(:func:`search._quiet.quiet_libraries`).

A caller that has set up the ``search`` logger itself (``cnn-search run`` does, with its live display)
keeps it: ``run_search`` then adds no handler and no lines of its own.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def talking(verbose: int) -> Iterator[tuple[Any, ...] | None]:
    """Inside the block the ``search`` logger speaks at ``verbose``; yields the callbacks that add the
    epoch lines (``verbose=2``), or None when the caller's own logging is in place (nothing added)."""
    from search._quiet import quiet_libraries

    logger = logging.getLogger("search")
    if logger.handlers:  # the caller's (the CLI's live display and lines): left as they are
        yield None
        return
    quiet_libraries()
    handler: logging.Handler = logging.NullHandler() if verbose <= 0 else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose > 0 else logging.CRITICAL + 1)
    logger.propagate = verbose > 0 and propagate
    try:
        if verbose >= 2:
            from search._progress import PlainLines

            yield (PlainLines(sys.stderr),)
        else:
            yield ()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
