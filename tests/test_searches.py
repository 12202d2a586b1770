"""`cnn-search searches` (and `trials` with no name), did-you-mean for unknown names, and the training
parameters beside the architecture: real searches in real processes, read back from MLflow."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest

from search import SearchError
from search.space import load_space
from search.tracking import compare_searches, default_tracking_uri, find_search
from search.tracking._searches import list_searches

from .helpers import ENV, cnn_search, runs_of

pytestmark = pytest.mark.slow

#: A search whose name is long enough to be cut by a careless table, with its optimizer and batch size
#: sampled (tiny fixes them: those come from the space).
LONG = "a-rather-long-search-name-that-must-never-be-cut"
SAMPLED = load_space("tiny").to_dict() | {"name": "tiny-sampled", "start": []}
SAMPLED["training"] = SAMPLED["training"] | {"optimizer": ["adam", "rmsprop"], "batch_size": [32, 64]}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two searches of two trials in one runs folder, run side by side: tiny-digits and LONG."""
    folder = tmp_path_factory.mktemp("searches")
    runs = folder / "runs"
    space = folder / "tiny-sampled.yaml"
    space.write_text(json.dumps(SAMPLED))  # JSON is YAML
    common = ["--trials", "2", "--epochs", "1", "--runs-dir", str(runs), "--seed", "0", "--no-report"]
    commands = {
        "tiny-digits": ["tiny", "--data", "digits", *common],
        LONG: [str(space), "--data", "digits", "--name", LONG, *common],
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "search", "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for name, args in commands.items()
    }
    outputs = {name: proc.communicate(timeout=400) for name, proc in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}: {outputs[name][1][-3000:]}"
    listed = cnn_search("searches", "--runs-dir", str(runs))  # piped
    assert listed.returncode == 0, listed.stderr[-2000:]
    return {"runs": runs, "stdout": {name: out for name, (out, _) in outputs.items()}, "searches": listed.stdout}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("│┃").split("│" if "│" in line else "┃")]


def _table(stdout: str) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of a piped rich table whose rows fit on one line each."""
    headers = next(_cells(line) for line in stdout.splitlines() if line.startswith("┃"))
    rows = [_cells(line) for line in stdout.splitlines() if line.startswith("│")]
    return headers, rows


def test_searches_lists_every_search_in_full_with_engine_trials_and_best_value(store):
    runs = store["runs"]
    headers, rows = _table(store["searches"])
    assert headers == [
        "search",
        "engine",
        "space",
        "data",
        "trials",
        "by state",
        "best val_accuracy",
        "test_accuracy",
        "last activity",
    ]
    listed = {row[0]: dict(zip(headers, row, strict=True)) for row in rows}
    assert set(listed) == {"tiny-digits", LONG}  # whole names, nothing else (not MLflow's Default)
    for name, row in listed.items():
        parents, children = runs_of(runs, name)
        assert row["engine"] == "optuna" and row["data"] == "digits"
        assert row["space"] == ("tiny" if name == "tiny-digits" else "tiny-sampled")
        assert row["trials"] == str(len(children)) == "2"
        states = [c.data.tags["state"] for c in children]
        assert row["by state"] == ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(sorted(states)))
        best = max(c.data.metrics["best_val_accuracy"] for c in children if c.data.tags["state"] == "complete")
        assert row["best val_accuracy"] == f"{best:.4f}"
        assert row["test_accuracy"] == f"{parents[0].data.metrics['test_accuracy']:.4f}"
        assert len(row["last activity"]) == len("2026-11-25 15:40")

    def latest(name: str) -> int:
        return max(r.info.end_time or r.info.start_time for group in runs_of(runs, name) for r in group)

    assert [row[0] for row in rows] == sorted(listed, key=latest, reverse=True)  # most recently active first


def test_trials_without_a_name_prints_the_same_list(store):
    listed = cnn_search("trials", "--runs-dir", str(store["runs"]))
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert listed.stdout == store["searches"]
    assert LONG in listed.stdout and "tiny-digits" in listed.stdout


def test_a_misspelt_name_suggests_the_close_search(store):
    out = cnn_search("trials", "tiny-digitz", "--runs-dir", str(store["runs"]))
    assert out.returncode == 1, out.stdout
    said = " ".join(out.stderr.split())
    assert f"no search named 'tiny-digitz' in {store['runs']}; did you mean 'tiny-digits'? (cnn-search searches" in said
    assert LONG not in said and "Traceback" not in out.stderr
    uri = default_tracking_uri(store["runs"])  # every other command finds its search through one of these two
    for find in (
        lambda: find_search("tiny-digitz", uri),
        lambda: compare_searches(["tiny-digits", "tiny-digitz"], uri),
    ):
        with pytest.raises(SearchError, match=r"did you mean 'tiny-digits'\?"):
            find()


def test_a_far_name_lists_the_known_searches(store):
    out = cnn_search("trials", "vgg-photo", "--runs-dir", str(store["runs"]))
    assert out.returncode == 1
    said = " ".join(out.stderr.split())
    assert f"no search named 'vgg-photo' in {store['runs']}; known searches: {LONG}, tiny-digits" in said
    assert "did you mean" not in said


def test_an_empty_store_prints_a_one_line_hint_and_creates_nothing(tmp_path):
    runs = tmp_path / "nothing-here"
    out = cnn_search("searches", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == [
        f"no searches in {runs} yet; start one with cnn-search run tiny --runs-dir {runs}"
    ]
    assert not runs.exists()


def _close(cell: str, value: float) -> bool:
    mantissa = cell.split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa) <= 3 and abs(float(cell) - value) <= 0.005 * value  # 3 significant digits


def test_trials_and_run_tables_show_lr_optimizer_and_batch_of_each_trial(store):
    runs = store["runs"]
    for name in ("tiny-digits", LONG):
        for stdout in (store["stdout"][name], cnn_search("trials", name, "--runs-dir", str(runs)).stdout):
            headers, rows = _table(stdout)
            assert headers[6:9] == ["lr", "optimizer", "batch"], headers
            shown = {int(row[0]): dict(zip(headers, row, strict=True)) for row in rows if row[0].isdigit()}
            _, children = runs_of(runs, name)
            assert sorted(shown) == [0, 1]
            for child in children:
                row, params = shown[int(child.data.tags["trial"])], child.data.params
                assert _close(row["lr"], float(params["training/learning_rate"])), (row, params)
                if name == "tiny-digits":  # fixed in tiny.yaml: not sampled, not in MLflow, shown from the space
                    assert "training/optimizer" not in params and "training/batch_size" not in params
                    assert (row["optimizer"], row["batch"]) == ("adam", "64")
                else:
                    assert (row["optimizer"], row["batch"]) == (
                        params["training/optimizer"],
                        params["training/batch_size"],
                    )


def test_the_searches_table_keeps_names_whole_in_a_narrow_terminal(store):
    """A terminal narrower than the table: the names stay whole on one line, the other columns fold."""
    from rich.console import Console

    from search.cli import _print_searches

    console = Console(file=io.StringIO(), width=100, color_system=None)
    _print_searches(list_searches(default_tracking_uri(store["runs"])), console=console)
    lines = console.file.getvalue().splitlines()
    assert max(map(len, lines)) <= 100
    assert any(line.startswith(f"│ {LONG} │") for line in lines)
    assert any(line.startswith("│ tiny-digits ") for line in lines)
