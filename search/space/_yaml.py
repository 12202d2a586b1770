"""Reading a space file: YAML through ``yaml.SafeLoader`` only, with line numbers and no surprises.

Decisions (documented in the README):

* Only plain YAML data is accepted: a tag such as ``!!python/object`` is refused and nothing runs.
* A duplicate key is an error (PyYAML silently keeps the last one).
* ``1e-3`` is a number. PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-3``) and ``1e-3``
  is the *string* "1e-3"; we add the YAML 1.2 float form so the natural spelling works. A quoted
  ``"1e-3"`` stays a string and is refused where a number is expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from search._errors import Problem, SpaceError

Lines = dict[tuple[str, ...], int]

_STANDARD_TAGS = {"tag:yaml.org,2002:" + name for name in ("map", "seq", "str", "int", "float", "bool", "null")}


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as ``1e-3``."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _convert(loader: _Loader, node: Node, path: tuple[str, ...], lines: Lines, file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if node.tag not in _STANDARD_TAGS:
        raise SpaceError(
            Problem(
                ".".join(path),
                f"YAML tag {node.tag!r} is not allowed",
                expected="plain YAML data (mappings, lists, numbers, strings, booleans, null)",
                received=node.tag,
                file=file,
                line=node.start_mark.line + 1,
            )
        )
    if isinstance(node, ScalarNode):
        return loader.construct_object(node, deep=True)
    if isinstance(node, SequenceNode):
        return [_convert(loader, item, (*path, str(i)), lines, file) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _convert(loader, key_node, path, lines, file)
            key_path = (*path, str(key))
            if key in result:
                raise SpaceError(
                    Problem(
                        ".".join(key_path),
                        "duplicate key",
                        expected="each key once",
                        received=f"a second {key!r} (first on line {lines[key_path]})",
                        file=file,
                        line=key_node.start_mark.line + 1,
                    )
                )
            lines[key_path] = key_node.start_mark.line + 1
            result[key] = _convert(loader, value_node, key_path, lines, file)
        return result
    raise SpaceError(Problem(".".join(path), "unsupported YAML node", received=type(node).__name__, file=file))


def parse_yaml(text: str, *, file: str = "<string>") -> tuple[Any, Lines]:
    """Parse ``text``; return the data and a map from key path to line number.

    >>> data, lines = parse_yaml("blocks:\\n  filters: [16, 32]\\ntraining: {learning_rate: 1e-3}\\n")
    >>> data["training"]["learning_rate"], lines[("blocks", "filters")]
    (0.001, 2)
    """
    lines: Lines = {}
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        return _convert(loader, node, (), lines, file), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SpaceError(
            Problem(
                "",
                f"not valid YAML: {exc.problem or exc.context}",
                file=file,
                line=mark.line + 1 if mark else None,
            )
        ) from None
    except yaml.YAMLError as exc:
        raise SpaceError(Problem("", f"not valid YAML: {exc}", file=file)) from None
    finally:
        loader.dispose()


def read_yaml(path: Path) -> tuple[Any, Lines]:
    """Read a file and parse it; an unreadable or non-UTF-8 file is a :class:`SpaceError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(Problem("", f"cannot read the file: {exc}", file=str(path))) from None
    return parse_yaml(text, file=str(path))
