"""What ``predict`` checks before it loads a model or reads an image (docs/RELIABILITY.md rows 33-35).

A model file is code-like input: TensorFlow Lite's interpreter reads a FlatBuffer without verifying it,
and a truncated or bit-flipped ``.tflite`` took the process down with a segmentation fault (exit 139).
So, decided:

* **A bundle is checked whole first.** Every file ``SHA256SUMS`` lists must exist and match, and the
  model file used must be listed: a file changed, truncated or copied from another export is named in
  one line with the fix (export again). Its ``labels.json`` must be a list of class names. A bundle that
  passes was loaded back and compared with the Keras model by the export that wrote it
  (``search/export/_export.py``), so its models are loaded directly.
* **A bare ``.tflite``** (no bundle around it) is loaded and run once on zeros in a forked child first
  (:func:`check_tflite`), after a cheap look at its FlatBuffer identifier (``TFL3``): a crash there
  kills only the child and is said as "not a valid TFLite model". Measured on this 2-core machine: the
  child costs about 11 ms for the tiny space's model (a fork of the process that has imported
  TensorFlow, one ``allocate_tensors`` and one ``invoke``), against about 4 s to start TensorFlow at all.
* **A bare ``.keras`` or ``.onnx``** cannot crash the process the same way (a zip archive; a protobuf
  parsed by onnxruntime, which raises): they are checked for what they must be (a zip holding
  ``config.json``) and any load error is said in one line (``search/export/_runtimes.py``).
* **Images and model files are read only when they are regular files** (a FIFO made ``predict`` wait
  forever, a device is endless) of at most :data:`MAX_FILE_BYTES`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from search._errors import SearchError

#: The largest image or model file ``predict`` reads.
MAX_FILE_BYTES = 1 << 30

_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def regular_file(path: Path, what: str) -> None:
    """Refuse ``path`` unless it is a regular file of at most :data:`MAX_FILE_BYTES` (links followed)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SearchError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise SearchError(f"{path}: cannot read this {what} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise SearchError(f"{path}: expected a regular {what} file, received {kind}")
    if info.st_size > MAX_FILE_BYTES:
        raise SearchError(
            f"{path}: expected a {what} file of at most {MAX_FILE_BYTES >> 20} MiB, received {info.st_size >> 20} MiB"
        )


def check_bundle(bundle: Path, model: Path) -> list[str]:
    """Check ``bundle`` against its ``SHA256SUMS`` (``model`` must be listed); return its class names."""
    from search.export._out import sha256

    sums = bundle / "SHA256SUMS"
    fix = "export it again (cnn-search export NAME --out FOLDER)"
    if not sums.is_file():
        raise SearchError(f"{bundle}: not a complete export bundle: it has no SHA256SUMS; {fix}")
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.read_text(errors="replace").splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            raise SearchError(
                f"{sums}: line {number} is not 'SHA256  FILE'; received {line[:60]!r}. The bundle was changed: {fix}"
            )
        listed[name] = digest
    name = model.relative_to(bundle).as_posix()
    if name not in listed:
        raise SearchError(f"{bundle}: {name} is not listed in its SHA256SUMS (not from its export); {fix}")
    bad = [n for n, d in listed.items() if not (bundle / n).is_file() or sha256(bundle / n) != d]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise SearchError(
            f"{bundle}: {len(bad)} file(s) differ from its SHA256SUMS ({shown}): changed, cut short or copied from "
            f"another export; expected the files its export wrote. Nothing was loaded; {fix}"
        )
    return labels_of(bundle / "labels.json", fix)


def labels_of(path: Path, fix: str) -> list[str]:
    try:
        labels = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SearchError(f"{path}: not a JSON list of class names ({exc}); {fix}") from None
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise SearchError(f"{path}: expected a JSON list of class names, received {str(labels)[:60]!r}; {fix}")
    return labels


def check_tflite(path: Path, load: Any) -> None:
    """Refuse ``path`` unless it is a TFLite model that loads and runs once, tried in a forked child
    (``load(path)`` makes its interpreter) so that a crash cannot take this process down."""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise SearchError(
            f"{path}: not a valid TFLite model; expected a FlatBuffer with the TFL3 identifier, received {head[:8]!r}"
        )
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: try it, say why not through the pipe, never return
        os.close(read)
        code = 0
        try:
            import numpy as np

            interpreter = load(path)
            interpreter.allocate_tensors()
            inp = interpreter.get_input_details()[0]
            interpreter.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
            interpreter.invoke()
        except BaseException as exc:
            os.write(write, f"{type(exc).__name__}: {exc}".encode(errors="replace")[:300])
            code = 3
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        import signal

        name = signal.Signals(os.WTERMSIG(status)).name
        raise SearchError(
            f"{path}: not a valid TFLite model: loading it crashed a test process ({name}); expected a .tflite "
            "file as cnn-search export writes it (export the model again)"
        )
    if os.WEXITSTATUS(status) != 0:
        first = said.splitlines()[0] if said else "it failed to load"
        raise SearchError(f"{path}: not a valid TFLite model ({first[:160]}); expected a .tflite file as exported")
