"""Engines choose parameters and schedule trials; everything else is shared (``_session.py``)."""

from search.engines._optuna import PRUNERS, SAMPLERS
from search.engines._optuna_params import OptunaParams
from search.engines._session import SearchInterrupted, SearchResult, Session, TrialEvent
from search.engines._storage import default_storage_url, get_storage

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "OptunaParams",
    "SearchInterrupted",
    "SearchResult",
    "Session",
    "TrialEvent",
    "default_storage_url",
    "get_storage",
]
