"""One pixel limit for every image read (a dataset folder, ``predict``): Pillow's ``Image.MAX_IMAGE_PIXELS``.

Decision: an image with more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (89,478,485 by default,
about 9459x9459) is refused wherever images are read: skipped with the reason in a dataset folder
(or the folder refused under ``strict``), an error naming the file in ``predict``. Pillow itself
raises ``DecompressionBombError`` only above twice the limit, and between the limit and twice it
merely warns (``DecompressionBombWarning``) and decodes anyway; here that warning is turned into
the same refusal (:func:`bomb_warnings_as_errors`), so there is a single limit, said once, instead
of a stray warning on stderr followed by a decode of hundreds of megabytes. The limit is Pillow's
own setting, read when the image is opened: raising ``Image.MAX_IMAGE_PIXELS`` raises it, ``None``
turns the check off, as in Pillow.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Final

LIMIT_NAME: Final = "PIL.Image.MAX_IMAGE_PIXELS"


@contextlib.contextmanager
def bomb_warnings_as_errors() -> Iterator[None]:
    """Within the block, Pillow's ``DecompressionBombWarning`` is raised as an exception.

    Warning filters are process-wide: enter this once around a whole batch of reads (threads
    included), not in each thread.
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def bomb_types() -> tuple[type[BaseException], ...]:
    """The exceptions an image over the pixel limit raises (inside :func:`bomb_warnings_as_errors`)."""
    from PIL import Image

    return (Image.DecompressionBombError, Image.DecompressionBombWarning)


def pixel_limit() -> str:
    """The limit in words: ``"89,478,485 pixels (PIL.Image.MAX_IMAGE_PIXELS)"``."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    return f"{limit:,} pixels ({LIMIT_NAME})" if limit else f"no limit ({LIMIT_NAME} is None)"


def image_pixels(exc: BaseException, source: bytes | Path) -> str:
    """The size of an image Pillow refused: ``"20000x20000 = 400,000,000 pixels"``.

    ``exc`` is what Pillow raised; ``source`` the image's bytes or path, whose header is read again
    (without the check) for the width and height; the pixel count in Pillow's message is the fallback.
    """
    size = _header_size(source)
    if size is not None:
        width, height = size
        return f"{width}x{height} = {max(1, width) * max(1, height):,} pixels"
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return f"{int(found.group(1)):,} pixels" if found else "more pixels than the limit"


def _header_size(source: bytes | Path) -> tuple[int, int] | None:
    """(width, height) from the image header, read by the first Pillow plugin that takes it."""
    from PIL import Image

    if isinstance(source, bytes):
        data = source
    else:
        try:
            with source.open("rb") as file:
                data = file.read(1 << 20)  # the header is in the first bytes (JPEG: before the pixels)
        except OSError:
            return None
    Image.init()
    prefix = data[:16]
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        try:
            accepted = not accept or accept(prefix)
            if isinstance(accepted, str) or not accepted:
                continue
            with factory(io.BytesIO(data), "") as image:  # the plugin reads the header only
                return image.size
        except Exception:
            continue
    return None
