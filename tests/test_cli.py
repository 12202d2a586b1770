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
