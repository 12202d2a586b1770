"""Another Keras backend (search/_backend.py): a real search, export and predict on JAX with TensorFlow made
unimportable (``CNN_SEARCH_TEST_NO_TENSORFLOW``, tests/faults/sitecustomize.py), as on a GPU machine that has
JAX and no TensorFlow. Real JAX training on the CPU; no GPU is faked here (benchmarks/gpu.py runs on one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from search._backend import installed

from .helpers import ENV, cnn_search, digit_pngs, faults, runs_of

pytestmark = pytest.mark.slow
JAX = {**faults(NO_TENSORFLOW=1), "KERAS_BACKEND": "jax"}


def test_tensorflow_is_out_of_reach_under_the_fault():
    code = "import tensorflow"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**ENV, **JAX}, timeout=120)
    assert out.returncode == 1 and "made unimportable by tests/faults" in out.stderr


def test_a_search_on_jax_without_tensorflow_records_the_backend_exports_keras_and_predicts(tmp_path: Path):
    runs = tmp_path / "runs"
    run = cnn_search(
        "run", "tiny", "--data", "digits", "--trials", "3", "--epochs", "1", "--runs-dir", str(runs), env=JAX
    )
    assert run.returncode == 0, run.stderr[-3000:]
    parents, children = runs_of(runs, "tiny-digits")
    assert len(children) == 3 and {c.data.tags["state"] for c in children} == {"complete"}
    assert {r.data.tags["backend"] for r in (*parents, *children)} == {"jax"}
    # The export writes .keras; the formats TensorFlow writes are said not produced, with the reason.
    exported = cnn_search("export", "tiny-digits", "--runs-dir", str(runs), env=JAX)
    assert exported.returncode == 0, exported.stderr[-3000:]
    bundle = runs / "exports" / "tiny-digits"
    card = json.loads((bundle / "model_card.json").read_text())
    assert set(card["formats"]) == {"keras"} and card["backend"] == {"search": "jax", "export": "jax"}
    assert card["not_produced"]["savedmodel"].startswith(
        "savedmodel needs TensorFlow, not importable here (backend jax)"
    )
    assert "from the tensorflow and torch backends, not jax" in card["not_produced"]["tflite"]
    assert "onnx" in card["not_produced"]
    # predict --runtime keras loads the file on JAX and answers like the exporter's check of it.
    x, paths = digit_pngs(tmp_path, 3)
    predicted = cnn_search("predict", str(bundle), *paths, "--runtime", "keras", "--format", "json", env=JAX)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    answers = json.loads(predicted.stdout)
    assert [a["image"] for a in answers] == paths and {a["runtime"] for a in answers} == {"keras"}
    # The same file in this test process (TensorFlow's backend in the main run) answers the same: one model file.
    from search.export._runtimes import load_runner

    here = load_runner("keras", bundle / "model.keras")(x[:3].astype("float32"))
    labels = json.loads((bundle / "labels.json").read_text())
    for answer, probabilities in zip(answers, here, strict=True):
        assert answer["top"][0]["label"] == labels[int(probabilities.argmax())]
        assert answer["top"][0]["probability"] == pytest.approx(float(probabilities.max()), abs=1e-4)
    # A format that needs TensorFlow is refused when asked for, naming what is missing.
    refused = cnn_search("export", "tiny-digits", "--runs-dir", str(runs), "--format", "savedmodel", env=JAX)
    assert (
        refused.returncode == 1 and "savedmodel needs TensorFlow, not importable here (backend jax)" in refused.stderr
    )


#: The other backends installed here: JAX (the test extras install it), PyTorch where it is installed.
OTHER_BACKENDS = [b for b in ("jax", "torch") if installed(b)]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_the_backends_suite_passes_without_tensorflow(tmp_path: Path, backend: str):
    """The tests marked ``backends`` (the engine contract, export and predict, out-of-memory retry, pinned GPU
    workers) run again, in a pytest of their own, on another backend with TensorFlow unimportable in every
    process: the same tests, not a copy."""
    root = Path(__file__).resolve().parents[1]
    other = {**JAX, "KERAS_BACKEND": backend}
    env = {**ENV, **other, "PYTHONPATH": f"{other['PYTHONPATH']}{':' if other['PYTHONPATH'] else ''}{root}"}
    # JAX's persistent compilation cache, shared by the processes of this run: the tests train the same tiny
    # architectures again and again (measured: 308 s -> 252 s for the run, in CI's budget of 30 minutes)
    env |= {
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.2",
    }
    args = ["-m", "backends", "-n", "0", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "inner")]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", *args], capture_output=True, text=True, env=env, cwd=root, timeout=1500
    )
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-2000:]
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 7 and "skipped" not in summary and "failed" not in summary, summary


def test_a_folder_with_augmentation_trains_on_jax_from_numpy_batches_decoded_like_tensorflow(tmp_path: Path):
    """Without tf.data: Pillow decodes the folder, Keras resizes it, a PyDataset feeds augmented NumPy batches."""
    import numpy as np
    from PIL import Image

    from search import load_dataset

    rng = np.random.default_rng(0)
    folder = tmp_path / "folder"
    for label, level in (("dark", 60), ("light", 190)):
        (folder / label).mkdir(parents=True)
        for i in range(24):
            size = (12, 10) if i % 2 else (16, 16)  # two sizes: every image is resized to 8x8
            pixels = np.clip(rng.normal(level, 30, (*size[::-1], 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / label / f"{i}.png")
    space = tmp_path / "aug.yaml"
    space.write_text(
        "name: aug\nblocks: {depth: 1, filters: 8, pooling: max}\nhead: {dense_layers: 0}\n"
        "training: {epochs: 1, batch_size: 16, augment: {flip: horizontal, rotation: 0.1}}\n"
    )
    decoded = tmp_path / "decoded.npy"
    code = (
        "import sys, numpy as np\n"
        "from search import load_dataset, run_search\n"
        f"data = load_dataset({str(folder)!r}, image_size=8)\n"
        "assert not data.in_memory\n"
        f"np.save({str(decoded)!r}, data.arrays('train')[0])\n"
        f"r = run_search({str(space)!r}, data, trials=2, epochs=1, seed=0, runs_dir={str(tmp_path / 'runs')!r},"
        " report=False)\n"
        "print('states', sorted(r.states.items()))\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**ENV, **JAX}, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "states [('complete', 2)]" in out.stdout
    here = load_dataset(folder, image_size=8)  # TensorFlow's decoder in this process (the main run)
    jax_images = np.load(decoded)
    assert jax_images.shape == here.arrays("train")[0].shape == (here.counts["train"], 8, 8, 3)
    assert np.abs(jax_images.astype(int) - here.arrays("train")[0].astype(int)).max() <= 2
