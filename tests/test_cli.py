"""The cnn-search command line, run as a real process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from search import __version__

SPACES = Path(__file__).resolve().parents[1] / "spaces"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, timeout=60)


def test_console_script_is_installed_and_prints_version():
    exe = shutil.which("cnn-search")
    assert exe, "pip install -e . installs the cnn-search console script"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"cnn-search {__version__}"


def test_help_lists_the_commands():
    out = cli("--help")
    assert out.returncode == 0
    assert "spaces" in out.stdout


def test_validate_all_shipped_spaces_exits_0():
    out = cli("spaces", "validate", *map(str, sorted(SPACES.glob("*.yaml"))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("ok ") == 6 and "searchable parameters" in out.stdout


def test_validate_a_misspelt_copy_of_vgg_exits_1_with_location_and_suggestion(tmp_path):
    text = (SPACES / "vgg.yaml").read_text().replace("\n  filters: [", "\n  filtres: [")
    bad = tmp_path / "vgg.yaml"
    bad.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("  filtres:"))
    out = cli("spaces", "validate", str(SPACES / "tiny.yaml"), str(bad))
    assert out.returncode == 1
    assert out.stdout.startswith("ok ")
    assert f"{bad}:{line}: blocks.filtres: unknown key 'filtres'" in out.stderr
    assert "Did you mean 'filters'?" in out.stderr
    assert "1 of 2 file(s) invalid" in out.stderr


def test_show_prints_the_space_and_its_size():
    out = cli("spaces", "show", "tiny")
    assert out.returncode == 0
    assert out.stdout.startswith(f"# {SPACES / 'tiny.yaml'}\n# size: ")
    assert "depth: {low: 1, high: 2}" in out.stdout and "filters: [8, 16]" in out.stdout


def test_show_unknown_name_exits_1():
    out = cli("spaces", "show", "vgj")
    assert out.returncode == 1
    assert out.stderr.startswith("error: <top>: unknown space 'vgj'") and "Did you mean 'vgg'?" in out.stderr


def test_list_and_schema():
    out = cli("spaces", "list")
    assert out.returncode == 0
    assert [row.split()[0] for row in out.stdout.splitlines() if not row.startswith(" ")] == [
        "alexnet",
        "lenet",
        "mobilenet",
        "resnet",
        "tiny",
        "vgg",
    ]
    schema = json.loads(cli("spaces", "schema").stdout)
    assert schema["properties"]["blocks"]["additionalProperties"] is False


def test_help_and_spaces_commands_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from search.cli import app\n"
        "for args in (['--help'], ['spaces', 'validate', sys.argv[1]], ['spaces', 'show', 'vgg']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'mlflow', 'optuna') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(SPACES / "vgg.yaml")], capture_output=True, text=True, timeout=60
    )
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_brackets_in_help_and_messages_are_printed_as_written(capsys):
    """Rich reads ``[export]`` as markup and drops it: ``pip install 'cnn-search'`` would be a wrong hint.
    Help text escapes its brackets; the commands' consoles print text as written (issue 34)."""
    import os

    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "search", "ui", "--help"], capture_output=True, text=True, env=env)
    assert "pip install 'cnn-search[dashboard]'" in out.stdout

    from rich.table import Table

    from search.cli._app import stdout_console

    table = Table("format", "note")
    table.add_row("onnx", "onnx needs the Python package(s) tf2onnx, not installed: pip install 'cnn-search[export]'")
    console = stdout_console()
    console.print(table)
    console.print("skipped [export] [bold]as written[/bold]")
    printed = capsys.readouterr().out
    assert "pip install 'cnn-search[export]'" in printed
    assert "skipped [export] [bold]as written[/bold]" in printed


def _rows(count: int) -> list[dict]:
    """The rows ``cnn-search trials`` prints, read from a real Optuna study of ``count`` finished trials (no
    training: the user attributes a search writes, with long architectures such as a resnet space's)."""
    import optuna

    from search.engines._optuna._reading import trial_rows

    study = optuna.create_study(direction="maximize", study_name="wide")
    arch = " → ".join(["conv3x3·64·relu/bn", "residual[conv3x3·64·relu/bn → conv3x3·64·relu/bn]/max"] * 4)
    for n in range(count):
        trial = study.ask()
        trial.suggest_float("training/learning_rate", 1e-4, 1e-2, log=True)
        attrs = {"state": "complete", "epochs_run": 5, "params": 1_234_567 + n, "train_seconds": 61.5 + n}
        for key, value in {**attrs, "summary": f"{arch} → flatten → dense{n} → softmax10"}.items():
            trial.set_user_attr(key, value)
        study.tell(trial, 0.5 + n / 100)
    return trial_rows(study)


def test_the_trials_table_fits_100_columns_with_each_architecture_whole_on_its_own_line():
    """Issue 34, item 5: at 110 columns each architecture wrapped into ~10 lines; piped, the table was 220 wide."""
    import io

    from rich.console import Console

    from search.cli._read import PIPED_WIDTH, print_trials

    rows = _rows(3)
    for terminal, width in ((False, 160), (True, 100)):  # piped (stdout_console's width), a 100-column terminal
        buffer = io.StringIO()
        print_trials(
            rows, console=Console(file=buffer, width=width, force_terminal=terminal, color_system=None, markup=False)
        )
        lines = buffer.getvalue().splitlines()
        listed = lines.index("architecture / reason, by trial:")
        assert max(len(line) for line in lines[:listed]) <= min(width, PIPED_WIDTH), lines[:listed]
        assert lines[listed + 1 :] == [f"{r['trial']:>5}  {r['architecture']}" for r in rows]  # best first, whole
        assert all(len(line) > 160 for line in lines[listed + 1 :])  # longer than the console: not cropped

    buffer = io.StringIO()  # a table that fits a wide terminal keeps its architecture column
    narrow = [{**r, "architecture": "conv3x3·8·elu → flatten → softmax10"} for r in rows]
    print_trials(narrow, console=Console(file=buffer, width=160, force_terminal=True, color_system=None, markup=False))
    assert "┃ architecture / reason" in buffer.getvalue() and "by trial:" not in buffer.getvalue()


def test_run_lists_the_best_ten_and_names_the_command_that_lists_them_all(tmp_path, capsys):
    from search.cli._run import SHOWN, _say_result
    from search.runtime._session import SearchResult

    rows = _rows(SHOWN + 2)
    result = SearchResult(
        name="wide", engine="optuna", best_trial=rows[0]["trial"], best_value=rows[0]["val_accuracy"],
        architecture=None, test_metrics={"test_accuracy": 0.61, "chance_accuracy": 0.1}, model_uri="models:/wide/1",
        states={"complete": SHOWN + 2}, wall_seconds=1.0, experiment_id="1", parent_run_id="p",
        tracking_uri="sqlite:///x", trials=rows,
    )  # fmt: skip
    _say_result(result, trials=SHOWN + 2, space="resnet", runs_dir=tmp_path)
    out = capsys.readouterr().out
    assert f"the best {SHOWN} of {SHOWN + 2} trials; all of them: cnn-search trials wide --runs-dir {tmp_path}" in out
    listed = out[out.index("by trial:") :].splitlines()[1 : SHOWN + 1]
    assert [int(line.split()[0]) for line in listed] == [r["trial"] for r in rows[:SHOWN]]  # the best ten
    assert "test split, evaluated once; chance 0.1000" in out
