"""Optuna storage from a URL, turned into an object once, at the boundary.

Default: a journal file ``runs/optuna.journal`` (Optuna's JournalStorage with a file lock), which is
safe for several local processes without a server; Optuna's FAQ advises against SQLite for that.
``sqlite:///...``, ``postgresql://...`` and ``mysql://...`` URLs go to RDBStorage; a path ending
in ``.journal`` (or ``journal:///path``) to a journal file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from search._errors import SearchError

if TYPE_CHECKING:
    import optuna


def default_storage_url(runs_dir: Path) -> str:
    return str((runs_dir / "optuna.journal").resolve())


def get_storage(url: str) -> optuna.storages.BaseStorage:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if url.startswith("journal:///"):
        url = url.removeprefix("journal://")
    if url.endswith(".journal") and "://" not in url:
        path = Path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if url.split("://")[0].split("+")[0] in ("sqlite", "postgresql", "mysql"):
        return optuna.storages.RDBStorage(url)
    raise SearchError(
        f"--storage: unknown storage {url!r}; expected a .journal file path, sqlite:///..., "
        f"postgresql://... or mysql://..."
    )
