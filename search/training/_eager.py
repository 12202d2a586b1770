"""A model judged by eager calls: no function traced for a single pass (see :func:`predict_eagerly`)."""

from __future__ import annotations

import math
from typing import Any

#: Images judged at once (validation, test) when they are small; larger images, fewer (:func:`judging_batch`).
JUDGING_BATCH = 256
#: Pixel values a judging batch holds at most, unless the training batch holds more: 4 Mi, 256 images of
#: 64x64x3 (every suite task), 25 of 214x256x3 (where 256 of them took a worker past 8 GB on a 10,000-photo
#: folder: every layer's output for 256 images at once).
JUDGING_VALUES = 2**22


def judging_batch(image_shape: tuple[int, ...], train_batch: int = 0) -> int:
    """Images per batch for validation or test: :data:`JUDGING_BATCH`, fewer as the images grow
    (:data:`JUDGING_VALUES`), never fewer than the ``train_batch`` a trial trains at (it already holds that).

    >>> judging_batch((32, 32, 3)), judging_batch((214, 256, 3)), judging_batch((214, 256, 3), train_batch=32)
    (256, 25, 32)
    """
    values = math.prod(int(side) for side in image_shape)
    return max(1, min(JUDGING_BATCH, max(train_batch, JUDGING_VALUES // max(1, values))))


def predict_eagerly(model: Any, x: Any, batch_size: int | None = None) -> Any:
    """The model's outputs on ``x`` as one NumPy array, by eager calls batch by batch (``batch_size``, by
    default :func:`judging_batch` of the images): no function is traced for a single pass (``evaluate``
    and ``predict`` each trace one: 0.3-0.5 s apiece for a tiny CNN on a CPU, longer than the pass itself
    on a small test split)."""
    import keras
    import numpy as np

    batch_size = batch_size or judging_batch(tuple(x.shape[1:]))

    outputs = [
        keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outputs).astype("float32") if outputs else np.zeros((0, *model.output_shape[1:]), "float32")


def sparse_crossentropy(probabilities: Any, labels: Any) -> float:
    """Mean cross-entropy of softmax ``probabilities`` for integer ``labels``, clipped as Keras clips
    (epsilon 1e-7): what ``evaluate`` reports as the loss of the compiled models.

    >>> import numpy as np
    >>> round(sparse_crossentropy(np.array([[0.5, 0.5], [0.9, 0.1]]), np.array([0, 0])), 4)
    0.3993
    """
    import numpy as np

    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))) if len(labels) else float("nan")


def scores(probabilities: Any, labels: Any) -> tuple[float, float]:
    """(accuracy, loss) of softmax ``probabilities`` for integer ``labels``, as ``evaluate`` reports them
    for the compiled models (``nan`` for no labels).

    >>> import numpy as np
    >>> [round(v, 4) for v in scores(np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([1, 0]))]
    [1.0, 0.1643]
    """
    import numpy as np

    if not len(labels):
        return float("nan"), float("nan")
    return float(np.mean(probabilities.argmax(axis=1) == labels)), sparse_crossentropy(probabilities, labels)
