"""Each exported format loaded back with its own runtime: Keras (``safe_mode=True``), the SavedModel
serving signature, the TFLite/LiteRT interpreter, onnxruntime. One call shape for all:
``runner = load_runner(fmt, path); probabilities = runner(images)`` with float32 ``(n, h, w, c)``
raw pixel values in, ``(n, classes)`` probabilities out.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search._errors import SearchError


class Runner:
    """A loaded model: ``runner(images) -> probabilities``; ``input_shape`` is (height, width, channels)."""

    def __init__(self, run: Callable[[Any], Any], input_shape: tuple[int, ...]) -> None:
        self.run, self.input_shape = run, tuple(int(d) for d in input_shape)

    def __call__(self, images: Any) -> Any:
        return self.run(images)


FORMATS = ("keras", "savedmodel", "tflite", "onnx")
RUNTIMES = ("keras", "tflite", "onnx")
FILES = {"keras": "model.keras", "savedmodel": "savedmodel", "tflite": "model.tflite", "onnx": "model.onnx"}


class UnsafeModelError(SearchError):
    """A model that needs code to load (``.h5``, ``Lambda`` layers, custom objects): refused."""


def missing_tools(fmt: str) -> str | None:
    """Why ``fmt`` cannot be produced or run in this installation, or None when it can."""
    import importlib.util

    def absent(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is None
        except (ImportError, ValueError):
            return True

    needed = {"onnx": ("onnx", "tf2onnx", "onnxruntime")}.get(fmt, ())
    missing = [m for m in needed if absent(m)]
    if missing:
        return (
            f"{fmt} needs the Python package(s) {', '.join(missing)}, not installed: pip install 'cnn-search[export]'"
        )
    return None


def load_keras(path: Path) -> Any:
    """A ``.keras`` file under ``safe_mode=True``; ``.h5`` and models needing code are refused."""
    import keras

    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        raise UnsafeModelError(
            f"{path}: refusing a legacy HDF5 (.h5) model: it can carry code and is not loaded safely; "
            "expected a .keras file (or an exported bundle)"
        )
    if suffix != ".keras":
        raise SearchError(f"{path}: expected a .keras file, received {suffix or 'no suffix'!r}")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text or "custom" in text.lower():
            raise UnsafeModelError(
                f"{path}: refusing a model that needs code to load (a Lambda layer or a custom object); "
                f"cnn-search loads models with Keras safe_mode=True only. Keras said: {text.splitlines()[0]}"
            ) from None
        raise SearchError(f"{path}: not a loadable .keras model: {text.splitlines()[0]}") from None


def load_runner(fmt: str, path: Path) -> Runner:
    """A function images -> probabilities for ``path`` in format ``fmt``."""
    import numpy as np

    if fmt == "keras":
        model = load_keras(path)
        return Runner(lambda x: np.asarray(model(np.asarray(x, "float32"), training=False)), model.input_shape[1:])
    if fmt == "savedmodel":
        import tensorflow as tf

        serving = tf.saved_model.load(str(path)).signatures["serving_default"]
        ((key, spec),) = serving.structured_input_signature[1].items()

        def run_savedmodel(x: Any) -> Any:
            outputs = serving(**{key: tf.constant(np.asarray(x, "float32"))})
            return next(iter(outputs.values())).numpy()

        return Runner(run_savedmodel, spec.shape[1:])
    if fmt == "tflite":
        return _tflite_runner(path)
    if fmt == "onnx":
        why = missing_tools("onnx")
        if why:
            raise SearchError(why)
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        first = session.get_inputs()[0]
        return Runner(lambda x: session.run(None, {first.name: np.asarray(x, "float32")})[0], first.shape[1:])
    raise SearchError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _interpreter(path: Path) -> Any:
    try:  # LiteRT, TensorFlow Lite's successor, when installed
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": LiteRT is optional
            return tf.lite.Interpreter(model_path=str(path))
    return Interpreter(model_path=str(path))


def _tflite_runner(path: Path) -> Runner:
    """The interpreter runs one image at a time (batch 1, as on a device)."""
    import numpy as np

    interpreter = _interpreter(path)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]

    def run_tflite(x: Any) -> Any:
        x = np.asarray(x, "float32")
        results = []
        for image in x:
            interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
            interpreter.invoke()
            results.append(interpreter.get_tensor(out["index"])[0].astype("float32"))
        return np.stack(results) if results else np.zeros((0, out["shape"][-1]), "float32")

    return Runner(run_tflite, inp["shape"][1:])
