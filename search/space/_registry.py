"""Ready-made spaces: ``vgg`` resolves to ``spaces/vgg.yaml``.

In a wheel the files live in ``search/spaces/`` (packaged from the repository's top-level
``spaces/``); in a source checkout (``pip install -e .``) they are read from ``spaces/`` itself.
"""

from __future__ import annotations

from pathlib import Path

from search._errors import Problem, SpaceError
from search.data._errors import special_kind
from search.space._parse import did_you_mean
from search.space._space import Space

_PACKAGE = Path(__file__).resolve().parents[1]


def spaces_dir() -> Path:
    """The folder of the shipped spaces."""
    packaged = _PACKAGE / "spaces"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "spaces"


def list_spaces() -> list[str]:
    """Names of the shipped spaces, sorted."""
    return sorted(p.stem for p in spaces_dir().glob("*.yaml"))


def resolve_space(name_or_path: str | Path) -> Path:
    """A shipped space's name, or a path to a YAML file, as a path that exists."""
    text = str(name_or_path)
    path = Path(text)
    if path.is_dir() and not (spaces_dir() / f"{text}.yaml").is_file():  # `run DIR`: said as a folder
        raise SpaceError(
            Problem(
                "",
                "a folder, not a space",
                expected="a space's YAML file or one of " + ", ".join(list_spaces()) + " (cnn-search spaces)",
                received="a folder",
                hint="A folder of images is the data: cnn-search run SPACE --data FOLDER.",
                file=text,
            )
        )
    if path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        if not path.is_file():
            kind = special_kind(path)  # a FIFO would hang the read: said by its kind, not "no such file"
            raise SpaceError(
                Problem(
                    "",
                    f"not a file but {kind}" if kind else "no such file",
                    expected="a YAML file or a shipped space name",
                    received=kind or text,
                    file=text,
                )
            )
        return path
    shipped = spaces_dir() / f"{text}.yaml"
    if shipped.is_file():
        return shipped
    if path.is_file():
        return path
    names = list_spaces()
    raise SpaceError(
        Problem(
            "",
            f"unknown space {text!r}",
            expected="a YAML file or one of " + ", ".join(names),
            received=text,
            hint=did_you_mean(text, names),
        )
    )


def load_space(name_or_path: str | Path | Space) -> Space:
    """Load a shipped space by name (``"vgg"``) or a YAML file by path; a Space passes through.

    >>> load_space("tiny").name
    'tiny'
    """
    if isinstance(name_or_path, Space):
        return name_or_path
    return Space.from_file(resolve_space(name_or_path))
