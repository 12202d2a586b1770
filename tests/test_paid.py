"""What searching paid over the space's start points (issue 32, item 5): recorded on the search's MLflow
run, said by `run`, marked by `trials`. Real tiny searches on digits; the start point is made deliberately
poor (a learning rate that cannot learn in one epoch) or the only good choice, so who wins is known."""

from __future__ import annotations

import json
import textwrap

import pytest

from .helpers import cnn_search, runs_of

SPACE = """\
name: paid
blocks:
  depth: 1
  filters: 8
  kernel_size: 3
  activation: relu
  pooling: max
head:
  pooling: flatten
  dense_layers: 0
training:
  optimizer: adam
  learning_rate: [{rates}]
  batch_size: 32
  epochs: 1
start:
  - training/learning_rate: {start}
"""


def _search(tmp_path, *, rates: str, start: float):
    space = tmp_path / "paid.yaml"
    space.write_text(textwrap.dedent(SPACE.format(rates=rates, start=start)))
    runs = tmp_path / "runs"
    args = ["run", str(space), "--trials", "4", "--epochs", "1", "--seed", "0", "--workers", "1"]
    out = cnn_search(*args, "--runs-dir", str(runs), "--no-report")
    assert out.returncode == 0, out.stderr[-3000:]
    (parent,), _ = runs_of(runs, "paid-digits")
    listed = cnn_search("trials", "paid-digits", "--runs-dir", str(runs))
    assert listed.returncode == 0, listed.stderr[-2000:]
    compared = cnn_search("compare", "paid-digits", "--runs-dir", str(runs), "--format", "json")
    assert compared.returncode == 0, compared.stderr[-2000:]
    (row,) = json.loads(compared.stdout)  # what benchmarks/suite.py reads back
    assert row["winner_from"] == parent.data.tags["winner_from"]
    assert row["gain_over_start_points"] == parent.data.metrics["gain_over_start_points"]
    return out.stderr, parent, listed.stdout


def test_a_poor_start_point_is_beaten_and_the_gain_recorded_and_said(tmp_path):
    said, parent, listed = _search(tmp_path, rates="0.0000001, 0.003, 0.01", start=0.0000001)
    gain = parent.data.metrics["gain_over_start_points"]
    assert gain > 10  # points of validation accuracy: 1e-7 stays near chance in one epoch
    assert parent.data.tags["winner_from"] == "search"
    assert parent.data.metrics["best_start_point_val_accuracy"] < 0.5
    line = next(x for x in said.splitlines() if "over the best start point" in x)
    assert f"+{gain:.1f} points of validation accuracy over the best start point (start point 0, trial 0" in line
    assert "start point 0: conv" in " ".join(listed.split())
    # the runner-up is named beside the winner, with what differs (issue 34, item 1)
    _, children = runs_of(tmp_path / "runs", "paid-digits")
    values = {int(c.data.tags["trial"]): c.data.metrics["best_val_accuracy"] for c in children}
    winner = int(parent.data.tags["best_trial"])
    runner = max((t for t in values if t != winner), key=lambda t: (values[t], -t))
    assert parent.data.tags["runner_up"] == str(runner)
    assert parent.data.metrics["lead_over_runner_up"] == pytest.approx(100 * (values[winner] - values[runner]))
    assert f"; runner-up trial {runner} ({values[runner]:.4f}, " in line
    rates = {int(c.data.tags["trial"]): c.data.params["training/learning_rate"] for c in children}
    differs = f"it differs in training/learning_rate {rates[winner]} ({rates[runner]})"
    assert (differs if rates[winner] != rates[runner] else "the same parameters, another training run") in line
    # cnn-search trials says it too, under the table: the winner, its test accuracy beside chance, and why
    metrics = parent.data.metrics
    shown = listed.splitlines()
    assert (
        f"winner: trial {winner}, test accuracy {metrics['test_accuracy']:.4f}, chance {metrics['chance_accuracy']:.4f}"
        in shown
    )
    assert f"why: {parent.data.tags['winner_why']}" in shown and line.endswith(parent.data.tags["winner_why"])


def test_the_runner_up_says_what_differs_and_how_much_it_trails():
    from search.tracking._paid import RUNNER_UP_SHOWN, runner_up

    values = {0: 0.9, 1: 0.8, 2: 0.85, 3: 0.85}
    params = {0: {"a": "1", "b": "2", "block_1/filters": "8"}, 1: {}, 2: {"a": "1", "b": "3"}, 3: {}}
    assert runner_up(values, params, 0) == (
        2,
        "runner-up trial 2 (0.8500, 5.0 points behind): it differs in b 2 (3), block_1/filters 8 (-)",
    )
    many = {0: {f"p{i}": "1" for i in range(RUNNER_UP_SHOWN + 2)}, 1: {}}
    said = runner_up({0: 0.9, 1: 0.9}, many, 0)[1]
    assert said.endswith(f"p{RUNNER_UP_SHOWN - 1} 1 (-) and 2 more") and "0.0 points behind" in said
    assert runner_up({0: 0.9, 1: 0.5}, {0: {"a": "1"}, 1: {"a": "1"}}, 0)[1].endswith(
        "the same parameters, another training run"
    )
    assert runner_up({0: 0.9}, {0: {}}, 0) is None
    # a learning rate as MLflow keeps it (17 digits) is said to as few digits as tell the two apart
    rates = {0: {"lr": "0.0075529643771195505"}, 1: {"lr": "0.007553400339169638"}, 2: {"lr": "0.0012345678"}}
    assert runner_up({0: 0.9, 1: 0.8}, rates, 0)[1].endswith("it differs in lr 0.0075530 (0.0075534)")
    assert runner_up({0: 0.9, 2: 0.8}, rates, 0)[1].endswith("it differs in lr 0.00755 (0.00123)")


@pytest.mark.parametrize("engine", ["optuna", "keras-tuner"])
def test_a_search_won_by_its_start_point_says_so(tmp_path, engine):
    space = tmp_path / "paid.yaml"
    space.write_text(textwrap.dedent(SPACE.format(rates="0.01, 0.0000001, 0.00000001", start=0.01)))
    runs = tmp_path / "runs"
    name = "paid-digits" if engine == "optuna" else "paid-digits-keras-tuner"
    args = ["run", str(space), "--trials", "3", "--epochs", "1", "--seed", "0", "--engine", engine]
    out = cnn_search(*args, "--runs-dir", str(runs), "--no-report")
    assert out.returncode == 0, out.stderr[-3000:]
    (parent,), _ = runs_of(runs, name)
    assert parent.data.tags["winner_from"] == "start point 0"  # itself, or its parameters drawn again
    assert parent.data.metrics["gain_over_start_points"] < 5  # 0, or a retraining's noise
    assert "a start point won (start point 0" in out.stderr and "the search found nothing better" in out.stderr
    assert "more trials or epochs may help" in out.stderr
