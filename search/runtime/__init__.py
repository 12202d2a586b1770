"""The search's runtime, beneath the engines: what every engine runs its trials through.

- :mod:`~search.runtime._session`: the :class:`Session` (one search: its trial loop, failure policy,
  progress) and :class:`SearchResult`;
- :mod:`~search.runtime._record`: the search's MLflow parent run and its signals;
- :mod:`~search.runtime._winner`: model files, the champion's test evaluation and registration;
- :mod:`~search.runtime._recheck`: fresh runs of the top candidates before one is crowned;
- :mod:`~search.runtime._workers`, :mod:`~search.runtime._zygote`: worker processes and the forkserver
  they are forked from;
- :mod:`~search.runtime._storage`: the Optuna storage a search's workers share;
- :mod:`~search.runtime._signals`: SIGINT/SIGTERM as :class:`SearchInterrupted`.

Nothing here imports :mod:`search.engines` or :mod:`search.cli` (``tests/test_imports.py`` pins it):
an engine is told what it runs through, never the other way round.
"""
