"""Re-checking the top candidates (search/runtime/_recheck.py): real tiny searches on ``digits`` (real
training, a real MLflow store, a real Optuna journal)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from tests.helpers import cnn_search, mlflow_client, runs_of


def _rechecks(runs: Path, name: str) -> list:
    client = mlflow_client(runs)
    experiment = client.get_experiment_by_name(name)
    found = client.search_runs([experiment.experiment_id], "tags.phase = 'recheck'", max_results=1000)
    return sorted(found, key=lambda r: (int(r.data.tags["recheck_of"]), int(r.data.tags["recheck"])))


def test_rechecks_are_child_runs_with_seeds_the_champion_is_the_best_mean_and_a_resume_does_not_redo_them(
    tmp_path: Path,
):
    from search import hooks, run_search

    runs = tmp_path / "runs"
    every = float("inf")  # the top 2 whatever their gap (the default skips candidates the split tells apart)
    options = dict(
        data="digits", epochs=1, seed=0, workers=1, runs_dir=runs, report=False, recheck=2, recheck_within=every
    )
    models = runs / "models" / "tiny-digits"

    class Kept:  # the model files when the champion is evaluated on the test split
        def __init__(self) -> None:
            self.files: list[list[str]] = []

        def test_evaluated(self, *, model, images):
            self.files.append(sorted(p.name for p in models.glob("*.keras")))

    kept = Kept()
    hook = hooks.register(kept)
    try:
        result = run_search("tiny", trials=4, **options)
    finally:
        hooks.unregister(hook)
    parents, children = runs_of(runs, result.name)
    # Every complete trial's model was kept until the champion was crowned, so it is registered as trained (not
    # retrained); then only the champion's is left.
    complete_trials = sorted(int(c.data.tags["trial"]) for c in children if c.data.tags["state"] == "complete")
    assert set(kept.files[0]) == {f"trial-{t}.keras" for t in complete_trials}
    assert [p.name for p in models.glob("*.keras")] == [f"trial-{result.best_trial}.keras"]
    # The candidates: the two best complete trials of distinct architectures, by hand.
    complete = [c for c in children if c.data.tags["state"] == "complete"]
    ranked = sorted(complete, key=lambda c: (-c.data.metrics["best_val_accuracy"], int(c.data.tags["trial"])))
    candidates, seen = [], set()
    for c in ranked:
        if c.data.tags["architecture_hash"] not in seen:
            seen.add(c.data.tags["architecture_hash"])
            candidates.append(int(c.data.tags["trial"]))
    candidates = candidates[:2]
    rechecks = _rechecks(runs, result.name)
    assert len(rechecks) == 4 and len(children) == 4  # re-runs are not counted as trials
    values: dict[int, list[float]] = defaultdict(list)
    for run in rechecks:
        tags = run.data.tags
        assert run.info.run_name == f"recheck-{tags['recheck_of']}-{tags['recheck']}"
        assert tags["mlflow.parentRunId"] == parents[0].info.run_id and "trial" not in tags
        assert "-fold" in tags["fold"]  # 270 validation images (< 500): each re-run holds out another fold
        values[int(tags["recheck_of"])].append(run.data.metrics["best_val_accuracy"])
    assert sorted(values) == sorted(candidates)
    seeds = {(r.data.tags["recheck_of"], r.data.tags["seed"]) for r in rechecks}
    assert len(seeds) == 4 and len({r.data.tags["seed"] for r in rechecks}) == 2  # fresh per re-run, per index
    means = {t: sum(v) / len(v) for t, v in values.items()}
    champion = max(candidates, key=lambda t: means[t])  # max keeps the better-ranked of a tie
    assert result.best_trial == champion
    assert parents[0].data.tags["best_trial"] == str(champion)
    assert "the best mean validation accuracy of 2 re-runs" in parents[0].data.tags["champion_rule"]
    # Beside it, for the record only: what the best single run tested.
    assert 0 <= parents[0].data.metrics["single_run_test_accuracy"] <= 1
    assert result.test_metrics["single_run_test_accuracy"] == parents[0].data.metrics["single_run_test_accuracy"]
    by_trial = {int(c.data.tags["trial"]): c for c in children}
    for t in candidates:
        assert by_trial[t].data.metrics["recheck_mean"] == pytest.approx(means[t])
    # cnn-search trials shows mean ± spread and the champion.
    table = cnn_search("trials", result.name, "--runs-dir", str(runs))
    assert table.returncode == 0 and f"{means[champion]:.4f} ± " in table.stdout and "champion" in table.stdout
    # Resumed with one more trial: finished re-runs are read back, not trained again.
    before = {r.info.run_id for r in rechecks}
    again = run_search("tiny", trials=5, name=result.name, **options)
    after = _rechecks(runs, again.name)
    assert before <= {r.info.run_id for r in after}
    keys = [(r.data.tags["recheck_of"], r.data.tags["recheck"]) for r in after]
    assert len(keys) == len(set(keys))  # no re-run twice


def test_candidates_the_validation_split_tells_apart_are_not_rechecked_and_the_reason_is_recorded(tmp_path: Path):
    from search import run_search
    from search.runtime._recheck import noise_band

    runs = tmp_path / "runs"
    # recheck_within=0: only an exact tie with the best is the best's equal, so (seed 0: no tie) nothing re-runs.
    result = run_search(
        "tiny", "digits", trials=4, epochs=1, seed=0, runs_dir=runs, report=False, recheck=2, recheck_within=0.0
    )
    parents, children = runs_of(runs, result.name)
    assert _rechecks(runs, result.name) == []
    values = sorted(
        ((c.data.metrics["best_val_accuracy"], -int(c.data.tags["trial"])) for c in children
         if c.data.tags["state"] == "complete"), reverse=True,
    )  # fmt: skip
    assert values[0][0] > values[1][0]  # no tie, else the test says nothing
    best = -values[0][1]
    assert result.best_trial == best
    assert result.test_metrics.get("single_run_test_accuracy", 0) == result.test_metrics["test_accuracy"]
    tags = parents[0].data.tags
    assert tags["champion_rule"].startswith(f"the best single run: trial {best} leads the next distinct architecture")
    assert "so nothing was re-checked" in tags["champion_rule"] and tags["recheck_seconds"] == "0.0"
    # The default band, by hand: 2 binomial standard errors of the best's accuracy on 270 validation images.
    p = values[0][0]
    assert noise_band(p, 270) == pytest.approx(2 * (p * (1 - p) / 270) ** 0.5)


def test_recheck_is_refused_where_it_cannot_run_with_the_reason(tmp_path: Path):
    from search import SearchError, run_search

    runs = tmp_path / "runs"
    cases = {
        (("goals", "val_accuracy,params"),): "recheck: re-checking judges accuracy alone",
        (("recheck_runs", 0),): "recheck_runs: expected a whole number >= 1, received 0",
        (("recheck_within", -1.0),): "recheck_within: expected a number of standard errors >= 0 .inf: the top K",
    }
    for extra, said in cases.items():
        with pytest.raises(SearchError, match=said):
            run_search("tiny", "digits", trials=1, runs_dir=runs, recheck=2, **dict(extra))
    assert not (runs / "mlflow.db").exists()


def test_refit_trains_on_train_plus_validation_and_evaluates_the_test_split_once_per_model(tmp_path: Path):
    import numpy as np

    from search import hooks, load_dataset, run_search
    from search.training._objective import pooled

    data = load_dataset("digits")
    counts = data.counts
    # What a refit trains on: every training and every validation image, each once.
    both = pooled(data)
    x, y = both.arrays("train")
    assert len(y) == counts["train"] + counts["validation"]
    expected = np.concatenate([data.arrays("train")[0], data.arrays("validation")[0]])
    assert np.array_equal(np.sort(x.reshape(len(x), -1), axis=0), np.sort(expected.reshape(len(x), -1), axis=0))

    class Count:
        def __init__(self) -> None:
            self.seen: list[int] = []

        def test_evaluated(self, *, model, images):
            self.seen.append(images)

    count = Count()
    hook = hooks.register(count)
    try:
        runs = tmp_path / "runs"
        result = run_search(
            "tiny", data, trials=3, epochs=2, seed=0, workers=1, runs_dir=runs, report=False, refit=True
        )
    finally:
        hooks.unregister(hook)
    # Two models, each evaluated on the test split exactly once: the searched one, then the refitted one.
    assert count.seen == [counts["test"], counts["test"]]
    metrics = result.test_metrics
    assert metrics["refit_images"] == counts["train"] + counts["validation"]
    best_epoch = next(r["best_epoch"] for r in result.trials if r["trial"] == result.best_trial)
    assert metrics["refit_epochs"] == best_epoch + 1
    assert 0 <= metrics["unrefitted_test_accuracy"] <= 1
    parents, _ = runs_of(runs, result.name)
    assert parents[0].data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert parents[0].data.metrics["unrefitted_test_accuracy"] == pytest.approx(metrics["unrefitted_test_accuracy"])
    assert (runs / "models" / result.name / f"trial-{result.best_trial}-refit.keras").is_file()


def test_with_worker_processes_the_supervisor_rechecks_and_crowns_the_best_mean(tmp_path: Path):
    runs = tmp_path / "runs"
    done = cnn_search(
        "run", "tiny", "--data", "digits", "--seed", "0", "--trials", "4", "--epochs", "1", "--workers", "2",
        "--recheck", "2", "--recheck-within", "inf", "--runs-dir", str(runs), "--no-report",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rechecks = _rechecks(runs, "tiny-digits")
    assert len(rechecks) == 4
    values: dict[int, list[float]] = defaultdict(list)
    for run in rechecks:
        values[int(run.data.tags["recheck_of"])].append(run.data.metrics["best_val_accuracy"])
    parents, _ = runs_of(runs, "tiny-digits")
    means = {t: sum(v) / len(v) for t, v in values.items()}
    assert means[int(parents[0].data.tags["best_trial"])] == max(means.values())
    assert "re-checked champion; the best single run would have tested" in done.stdout
    # The model card says how the champion was chosen, with every candidate's mean ± spread.
    exported = cnn_search("export", "tiny-digits", "--runs-dir", str(runs), "--format", "keras")
    assert exported.returncode == 0, exported.stderr
    bundle = runs / "exports" / "tiny-digits"
    card = json.loads((bundle / "model_card.json").read_text())["goals"]
    assert card["chosen_by"].startswith("the search's champion: the best mean validation accuracy of 2 re-runs")
    assert {int(t): f["mean"] for t, f in card["recheck"].items()} == pytest.approx(means)
    best = parents[0].data.tags["best_trial"]
    assert f"| {best} | " in (bundle / "MODEL_CARD.md").read_text()
    # So does the report page.
    reported = cnn_search("report", "tiny-digits", "--runs-dir", str(runs))
    assert reported.returncode == 0, reported.stderr
    page = (runs / "reports" / "tiny-digits" / "index.html").read_text()
    assert "<h2>Re-checked candidates</h2>" in page and f"<tr><td>{best} (champion)</td>" in page
    assert "champion chosen by" in page and "test accuracy of the best single run" in page


@pytest.mark.parametrize("engine", ["keras-tuner", "autokeras"])
def test_keras_tuner_and_autokeras_recheck_too(tmp_path: Path, engine: str):
    """Every engine re-checks: AutoKeras's trials are rebuilt from the space's parameters like KerasTuner's."""
    from search import run_search

    runs = tmp_path / "runs"
    result = run_search(
        "tiny",
        "digits",
        engine=engine,
        trials=3,
        epochs=1,
        seed=0,
        runs_dir=runs,
        report=False,
        recheck=2,
        recheck_within=float("inf"),
    )
    rechecks = _rechecks(runs, result.name)
    values: dict[int, list[float]] = defaultdict(list)
    for run in rechecks:
        values[int(run.data.tags["recheck_of"])].append(run.data.metrics["best_val_accuracy"])
    assert len(values) == 2 and all(len(v) == 2 for v in values.values())
    means = {t: sum(v) / len(v) for t, v in values.items()}
    assert means[result.best_trial] == max(means.values())
    row = next(r for r in result.trials if r["trial"] == result.best_trial) if result.trials else None
    assert row is None or row.get("champion", True)
    assert "single_run_test_accuracy" in result.test_metrics
