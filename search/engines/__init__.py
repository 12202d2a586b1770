"""Engines choose parameters and schedule trials; everything else is the runtime they share (:mod:`search.runtime`).

Importing this package registers the engines that come with cnn-search (:data:`ENGINES`, in
``--engine``'s order): each module defines one :class:`Engine` subclass (``_base.py`` says what it implements).
"""

from search.engines._autokeras import AutoKerasEngine
from search.engines._base import ENGINES, Engine, SearchOptions, get_engine, register_engine
from search.engines._keras_tuner import KerasTunerEngine
from search.engines._optuna import PRUNERS, SAMPLERS, OptunaEngine
from search.engines._optuna._params import OptunaParams
from search.runtime._session import SearchInterrupted, SearchResult, Session, TrialEvent
from search.runtime._storage import default_storage_url, get_storage

for _name in ("optuna", "keras-tuner", "autokeras"):  # --engine's order, the default first
    ENGINES[_name] = ENGINES.pop(_name)

__all__ = [
    "ENGINES",
    "PRUNERS",
    "SAMPLERS",
    "AutoKerasEngine",
    "Engine",
    "KerasTunerEngine",
    "OptunaEngine",
    "OptunaParams",
    "SearchInterrupted",
    "SearchOptions",
    "SearchResult",
    "Session",
    "TrialEvent",
    "default_storage_url",
    "get_engine",
    "get_storage",
    "register_engine",
]
