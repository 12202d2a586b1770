"""The contract every engine passes (Optuna's testing/pytest_samplers habit): same space, same data,
same MLflow record. Real processes, real stores, tiny trainings."""

from __future__ import annotations

import pytest

from search import FixedParams, RandomParams, build_model, load_space
from search.engines._keras_tuner import KerasTunerParams

from .helpers import cnn_search, mlflow_client, runs_of

ENGINES = ["optuna", "keras-tuner", "autokeras"]


def _name(engine: str, base: str = "tiny-digits") -> str:
    return base if engine == "optuna" else f"{base}-{engine}"


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_contract(tmp_path, engine):
    runs = tmp_path / "runs"
    args = ["run", "tiny", "--engine", engine, "--epochs", "1", "--runs-dir", str(runs), "--seed", "0"]
    first = cnn_search(*args, "--trials", "3")
    assert first.returncode == 0, first.stderr[-3000:]
    name = _name(engine)
    parents, children = runs_of(runs, name)
    assert len(parents) == 1 and len(children) == 3  # the trial count is respected
    assert all(c.info.status == "FINISHED" and c.data.tags["engine"] == engine for c in children)
    assert parents[0].data.tags["engine"] == engine and "test_accuracy" in parents[0].data.metrics
    # tiny.yaml's start point is every engine's first trial, tagged (AutoKeras: what it can express of it;
    # it has no activation choice, and its learning rates are a grid: 0.003 becomes the nearest, 0.001)
    assert [c.data.tags.get("start_point") for c in children] == ["0", None, None]
    point = load_space("tiny").start[0]
    if engine == "autokeras":
        point = {k: v for k, v in point.items() if "/activation" not in k} | {"training/learning_rate": 0.001}
    expressible = point
    assert {k: children[0].data.params.get(k) for k in expressible} == {k: str(v) for k, v in expressible.items()}

    # the best architecture rebuilds from its logged params with the fixed-dict source
    space = load_space("tiny")
    best = next(c for c in children if c.data.tags["trial"] == parents[0].data.tags["best_trial"])
    arch = space.sample(FixedParams(best.data.params))
    assert arch.hash() == best.data.tags["architecture_hash"]
    assert build_model(arch, (8, 8, 1), 10).count_params() == best.data.metrics["num_params"]
    version = mlflow_client(runs).get_model_version_by_alias(name, "champion")
    assert version.tags["trial"] == best.data.tags["trial"]

    again = cnn_search(*args, "--trials", "5")  # rerunning adds trials instead of starting over
    assert again.returncode == 0, again.stderr[-3000:]
    parents, children = runs_of(runs, name)
    assert len(parents) == 1 and len(children) == 5
    assert [c.data.tags.get("start_point") for c in children].count("0") == 1  # not tried again on resume
    done = cnn_search(*args, "--trials", "5")
    assert done.returncode == 0 and "nothing to do" in done.stderr
    assert len(runs_of(runs, name)[1]) == 5


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_survives_infeasible_samples(tmp_path, engine):
    space = tmp_path / "deep.yaml"
    space.write_text(
        "name: deep\nblocks:\n  depth: [1, 4]\n  filters: [4, 8]\n  pooling: max\n"
        "head: {dense_layers: 0}\ntraining: {epochs: 1, batch_size: 128}\n"
    )
    runs = tmp_path / "runs"
    extra = ["--sampler", "random"] if engine == "optuna" else ["--tuner", "random"]
    out = cnn_search(
        "run", str(space), "--engine", engine, "--trials", "8", "--runs-dir", str(runs), "--seed", "2", *extra
    )
    assert out.returncode == 0, out.stderr[-3000:]
    _, children = runs_of(runs, _name(engine, "deep-digits"))
    states = [c.data.tags["state"] for c in children]
    assert "infeasible" in states and "complete" in states, states
    assert all(c.info.status == "FINISHED" for c in children)
    assert "Traceback" not in out.stderr  # an infeasible trial is a line with its reason, not a traceback (issue 13)


def test_keras_tuner_params_ask_only_active_parameters_with_the_same_names():
    import keras_tuner as kt

    space = load_space("vgg")
    possible: set[str] = set()
    for seed in range(30):
        source = RandomParams(seed)
        space.sample(source)
        possible |= set(source.params)
    hp = kt.HyperParameters()
    for _ in range(5):
        source = KerasTunerParams(hp)
        arch = space.sample(source)
        assert set(source.params) <= possible  # the same path-like names as every other engine
        depth = len(arch.blocks)
        assert not [n for n in source.params if n.startswith(f"block_{depth}/")]  # no inactive block
        assert space.sample(FixedParams(source.params)) == arch


@pytest.mark.slow
def test_compare_lines_up_searches_of_different_engines(tmp_path):
    import json

    runs = tmp_path / "runs"
    for engine in ENGINES:
        out = cnn_search("run", "tiny", "--engine", engine, "--trials", "2", "--epochs", "1", "--runs-dir", str(runs))
        assert out.returncode == 0, out.stderr[-2000:]
    names = ["tiny-digits", "tiny-digits-keras-tuner", "tiny-digits-autokeras"]
    out = cnn_search("compare", *names, "--runs-dir", str(runs), "--format", "json")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)
    assert [(r["search"], r["engine"], r["trials"]) for r in rows] == list(zip(names, ENGINES, [2, 2, 2], strict=True))
    for row in rows:
        assert 0 <= row["best_val_accuracy"] <= 1 and 0 <= row["test_accuracy"] <= 1
        assert row["wall_seconds"] > 0 and row["trials_per_hour"] > 0 and row["seconds_to_best"] <= row["wall_seconds"]
    # children of the three searches share parameter names, so the MLflow compare view lines them up
    params = [set().union(*(c.data.params for c in runs_of(runs, r["search"])[1])) for r in rows]
    assert {"blocks/depth", "block_0/filters", "block_0/activation", "training/learning_rate"} <= set.intersection(
        *params
    )
    missing = cnn_search("compare", "nope", "--runs-dir", str(runs))
    assert missing.returncode == 1 and "no search named 'nope'" in missing.stderr
