"""Fuzz of ``predict``'s load path (issue 31, items 7 and 11; docs/RELIABILITY.md rows 33-35): truncated,
bit-flipped and random bytes as a bare ``.tflite``, ``.onnx`` and ``.keras`` file, and as each file of a
bundle (``SHA256SUMS``, ``labels.json``, ``input.json``, the model). The package is called in-process: a
segmentation fault would end the whole test run, which is what the child that tries a bare ``.tflite``
first (``search/export/_checks.py``) prevents. Each input is a ``SearchError`` of one line naming the file,
or, for a change the format does not notice (a flipped weight), a prediction as for a valid file; never
another exception, a crash or a hang. 40 inputs per kind (7 kinds: 280), about 30 s on 2 cores.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search._errors import SearchError

from .test_predict_faults import bundle, image  # noqa: F401 (fixtures: one real bundle for this module)

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DAMAGE = dict(
    how=st.sampled_from(["cut", "flip", "random"]),
    cut=st.integers(min_value=0),
    flips=st.lists(st.integers(min_value=0), min_size=1, max_size=8),
    junk=st.binary(max_size=4096),
)


def _damaged(data: bytes, how: str, cut: int, flips: list[int], junk: bytes) -> bytes:
    """``data`` cut short, with up to 8 bits flipped, or replaced by random bytes."""
    if how == "cut":
        return data[: cut % max(1, len(data))]
    if how == "flip":
        out = bytearray(data)
        for f in flips:
            out[f % len(out)] ^= 1 << (f % 8)
        return bytes(out)
    return junk


@pytest.mark.parametrize("suffix", [".tflite", ".onnx", ".keras"])
def test_fuzzed_model_files_give_a_clean_error_or_a_prediction(tmp_path, bundle, image, suffix):  # noqa: F811
    from search.export import predict

    original = (bundle / f"model{suffix}").read_bytes()
    seen = {"refused": 0, "predicted": 0}

    @FUZZ
    @given(**DAMAGE)
    def check(how, cut, flips, junk):
        model = Path(tempfile.mkdtemp(dir=tmp_path)) / f"model{suffix}"
        model.write_bytes(_damaged(original, how, cut, flips, junk))
        try:
            (result,) = predict(model, [image])
        except SearchError as exc:
            assert "\n" not in str(exc) and str(model) in str(exc)
            seen["refused"] += 1
        else:  # a flip the format does not notice (padding, a weight): a prediction, as for a valid file
            assert result["top"]
            seen["predicted"] += 1

    check()
    print(f"{suffix}: {seen}")  # pytest -s: the counts in docs/RELIABILITY.md
    assert sum(seen.values()) >= FUZZ.max_examples and seen["refused"] > 0  # random bytes are never a model


@pytest.mark.parametrize("name", ["SHA256SUMS", "labels.json", "input.json", "model.keras"])
def test_fuzzed_bundle_files_are_refused_by_their_sums(tmp_path, bundle, image, name):  # noqa: F811
    from search.export import predict

    seen = {"refused": 0, "predicted": 0}

    @FUZZ
    @given(**DAMAGE)
    def check(how, cut, flips, junk):
        copy = Path(tempfile.mkdtemp(dir=tmp_path)) / "bundle"
        shutil.copytree(bundle, copy)
        original = (copy / name).read_bytes()
        damaged = _damaged(original, how, cut, flips, junk)
        (copy / name).write_bytes(damaged)
        try:
            (result,) = predict(copy, [image])
        except SearchError as exc:
            assert "\n" not in str(exc) and str(copy) in str(exc)
            assert damaged != original
            seen["refused"] += 1
        else:  # only an unchanged file, or SHA256SUMS still right (cut after the lines of the files used)
            assert damaged == original or name == "SHA256SUMS"
            assert result["top"]
            seen["predicted"] += 1

    check()
    print(f"{name}: {seen}")
    assert sum(seen.values()) >= FUZZ.max_examples and seen["refused"] > 0
