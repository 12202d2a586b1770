"""MLflow tracking: experiment per search, parent run per search, child run per trial."""

from search.tracking._compare import compare_searches
from search.tracking._mlflow import STATUS, Tracker, default_tracking_uri, find_search, register_keras_model
from search.tracking._store import check_store, check_writable

__all__ = [
    "STATUS",
    "Tracker",
    "check_store",
    "check_writable",
    "compare_searches",
    "default_tracking_uri",
    "find_search",
    "register_keras_model",
]
