"""Export a search's winner (``.keras``, SavedModel, TFLite, ONNX), each checked against the Keras
model, and predict with any of them. Nothing here imports TensorFlow until it is used."""

from search.export._export import QUANTIZE, ExportResult, export_search
from search.export._out import verify_bundle
from search.export._predict import predict
from search.export._runtimes import FORMATS, RUNTIMES, UnsafeModelError

__all__ = [
    "FORMATS",
    "QUANTIZE",
    "RUNTIMES",
    "ExportResult",
    "UnsafeModelError",
    "export_search",
    "predict",
    "verify_bundle",
]
