"""The README is for a newcomer and the rest lives in the documentation site built from docs/ (issue 34):
the README short, with its two commands; the site built by MkDocs in strict mode (a broken link, a page
left out of the navigation or a missing anchor fails); the command-line reference generated from the
commands themselves and committed as they say it now."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

#: What a newcomer runs, exactly: the first installs and searches, the second installs the test extras and tests.
COMMANDS = (
    "pip install -e . && cnn-search run vgg --data digits --trials 20 --seed 0",
    'pip install -e ".[test]" && pytest',
)


def test_the_readme_is_short_and_keeps_its_two_commands():
    assert len(README.splitlines()) <= 200
    blocks = re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)
    assert blocks[:2] == list(COMMANDS)


def test_every_page_the_readme_links_to_exists():
    links = re.findall(r"\]\(([^)#]+)\)", README)
    assert len(links) >= 10
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_the_docs_site_builds_in_strict_mode(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "cli" / "index.html").is_file()
    assert (tmp_path / "site" / "results" / "index.html").is_file()


def test_a_broken_link_fails_the_docs_build(tmp_path):
    """The strict build is what keeps links true: a page with a link to nowhere fails it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[gone](nowhere.md)\n")
    (tmp_path / "mkdocs.yml").write_text((ROOT / "mkdocs.yml").read_text().split("\nnav:")[0] + "\n")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "s")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert built.returncode != 0 and "nowhere.md" in built.stderr


def test_the_cli_reference_is_what_the_commands_say():
    from search.cli._reference import command_paths, reference

    paths = command_paths()
    assert ("run",) in paths and ("spaces", "schema") in paths
    generated = reference()
    assert (ROOT / "docs" / "cli.md").read_text() == generated, "run: python -m search.cli._reference > docs/cli.md"
    assert all(f"## `{' '.join(('cnn-search', *path))}`" in generated for path in paths)
