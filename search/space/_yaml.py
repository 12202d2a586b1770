"""Reading a space file: YAML through ``yaml.SafeLoader`` only, with line numbers and no surprises.

Decisions (documented in the README):

* Only plain YAML data is accepted: a tag such as ``!!python/object`` is refused and nothing runs.
* A duplicate key is an error (PyYAML silently keeps the last one).
* ``1e-3`` is a number. PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-3``) and ``1e-3``
  is the *string* "1e-3"; we add the YAML 1.2 float form so the natural spelling works. A quoted
  ``"1e-3"`` stays a string and is refused where a number is expected.
* A space file is small (the shipped ones are 1-3 KB), so its size, nesting, aliases and number of
  values are bounded (the ``MAX_*`` constants below): an alias bomb, a huge file or thousands of nested
  ``[`` are refused at once, with a short message, instead of taking minutes, gigabytes or a
  ``RecursionError``. The file size is checked before reading; nesting, aliases and values while the
  YAML is composed (before any value is built); the size and depth that aliases expand to, on the
  composed graph, before it is converted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from search._errors import Problem, SpaceError

Lines = dict[tuple[str, ...], int]

MAX_FILE_BYTES = 256 * 1024
"""Largest space file read, in bytes (checked before reading): ~100x the largest shipped space (2 KB),
and small enough that PyYAML (pure Python here) scans any such file in a fraction of a second."""
MAX_DEPTH = 50
"""Deepest nesting of lists and mappings, aliases expanded; a space needs about 6 levels."""
MAX_ALIASES = 100
"""Most alias uses (``*name``) in one file."""
MAX_VALUES = 10_000
"""Most values (keys, list items, scalars, mappings, lists) in one file, aliases expanded; a space has ~200."""

_STANDARD_TAGS = {"tag:yaml.org,2002:" + name for name in ("map", "seq", "str", "int", "float", "bool", "null")}


def _too_much(
    what: str, expected: str, received: str, file: str, path: tuple[str, ...] = (), line: int | None = None
) -> SpaceError:
    return SpaceError(Problem(".".join(path), what, expected=expected, received=received, file=file, line=line))


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as ``1e-3`` and bounds nesting, aliases and values."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.aliases = 0
        self.values = 0
        self.depth = 0  # lists and mappings open, the node being composed included
        self.path: list[str] = []  # key path of the node being composed (PyYAML's composer recurses)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _too_much(
                    "too many aliases",
                    f"at most {MAX_ALIASES} alias uses (*name) in a space file",
                    f"more than {MAX_ALIASES} (*{event.anchor} on line {line})",
                    self.file,
                    tuple(self.path),
                    line,
                )
            return super().compose_node(parent, index)
        self.values += 1
        if self.values > MAX_VALUES:
            raise _too_much(
                "too many values",
                f"at most {MAX_VALUES:,} values (keys, list items, numbers, strings...) in a space file",
                f"more than {MAX_VALUES:,} (line {line})",
                self.file,
                tuple(self.path),
                line,
            )
        if isinstance(parent, MappingNode) and isinstance(index, Node):  # a value: its key names it
            component = index.value if isinstance(index, ScalarNode) else "?"
        elif isinstance(index, int):  # an item of a list
            component = str(index)
        else:  # the document, or a key (located at its mapping, as in _convert)
            component = None
        if component is not None:
            self.path.append(component)
        opens = isinstance(event, (SequenceStartEvent, MappingStartEvent))
        self.depth += opens
        try:
            if self.depth > MAX_DEPTH:
                raise _too_much(
                    "nested too deeply",
                    f"at most {MAX_DEPTH} levels of lists and mappings",
                    f"more than {MAX_DEPTH} levels (line {line}, column {event.start_mark.column + 1})",
                    self.file,
                    tuple(self.path),
                    line,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= opens
            if component is not None:
                self.path.pop()


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _children(node: Node, path: tuple[str, ...]) -> list[tuple[Node, tuple[str, ...]]]:
    """The nodes in ``node`` with their key paths (a key is located at its mapping, as in _convert)."""
    if isinstance(node, SequenceNode):
        return [(item, (*path, str(i))) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        pairs = []
        for key, value in node.value:
            pairs += [(key, path), (value, (*path, key.value if isinstance(key, ScalarNode) else "?"))]
        return pairs
    return []


def _check_expansion(root: Node, aliases: int, file: str) -> None:
    """Refuse a graph whose aliases expand to more than MAX_VALUES values or MAX_DEPTH levels, or to itself.

    Each distinct node is visited once (sizes are memoised) and without recursion, so an alias bomb
    is measured, not expanded; the smallest value over a limit is the one reported.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels) once expanded
    entered: set[int] = set()  # nodes being visited: their ancestors, if one comes back it is a cycle
    stack: list[tuple[Node, tuple[str, ...], bool]] = [(root, (), False)]
    while stack:
        node, path, leaving = stack.pop()
        key = id(node)
        line = node.start_mark.line + 1
        if leaving:
            children = [sizes[id(child)] for child, _ in _children(node, path)]
            values = 1 + sum(v for v, _ in children)
            levels = (0 if isinstance(node, ScalarNode) else 1) + max((lv for _, lv in children), default=0)
            entered.discard(key)
            sizes[key] = (values, levels)
            if values > MAX_VALUES:
                raise _too_much(
                    "aliases expand to too many values",
                    f"at most {MAX_VALUES:,} values once aliases (*name) are expanded",
                    f"{values:,} values ({aliases} aliases in the file)",
                    file,
                    path,
                    line,
                )
            if levels > MAX_DEPTH:
                raise _too_much(
                    "aliases nest too deeply",
                    f"at most {MAX_DEPTH} levels of lists and mappings once aliases (*name) are expanded",
                    f"{levels:,} levels ({aliases} aliases in the file)",
                    file,
                    path,
                    line,
                )
            continue
        if key in sizes:
            continue
        if key in entered:
            raise _too_much(
                "an alias refers to a list or mapping that contains it",
                "aliases (*name) to complete values defined before",
                "a value that contains itself",
                file,
                path,
                line,
            )
        entered.add(key)
        stack.append((node, path, True))
        stack.extend((child, child_path, False) for child, child_path in reversed(_children(node, path)))


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
        try:
            return loader.construct_object(node, deep=True)
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            raise SpaceError(
                Problem(
                    ".".join(path),
                    f"cannot read the value: {exc}",
                    expected="a number, string, boolean or null",
                    received=str(node.value),
                    file=file,
                    line=node.start_mark.line + 1,
                )
            ) from None
    if isinstance(node, SequenceNode):
        return [_convert(loader, item, (*path, str(i)), lines, file) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise SpaceError(
                    Problem(
                        ".".join(path),
                        "a key is a list or a mapping",
                        expected="a plain key (a name or a number)",
                        received="a list" if isinstance(key_node, SequenceNode) else "a mapping",
                        file=file,
                        line=key_node.start_mark.line + 1,
                    )
                )
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


def _file_too_large(size: str, file: str) -> SpaceError:
    return _too_much("file too large", f"a space file of at most {MAX_FILE_BYTES:,} bytes", size, file)


def _plain_words(exc: yaml.MarkedYAMLError, text: str) -> tuple[str, Any]:
    """PyYAML's common syntax errors in plain words, with their line and column, and the mark to locate
    them at (the opening bracket or quote of one never closed, else where PyYAML stopped)."""
    problem, context = exc.problem or "", exc.context or ""
    mark, opened = exc.problem_mark or exc.context_mark, exc.context_mark
    plain, located = _layout_words(problem), False  # located: the words say where already
    if plain is None:
        plain, mark, located = _marked_words(problem, context, mark, opened, text)
    if plain is None:
        plain = _token_words(problem)
    if plain is None:
        return problem or context, mark
    return (f"{_at(mark)}: {plain}" if mark is not None and not located else plain), mark


def _at(m: Any) -> str:
    """Where the mark ``m`` points, in words."""
    return f"line {m.line + 1}, column {m.column + 1}"


def _line_of(text: str, m: Any) -> str:
    """The line of ``text`` the mark ``m`` is on ("" when PyYAML counted a line break that ``text`` lacks)."""
    lines = text.split("\n")  # PyYAML also breaks lines at \x85 and \u2028: an index may not be there
    return lines[m.line] if m.line < len(lines) else ""


def _char(text: str, m: Any) -> str:
    """The character of ``text`` the mark ``m`` points at ("?" past the end of its line)."""
    return _line_of(text, m)[m.column] if m.column < len(_line_of(text, m)) else "?"


def _layout_words(problem: str) -> str | None:
    """Plain words for a ``problem`` of indentation, tabs or a stray item or bracket, else None."""
    if "'\\t'" in problem or "tab character" in problem:
        return "a tab character; YAML does not allow tab characters for indentation (or after a ':'); use spaces"
    if "but found '<block mapping start>'" in problem:
        return (
            "this line is indented differently from the lines above it; keys of one mapping must start in the "
            "same column"
        )
    if "but found '<block sequence start>'" in problem:
        return "this list item is indented differently from the items above it; the '- ' of one list line up"
    if problem.startswith("expected <block end>, but found '-'"):
        return "a list item ('- ') among the keys of a mapping; indent the list under its key, or add the key"
    if problem.startswith("expected <block end>, but found '<scalar>'"):
        return (
            "more text after a complete value (a quote closed too early?); quote the whole value, and inside "
            "'...' write a quote as ''"
        )
    if problem.startswith("expected <block end>, but found") and problem[-2:-1] in ("]", "}"):
        opening = "[" if problem[-2] == "]" else "{"
        return f"a '{problem[-2]}' that closes nothing; remove it, or add the opening '{opening}'"
    return None


def _marked_words(problem: str, context: str, mark: Any, opened: Any, text: str) -> tuple[str | None, Any, bool]:
    """Plain words for a stray ':' or an unclosed bracket or quote, the mark to show, whether they say where."""
    if "mapping values are not allowed here" in problem and mark is not None:
        before = _line_of(text, mark)[: mark.column]
        if ": " in before or before.rstrip().endswith(":"):  # an earlier "key:" on the line: a ':' in its value
            return 'a ":" inside a value; quote the value (description: "VGG: stacks of convolutions")', mark, False
        return (
            "this key continues the value above it; give it the same indentation as the keys beside it, and "
            "check the line above ends its key with ':'",
            mark,
            False,
        )
    if context.startswith("while parsing a flow") and opened is not None and problem.startswith("expected ','"):
        bracket, close = _char(text, opened), problem[len("expected ',' or '")]
        if "<stream end>" in problem:
            return f"the '{bracket}' opened on {_at(opened)} is never closed; add the '{close}'", opened, True
        return (
            f"the '{bracket}' opened on {_at(opened)} is not closed before {_at(mark)}; add the '{close}' "
            f"(separate items with commas, quote an item that contains ':')",
            opened,
            True,
        )
    if "while scanning a quoted scalar" in context and opened is not None:
        quote = _char(text, opened) if _char(text, opened) in ("'", '"') else None
        shown = f" ({quote})" if quote else ""
        return (
            f"the quote{shown} opened on {_at(opened)} is never closed; add the closing {quote or 'quote'}",
            opened,
            True,
        )
    return None, mark, False


def _token_words(problem: str) -> str | None:
    """Plain words for an unclosed flow, a reserved character, an unknown alias or a second document, else None."""
    if "expected the node content, but found '<stream end>'" in problem:
        return "the file ends inside a [ ] list or a { } mapping; close it"
    if problem.startswith("found character") and "cannot start any token" in problem:
        return f"a value cannot start with {problem.split()[2]} (YAML reserves it); quote the value"
    if problem.startswith("found undefined alias"):
        name = problem.split()[-1].strip("'")
        return f"*{name} refers to no anchor &{name} defined above it; write &{name} before the value it names"
    if "another document" in problem:
        return "a second document (after '---'); a space file holds one"
    return None


def parse_yaml(text: str, *, file: str = "<string>") -> tuple[Any, Lines]:
    """Parse ``text``; return the data and a map from key path to line number.

    >>> data, lines = parse_yaml("blocks:\\n  filters: [16, 32]\\ntraining: {learning_rate: 1e-3}\\n")
    >>> data["training"]["learning_rate"], lines[("blocks", "filters")]
    (0.001, 2)
    """
    if len(text) > MAX_FILE_BYTES:
        raise _file_too_large(f"{len(text):,} characters", file)
    lines: Lines = {}
    loader = None
    try:
        loader = _Loader(text, file)  # its reader refuses control characters at once (ReaderError)
        node = loader.get_single_node()
        if node is None:
            return None, lines
        _check_expansion(node, loader.aliases, file)
        return _convert(loader, node, (), lines, file), lines
    except yaml.MarkedYAMLError as exc:
        what, mark = _plain_words(exc, text)
        pyyaml = "; ".join(str(part) for part in (exc.problem, exc.context) if part)
        raise SpaceError(
            Problem(
                "",
                f"not valid YAML: {what}",
                hint=f"(PyYAML: {pyyaml})" if pyyaml and pyyaml not in what else None,
                file=file,
                line=mark.line + 1 if mark else None,
            )
        ) from None
    except yaml.YAMLError as exc:
        raise SpaceError(Problem("", f"not valid YAML: {exc}", file=file)) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml(path: Path) -> tuple[Any, Lines]:
    """Read a file and parse it; an unreadable, non-UTF-8 or too large file is a :class:`SpaceError`.

    The size is checked before reading (and no more than ``MAX_FILE_BYTES + 1`` bytes are read, for
    a file whose size the system does not know, such as a pipe).
    """
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _file_too_large(f"{size:,} bytes", file)
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise _file_too_large(f"more than {MAX_FILE_BYTES:,} bytes", file)
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as Path.read_text reads it
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(Problem("", f"cannot read the file: {exc}", file=file)) from None
    return parse_yaml(text, file=file)
