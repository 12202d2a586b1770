"""What ``predict`` checks before it loads a model or reads an image (docs/RELIABILITY.md rows 33-35).

A model file is code-like input: TensorFlow Lite's interpreter reads a FlatBuffer without verifying it,
and a truncated or bit-flipped ``.tflite`` took the process down with a segmentation fault (exit 139).
So, decided:

* **A bundle is checked whole first.** Every file ``SHA256SUMS`` lists must exist and match (a name that
  leaves the bundle, ``..`` or absolute, is refused), and the model file used must be listed: a file
  changed, truncated or copied from another export is named in one line with the fix (export again).
  Its ``labels.json`` must be a list of class names. A bundle that
  passes was loaded back and compared with the Keras model by the export that wrote it
  (``search/export/_export.py``), so its models are loaded directly.
* **A bare ``.tflite``** (no bundle around it) is loaded and run once on zeros in a forked child first
  (:func:`check_tflite`), after a cheap look at its FlatBuffer identifier (``TFL3``): a crash there
  kills only the child and is said as "not a valid TFLite model". The child's address space is capped
  (what the process has plus 4 GiB), so a model claiming huge tensors fails there, not in the machine's
  out-of-memory killer; a child still running after :data:`TFLITE_CHECK_SECONDS` (a looping model, a
  fork that deadlocked on a lock another thread held) is killed and said. Measured on this 2-core
  machine: the child costs about 10 ms for the tiny space's model (median of 20; a fork of the process
  that has imported TensorFlow, one ``allocate_tensors`` and one ``invoke``), against about 4 s to start
  TensorFlow at all. A fork, not a spawned interpreter: a spawn would start TensorFlow again (seconds).
  The file is then loaded again in this process: a file changed between the two (milliseconds) is not
  guarded against, nor a crash that only the user's pixels would cause (none found by the fuzz tests).
* **A bare ``.keras`` or ``.onnx``** cannot crash the process the same way (a zip archive; a protobuf
  parsed by onnxruntime, which raises): they are checked for what they must be (a zip holding
  ``config.json``) and any load error is said in one line (``search/export/_runtimes.py``).
* **Images and model files are read only when they are regular files** (a FIFO made ``predict`` wait
  forever, a device is endless) of at most :data:`MAX_FILE_BYTES`; a bundle's ``SHA256SUMS`` and a
  ``labels.json`` of at most :data:`MAX_TEXT_BYTES`, as UTF-8.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn

from search._errors import SearchError
from search._quiet import stderr_silenced
from search.data._errors import mode_kind

#: The largest image or model file ``predict`` reads.
MAX_FILE_BYTES = 1 << 30
#: The largest ``SHA256SUMS`` or ``labels.json`` read (a bundle's are a few hundred bytes).
MAX_TEXT_BYTES = 1 << 20
#: How long the child trying a bare ``.tflite`` may take (it takes about 11 ms for the tiny space's model).
TFLITE_CHECK_SECONDS = 60.0


def regular_file(path: Path, what: str) -> None:
    """Refuse ``path`` unless it is a regular file of at most :data:`MAX_FILE_BYTES` (links followed)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SearchError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise SearchError(f"{path}: cannot read this {what} ({exc.strerror or exc})") from None
    kind = mode_kind(info.st_mode)
    if kind is not None:
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
    for number, line in enumerate(_small_text(sums, fix).splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise SearchError(
                f"{sums}: line {number} is not 'SHA256  FILE' (a file inside the bundle); received {line[:60]!r}. "
                f"The bundle was changed: {fix}"
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
    """The class names in ``path`` (a JSON list of strings), or one line saying what it holds instead."""
    try:
        labels = json.loads(_small_text(path, fix))
    except ValueError as exc:
        raise SearchError(f"{path}: not a JSON list of class names ({exc}); {fix}") from None
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise SearchError(f"{path}: expected a JSON list of class names, received {str(labels)[:60]!r}; {fix}")
    return labels


def _small_text(path: Path, fix: str) -> str:
    """The text of a bundle's small file, at most :data:`MAX_TEXT_BYTES` read (a regular file only)."""
    regular_file(path, "bundle")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TEXT_BYTES + 1)
    except OSError as exc:
        raise SearchError(f"{path}: cannot read it ({exc.strerror or exc}); {fix}") from None
    if len(data) > MAX_TEXT_BYTES:
        raise SearchError(f"{path}: expected at most {MAX_TEXT_BYTES >> 10} KiB, received more; {fix}")
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise SearchError(f"{path}: expected UTF-8 text, received bytes that are not ({exc.reason}); {fix}") from None


def check_tflite(path: Path, load: Any, timeout: float = TFLITE_CHECK_SECONDS) -> None:
    """Refuse ``path`` unless it is a TFLite model that loads and runs once, tried in a forked child
    (``load(path)`` makes its interpreter) so that a crash cannot take this process down; a child still
    running after ``timeout`` seconds (a model that loops, a fork that deadlocked) is killed and said."""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise SearchError(
            f"{path}: not a valid TFLite model; expected a FlatBuffer with the TFL3 identifier, received {head[:8]!r}"
        )
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns of a fork with threads: the child only runs the model
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os.close(read)
        _try_tflite(path, load, write)  # never returns
    os.close(write)
    said, status = _wait_child(pid, read, timeout)
    fix = "expected a .tflite file as cnn-search export writes it (export the model again)"
    if status is None:
        raise SearchError(
            f"{path}: not a valid TFLite model: loading and running it once took over {timeout:g} s; {fix}"
        )
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise SearchError(f"{path}: not a valid TFLite model: loading it crashed a test process ({name}); {fix}")
    if os.WEXITSTATUS(status) != 0:
        first = said.splitlines()[0] if said else "it failed to load"
        raise SearchError(f"{path}: not a valid TFLite model ({first[:160]}); expected a .tflite file as exported")


def _try_tflite(path: Path, load: Any, write: int) -> NoReturn:
    """The child: bounded memory, load and run once on zeros, say why not through ``write``; exits, never
    returns."""
    import faulthandler

    faulthandler.disable()  # a crash is what the child is for: said by the parent, not as a stack dump
    code = 0
    try:
        _limit_memory(path.stat().st_size)
        import numpy as np

        interpreter = load(path)
        with stderr_silenced():  # the XNNPACK delegate's INFO line from C++
            interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
    except BaseException as exc:
        os.write(write, f"{type(exc).__name__}: {exc}".encode(errors="replace")[:300])
        code = 3
    os._exit(code)


def _limit_memory(model_bytes: int) -> None:
    """A model whose tensors claim more memory than this process has plus 4 GiB (or 4 times the file) fails to
    allocate in the child, instead of pushing the machine into its out-of-memory killer (Linux only)."""
    try:
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = used + max(4 << 30, 4 * model_bytes)
    if soft == resource.RLIM_INFINITY or cap < soft:  # never above a limit already set (the hard one included)
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))


def _wait_child(pid: int, read: int, timeout: float) -> tuple[str, int | None]:
    """(what the child wrote, its wait status), or (.., None) when it was killed after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    with os.fdopen(read, "rb", buffering=0) as pipe:
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([pipe], [], [], left)[0]:
                continue
            chunk = pipe.read(4096)
            if not chunk:  # the child exited (its end of the pipe closed)
                _, status = os.waitpid(pid, 0)
                return b"".join(chunks).decode(errors="replace"), status
            chunks.append(chunk)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode(errors="replace"), None
