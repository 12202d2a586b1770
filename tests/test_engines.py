"""The contract every engine passes (Optuna's testing/pytest_samplers habit): same space, same data,
same MLflow record. Real processes, real stores, tiny trainings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search import FixedParams, RandomParams, SearchError, build_model, load_space, run_search
from search._backend import DETERMINISM
from search._backend import name as backend
from search._goal import GOAL
from search.engines import ENGINES, Engine, SearchOptions, SearchResult, Session, get_engine, register_engine
from search.engines._keras_tuner import KerasTunerParams
from search.runtime._session import TrialStore

from .helpers import cnn_search, mlflow_client, runs_of

#: The engines that come with cnn-search; a new one joins the contract here.
ENGINES_UNDER_CONTRACT = ["optuna", "keras-tuner", "autokeras"]


def _name(engine: str, base: str = "tiny-digits") -> str:
    return base if engine == "optuna" else f"{base}-{engine}"


@pytest.mark.slow
@pytest.mark.backends
@pytest.mark.parametrize("engine", ENGINES_UNDER_CONTRACT)
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
    # the Keras backend is recorded on the search and on every trial (KERAS_BACKEND=jax under marker backends)
    assert {r.data.tags["backend"] for r in (*parents, *children)} == {backend()}
    assert parents[0].data.tags["determinism"] == DETERMINISM[backend()]  # what --seed repeats on this backend
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
@pytest.mark.parametrize("engine", ENGINES_UNDER_CONTRACT)
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
    for engine in ENGINES_UNDER_CONTRACT:
        out = cnn_search("run", "tiny", "--engine", engine, "--trials", "2", "--epochs", "1", "--runs-dir", str(runs))
        assert out.returncode == 0, out.stderr[-2000:]
    names = ["tiny-digits", "tiny-digits-keras-tuner", "tiny-digits-autokeras"]
    out = cnn_search("compare", *names, "--runs-dir", str(runs), "--format", "json")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)
    assert [(r["search"], r["engine"], r["trials"]) for r in rows] == list(
        zip(names, ENGINES_UNDER_CONTRACT, [2, 2, 2], strict=True)
    )
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


class SeededRandomEngine(Engine):
    """The smallest engine there is: trial ``i`` is the space sampled with seed ``i``; its trials in one JSON file."""

    name = "seeded-random"
    resumes = "its rows file: finished trials are kept"

    def rows_file(self, runs_dir: Path, name: str) -> Path:
        return Path(runs_dir) / "seeded_random" / f"{name}.json"

    def run(self, session: Session, options: SearchOptions) -> SearchResult:
        path = self.rows_file(session.runs_dir, session.name)
        rows: list[dict] = json.loads(path.read_text()) if path.is_file() else []

        class Rows(TrialStore):  # where this engine keeps its trials
            def best(self) -> tuple[float | None, int | None]:
                row = GOAL.best_of(rows)
                return (row[GOAL.metric], row["trial"]) if row else (None, None)

            def record(self, arch, result, run_id) -> None:
                row = {"trial": number, "state": result.state, GOAL.metric: result.value}
                rows.append(row | {"best_epoch": result.best_epoch, "hyperparameters": dict(source.params)})
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(rows))

            def done(self) -> int:
                return len(rows)

        with session.record.running() as signals:
            for number in range(len(rows), options.trials):
                source = RandomParams(seed=number)
                session.trial(number, source, Rows(), signals=signals, target=options.trials)
            winner = GOAL.best_of(rows)
            metrics, uri = session.winner.finish(
                best_trial=winner["trial"], best_params=winner["hyperparameters"], best_epoch=winner["best_epoch"]
            )
        return SearchResult(
            name=session.name, engine=self.name, best_trial=winner["trial"], best_value=winner[GOAL.metric],
            architecture=None, test_metrics=metrics, model_uri=uri, states={}, wall_seconds=0.0,
            experiment_id=session.record.experiment_id, parent_run_id=session.record.parent_run_id,
            tracking_uri=session.tracking_uri, trials=rows,
        )  # fmt: skip

    def trial_rows(self, name: str, *, runs_dir: Path, storage: str | None = None) -> tuple[list[dict], dict]:
        path = self.rows_file(runs_dir, name)
        if not path.is_file():
            raise KeyError(name)
        return GOAL.best_first(json.loads(path.read_text())), {}


@pytest.fixture
def seeded_random_engine():
    register_engine(SeededRandomEngine)
    yield ENGINES["seeded-random"]
    del ENGINES["seeded-random"]


def test_an_engine_is_one_class(tmp_path, seeded_random_engine):
    """Adding an engine is one class registered by name: run_search, MLflow, the winner and
    ``cnn-search trials`` (which reads the engine off the search's MLflow run) need nothing else."""
    from typer.testing import CliRunner

    from search.cli import app

    runs = tmp_path / "runs"
    result = run_search("tiny", "digits", engine="seeded-random", trials=2, epochs=1, runs_dir=runs, report=False)
    assert result.engine == "seeded-random" and result.name == "tiny-digits-seeded-random"
    parents, children = runs_of(runs, result.name)
    assert [c.data.tags["engine"] for c in children] == ["seeded-random"] * 2
    assert parents[0].data.tags["engine"] == "seeded-random" and "test_accuracy" in parents[0].data.metrics
    version = mlflow_client(runs).get_model_version_by_alias(result.name, "champion")
    assert version.tags["trial"] == str(result.best_trial)
    # a second run continues from the engine's own record
    again = run_search("tiny", "digits", engine="seeded-random", trials=3, epochs=1, runs_dir=runs, report=False)
    assert len(again.trials) == 3 and len(runs_of(runs, result.name)[1]) == 3
    shown = CliRunner().invoke(app, ["trials", result.name, "--runs-dir", str(runs), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert sorted(row["trial"] for row in json.loads(shown.output)) == [0, 1, 2]
    # what the engine cannot do is refused by the shared checks, before anything is created
    with pytest.raises(SearchError, match="worker processes run the optuna and keras-tuner engines"):
        run_search("tiny", "digits", engine="seeded-random", workers=2, runs_dir=tmp_path / "other")
    with pytest.raises(SearchError, match="the seeded-random engine has no tuners"):
        run_search("tiny", "digits", engine="seeded-random", tuner="grid", runs_dir=tmp_path / "other")
    able = "optuna, keras-tuner, autokeras engines"
    with pytest.raises(
        SearchError, match=f"recheck: re-checking the top candidates runs on the {able} .not yet on seed"
    ):
        run_search("tiny", "digits", engine="seeded-random", recheck=2, runs_dir=tmp_path / "other")
    with pytest.raises(
        SearchError, match=f"refit: refitting the champion runs on the {able} .not yet on seeded-random"
    ):
        run_search("tiny", "digits", engine="seeded-random", refit=True, runs_dir=tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_the_registry_lists_the_engines_and_refuses_unknown_ones():
    assert list(ENGINES)[:3] == ["optuna", "keras-tuner", "autokeras"]
    assert [ENGINES[n].workers for n in ENGINES_UNDER_CONTRACT] == [True, True, False]
    with pytest.raises(SearchError, match="unknown engine 'nope'; expected one of optuna, keras-tuner, autokeras"):
        get_engine("nope")
    with pytest.raises(SearchError, match="the autokeras engine has no worker processes"):
        get_engine("autokeras").worker("any")  # not KerasTuner's worker, though it shares KerasTuner's run
    with pytest.raises(SearchError, match=r"^tuner: the optuna engine has no tuners; received 'grid'$"):
        run_search("tiny", tuner="grid", runs_dir=Path("never-created"))  # was silently ignored
    assert not Path("never-created").exists()


@pytest.mark.slow
def test_trials_reads_the_engine_recorded_with_the_search_not_folders(tmp_path):
    runs = tmp_path / "runs"
    out = cnn_search("run", "tiny", "--trials", "2", "--epochs", "1", "--runs-dir", str(runs), "--no-report")
    assert out.returncode == 0, out.stderr[-3000:]
    (runs / "keras_tuner" / "tiny-digits").mkdir(parents=True)  # a folder of the same name, from something else
    shown = cnn_search("trials", "tiny-digits", "--runs-dir", str(runs), "--format", "json")
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert sorted(row["trial"] for row in json.loads(shown.stdout)) == [0, 1]  # the Optuna study's trials


@pytest.mark.slow
def test_a_search_name_keeps_its_engine(tmp_path):
    runs = tmp_path / "runs"
    first = cnn_search("run", "tiny", "--trials", "1", "--epochs", "1", "--runs-dir", str(runs), "--no-report")
    assert first.returncode == 0, first.stderr[-3000:]
    other = cnn_search(
        "run", "tiny", "--engine", "keras-tuner", "--name", "tiny-digits", "--trials", "2", "--runs-dir", str(runs)
    )
    assert other.returncode == 1
    assert "search 'tiny-digits' belongs to the optuna engine" in other.stderr
    assert "received engine 'keras-tuner'" in other.stderr
    assert not (runs / "keras_tuner").exists() and len(runs_of(runs, "tiny-digits")[1]) == 1  # nothing lost or added
