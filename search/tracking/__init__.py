"""MLflow tracking: experiment per search, parent run per search, child run per trial."""

from search.tracking._compare import compare_searches
from search.tracking._mlflow import STATUS, Tracker, default_tracking_uri, find_search, register_keras_model

__all__ = ["STATUS", "Tracker", "compare_searches", "default_tracking_uri", "find_search", "register_keras_model"]
