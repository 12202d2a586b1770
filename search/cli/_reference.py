"""The command-line reference of the documentation site (``docs/cli.md``), generated from the commands
themselves: each command's own ``--help``, as a terminal 100 columns wide shows it.

``python -m search.cli._reference > docs/cli.md`` writes it; ``tests/test_docs.py`` checks that the
committed page is what the commands say now, so the reference cannot drift from them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

#: The console script, run as ``cnn-search`` (Click names the program after ``argv[0]``).
_AS_INSTALLED = "import sys; sys.argv[0] = 'cnn-search'; from search.cli import main; main()"

#: The width the pages are rendered at (a normal terminal's; every line fits a docs page's code block).
COLUMNS = 100


def command_paths() -> list[tuple[str, ...]]:
    """Every command and sub-command, in ``--help``'s order: ``()`` for ``cnn-search`` itself."""
    import typer

    from search.cli import app

    found: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:  # Typer's own (vendored) Click command or group
        found.append(path)
        if hasattr(command, "list_commands"):
            context = command.context_class(command)
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                if sub is not None and not sub.hidden:
                    walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def help_of(path: tuple[str, ...]) -> str:
    """``cnn-search PATH --help`` as a user's terminal shows it, without colour."""
    env = {**os.environ, "COLUMNS": str(COLUMNS), "NO_COLOR": "1", "TERM": "dumb"}
    out = subprocess.run(
        [sys.executable, "-c", _AS_INSTALLED, *path, "--help"], capture_output=True, text=True, env=env, check=True
    )
    return "\n".join(line.rstrip() for line in out.stdout.strip("\n").splitlines())


def reference() -> str:
    """The page: one section per command, its ``--help`` verbatim."""
    parts = [
        "# Command-line reference",
        "",
        "Generated from the commands themselves (`python -m search.cli._reference > docs/cli.md`; a test keeps",
        "it true). Every option of `cnn-search run` is also a keyword of `search.run_search`.",
    ]
    for path in command_paths():
        title = " ".join(("cnn-search", *path))
        parts += ["", f"## `{title}`", "", "```text", help_of(path), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
