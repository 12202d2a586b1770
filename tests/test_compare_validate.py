"""compare (data split warning, running time, names never cut, csv), spaces validate --data, spaces list,
and YAML syntax errors in plain words (issue 14). Real processes; the real searches are shared."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest

from search import Space, SpaceError, load_space
from search.tracking._compare import TABLE_COLUMNS, compare_runs_url, running_seconds, split_warnings

from .conftest import SPACES
from .helpers import cnn_search, runs_of

RESUMED = "split-a"
OTHER = "split-b-a-search-name-long-enough-to-be-cut-at-80-columns"
SPLIT_WARNING = "warning: these searches were not run on the same data split (data fingerprint): "


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    """Two tiny searches on different splits of digits (--seed 0 and 1); the first stopped after one trial
    and resumed ~10 s later, so its trials are separated by an idle gap."""
    runs = tmp_path_factory.mktemp("compare") / "runs"
    base = ["run", "tiny", "--epochs", "1", "--runs-dir", str(runs), "--no-report"]
    for args in (
        ["--name", RESUMED, "--seed", "0", "--trials", "1"],
        None,  # the idle gap
        ["--name", RESUMED, "--seed", "0", "--trials", "2"],
        ["--name", OTHER, "--seed", "1", "--trials", "1"],
    ):
        if args is None:
            time.sleep(10)
            continue
        out = cnn_search(*base, *args)
        assert out.returncode == 0, out.stderr[-3000:]
    return runs


def compare(runs, *args: str, env: dict[str, str] | None = None):
    out = cnn_search("compare", RESUMED, OTHER, "--runs-dir", str(runs), *args, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_compare_warns_when_the_searches_ran_on_different_splits(searches):
    out = compare(searches, "--format", "json")
    rows = json.loads(out.stdout)  # the warning goes to stderr: stdout stays machine-readable
    assert [(r["data"], r["data_seed"]) for r in rows] == [("digits", "0"), ("digits", "1")]
    assert rows[0]["data_fingerprint"] != rows[1]["data_fingerprint"]
    [warning] = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert warning == (
        f"{SPLIT_WARNING}{RESUMED} (digits, seed 0, {rows[0]['data_fingerprint'][:8]}…), "
        f"{OTHER} (digits, seed 1, {rows[1]['data_fingerprint'][:8]}…); their test accuracies are not comparable"
    )
    same = cnn_search("compare", RESUMED, RESUMED, "--runs-dir", str(searches), "--format", "json")
    assert same.returncode == 0 and "warning" not in same.stderr


@pytest.mark.slow
def test_compare_wall_time_is_running_time_without_the_idle_gap(searches):
    [row, _] = json.loads(compare(searches, "--format", "json").stdout)
    _, trials = runs_of(searches, RESUMED)
    assert len(trials) == 2
    first_start = min(t.info.start_time for t in trials) / 1000
    last_end = max(t.info.end_time for t in trials) / 1000
    durations = sum((t.info.end_time - t.info.start_time) / 1000 for t in trials)
    assert row["wall_seconds"] < last_end - first_start  # the ~10 s between the two runs is not counted
    assert row["wall_seconds"] == pytest.approx(durations, abs=0.15)  # one worker: the sum of the trials
    assert row["trials_per_hour"] == pytest.approx(2 / durations * 3600, rel=0.01)
    assert 0 < row["seconds_to_best"] <= row["wall_seconds"]


@pytest.mark.slow
def test_compare_names_and_headers_are_not_cut_piped_at_80_columns(searches):
    out = compare(searches, env={"COLUMNS": "80"})
    assert "…" not in out.stdout
    assert RESUMED in out.stdout and OTHER in out.stdout
    header = next(line for line in out.stdout.splitlines() if "search" in line and "engine" in line)
    assert all(c.replace("_", " ") in header for c in TABLE_COLUMNS)  # one line each, whole
    assert "/#/compare-runs?runs=" in out.stdout  # the MLflow UI's view of the two searches' runs
    assert out.stderr.count(SPLIT_WARNING) == 1


@pytest.mark.slow
def test_compare_on_a_narrow_terminal_shows_one_column_per_search(searches):
    # FORCE_COLOR makes rich treat stdout as a terminal (160 columns here): the 13 columns do not fit
    out = compare(searches, env={"FORCE_COLOR": "1"})
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)
    assert "…" not in text
    header = next(line for line in text.splitlines() if RESUMED in line)
    assert OTHER in header  # both searches are column headers, whole
    assert any(line.split("│")[1].strip() == "best val accuracy" for line in text.splitlines() if "│" in line)


@pytest.mark.slow
def test_compare_csv_parses_with_one_row_per_search(searches):
    out = compare(searches, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["search"] for r in rows] == [RESUMED, OTHER]
    assert [r["trials"] for r in rows] == ["2", "1"]
    assert all(float(r["wall_seconds"]) > 0 and r["data"] == "digits" and r["run_id"] for r in rows)
    assert all(r["winner_from"] for r in rows)  # what searching paid (search.tracking._paid), in the CSV too


def test_running_seconds_merges_parallel_trials_and_skips_gaps():
    assert running_seconds([]) == 0
    assert running_seconds([(0, 10), (2, 4), (8, 12)]) == 12  # three workers, overlapping
    assert running_seconds([(0, 10), (1000, 1005)]) == 15  # resumed later: the gap is not counted
    assert running_seconds([(0, 10), (1000, 1005)], until=1002) == 12


def test_split_warnings_name_each_group():
    a = {"search": "a", "data": "digits", "data_seed": "0", "data_fingerprint": "1" * 16}
    assert split_warnings([a, a | {"search": "b"}]) == []
    shapes = {"search": "c", "data": "shapes", "data_seed": "0", "data_fingerprint": "2" * 16}
    assert split_warnings([a, shapes]) == [
        "these searches were not run on the same data: a (digits, seed 0, 11111111…), "
        "c (shapes, seed 0, 22222222…); their accuracies are not comparable"
    ]
    old = {"search": "d", "data": None, "data_seed": None, "data_fingerprint": None}
    assert split_warnings([a, old]) == [
        "no data fingerprint recorded for d: cannot tell whether it ran on the same data split as the others"
    ]
    url = compare_runs_url([a | {"run_id": "r1", "experiment_id": "3"}, a | {"run_id": "r2", "experiment_id": "12"}])
    assert (
        url
        == "http://127.0.0.1:5000/#/compare-runs?runs=%5B%22r1%22%2C%22r2%22%5D&experiments=%5B%2212%22%2C%223%22%5D"
        "&workflowType=machine_learning"
    )


# -- spaces validate --data -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vgg", "tiny"])
def test_validate_with_data_says_how_many_samples_fit(name):
    out = cnn_search("spaces", "validate", str(SPACES / f"{name}.yaml"), "--data", "digits", timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"ok {SPACES / name}.yaml: ") and "searchable parameters" in lines[0]
    # vgg fits 8x8 digits: 1 to 3 blocks of max pooling take 8x8 to 4x4, 2x2, 1x1
    assert lines[1:] == ["  ok: 20/20 sampled architectures fit 8x8x1 images (digits)"]


def test_validate_with_data_lists_why_some_samples_do_not_fit():
    out = cnn_search("spaces", "validate", str(SPACES / "alexnet.yaml"), "--data", "digits", timeout=120)
    assert out.returncode == 0, out.stderr
    fit = re.search(r"  ok: (\d+)/20 sampled architectures fit 8x8x1 images \(digits\)\n", out.stdout)
    assert fit and 0 < int(fit[1]) < 20, out.stdout
    causes = re.findall(r"^    (\d+) of 20: (.*)$", out.stdout, flags=re.M)
    assert sum(int(n) for n, _ in causes) == 20 - int(fit[1])
    assert any("the feature map collapses to 0x0 at max pooling" in c and "use pooling: none" in c for _, c in causes)
    assert "{" not in out.stdout  # sentences, not a Python dict


def test_validate_with_data_refuses_a_space_that_never_fits(write_yaml):
    path = write_yaml(
        "name: big-kernels\nblocks:\n  depth: {low: 3, high: 4}\n  filters: [8]\n  kernel_size: 5\n"
        "  padding: valid\n  pooling: max\n"
    )
    out = cnn_search("spaces", "validate", str(path), "--data", "digits", timeout=120)
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"{path}: no sampled architecture fits 8x8x1 images (digits); cnn-search run would refuse this space\n"
        "  20 of 20: the feature map collapses to 0x0 at conv 1 (kernel_size 5, strides 1, padding valid) in block 1 "
        "(20): use padding: same, a smaller kernel_size or strides 1, or lower blocks.depth\n"
    )
    assert "1 of 1 file(s) invalid" in out.stderr and "{" not in out.stderr
    plain = cnn_search("spaces", "validate", str(path), timeout=120)  # without --data: the YAML only
    assert plain.returncode == 0 and plain.stdout.count("\n") == 1


def test_validate_with_unknown_data_is_one_error_line():
    out = cnn_search("spaces", "validate", str(SPACES / "tiny.yaml"), "--data", "nope", timeout=120)
    assert out.returncode == 1 and out.stderr.startswith("error: unknown dataset 'nope'")


# -- YAML syntax errors in plain words ------------------------------------------------------------------
def yaml_error(write_yaml, text: str) -> str:
    path = write_yaml(text)
    with pytest.raises(SpaceError) as info:
        Space.from_file(path)
    [problem] = info.value.problems
    return str(problem).replace(str(path), "F")


def test_indentation_error_in_plain_words(write_yaml):
    assert yaml_error(write_yaml, "blocks:\n  filters: [16, 32]\n   depth: 2\n") == (
        "F:3: <top>: not valid YAML: line 3, column 4: this line is indented differently from the lines above it; "
        "keys of one mapping must start in the same column. "
        "(PyYAML: expected <block end>, but found '<block mapping start>'; while parsing a block mapping)"
    )


def test_tab_in_plain_words_through_the_cli(write_yaml):
    path = write_yaml("name: tabbed\nblocks:\n\tfilters: [16, 32]\n")
    out = cnn_search("spaces", "validate", str(path), timeout=120)
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"{path}:3: <top>: not valid YAML: line 3, column 1: a tab character; YAML does not allow tab characters "
        "for indentation (or after a ':'); use spaces. (PyYAML: found character '\\t' that cannot start any token"
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("description: VGG: stacks\n", 'line 1, column 17: a ":" inside a value; quote the value'),
        ("name: 'abc\nblocks: {}\n", "the quote (') opened on line 1, column 7 is never closed"),
        ("training: {learning_rate: 1e-3\nblocks: {}\n", "the '{' opened on line 1, column 11 is not closed"),
        ("start:\n  - a: 1\n   - b: 2\n", "line 3, column 4: this list item is indented differently"),
        ("blocks:\n  depth: 2\n  - 3\n", "line 3, column 3: a list item ('- ') among the keys of a mapping"),
        ("name: x\n  blocks: 1\n", "line 2, column 9: this key continues the value above it"),
    ],
)
def test_common_yaml_mistakes_in_plain_words(write_yaml, text, words):
    message = yaml_error(write_yaml, text)
    assert words in message and "(PyYAML: " in message and "…" not in message


# -- spaces list -----------------------------------------------------------------------------------------
def test_spaces_list_shows_whole_descriptions_folded_at_80_columns():
    out = cnn_search("spaces", "list", env={"COLUMNS": "80"}, timeout=120)
    assert out.returncode == 0
    assert all(len(line) <= 80 for line in out.stdout.splitlines())
    entries = re.split(r"\n(?=\S)", out.stdout.strip())
    for entry in entries:
        name, text = entry.split(maxsplit=1)
        assert " ".join(text.split()) == " ".join(load_space(name).description.split())  # whole, not cut
    assert [e.split()[0] for e in entries] == ["alexnet", "lenet", "mobilenet", "resnet", "tiny", "vgg"]
