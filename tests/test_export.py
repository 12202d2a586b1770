"""Export and predict: a real tiny search, every format written, loaded back with its own runtime and
checked; predict on PNG files with each runtime; the registry; a killed export; refused models."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from search._backend import export_needs
from search._backend import name as backend

from .helpers import ENV, cnn_search, digit_pngs, faults, mlflow_client, runs_of

pytestmark = pytest.mark.slow
NAME = "tiny-digits"
FLOAT_FORMATS = {"keras", "savedmodel", "tflite", "onnx"}
#: The formats this installation writes on this Keras backend: all four on TensorFlow with the export extras;
#: on JAX without TensorFlow (marker ``backends``, .ci/run) ``.keras``, the others said not produced.
HERE = {f for f in FLOAT_FORMATS if export_needs(f) is None}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished tiny search (3 trials, 2 epochs) in a runs folder of its own."""
    runs = tmp_path_factory.mktemp("export") / "runs"
    out = cnn_search("run", "tiny", "--trials", "3", "--epochs", "2", "--seed", "0", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-3000:]
    return runs


@pytest.fixture(scope="module")
def exported(searched):
    quantize = ["--quantize", "int8"] if "tflite" in HERE else []
    out = cnn_search("export", NAME, "--runs-dir", str(searched), *quantize)
    assert out.returncode == 0, out.stderr[-3000:]
    assert _noise(out.stderr) == [], out.stderr  # pinned here: every later test reads this export
    return searched, searched / "exports" / NAME


#: TensorFlow's and TFLite's C++ lines, printed before cnn-search quieted a probe-then-import and the
#: XNNPACK delegate: export printed them twice, predict on TFLite once.
NATIVE_NOISE = ("oneDNN", "cuda drivers", "absl::InitializeLog", "XNNPACK", "cudart_stub")


def _noise(said: str) -> list[str]:
    return [line for line in said.splitlines() if any(n in line for n in NATIVE_NOISE)]


def _copy(runs, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    return copy


@pytest.mark.backends
def test_every_format_is_written_and_answers_like_the_winner(exported):
    from search.data import load_dataset
    from search.export import verify_bundle
    from search.export._runtimes import load_runner

    runs, bundle = exported
    card = json.loads((bundle / "model_card.json").read_text())
    assert set(card["formats"]) == HERE | ({"tflite_int8"} if "tflite" in HERE else set())
    assert {fmt: export_needs(fmt) for fmt in FLOAT_FORMATS - HERE} == card["not_produced"]  # each with its reason
    assert card["backend"] == {"search": backend(), "export": backend()}
    assert f"- Keras backend: trained on {backend()}, exported on {backend()}" in (bundle / "MODEL_CARD.md").read_text()
    parents, children = runs_of(runs, NAME)
    assert card["trial"] == int(parents[0].data.tags["best_trial"])
    for fmt in HERE:
        f = card["formats"][fmt]
        assert f["parity"]["top1_agreement"] >= 0.999 and f["parity"]["max_abs_diff"] <= 1e-4, (fmt, f)
        assert f["bytes"] > 0 and f["latency_ms"] > 0
    if "tflite" in HERE:
        quantized = card["formats"]["tflite_int8"]
        assert quantized["file"] == "model_int8.tflite" and "test_accuracy_change" in quantized
    assert verify_bundle(bundle) == []
    # independently of the exporter: each file, in its own runtime, against model.keras
    images = load_dataset("digits", seed=0).arrays("validation")[0][:64].astype("float32")
    reference = load_runner("keras", bundle / "model.keras")(images)
    for fmt, file in [("savedmodel", "savedmodel"), ("tflite", "model.tflite"), ("onnx", "model.onnx")]:
        if fmt not in HERE:
            assert not (bundle / file).exists()
            continue
        got = load_runner(fmt, bundle / file)(images)
        assert np.abs(got - reference).max() <= 1e-4, fmt
    contract = json.loads((bundle / "input.json").read_text())
    assert contract["shape"] == [8, 8, 1] and contract["value_range"] == [0, 255] and contract["dtype"] == "float32"
    assert json.loads((bundle / "labels.json").read_text()) == [str(i) for i in range(10)]
    text = (bundle / "MODEL_CARD.md").read_text()
    assert card["architecture"]["summary"] in text and card["data"]["fingerprint"] in text
    assert card["architecture"]["params"] == int(children[card["trial"]].data.metrics["num_params"])
    # why the winner won and the chance level, as the search recorded them (issue 34, item 1)
    assert card["winner_why"] == parents[0].data.tags["winner_why"] and f"- Why it won: {card['winner_why']}" in text
    assert card["chance_accuracy"] == parents[0].data.metrics["chance_accuracy"]
    assert f"; chance {card['chance_accuracy']:.4f}" in text


@pytest.mark.backends
def test_predict_with_each_runtime_on_png_files(exported, tmp_path):
    from PIL import Image

    _, bundle = exported
    x, paths = digit_pngs(tmp_path, 4)
    big = tmp_path / "big.png"
    Image.fromarray(x[0, :, :, 0]).resize((32, 32)).convert("RGB").save(big)
    answers = {}
    runtimes = [r for r in ("keras", "tflite", "onnx") if r in HERE]
    for runtime in runtimes:
        out = cnn_search(
            "predict", str(bundle), *paths, str(big), "--runtime", runtime, "--top-k", "3", "--format", "json"
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert _noise(out.stderr) == [], out.stderr
        answers[runtime] = json.loads(out.stdout)
        assert [len(r["top"]) for r in answers[runtime]] == [3] * 5
        assert answers[runtime][-1]["note"] == "resized from 32x32 to 8x8"
    for runtime in runtimes[1:]:
        for a, b in zip(answers["keras"], answers[runtime], strict=True):
            assert [t["label"] for t in a["top"]] == [t["label"] for t in b["top"]]
            assert max(abs(s["probability"] - t["probability"]) for s, t in zip(a["top"], b["top"], strict=True)) < 1e-4
    table = cnn_search("predict", str(bundle / ("model.onnx" if "onnx" in HERE else "model.keras")), paths[0])
    assert table.returncode == 0 and paths[0] in table.stdout and "1. " in table.stdout
    if "tflite" in HERE:  # a bare .tflite is tried in a forked child first: quiet there too
        bare = cnn_search("predict", str(bundle / "model.tflite"), paths[0])
        assert bare.returncode == 0 and "1. " in bare.stdout and _noise(bare.stderr) == [], bare.stderr
    missing = cnn_search("predict", str(bundle), str(tmp_path / "nope.png"))
    assert missing.returncode == 1 and "nope.png: no such image" in missing.stderr
    text = tmp_path / "text.png"
    text.write_text("not an image")
    bad = cnn_search("predict", str(bundle), str(text))
    assert bad.returncode == 1 and "text.png: not a readable image" in bad.stderr


@pytest.mark.backends
def test_the_champion_loads_in_a_fresh_process_and_the_bundle_is_on_the_run(exported):
    runs, bundle = exported
    card = json.loads((bundle / "model_card.json").read_text())
    uri = f"sqlite:///{(runs / 'mlflow.db').resolve()}"
    code = (
        f"import mlflow; mlflow.set_tracking_uri({uri!r}); "
        f"m = mlflow.keras.load_model('models:/{NAME}@champion'); print(m.count_params())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) == card["architecture"]["params"]
    client = mlflow_client(runs)
    version = client.get_model_version_by_alias(NAME, "champion")
    assert version.tags["trial"] == str(card["trial"])
    parent = runs_of(runs, NAME)[0][0]
    sums = dict(line.split("  ")[::-1] for line in (bundle / "SHA256SUMS").read_text().splitlines())
    assert parent.data.tags["export.sha256.model.keras"] == sums["model.keras"]
    if "onnx" in HERE:
        assert parent.data.tags["export.sha256.model.onnx"] == sums["model.onnx"]
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "export")}
    assert {"export/model.keras", "export/MODEL_CARD.md", "export/SHA256SUMS"} <= logged
    assert ("export/savedmodel" in logged) == ("savedmodel" in HERE)


def test_exporting_another_trial_retrains_it_and_names_it_exported_leaving_the_champion(searched, tmp_path):
    runs = _copy(searched, tmp_path)
    parents, children = runs_of(runs, NAME)
    best = int(parents[0].data.tags["best_trial"])
    other = next(
        int(c.data.tags["trial"])
        for c in children
        if c.data.tags["state"] == "complete" and c.data.tags["trial"] != str(best)
    )
    out = cnn_search("export", NAME, "--trial", str(other), "--format", "keras,tflite", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"the weights of trial {other} were not kept; retraining it" in out.stderr
    card = json.loads((runs / "exports" / NAME / "model_card.json").read_text())
    assert card["trial"] == other and set(card["formats"]) == {"keras", "tflite"}
    client = mlflow_client(runs)
    assert client.get_model_version_by_alias(NAME, "exported").tags["trial"] == str(other)
    assert client.get_model_version_by_alias(NAME, "champion").tags["trial"] == str(best)  # the winner's, kept
    assert f"registered: models:/{NAME}@exported -> trial {other}" in out.stdout
    assert card["architecture"]["summary"] == children[other].data.tags["architecture"]


def test_a_killed_export_leaves_the_previous_bundle_intact(exported, tmp_path):
    from search.export import verify_bundle

    runs = _copy(exported[0], tmp_path)
    bundle = runs / "exports" / NAME
    before = (bundle / "SHA256SUMS").read_text()
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", "export", NAME, "--runs-dir", str(runs)],
        env={**ENV, **faults(EXPORT_PAUSE="120")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while not list(runs.glob(f"exports/.{NAME}.partial-*/.paused")):
            assert proc.poll() is None and time.time() < deadline, "the export never reached its pause"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert (bundle / "SHA256SUMS").read_text() == before and verify_bundle(bundle) == []
    assert list(runs.glob(f"exports/.{NAME}.partial-*"))  # the half-written one, beside it
    again = cnn_search("export", NAME, "--format", "keras", "--runs-dir", str(runs))
    assert again.returncode == 0, again.stderr[-2000:]
    assert not list(runs.glob(f"exports/.{NAME}.*"))  # leftovers cleaned
    assert set(json.loads((bundle / "model_card.json").read_text())["formats"]) == {"keras"}


def test_an_export_killed_between_its_two_renames_is_repaired(exported, tmp_path):
    from search.export import verify_bundle
    from search.export._out import recover as _recover

    runs = _copy(exported[0], tmp_path)
    bundle = runs / "exports" / NAME
    aside = bundle.parent / f".{NAME}.old-12345"
    bundle.rename(aside)  # the state a kill between the renames leaves
    _recover(bundle)
    assert bundle.is_dir() and not aside.exists() and verify_bundle(bundle) == []


def test_models_that_need_code_are_refused(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    crafted = tmp_path / "crafted.keras"
    model.save(crafted)
    out = cnn_search("predict", str(crafted), str(tmp_path / "x.png"))
    assert out.returncode == 1
    assert "refusing a model that needs code to load (a Lambda layer or a custom object)" in out.stderr
    legacy = tmp_path / "old.h5"
    legacy.write_bytes(b"\x89HDF\r\n\x1a\n")
    out = cnn_search("predict", str(legacy), str(tmp_path / "x.png"))
    assert out.returncode == 1 and "refusing a legacy HDF5 (.h5) model" in out.stderr


def test_bad_export_requests_say_what_was_wrong(searched):
    runs = str(searched)
    cases = [
        (["export", "nope", "--runs-dir", runs], "no search named 'nope'"),
        (["export", NAME, "--format", "keras,jpeg", "--runs-dir", runs], "--format: expected a comma-separated list"),
        (["export", NAME, "--trial", "99", "--runs-dir", runs], "has no completed trial 99; expected one of [0, 1, 2]"),
        (["export", NAME, "--quantize", "int4", "--runs-dir", runs], "--quantize: expected one of none, float16, int8"),
        (["export", NAME, "--format", "onnx", "--quantize", "int8", "--runs-dir", runs], "--quantize int8 applies to"),
    ]
    for args, message in cases:
        out = cnn_search(*args)
        assert out.returncode == 1 and message in out.stderr, (args, out.stderr[-1500:])


def test_a_format_whose_tools_are_missing_is_said_not_skipped(searched, tmp_path):
    """tf2onnx made unimportable in a real subprocess (a meta-path blocker): the default export
    leaves ONNX out and says why; asking for ONNX fails."""
    runs = _copy(searched, tmp_path)
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'tf2onnx': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from search.cli import main; sys.argv = ['cnn-search', *sys.argv[1:]]; main()\n"
    )
    base = [sys.executable, "-c", blocker, "export", NAME, "--runs-dir", str(runs)]
    out = subprocess.run(base, capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "not exporting onnx: onnx needs the Python package(s) tf2onnx, not installed" in out.stderr
    card = json.loads((runs / "exports" / NAME / "model_card.json").read_text())
    assert "onnx" not in card["formats"] and "tf2onnx" in card["not_produced"]["onnx"]
    out = subprocess.run([*base, "--format", "onnx"], capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 1 and "--format onnx: onnx needs the Python package(s) tf2onnx" in out.stderr


def test_a_model_a_converter_cannot_take_is_said_not_produced(tmp_path):
    """tf2onnx has no ONNX op for GELU's Erfc: the default export leaves ONNX out with the reason
    (found by the README's vgg search); asking for ONNX fails and publishes nothing."""
    space = tmp_path / "gelu.yaml"
    space.write_text(
        "name: gelu\nblocks: {depth: 1, filters: 8, activation: gelu}\nhead: {dense_layers: 0}\n"
        "training: {epochs: 1, batch_size: 64}\n"
    )
    runs = tmp_path / "runs"
    out = cnn_search("run", str(space), "--trials", "1", "--runs-dir", str(runs), "--no-report")
    assert out.returncode == 0, out.stderr[-3000:]
    asked = cnn_search("export", "gelu-digits", "--format", "keras,onnx", "--runs-dir", str(runs))
    assert asked.returncode == 1 and "--format onnx: the converter failed" in asked.stderr
    assert not (runs / "exports" / "gelu-digits").exists()
    default = cnn_search("export", "gelu-digits", "--runs-dir", str(runs))
    assert default.returncode == 0, default.stderr[-3000:]
    card = json.loads((runs / "exports" / "gelu-digits" / "model_card.json").read_text())
    assert {"keras", "savedmodel", "tflite"} <= set(card["formats"]) and "onnx" not in card["formats"]
    assert "Erfc" in card["not_produced"]["onnx"]
    assert "not produced" in (runs / "exports" / "gelu-digits" / "MODEL_CARD.md").read_text()


def test_an_export_onto_a_users_folder_keeps_every_file_in_it(exported, tmp_path):
    """Issue 31, item 1: --out DIR used to delete DIR whatever it held. A folder with other files is refused
    (nothing written); with --force the bundle is written beside them; an earlier bundle is replaced."""
    from search.export import verify_bundle

    runs = _copy(exported[0], tmp_path)
    mine = tmp_path / "mine"
    (mine / "notes").mkdir(parents=True)
    (mine / "thesis.tex").write_text("three years of work\n")
    (mine / "notes" / "a.txt").write_text("a\n")
    before = {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    out = cnn_search("export", NAME, "--format", "keras", "--out", str(mine), "--runs-dir", str(runs))
    said = " ".join(out.stderr.split())
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert f"--out {mine}: holds 2 file(s) that are not a cnn-search bundle (notes/a.txt, thesis.tex)" in said
    assert "Pass --out a new folder, or --force" in said
    assert {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "runs"]  # no partial folder beside it

    for _ in range(2):  # a second --force export replaces its own files, still beside the user's
        forced = cnn_search("export", NAME, "--format", "keras", "--out", str(mine), "--force", "--runs-dir", str(runs))
        assert forced.returncode == 0, forced.stderr[-2000:]
        assert all(p.read_bytes() == data for p, data in before.items())
        assert (mine / "model.keras").is_file() and verify_bundle(mine) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "runs"]


def test_an_export_onto_the_runs_dir_is_refused_and_the_store_kept(exported, tmp_path):
    """Issue 31, item 1: --out runs used to delete every search and model in the store, then fail."""
    runs = _copy(exported[0], tmp_path)
    before = sorted(p.relative_to(runs) for p in runs.rglob("*"))
    out = cnn_search("export", NAME, "--format", "keras", "--out", str(runs), "--runs-dir", str(runs))
    assert out.returncode == 1 and "that are not a cnn-search bundle" in out.stderr, out.stderr[-2000:]
    assert sorted(p.relative_to(runs) for p in runs.rglob("*")) == before
    listed = cnn_search("trials", NAME, "--runs-dir", str(runs))
    assert listed.returncode == 0 and "trial" in listed.stdout, listed.stderr[-2000:]


def test_an_export_into_the_current_folder_writes_beside_and_keeps_it(exported, tmp_path):
    """`--out .` used to fail with a traceback (it tried to rename the current folder): an empty current folder
    gets the bundle, and so does the same folder again (a bundle that is the current folder is written into,
    never renamed away from under the shell)."""
    from search.export import verify_bundle

    runs = _copy(exported[0], tmp_path)
    here = tmp_path / "here"
    here.mkdir()
    inode = here.stat().st_ino
    for _ in range(2):
        out = cnn_search("export", NAME, "--format", "keras", "--out", ".", "--runs-dir", str(runs), cwd=here)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
        assert here.stat().st_ino == inode and verify_bundle(here) == [] and (here / "model.keras").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here", "runs"]
