"""Several goals (accuracy against size), constraints, and the Pareto front: real tiny searches on
``digits`` (real training, a real MLflow store, a real Optuna journal), and real processes for the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cnn_search, mlflow_client, runs_of, study_of


def _validation_chance() -> float:
    """digits' validation split (seed 0): the largest class's share, counted here."""
    from collections import Counter

    from search.data import load_dataset

    labels = list(load_dataset("digits", seed=0).labels("validation"))
    return max(Counter(labels).values()) / len(labels)


def _front_by_hand(points: dict[int, tuple[float, float]]) -> list[int]:
    """The trials no other trial beats on (accuracy up, params down), those at chance (within 5% of the
    way from chance to 1) left out: written out, not search._goal's."""
    chance = _validation_chance()
    points = {t: p for t, p in points.items() if p[0] > chance + 0.05 * (1 - chance)}
    front = []
    for t, (acc, params) in points.items():
        beaten = any(a >= acc and p <= params and (a > acc or p < params) for o, (a, p) in points.items() if o != t)
        if not beaten:
            front.append(t)
    return sorted(front)


def _tiny_search(
    runs: Path, *options: str, name: str = "tiny-digits"
) -> tuple[str, list[dict], list[dict], list[dict]]:
    """``cnn-search run tiny --data digits --seed 0 ... OPTIONS`` in a fresh process, as a user runs it, then
    its trials read back (``cnn-search trials NAME --format json``): (stdout, every row, the rows refused
    before training, the rows that trained)."""
    done = cnn_search(
        "run", "tiny", "--data", "digits", "--seed", "0", "--runs-dir", str(runs), "--no-report", *options
    )
    assert done.returncode == 0, done.stderr
    assert "INFO:search" not in done.stderr  # no root handler left behind by an exporter (every line twice)
    rows = json.loads(cnn_search("trials", name, "--runs-dir", str(runs), "--format", "json").stdout)
    refused = [r for r in rows if r["state"] == "infeasible"]
    return done.stdout, rows, refused, [r for r in rows if r["state"] in ("complete", "pruned")]


def test_a_two_goal_search_records_both_goals_on_every_trial_and_its_front_in_mlflow(tmp_path: Path):
    import optuna

    from search import run_search

    runs = tmp_path / "runs"
    result = run_search(
        "tiny", "digits", trials=6, epochs=2, seed=0, workers=1, runs_dir=runs, report=False,
        goals="val_accuracy,params", pruner="none",
    )  # fmt: skip
    study = study_of(runs, result.name)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    parents, children = runs_of(runs, result.name)
    complete = [r for r in children if r.data.tags["state"] == "complete"]
    assert len(children) == 6 and len(complete) >= 2
    points = {}
    for run in complete:  # both goals, as metrics of every trial that trained
        metrics = run.data.metrics
        assert {"best_val_accuracy", "num_params"} <= set(metrics), metrics
        points[int(run.data.tags["trial"])] = (metrics["best_val_accuracy"], metrics["num_params"])
    front = _front_by_hand(points)
    tagged = sorted(int(r.data.tags["trial"]) for r in complete if r.data.tags["pareto_front"] == "true")
    assert tagged == front
    assert all(r.data.tags["pareto_front"] in ("true", "false") for r in complete)
    assert parents[0].data.tags["pareto_front"] == ",".join(map(str, front))
    assert parents[0].data.tags["goals"] == "val_accuracy,params"
    # The champion: the most accurate trial on the front (CHAMPION_RULE), and registered as it.
    most_accurate = max(points.values())[0]
    assert result.best_trial in front and points[result.best_trial][0] == most_accurate
    assert parents[0].data.tags["best_trial"] == str(result.best_trial)
    # Each trained trial's epochs are kept (Optuna's intermediate values refuse several objectives).
    for t in study.trials:
        if t.user_attrs.get("epochs_run"):
            assert len(t.user_attrs["epoch_values"]) == t.user_attrs["epochs_run"]
    # cnn-search trials marks the front: a column in the table, a field in json.
    shown = cnn_search("trials", result.name, "--runs-dir", str(runs), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert sorted(r["trial"] for r in rows if r["pareto_front"]) == front
    table = cnn_search("trials", result.name, "--runs-dir", str(runs))
    assert "on the Pareto front" in table.stdout
    starred = {int(line.split("│")[1]) for line in table.stdout.splitlines() if "│ *" in line}
    assert starred == set(front)
    # The report draws the front: accuracy against params, the front's trials strong.
    from search.report import make_report

    report = make_report(result.name, runs_dir=runs, out=tmp_path / "report", log_to_mlflow=False)
    assert "pareto_front.png" in {p.name for p in report.pictures}, report.missing
    said = report.descriptions["pareto_front.png"]
    assert f"{len(front)} of {len(points)} complete trials on the front" in said and "params" in said
    assert "pareto_front.png" in (tmp_path / "report" / "index.html").read_text()
    # The same search with other goals is another search: refused, nothing changed.
    with pytest.raises(Exception, match="already exists with goals val_accuracy,params; received goals val_accuracy"):
        run_search("tiny", "digits", trials=7, epochs=2, workers=1, runs_dir=runs, report=False, name=result.name)
    assert len(study_of(runs, result.name).trials) == len(study.trials)


CHANCE_SPACE = """
name: chance
description: Two start points; the smaller one's learning rate far too small to learn anything in its epoch.
blocks: {depth: 1, filters: [8, 16], kernel_size: 3, activation: relu, pooling: max}
head: {pooling: [flatten, global_average], dense_layers: 0}
training: {optimizer: adam, learning_rate: [0.000000001, 0.01], batch_size: 64, epochs: 1}
start:
  - {block_0/filters: 16, head/pooling: flatten, training/learning_rate: 0.01}
  - {block_0/filters: 8, head/pooling: global_average, training/learning_rate: 0.000000001}
"""


def test_a_trial_at_chance_is_left_off_the_front_said_and_drawn_and_never_picked(tmp_path: Path):
    """The smallest trial learnt nothing (validation accuracy at chance): before, it sat on the front as
    its smallest point and ``export --pick params`` exported it. Now it is off the front, the table says
    ``chance`` in its front column, the picture draws it as a cross under the chance line and rings the
    registered models, and --pick params takes the smallest point that learnt something."""
    from search.report import make_report

    space, runs = tmp_path / "chance.yaml", tmp_path / "runs"
    space.write_text(CHANCE_SPACE)
    done = cnn_search(
        "run", str(space), "--data", "digits", "--trials", "2", "--seed", "1", "--workers", "1",
        "--goals", "val_accuracy,params", "--pruner", "none", "--runs-dir", str(runs), "--no-report",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {
        r["trial"]: r
        for r in json.loads(cnn_search("trials", "chance-digits", "--runs-dir", str(runs), "--format", "json").stdout)
    }
    chance = _validation_chance()
    assert rows[1]["state"] == "complete" and rows[1]["params"] < rows[0]["params"]
    assert rows[1]["val_accuracy"] <= chance + 0.05 * (1 - chance) < rows[0]["val_accuracy"]
    assert (rows[1]["at_chance"], rows[1]["pareto_front"]) == (True, False)
    assert (rows[0]["at_chance"], rows[0]["pareto_front"]) == (False, True)
    table = cnn_search("trials", "chance-digits", "--runs-dir", str(runs)).stdout
    assert "chance: at chance, left off it" in table
    assert [line.split("│")[-2].strip() for line in table.splitlines() if line.startswith("│ 1 ")] == ["chance"]
    picked = cnn_search("export", "chance-digits", "--pick", "params", "--format", "keras", "--runs-dir", str(runs))
    assert picked.returncode == 0 and "registered: models:/chance-digits@picked -> trial 0" in picked.stdout, (
        picked.stdout
    )
    report = make_report("chance-digits", runs_dir=runs, out=tmp_path / "report", log_to_mlflow=False)
    said = report.captions["pareto_front.png"]
    assert "1 trial(s) at chance left off the front" in said
    assert "ringed: the registered models (champion/picked = trial 0)" in said
    drawn = report.descriptions["pareto_front.png"]
    assert "at chance (left off the front)" in drawn and f"chance {chance:.3f}" in drawn, drawn
    assert "registered: champion, picked" in drawn


def _median_params(space_name: str) -> int:
    """The median parameter count of the space's architectures on digits (8x8x1, 10 classes)."""
    from search.space import RandomParams, load_space

    space = load_space(space_name)
    source = RandomParams(0)
    counts = []
    for _ in range(200):
        try:
            counts.append(space.check(space.sample(source), (8, 8, 1), 10).params)
        except Exception:  # infeasible samples are not counted
            continue
    return sorted(counts)[len(counts) // 2]


def test_the_run_command_says_the_front_and_the_champion_rule(tmp_path: Path):
    stdout, rows, _, _ = _tiny_search(
        tmp_path / "runs", "--trials", "3", "--epochs", "1", "--workers", "1", "--goals", "val_accuracy,flops",
        "--sampler", "nsga2",
    )  # fmt: skip
    front = sorted(r["trial"] for r in rows if r["pareto_front"])
    assert front and all("flops" in r for r in rows)
    said = f"Pareto front: trial(s) {', '.join(map(str, front))}; the champion is the most accurate trial on the Pareto front"
    assert said in stdout


def test_a_constraint_refuses_trials_over_it_before_training_and_the_champion_meets_it(tmp_path: Path):
    limit = _median_params("tiny")
    runs = tmp_path / "runs"
    _, rows, refused, trained = _tiny_search(
        runs, "--trials", "8", "--epochs", "1", "--workers", "1", "--max-params", str(limit), "--name", "capped",
        name="capped",
    )  # fmt: skip
    assert refused and trained, rows
    for r in refused:  # before training: no epoch, no model
        assert r["reason"].startswith("max_params: over budget: params") and f"> max_params {limit:,}" in r["reason"]
        assert not r["epochs_run"]
    assert all(r["params"] <= limit for r in trained)
    parents, _ = runs_of(runs, "capped")
    best = int(parents[0].data.tags["best_trial"])
    assert next(r for r in rows if r["trial"] == best)["params"] <= limit


def test_impossible_or_misspelt_goals_and_constraints_are_refused_before_anything_is_written(tmp_path: Path):
    runs = tmp_path / "runs"
    cases = {
        ("--goals", "val_accuracy,latency"): "--goals: unknown goal 'latency'; expected names from val_accuracy, "
        "params, flops",
        ("--goals", "params"): "--goals: val_accuracy must be one of them (trials are judged by it); received params",
        ("--max-params", "lots"): "--max-params: expected a whole number >= 1 (100000, 100k, 2M), received 'lots'",
        ("--max-params", "10"): "budget: no architecture of 200 sampled meets the budget; expected max_params 10 met",
        ("--goals", "val_accuracy,params", "--pruner", "hyperband"): "--pruner: hyperband prunes on one objective",
        ("--goals", "val_accuracy,flops", "--engine", "keras-tuner"): "--goals: the keras-tuner engine optimises "
        "one objective",
    }
    for args, said in cases.items():
        done = cnn_search("run", "tiny", "--data", "digits", "--trials", "1", "--runs-dir", str(runs), *args)
        assert done.returncode != 0, args
        assert said in " ".join(done.stderr.split()), (args, done.stderr)
        assert not (runs / "mlflow.db").exists(), args


def test_autokeras_refuses_several_goals_with_the_reason(tmp_path: Path):
    from search import SearchError, run_search

    with pytest.raises(SearchError) as caught:
        run_search("tiny", "digits", engine="autokeras", goals="val_accuracy,params", runs_dir=tmp_path / "runs")
    assert str(caught.value).startswith(
        "goals: the autokeras engine optimises one objective and cnn-search does not scalarise goals for it"
    )
    assert "Several goals run on the optuna engine" in str(caught.value)
    assert not (tmp_path / "runs").exists()


def _study_with_finished(sizes: list[int], accuracy: float):
    """A real two-goal Optuna study with complete trials of ``sizes`` parameters, each at ``accuracy``
    after its first epoch (kept as cnn-search keeps it: ``epoch_values``)."""
    import optuna

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("pruner", "median")
    for size in sizes:
        study.add_trial(
            optuna.trial.create_trial(values=[accuracy, size], user_attrs={"epoch_values": [accuracy, accuracy]})
        )
    return study


def test_with_several_goals_a_trial_is_stopped_only_by_finished_trials_no_larger_than_it():
    import types

    import optuna

    from search import load_dataset, load_space
    from search._goal import parse_goals
    from search.engines._optuna import _pareto_reporter, pruner_startup
    from search.engines._optuna._params import OptunaParams
    from search.training import Objective

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, data = load_space("tiny"), load_dataset("digits", limit=200)
    # what the reporter reads of a Session: its space, and the objective running the trial
    session = types.SimpleNamespace(space=space, data=data, objective=Objective(space, data))
    goals = parse_goals("val_accuracy,params")
    startup = pruner_startup(len(space.start))

    def first_epoch(study, value):
        study.enqueue_trial(dict(space.start[0]))
        trial = study.ask()
        arch = space.sample(OptunaParams(trial))  # as the Objective samples it
        plan = space.check(arch, data.input_shape, data.num_classes)
        session.objective.last_sizes = {"params": plan.params, "flops": plan.flops}  # as it keeps them, before training
        return trial, plan.params, _pareto_reporter(session, study, trial, goals)(0, value)

    _, size, _ = first_epoch(_study_with_finished([], 0.9), 0.5)
    # As many smaller trials as the pruner's start-up, all more accurate: stopped.
    study = _study_with_finished([size // 2] * startup, 0.9)
    _, _, stopped = first_epoch(study, 0.5)
    assert stopped and study.trials[-1].user_attrs["epoch_values"] == [0.5]
    # The same finished trials, but larger than it: it may be on the front, so it goes on.
    assert first_epoch(_study_with_finished([size * 2] * startup, 0.9), 0.5)[2] is False
    # One smaller trial too few: the start-up has not been reached among those it is compared with.
    assert first_epoch(_study_with_finished([size // 2] * (startup - 1) + [size * 2], 0.9), 0.5)[2] is False
    # Above their median: goes on.
    assert first_epoch(_study_with_finished([size // 2] * startup, 0.4), 0.5)[2] is False


def test_latency_and_size_on_tflite_are_measured_before_training_and_match_the_exported_file(tmp_path: Path):
    """Goals measured on the runtime a user deploys to: every trial that trained carries them (study row and
    MLflow metric), and the champion's match its exported TFLite file measured afresh: the size within 2% (a
    float model's file does not depend on its weights' values; its tensors' names do differ), the latency
    within max(50%, 0.05 ms)."""
    from search.export._runtimes import latency_ms, load_runner

    runs = tmp_path / "runs"
    _, rows, _, trained = _tiny_search(
        runs, "--trials", "3", "--epochs", "1", "--workers", "1",
        "--goals", "val_accuracy,latency_ms:tflite,model_bytes:tflite",
    )  # fmt: skip
    assert trained and all(r["latency_ms:tflite"] > 0 and r["model_bytes:tflite"] > 0 for r in trained)
    _, children = runs_of(runs, "tiny-digits")
    for run in children:
        if run.data.tags["state"] == "complete":
            assert {"latency_ms_tflite", "model_bytes_tflite"} <= set(run.data.metrics)
    exported = cnn_search(
        "export", "tiny-digits", "--runs-dir", str(runs), "--format", "tflite", "--out", str(tmp_path / "b")
    )
    assert exported.returncode == 0, exported.stderr
    best = next(r for r in rows if r["trial"] == json.loads((tmp_path / "b" / "model_card.json").read_text())["trial"])
    path = tmp_path / "b" / "model.tflite"
    assert abs(path.stat().st_size - best["model_bytes:tflite"]) <= 0.02 * best["model_bytes:tflite"]
    from search import load_dataset

    image = load_dataset("digits").arrays("validation")[0][:1]
    afresh = latency_ms(load_runner("tflite", path), image)
    assert abs(afresh - best["latency_ms:tflite"]) <= max(0.5 * best["latency_ms:tflite"], 0.05), (afresh, best)


def test_a_measured_constraint_refuses_a_trial_before_training_in_worker_processes_too(tmp_path: Path):
    runs = tmp_path / "runs"
    _, rows, refused, trained = _tiny_search(
        runs, "--trials", "6", "--epochs", "1", "--workers", "2", "--max-model-kb", "21"
    )
    assert refused and trained, rows
    for r in refused:
        assert r["reason"].startswith("max_model_kb: over budget: model_bytes:tflite") and not r["epochs_run"]
        assert r["model_bytes:tflite"] > 21 * 1024
    assert all(r["model_bytes:tflite"] <= 21 * 1024 for r in trained)
    # The sampler learns how far over the limit each trial was (Optuna's constraints, > 0: violated).
    study = study_of(runs, "tiny-digits")
    over = {t.number: t.system_attrs["constraints"][0] for t in study.trials if "constraints" in t.system_attrs}
    assert {r["trial"] for r in refused} <= {n for n, v in over.items() if v > 0}
    assert {r["trial"] for r in trained} <= {n for n, v in over.items() if v <= 0}


def _tiny_file(folder: Path, extra: str) -> Path:
    """``spaces/tiny.yaml`` as a user's own file, with ``extra`` YAML lines added (its budget kept)."""
    text = (Path(__file__).parents[1] / "spaces" / "tiny.yaml").read_text()
    path = folder / "mine.yaml"
    path.write_text(text.replace("name: tiny\n", "name: mine\n").replace("budget:\n", extra + "budget:\n"))
    return path


def test_goals_and_a_measured_limit_written_in_the_space_file_are_the_searchs(tmp_path: Path):
    space = _tiny_file(tmp_path, "goals: [val_accuracy, params]\n")
    space.write_text(
        space.read_text().replace("  max_params: 100_000\n", "  max_params: 100_000\n  max_model_kb: 21\n")
    )
    runs = tmp_path / "runs"
    done = cnn_search(
        "run", str(space), "--data", "digits", "--seed", "0", "--trials", "6", "--epochs", "1", "--workers", "1",
        "--runs-dir", str(runs), "--no-report",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads(cnn_search("trials", "mine-digits", "--runs-dir", str(runs), "--format", "json").stdout)
    refused = [r for r in rows if r["state"] == "infeasible"]
    trained = [r for r in rows if r["state"] == "complete"]
    assert refused and trained, rows
    assert all(r["reason"].startswith("max_model_kb: over budget: model_bytes:tflite") for r in refused)
    assert all(r["model_bytes:tflite"] <= 21 * 1024 for r in trained)
    assert any(r["pareto_front"] for r in trained) and all("params" in r for r in trained)
    assert study_of(runs, "mine-digits").user_attrs["goals"] == ["val_accuracy", "params"]
    assert "Pareto front: trial(s)" in done.stdout


def test_goals_in_a_space_file_are_checked_with_the_file_and_line_and_an_engine_of_one_goal_says_where_they_came_from(
    tmp_path: Path,
):
    bad = _tiny_file(tmp_path, "goals: [val_accuracy, latency]\n")
    done = cnn_search("spaces", "validate", str(bad))
    assert done.returncode != 0
    said = " ".join(done.stderr.split())
    assert "goals: unknown goal 'latency'; expected names from val_accuracy, params" in said, said
    line = bad.read_text().splitlines().index("goals: [val_accuracy, latency]") + 1
    assert f"{bad}:{line}: goals: unknown goal" in said, said
    good = _tiny_file(tmp_path, "goals: val_accuracy,flops\n")
    runs = tmp_path / "runs"
    done = cnn_search("run", str(good), "--data", "digits", "--engine", "keras-tuner", "--runs-dir", str(runs))
    assert done.returncode != 0
    said = " ".join(done.stderr.split())
    assert "--goals: the keras-tuner engine optimises one objective" in said
    assert "The goals are the space 'mine''s: --goals val_accuracy searches accuracy alone" in said, said
    assert not (runs / "mlflow.db").exists()


def test_export_pick_takes_another_point_of_the_front_and_its_model_card_says_where_it_lies(tmp_path: Path):
    runs = tmp_path / "runs"
    _, rows, _, _ = _tiny_search(
        runs, "--trials", "6", "--epochs", "2", "--workers", "1", "--goals", "val_accuracy,params"
    )  # fmt: skip
    front = [r for r in rows if r["pareto_front"]]
    assert len(front) >= 2, rows
    # Every point of the front is kept as trained (export --pick retrains nothing); the rest are deleted.
    kept = sorted(int(p.stem.split("-")[1]) for p in (runs / "models" / "tiny-digits").glob("trial-*.keras"))
    assert kept == sorted(r["trial"] for r in front)
    smallest = min(front, key=lambda r: r["params"])
    by_accuracy = sorted(front, key=lambda r: (-r["val_accuracy"], r["trial"]))

    said: list[str] = []

    def export(*args: str) -> dict:
        done = cnn_search("export", "tiny-digits", "--runs-dir", str(runs), "--format", "keras", *args)
        assert done.returncode == 0, done.stderr
        said.append(done.stdout)
        assert "retraining" not in done.stderr
        return json.loads((runs / "exports" / "tiny-digits" / "model_card.json").read_text())

    card = export("--pick", "params")
    assert card["trial"] == smallest["trial"]
    # --pick sets an alias of its own and says it; the champion alias stays on the search's winner
    client = mlflow_client(runs)
    assert client.get_model_version_by_alias("tiny-digits", "picked").tags["trial"] == str(smallest["trial"])
    assert client.get_model_version_by_alias("tiny-digits", "champion").tags["trial"] == str(by_accuracy[0]["trial"])
    assert f"registered: models:/tiny-digits@picked -> trial {smallest['trial']}" in said[-1]
    goals = card["goals"]
    assert goals["chosen_by"] == "--pick params"
    assert [g["metric"] for g in goals["goals"]] == ["val_accuracy", "params"]
    assert goals["goals"][1]["value"] == smallest["params"]
    place = goals["pareto_front"]
    assert place["on_front"] and place["rank_by_accuracy"] == by_accuracy.index(smallest) + 1
    assert [p["trial"] for p in place["points"]] == [r["trial"] for r in by_accuracy]
    markdown = (runs / "exports" / "tiny-digits" / "MODEL_CARD.md").read_text()
    assert f"| {smallest['trial']} | {smallest['val_accuracy']:.4f} | {smallest['params']:,} | this model |" in markdown
    # A limit: the most accurate point within it.
    second = sorted(r["params"] for r in front)[1]
    within = max((r for r in front if r["params"] <= second), key=lambda r: (r["val_accuracy"], -r["trial"]))
    assert export("--pick", f"params<={second}")["trial"] == within["trial"]
    # The champion (no --pick) says its rule.
    card = export()
    assert card["trial"] == by_accuracy[0]["trial"]
    assert card["goals"]["chosen_by"].startswith("the search's champion: the most accurate trial on the Pareto front")
    refused = {
        ("--pick", "flops"): "--pick: 'flops' is not a goal of this search (its goals: val_accuracy, params)",
        (
            "--pick",
            f"params<={min(r['params'] for r in front) - 1}",
        ): "--pick: no trial on the Pareto front has params <=",
        ("--pick", "params>=5"): "--pick: expected params<=NUMBER",
        ("--pick", "params", "--trial", "0"): "--pick and --trial: pass one of them",
    }
    for args, said in refused.items():
        done = cnn_search("export", "tiny-digits", "--runs-dir", str(runs), "--format", "keras", *args)
        assert done.returncode != 0 and said in " ".join(done.stderr.split()), (args, done.stderr)
    # A search of one goal has no front to pick from.
    cnn_search("run", "tiny", "--data", "digits", "--trials", "1", "--epochs", "1", "--runs-dir", str(runs),
               "--name", "one", "--no-report")  # fmt: skip
    done = cnn_search("export", "one", "--runs-dir", str(runs), "--pick", "params")
    assert done.returncode != 0
    assert "--pick: search 'one' has one goal (val_accuracy), so no Pareto front to pick from" in done.stderr
