"""``cnn-search predict``: the top classes of images, with a bundle or a single model file.

A bundle (``cnn-search export``'s folder) brings its labels and input contract; ``--runtime``
picks ``keras`` (default), ``tflite`` or ``onnx`` from it. A single file picks its runtime from its
suffix (``.keras``, ``.tflite``, ``.onnx``); class names then come from a ``labels.json`` beside it,
else they are the class indices. ``.h5`` files and models needing code (``Lambda``, custom objects)
are refused: Keras loads with ``safe_mode=True`` only. Images are read with Pillow, converted to the
model's channels (grayscale or RGB) and resized to its input size when they differ (each said in
the output's note: a grey image made RGB, a colour image made grey, transparency dropped, a
resize), then given as raw 0-255 pixel values: rescaling is inside the model. An image over
Pillow's pixel limit (``Image.MAX_IMAGE_PIXELS``) is refused before it is decoded
(:mod:`search.data._pixels`).

Hostile input (a damaged model file or bundle, a FIFO as an image) is refused in one line before it
is loaded or read: :mod:`search.export._checks`. Each image is looked at by path (a regular file, not
too large) just before it is read, after the model is loaded: a model's error is said first, as
before. A model that loads but asks for an input that is not an image (another rank, an unfixed
size, 2 channels, over :data:`MAX_INPUT_PIXELS`), gives an output that is not one row of classes per
image, or has a ``labels.json`` naming another number of classes, is one line too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from search._errors import SearchError
from search.export._checks import check_bundle, labels_of, regular_file
from search.export._runtimes import FILES, RUNTIMES, UnsafeModelError, check_bare, load_runner

#: The largest input (height x width) a model may ask images to be resized to (8192 x 8192).
MAX_INPUT_PIXELS = 1 << 26
_SUFFIXES = {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx"}


def _resolve(model: Path, runtime: str | None) -> tuple[str, Path, list[str] | None, bool]:
    """(runtime, model file, class names, whether a bundle's sums vouch for the file)."""
    if runtime is not None and runtime not in RUNTIMES:
        raise SearchError(f"--runtime: expected one of {', '.join(RUNTIMES)}, received {runtime!r}")
    if model.is_dir():
        if not (model / "input.json").is_file():
            raise SearchError(f"{model}: not an export bundle (expected input.json, labels.json and model files)")
        runtime = runtime or "keras"
        path = model / FILES[runtime]
        if not path.exists():
            present = [r for r in RUNTIMES if (model / FILES[r]).exists()]
            raise SearchError(
                f"{model}: the bundle has no {runtime} model; expected --runtime one of {', '.join(present)}"
            )
        return runtime, path, check_bundle(model, path), True
    if not model.exists():
        raise SearchError(f"{model}: no such model file or bundle")
    regular_file(model, "model")
    suffix = model.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        raise UnsafeModelError(
            f"{model}: refusing a legacy HDF5 (.h5) model: it can carry code and is not loaded safely; "
            "expected a .keras, .tflite or .onnx file or an export bundle"
        )
    found = _SUFFIXES.get(suffix)
    if found is None:
        raise SearchError(
            f"{model}: unknown model file; expected .keras, .tflite, .onnx or a bundle, received {suffix!r}"
        )
    if runtime is not None and runtime != found:
        raise SearchError(f"--runtime {runtime}: {model} is a {found} model; expected --runtime {found}")
    labels = model.parent / "labels.json"
    names = labels_of(labels, "fix it, or move it away to name the classes by index") if labels.is_file() else None
    return found, model, names, False


def _image(path: Path, shape: tuple[int, ...]) -> tuple[Any, str]:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from search.data._pixels import bomb_types, bomb_warnings_as_errors, image_pixels, pixel_limit

    h, w, c = shape
    regular_file(path, "image")
    try:
        with bomb_warnings_as_errors(), Image.open(path) as img:
            img.load()
            original = f"{img.width}x{img.height}"
            notes = _conversions(img, c)
            converted = img.convert("L" if c == 1 else "RGB")
            if (img.width, img.height) != (w, h):
                converted = converted.resize((w, h), Image.Resampling.BILINEAR)
                notes.append(f"resized from {original} to {w}x{h}")
    except FileNotFoundError:
        raise SearchError(f"{path}: no such image") from None
    except bomb_types() as exc:
        raise SearchError(
            f"{path}: image too large to open safely (Pillow's decompression-bomb guard); expected at most "
            f"{pixel_limit()}, received {image_pixels(exc, path)}. Shrink it first: the model takes {w}x{h}."
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise SearchError(f"{path}: not a readable image ({exc})") from None
    array = np.asarray(converted, dtype="float32")
    return (array[..., None] if c == 1 else array), "; ".join(notes)


def _conversions(img: Any, channels: int) -> list[str]:
    """What the conversion to the model's channels changes, in words (nothing for a lossless one).

    A grey image (a grey mode) given to an RGB model is said; so is a colour image given to a
    grayscale model, colour meaning some pixel whose R, G and B differ (as for a dataset folder): an
    RGB file holding only grey pixels loses nothing. Transparency that is dropped is said too.
    """
    from search.data._folder import GREY_MODES, has_color

    notes = []
    grey = img.mode in GREY_MODES
    if channels == 3 and grey:
        notes.append(f"converted from grayscale (mode {img.mode}) to RGB")
    elif channels == 1 and not grey and has_color(img):
        notes.append(f"converted from colour (mode {img.mode}) to grayscale")
    if "A" in img.getbands() or "transparency" in img.info:
        lowest_alpha = img.convert("RGBA").getchannel("A").getextrema()[0]
        if lowest_alpha < 255:
            notes.append("transparency dropped")
    return notes


def image_shape(shape: tuple[int, ...], path: Path) -> tuple[int, ...]:
    """The model's input (height, width, channels), or one line: a damaged or foreign model may want another
    rank, a size it does not fix, or channels an image does not have."""
    if len(shape) != 3 or min(shape) < 1 or shape[2] not in (1, 3) or shape[0] * shape[1] > MAX_INPUT_PIXELS:
        raise SearchError(
            f"{path}: the model's input is not an image; expected (height, width, 1 or 3 channels) after the batch, "
            f"at most {MAX_INPUT_PIXELS:,} pixels, received {shape} (-1: a size it does not fix). Predict with a "
            "model cnn-search exported"
        )
    return shape


def _probabilities(runner: Any, batch: Any, path: Path) -> Any:
    """``runner(batch)`` as an (images, classes) array; an output of another shape (a damaged or foreign
    model that still runs) is one line, not an ``IndexError`` where the classes are ranked."""
    import numpy as np

    probabilities = np.asarray(runner(batch), dtype="float32")
    if probabilities.ndim != 2 or probabilities.shape[0] != len(batch) or probabilities.shape[1] < 1:
        raise SearchError(
            f"{path}: expected one row of class probabilities per image ({len(batch)}, classes), received an "
            f"output of shape {probabilities.shape}; predict with a model cnn-search exported"
        )
    return probabilities


def predict(
    model: str | Path, images: Sequence[str | Path], *, top_k: int = 3, runtime: str | None = None
) -> list[dict[str, Any]]:
    """Top ``top_k`` classes of each image: ``[{"image", "note", "top": [{"label", "probability"}]}]``."""
    import numpy as np

    if top_k < 1:
        raise SearchError(f"--top-k: expected a whole number >= 1, received {top_k}")
    if not images:
        raise SearchError("expected at least one image")
    runtime, path, labels, vouched = _resolve(Path(model), runtime)
    if not vouched:
        check_bare(runtime, path)
    runner = load_runner(runtime, path)
    loaded = [_image(Path(p), image_shape(runner.input_shape, path)) for p in images]
    probabilities = _probabilities(runner, np.stack([a for a, _ in loaded]), path)
    if labels is not None and len(labels) != probabilities.shape[1]:
        raise SearchError(
            f"{path}: the model gives {probabilities.shape[1]} classes but its labels.json names {len(labels)}; "
            "expected one name per class: fix labels.json, or move it away to name the classes by index"
        )
    names = labels or [str(i) for i in range(probabilities.shape[1])]
    results = []
    for image, (_, note), row in zip(images, loaded, probabilities, strict=True):
        order = np.argsort(-row)[:top_k]
        top = [{"label": names[i], "probability": float(row[i])} for i in order]
        results.append({"image": str(image), "runtime": runtime, "note": note, "top": top})
    return results
