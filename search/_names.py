"""Search names: checked once, at the boundary, because a name becomes a folder name
(``runs/models/NAME``, ``runs/keras_tuner/NAME``, ``runs/mlartifacts/NAME``), an MLflow experiment
and a registered model name.

Decision: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at most
:data:`MAX_LENGTH` characters. That is a single path component on every file system (no ``/``, no
``..`` and no leading dot), and a name MLflow's registry and UI accept. A default name (``SPACE-DATA``)
is made safe by :func:`safe_name` instead of being refused: a folder called ``my photos`` gives
``tiny-my-photos``.
"""

from __future__ import annotations

import re

from search._errors import SearchError

MAX_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(name: str, *, option: str = "--name") -> str:
    """``name`` if it is a valid search name, else a SearchError naming what is wrong.

    >>> check_name("vgg-digits")
    'vgg-digits'
    >>> check_name("../evil")
    Traceback (most recent call last):
    ...
    search._errors.SearchError: --name: '../evil' is not a valid search name (it becomes a folder, an MLflow \
experiment and a model name); expected letters, digits, '.', '_' or '-', starting with a letter or digit, \
at most 100 characters, received '/' in it
    """
    problem = None
    if not name:
        problem = "an empty name"
    elif len(name) > MAX_LENGTH:
        problem = f"{len(name)} characters"
    elif not _NAME.fullmatch(name):
        bad = sorted({c for c in name if not re.fullmatch(r"[A-Za-z0-9._-]", c)})
        problem = f"{', '.join(map(repr, bad))} in it" if bad else f"{name[0]!r} first"
    if problem is None:
        return name
    shown = name if len(name) <= 60 else name[:57] + "..."
    raise SearchError(
        f"{option}: {shown!r} is not a valid search name (it becomes a folder, an MLflow experiment and a model "
        f"name); expected letters, digits, '.', '_' or '-', starting with a letter or digit, at most {MAX_LENGTH} "
        f"characters, received {problem}"
    )


def safe_name(name: str) -> str:
    """``name`` with every run of other characters replaced by ``-`` (for default names).

    >>> safe_name("tiny-my photos (2)")
    'tiny-my-photos-2'
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:MAX_LENGTH]
    return cleaned or "search"
