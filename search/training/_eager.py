"""A model judged by eager calls: no function traced for a single pass (see :func:`predict_eagerly`)."""

from __future__ import annotations

from typing import Any


def predict_eagerly(model: Any, x: Any, batch_size: int = 256) -> Any:
    """The model's outputs on ``x`` as one NumPy array, by eager calls batch by batch: no function is
    traced for a single pass (``evaluate`` and ``predict`` each trace one: 0.3-0.5 s apiece for a tiny
    CNN on a CPU, longer than the pass itself on a small test split)."""
    import keras
    import numpy as np

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
