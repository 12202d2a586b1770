"""The Keras backend a search trains on, and what differs between backends.

Keras 3 trains the same model on TensorFlow, JAX or PyTorch (``KERAS_BACKEND``, else ``~/.keras/keras.json``,
else TensorFlow), and the ``.keras`` file is the same. cnn-search runs its whole search path (space, builder,
Objective, the Optuna, KerasTuner and AutoKeras engines, MLflow, the winner, ``.keras`` export and
``predict --runtime keras``) on each, without importing TensorFlow unless the backend is TensorFlow:

- data reaches ``fit`` as ``tf.data`` pipelines on TensorFlow, as NumPy arrays on the others
  (:mod:`search.training._objective`); images on disk are decoded by Pillow when TensorFlow is absent;
- seeding: ``keras.utils.set_random_seed`` on every backend; TensorFlow's ops are also made deterministic
  (``enable_op_determinism``). JAX on a CPU is deterministic for a given seed; on a GPU, XLA's reductions may
  not be (``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` makes them so, slower). PyTorch's GPU kernels are not
  deterministic unless ``torch.use_deterministic_algorithms(True)``: cnn-search does not set it (some
  convolution kernels would then refuse to run) and says so (:data:`DETERMINISM`);
- a worker pinned to a GPU gets the backend's memory setting (:func:`gpu_env`);
- running out of GPU memory is recognised per backend (:func:`is_oom`) and the trial retried at half batch;
- export formats need what the backend needs to write them (:func:`export_needs`): SavedModel needs
  TensorFlow (JAX converts through ``jax2tf``; PyTorch through ``torch_xla``), TFLite needs TensorFlow or, on
  PyTorch, ``litert_torch``; ONNX comes from ``tf2onnx`` (TensorFlow), ``jax2onnx`` (JAX) or ``torch.onnx``.
  A format whose tools are missing is listed as not produced, with the reason.

The backend is recorded on the search's MLflow run and on every trial's (tag ``backend``), with the registered
model and in the model card.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

#: What a seed makes repeatable on each backend (the README; the search's MLflow run, tag ``determinism``).
DETERMINISM = {
    "tensorflow": "same architectures and metrics on a CPU and a GPU (TensorFlow's op determinism is enabled)",
    "jax": "same architectures and metrics on a CPU; on a GPU, XLA's reductions may differ run to run unless "
    "XLA_FLAGS=--xla_gpu_deterministic_ops=true",
    "torch": "same architectures and metrics on a CPU; on a GPU, PyTorch's kernels are not deterministic "
    "(torch.use_deterministic_algorithms is left off: some convolutions refuse to run with it)",
}


def name() -> str:
    """The backend this process trains on: ``keras.backend.backend()`` once Keras is imported, else the one
    Keras will choose (``KERAS_BACKEND``, then ``keras.json`` under ``KERAS_HOME`` or ``~/.keras``, then
    TensorFlow), read without importing Keras.

    >>> import os
    >>> if "keras" not in sys.modules:
    ...     before = os.environ.get("KERAS_BACKEND")
    ...     os.environ["KERAS_BACKEND"] = "jax"
    ...     assert name() == "jax"
    ...     _ = os.environ.pop("KERAS_BACKEND") if before is None else os.environ.update(KERAS_BACKEND=before)
    """
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return str(keras.backend.backend())
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen:
        return chosen
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        return str(json.loads((home / "keras.json").read_text()).get("backend") or "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here (found, without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def gpu_env(backend: str) -> dict[str, str]:
    """The environment a worker pinned to one GPU gets so that it takes GPU memory as it needs it, rather than
    all of it at start (two workers would then not fit on one GPU, and one search's first worker would starve
    the others): TensorFlow's memory growth, JAX without preallocation, PyTorch's expandable segments (its
    caching allocator already allocates on demand; segments that grow fragment less).

    >>> gpu_env("jax")
    {'XLA_PYTHON_CLIENT_PREALLOCATE': 'false'}
    """
    return {
        "tensorflow": {"TF_FORCE_GPU_ALLOW_GROWTH": "true"},
        "jax": {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
        "torch": {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"},
    }.get(backend, {})


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is the backend running out of memory: TensorFlow's ``ResourceExhaustedError``, JAX's
    (XLA's) ``RESOURCE_EXHAUSTED`` runtime error, PyTorch's ``OutOfMemoryError``, or any error that says
    "out of memory".

    >>> class ResourceExhaustedError(Exception): ...
    >>> class XlaRuntimeError(Exception): ...
    >>> class OutOfMemoryError(RuntimeError): ...
    >>> is_oom(ResourceExhaustedError("OOM when allocating tensor"))
    True
    >>> is_oom(XlaRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.2GiB"))
    True
    >>> is_oom(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    True
    >>> is_oom(ValueError("Input 0 of layer conv2d is incompatible"))
    False
    """
    kind = type(exc).__name__
    text = str(exc)
    return (
        kind in ("ResourceExhaustedError", "OutOfMemoryError")
        or "RESOURCE_EXHAUSTED" in text
        or "out of memory" in text.lower()
    )


#: For each export format and backend: the modules writing it needs, or None when Keras cannot write that
#: format from that backend at all.
_EXPORT_NEEDS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "keras": {"tensorflow": (), "jax": (), "torch": ()},
    "savedmodel": {"tensorflow": ("tensorflow",), "jax": ("tensorflow",), "torch": ("tensorflow", "torch_xla")},
    "tflite": {"tensorflow": ("tensorflow",), "jax": None, "torch": ("litert_torch",)},
    "onnx": {
        "tensorflow": ("onnx", "tf2onnx", "onnxruntime"),
        "jax": ("jax2onnx", "onnx", "onnxruntime"),
        "torch": ("onnx", "onnxruntime"),
    },
}


def export_needs(fmt: str, backend: str | None = None) -> str | None:
    """Why format ``fmt`` cannot be written (or checked) from ``backend`` (this process's by default) in this
    installation, or None when it can.

    >>> export_needs("keras", "jax") is None
    True
    >>> print(export_needs("tflite", "jax"))  # doctest: +NORMALIZE_WHITESPACE
    Keras writes LiteRT (TFLite) from the tensorflow and torch backends, not jax: export with KERAS_BACKEND=tensorflow
    where TensorFlow is installed (the .keras file is the same)
    """
    backend = backend or name()
    needs = _EXPORT_NEEDS.get(fmt, {}).get(backend, ())
    if needs is None:
        able = " and ".join(b for b, n in _EXPORT_NEEDS[fmt].items() if n is not None)
        return (
            f"Keras writes {'LiteRT (TFLite)' if fmt == 'tflite' else fmt} from the {able} backends, not {backend}: "
            "export with KERAS_BACKEND=tensorflow where TensorFlow is installed (the .keras file is the same)"
        )
    missing = [m for m in needs if not installed(m)]
    if not missing:
        return None
    if "tensorflow" in missing:
        return (
            f"{fmt} needs TensorFlow, not importable here (backend {backend}): pip install tensorflow, or export "
            "where it is installed (the .keras file is the same)"
        )
    extra = "'cnn-search[export]'" if backend == "tensorflow" else " ".join(missing)
    return f"{fmt} needs the Python package(s) {', '.join(missing)}, not installed: pip install {extra}"


def requirements() -> list[str]:
    """The model's pip requirements: Keras, the backend's package, NumPy (those installed), pinned."""
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for p in ("keras", name(), "numpy"):  # each backend's distribution has the backend's name
        try:
            pinned.append(f"{p}=={version(p)}")
        except PackageNotFoundError:
            continue
    return pinned
