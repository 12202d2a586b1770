"""Whether a search's smallest candidate can train in the memory there is, checked before any trial.

A trial's training holds, beyond the process itself, the activations of a batch that the backward pass
needs and the weights with their gradients and Adam's two slots. Measured on this machine (TensorFlow 2 on
CPU, ``VmHWM`` of one ``fit`` epoch beyond the first ``predict``, random 8-bit images), the growth is
0.71-0.89 of the plan's forward activations for a batch (:attr:`~search.model._plan.Plan.activation_bytes`
times ``batch_size``): 0.89 for vgg's second start point at 128 px, 0.71 for its first at 192 px, 0.86 for
resnet's at 128 px. :data:`ACTIVATION_SHARE` takes the low end, so that a refusal is never a false alarm:
a search refused here would have been killed by the kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search._errors import SearchError
from search.model._plan import Shape, make_plan

if TYPE_CHECKING:
    from search.space import Space

#: The measured floor of training's memory growth over one batch's forward activations (module docstring).
ACTIVATION_SHARE = 0.7
#: Bytes per weight while training: the weight, its gradient, Adam's two moments (float32 each).
BYTES_PER_WEIGHT = 16
#: Sides tried, largest first, when a refusal suggests a size that fits.
SIDES = (512, 384, 320, 256, 224, 192, 160, 128, 96, 64, 48, 32)


class MemoryRefusal(SearchError, MemoryError):
    """No candidate of the search (its start points, else the space's smallest choices) fits in memory."""


def training_mib(space: Space, input_shape: Shape, num_classes: int) -> tuple[int, int]:
    """(MiB, batch size) of the least memory any start point of ``space`` needs to train on ``input_shape``
    (the space's first options and low ends when it has none): see the module docstring."""
    from search.space import PartialParams

    best: tuple[int, int] | None = None
    for point in space.start or ({},):
        arch = space.sample(PartialParams(point))
        try:
            plan = make_plan(arch, input_shape, num_classes)
        except SearchError:  # a start point that collapses on this input is refused elsewhere, by its trial
            continue
        batch = arch.training.batch_size
        need = ACTIVATION_SHARE * plan.activation_bytes * batch + BYTES_PER_WEIGHT * plan.params
        if best is None or need < best[0] * 2**20:
            best = (int(need // 2**20), batch)
    return best if best is not None else (0, 0)


def check_fits(space: Space, input_shape: Shape, num_classes: int, available_mib: int | None) -> None:
    """Raise :class:`MemoryRefusal`, one line with the fix, when even the smallest candidate of ``space``
    needs more memory to train on ``input_shape`` than ``available_mib`` (``MemAvailable``; None: unknown,
    not checked). The fix names the largest side of :data:`SIDES` at which it fits.

    >>> from search.space import Space
    >>> space = Space("s", blocks={"filters": [64]}, training={"batch_size": [256]})
    >>> try:
    ...     check_fits(space, (1024, 1024, 3), 10, 4096)
    ... except MemoryRefusal as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    images of 1024x1024x3: the smallest candidate of space 's' needs ~138,138 MiB to train a batch of 256, and
    4,096 MiB are available; feed smaller images (input: {image_size: 160} in the space, or image_size=160 in
    Python) or a smaller training.batch_size.
    >>> check_fits(space, (64, 64, 3), 10, 4096)  # fits: nothing said
    """
    from search.space import PartialParams

    if available_mib is None:
        return
    need, batch = training_mib(space, input_shape, num_classes)
    if need <= available_mib:
        return
    height, width, channels = input_shape
    resized = space.sample(PartialParams({})).preprocessing.image_size
    if resized is not None:  # the model resizes every input: the fed size changes nothing
        raise MemoryRefusal(
            f"images resized to {resized[0]}x{resized[1]} by the input.image_size of space {space.name!r}: its "
            f"smallest candidate needs ~{need:,} MiB to train a batch of {batch}, and {available_mib:,} MiB are "
            "available; set a smaller input.image_size or training.batch_size in the space."
        )
    fits = next(
        (
            s
            for s in SIDES
            if s < max(height, width) and training_mib(space, (s, s, channels), num_classes)[0] <= available_mib
        ),
        None,
    )
    size = "feed smaller images"
    if fits is not None:
        size += f" (input: {{image_size: {fits}}} in the space, or image_size={fits} in Python)"
    raise MemoryRefusal(
        f"images of {height}x{width}x{channels}: the smallest candidate of space {space.name!r} needs ~{need:,} MiB "
        f"to train a batch of {batch}, and {available_mib:,} MiB are available; {size} or a smaller "
        "training.batch_size."
    )
