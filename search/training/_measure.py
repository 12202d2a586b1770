"""Goals and constraints measured on a trial's model before it trains: its size written in a format
(``model_bytes:tflite``) and its latency on a runtime (``latency_ms:tflite``, ``latency_ms:onnx``,
``latency_ms:keras``).

The model measured is the one that would be exported: the architecture built with plain layers (as
:func:`search.model.for_saving` leaves a trained model), input standardisation included, with its
initial weights (a float model's size and speed do not depend on the values of its weights). Each
format is written once per trial into a temporary folder by the exporter's own writers
(:mod:`search.export`), and run by the exporter's runners: latency is the median of 30 runs of one
image (batch 1, as on a device) after 3 warm-up runs, on this machine's cores, as ``cnn-search export``
measures it. What it costs (``python benchmarks/goals.py --only cost``, README "Accuracy against size"):
writing TFLite is the dearest part (1.3-2.4 s for ``vgg``'s start points on 64x64 RGB), ONNX 0.3-0.7 s,
Keras 0.1 s; the runs themselves take milliseconds, except on the Keras runtime (0.5-1 s).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from search._goal import goal_named


def measure(model: Any, metrics: Iterable[str], image: Any) -> dict[str, float]:
    """``{"latency_ms:tflite": 0.31, "model_bytes:tflite": 164388.0, ...}`` for the ``metrics`` asked
    (names of measured goals), ``model`` written once per format; ``image`` is one input (batch of 1)."""
    wanted: dict[str, set[str]] = {}
    for metric in metrics:
        goal = goal_named(metric)
        if goal.measured_on is None:
            raise ValueError(f"{metric!r} is not a measured goal")
        wanted.setdefault(goal.measured_on, set()).add(goal.metric.partition(":")[0])
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return _measure_each(model, wanted, image)
    finally:  # TensorFlow's exporters add a stderr handler to the root logger: every search line would show twice
        root.handlers[:] = handlers
        root.setLevel(level)


def _measure_each(model: Any, wanted: Mapping[str, set[str]], image: Any) -> dict[str, float]:
    """``model`` written and measured once per runtime of ``wanted`` (runtime -> families)."""
    from search._errors import SearchError
    from search.export._runtimes import file_size, latency_ms, load_runner, missing_tools, write

    found: dict[str, float] = {}
    model(image, training=False)  # Keras's ONNX export refuses a model that was never called
    with tempfile.TemporaryDirectory(prefix="cnn-search-measure-") as tmp:
        for runtime, families in sorted(wanted.items()):
            folder = Path(tmp) / runtime
            folder.mkdir()
            why = missing_tools(runtime)
            if why:
                raise SearchError(why)
            path = write(runtime, model, folder)
            if "model_bytes" in families:
                found[f"model_bytes:{runtime}"] = float(file_size(path))
            if "latency_ms" in families:
                found[f"latency_ms:{runtime}"] = float(latency_ms(load_runner(runtime, path), image))
    return found


def over_limit(measured: Mapping[str, float], limits: Mapping[str, float]) -> str | None:
    """The reason a trial is refused when a measured value is over its limit (``limits``: metric -> most
    allowed), else ``None``.

    >>> over_limit({"latency_ms:tflite": 3.2}, {"latency_ms:tflite": 2.0})
    'max_latency_ms: over budget: latency_ms:tflite 3.2 > max_latency_ms 2'
    >>> over_limit({"model_bytes:tflite": 300_000.0}, {"model_bytes:tflite": 262_144.0})
    'max_model_kb: over budget: model_bytes:tflite 293.0 KiB > max_model_kb 256'
    >>> over_limit({"latency_ms:tflite": 1.0}, {"latency_ms:tflite": 2.0}) is None
    True
    """
    for metric, limit in limits.items():
        value = measured.get(metric)
        if value is None or value <= limit:
            continue
        if metric.startswith("model_bytes"):
            return f"max_model_kb: over budget: {metric} {value / 1024:.1f} KiB > max_model_kb {limit / 1024:g}"
        return f"max_latency_ms: over budget: {metric} {value:g} > max_latency_ms {limit:g}"
    return None
