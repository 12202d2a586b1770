"""Each exported format loaded back with its own runtime: Keras (``safe_mode=True``), the SavedModel
serving signature, the TFLite/LiteRT interpreter, onnxruntime. One call shape for all:
``runner = load_runner(fmt, path); probabilities = runner(images)`` with float32 ``(n, h, w, c)``
raw pixel values in, ``(n, classes)`` probabilities out.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search._errors import SearchError
from search._quiet import stderr_silenced


class Runner:
    """A loaded model: ``runner(images) -> probabilities``; ``input_shape`` is (height, width, channels)."""

    def __init__(self, run: Callable[[Any], Any], input_shape: Any) -> None:
        self.run, self.input_shape = run, _dims(input_shape)

    def __call__(self, images: Any) -> Any:
        return self.run(images)


def _dims(dims: Any) -> tuple[int, ...]:
    """Sizes as whole numbers, -1 for one that is not (a symbolic or unknown size of a damaged or foreign model):
    ``predict`` says so in one line (:func:`search.export._predict.image_shape`), not a ``ValueError`` here."""
    out = []
    for d in dims:
        try:
            out.append(int(d))
        except (TypeError, ValueError):
            out.append(-1)
    return tuple(out)


class UnsafeModelError(SearchError):
    """A model that needs code to load (``.h5``, ``Lambda`` layers, custom objects): refused."""


class InvalidModelError(SearchError):
    """A model file its runtime cannot load (damaged, or not that format): raised ``from`` the runtime's own
    error, so an export whose converter wrote such a file can say what the converter did."""


def file_size(path: Path) -> int:
    """Bytes of a written format: a file, or every file of a folder (SavedModel)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def latency_ms(runner: Any, image: Any, repeats: int = 30) -> float:
    """Median milliseconds of ``runner`` on ``image`` (one image, batch 1) over ``repeats`` runs after 3
    warm-up runs: how ``cnn-search export`` and the measured goals (``latency_ms:RUNTIME``) time a model."""
    import statistics
    import time

    for _ in range(3):
        runner(image)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner(image)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 4)


def write(fmt: str, model: Any, folder: Path) -> Path:
    """Write ``model`` as ``fmt`` (a row of :data:`TABLE`) into ``folder``; its path."""
    path = folder / TABLE[fmt].file
    TABLE[fmt].write(model, path)
    return path


def missing_tools(fmt: str) -> str | None:
    """Why ``fmt`` cannot be produced or run in this installation on this Keras backend, or None when it can
    (:func:`search._backend.export_needs`)."""
    from search._backend import export_needs

    return export_needs(fmt)


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
    _check_keras_archive(path)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        text = str(exc).strip() or type(exc).__name__
        if "safe_mode" in text or "Lambda" in text or "custom" in text.lower():
            raise UnsafeModelError(
                f"{path}: refusing a model that needs code to load (a Lambda layer or a custom object); "
                f"cnn-search loads models with Keras safe_mode=True only. Keras said: {text.splitlines()[0]}"
            ) from None
        raise SearchError(
            f"{path}: not a loadable .keras model ({type(exc).__name__}: {text.splitlines()[0][:160]})"
        ) from None


def _check_keras_archive(path: Path) -> None:
    """A ``.keras`` file is a zip archive holding ``config.json``: say so when it is not (Keras said
    "File not found" of a file that was there)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        with open(path, "rb") as f:
            head = f.read(4)
        received = "a truncated or damaged zip" if head == b"PK\x03\x04" else f"a file starting {head!r}"
        raise SearchError(
            f"{path}: not a valid .keras file; expected a zip archive holding config.json, received {received}"
        ) from None
    if "config.json" not in names:
        raise SearchError(f"{path}: not a valid .keras file; expected config.json in its zip archive, received none")


def load_runner(fmt: str, path: Path) -> Runner:
    """A function images -> probabilities for ``path`` in format ``fmt``."""
    if fmt not in TABLE:
        raise SearchError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    why = missing_tools(fmt)
    if why:
        raise SearchError(why)
    return TABLE[fmt].load(path)


def _keras_runner(path: Path) -> Runner:
    import numpy as np

    model = load_keras(path)
    return Runner(lambda x: np.asarray(model(np.asarray(x, "float32"), training=False)), model.input_shape[1:])


def _savedmodel_runner(path: Path) -> Runner:
    import numpy as np
    import tensorflow as tf

    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    ((key, spec),) = serving.structured_input_signature[1].items()

    def run_savedmodel(x: Any) -> Any:
        outputs = serving(**{key: tf.constant(np.asarray(x, "float32"))})
        return next(iter(outputs.values())).numpy()

    return Runner(run_savedmodel, spec.shape[1:])


def _onnx_runner(path: Path) -> Runner:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: a damaged file is said in one line below
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # onnxruntime prints an "EP Error" banner, then retries
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises (InvalidProtobuf, Fail...) on a damaged file
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise InvalidModelError(
            f"{path}: not a valid ONNX model ({first[:160]}); expected a .onnx file as exported"
        ) from exc
    first = session.get_inputs()[0]

    def run(x: Any) -> Any:
        try:
            return session.run(None, {first.name: np.asarray(x, "float32")})[0]
        except Exception as exc:  # a damaged file that loads but fails when run (a shape constant changed...)
            text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise InvalidModelError(
                f"{path}: the ONNX model fails when run ({text[:160]}); expected a .onnx file as exported"
            ) from exc

    return Runner(run, first.shape[1:])


def _interpreter(path: Path) -> Any:
    try:  # LiteRT, TensorFlow Lite's successor, when installed
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": LiteRT is optional
            return tf.lite.Interpreter(model_path=str(path))
    return Interpreter(model_path=str(path))


def check_bare(fmt: str, path: Path) -> None:
    """A model file that no bundle vouches for: a ``.tflite`` tried in a child first
    (:func:`search.export._checks.check_tflite`); other formats raise their own errors when loaded."""
    if fmt != "tflite":
        return
    from search.export._checks import check_tflite

    try:  # imported here first, so the child forked to try the file starts at once
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        import tensorflow  # noqa: F401
    check_tflite(path, _interpreter)


def _tflite_runner(path: Path) -> Runner:
    """The interpreter runs one image at a time (batch 1, as on a device)."""
    import numpy as np

    interpreter = _interpreter(path)
    with stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++
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


# -- the formats, one row each -------------------------------------------------------------------
def _write_keras(model: Any, path: Path) -> None:
    model.save(path)


def _write_savedmodel(model: Any, path: Path) -> None:
    model.export(str(path), format="tf_saved_model", verbose=False)


def _write_tflite(model: Any, path: Path) -> None:
    model.export(str(path), format="litert", verbose=False)


def _write_onnx(model: Any, path: Path) -> None:
    import numpy as np

    model(np.zeros((1, *model.input_shape[1:]), "float32"), training=False)  # JAX's and PyTorch's converters
    with warnings.catch_warnings():  # trace a model that has been called
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx's np.object probe
        model.export(str(path), format="onnx", verbose=False)


@dataclass(frozen=True)
class Format:
    """One export format: its file (or folder) in a bundle, how a Keras model is written to it, and how it
    is loaded back to answer like the model. What writing it needs on each Keras backend is a row of
    :data:`search._backend._EXPORT_NEEDS`. A new format is one more row of each (and its test in
    ``tests/test_export.py``)."""

    name: str
    file: str
    write: Callable[[Any, Path], None]
    load: Callable[[Path], Runner]


TABLE: dict[str, Format] = {
    f.name: f
    for f in (
        Format("keras", "model.keras", _write_keras, _keras_runner),
        Format("savedmodel", "savedmodel", _write_savedmodel, _savedmodel_runner),
        Format("tflite", "model.tflite", _write_tflite, _tflite_runner),
        Format("onnx", "model.onnx", _write_onnx, _onnx_runner),
    )
}
FORMATS = tuple(TABLE)
#: The formats ``cnn-search predict --runtime`` runs (a SavedModel is served, not predicted with here).
RUNTIMES = ("keras", "tflite", "onnx")
FILES = {name: f.file for name, f in TABLE.items()}
