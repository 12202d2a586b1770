"""cnn-search's own cache folder: the empty MLflow store copied for new stores, a folder's kept scans."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$CNN_SEARCH_CACHE``, else ``$XDG_CACHE_HOME/cnn-search``, else ``~/.cache/cnn-search``."""
    chosen = os.environ.get("CNN_SEARCH_CACHE")
    if chosen:
        return Path(chosen)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnn-search"
