"""Space files are small: size, nesting, aliases and values are bounded, and a message never echoes a
whole value (issue 13, case 5). The hostile files are real files run through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from search import Space, SpaceError
from search._errors import MAX_PROBLEMS, MAX_RECEIVED, Problem, excerpt
from search.space._yaml import MAX_ALIASES, MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, parse_yaml

from .helpers import cnn_search

SHORT = 2_000  # characters: the most a refusal may print


def alias_bomb() -> str:
    """9 levels x 6 aliases: 339 bytes that expand to 6**9 (about 10 million) strings."""
    rows = ["a0: &a0 [x, x, x, x, x, x]"]
    rows += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 6) + "]" for i in range(1, 9)]
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def space_error_exit(tmp_path_factory) -> int:
    """The exit code of `spaces validate` for an ordinary invalid space: a refused limit gets the same."""
    path = tmp_path_factory.mktemp("ordinary") / "typo.yaml"
    path.write_text("blocks:\n  filtres: [16, 32]\n")
    out = cnn_search("spaces", "validate", str(path), timeout=120)
    assert out.returncode != 0 and "unknown key 'filtres'" in out.stderr
    return out.returncode


def validate_refuses(path: Path, exit_code: int) -> str:
    """Run `cnn-search spaces validate PATH`; check it is a short, located refusal; return stderr."""
    out = cnn_search("spaces", "validate", str(path), timeout=120)
    assert out.returncode == exit_code, out.stderr[-SHORT:]
    assert "Traceback" not in out.stderr and "RecursionError" not in out.stderr, out.stderr[-SHORT:]
    assert len(out.stdout) + len(out.stderr) < SHORT, out.stderr[:SHORT]
    assert out.stderr.startswith(f"{path}"), out.stderr[:SHORT]  # the file is named first
    assert "1 of 1 file(s) invalid" in out.stderr
    return out.stderr


def test_alias_bomb_is_measured_not_expanded(tmp_path, space_error_exit):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    assert path.stat().st_size < 400
    err = validate_refuses(path, space_error_exit)
    # the smallest value over the limit is named: a5 holds 1 + 6 * 9,331 values once expanded
    assert f"{path}:6: a5: aliases expand to too many values; " in err
    assert f"expected at most {MAX_VALUES:,} values once aliases (*name) are expanded" in err
    assert "received 55,987 values (48 aliases in the file)." in err


def test_ten_megabyte_file_is_refused_before_reading(tmp_path, space_error_exit):
    path = tmp_path / "big.yaml"
    path.write_text("name: big\n" + "# padding padding padding padding padding padding padding\n" * 180_000)
    size = path.stat().st_size
    assert size > 10_000_000
    err = validate_refuses(path, space_error_exit)
    assert f"{path}: <top>: file too large; expected a space file of at most {MAX_FILE_BYTES:,} bytes" in err
    assert f"received {size:,} bytes." in err


def test_5000_nested_brackets_are_refused_without_a_recursion_error(tmp_path, space_error_exit):
    path = tmp_path / "deep.yaml"
    path.write_text("blocks: " + "[" * 5000 + "\n")
    err = validate_refuses(path, space_error_exit)
    assert f"{path}:1: blocks.0.0." in err
    assert f"nested too deeply; expected at most {MAX_DEPTH} levels of lists and mappings" in err
    assert f"received more than {MAX_DEPTH} levels (line 1, column " in err


def test_one_megabyte_string_is_refused_by_the_file_size(tmp_path, space_error_exit):
    path = tmp_path / "long.yaml"
    path.write_text("training:\n  learning_rate: '" + "x" * 1_000_000 + "'\n")
    err = validate_refuses(path, space_error_exit)
    assert f"file too large; expected a space file of at most {MAX_FILE_BYTES:,} bytes" in err
    assert f"received {path.stat().st_size:,} bytes." in err
    assert "xxxxxxxxxx" not in err


def test_long_values_are_echoed_as_a_short_excerpt(tmp_path, space_error_exit):
    path = tmp_path / "long.yaml"
    long = 100_000
    path.write_text(f"blocks:\n  activation: {'y' * long}\ntraining:\n  learning_rate: '{'x' * long}'\n")
    assert path.stat().st_size < MAX_FILE_BYTES
    err = validate_refuses(path, space_error_exit)
    assert f"{path}:2: blocks.activation: unknown activation 'yyy" in err
    assert f"{path}:4: training.learning_rate: wrong type; expected a number > 0, received the string 'xxx" in err
    assert f"… ({long + 13:,} characters)." in err  # "the string '" + the value + "'"
    assert err.count("x") < MAX_RECEIVED + 10


def test_run_refuses_the_bomb_before_creating_anything(tmp_path, space_error_exit):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    runs = tmp_path / "runs"
    out = cnn_search("run", str(path), "--trials", "1", "--runs-dir", str(runs), timeout=300)
    assert out.returncode == space_error_exit, out.stderr[-SHORT:]
    assert "Traceback" not in out.stderr and len(out.stderr) < SHORT, out.stderr[-SHORT:]
    assert "aliases expand to too many values" in out.stderr and "received 55,987 values" in out.stderr
    assert not runs.exists()


# -- the same limits in-process, on the reader -------------------------------------------------------


def refusal(text: str) -> str:
    with pytest.raises(SpaceError) as info:
        parse_yaml(text, file="F")
    [problem] = info.value.problems
    return str(problem)


def test_too_many_aliases():
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    assert refusal(text) == (
        f"F:2: b: too many aliases; expected at most {MAX_ALIASES} alias uses (*name) in a space file, "
        f"received more than {MAX_ALIASES} (*a on line 2)."
    )


def test_too_many_values():
    text = "a: [" + ", ".join(["1"] * MAX_VALUES) + "]\n"
    assert refusal(text) == (
        f"F:1: a: too many values; expected at most {MAX_VALUES:,} values (keys, list items, numbers, strings...) "
        f"in a space file, received more than {MAX_VALUES:,} (line 1)."
    )


def test_aliases_that_nest_too_deeply():
    nest = 10
    rows = ["a0: &a0 " + "[" * nest + "1" + "]" * nest]
    rows += [f"a{i}: &a{i} " + "[" * nest + f"*a{i - 1}" + "]" * nest for i in range(1, 6)]
    msg = refusal("\n".join(rows) + "\n")
    assert msg.startswith("F:6: a5.0.0.0.0.0.0.0.0.0: aliases nest too deeply; ")
    assert msg.endswith(f"received {MAX_DEPTH + 1} levels (5 aliases in the file).")


def test_nesting_up_to_the_limit_is_read():
    lists = MAX_DEPTH - 1  # the top mapping is the first level
    data, _ = parse_yaml("a: " + "[" * lists + "1" + "]" * lists + "\n")
    data = data["a"]
    for _ in range(lists):
        data = data[0]
    assert data == 1
    assert "nested too deeply" in refusal("a: " + "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH + "\n")


def test_nested_keys_are_bounded_too():
    msg = refusal("x: " + "{" * 5000 + "\n")
    assert msg.startswith("F:1: x: nested too deeply;")


def test_an_alias_inside_its_own_anchor_is_refused():
    assert refusal("a: &a [1, *a]\n") == (
        "F:1: a.1: an alias refers to a list or mapping that contains it; expected aliases (*name) to complete "
        "values defined before, received a value that contains itself."
    )


def test_a_few_aliases_still_work():
    data, lines = parse_yaml("base: &f [16, 32]\nblocks: {filters: *f}\nhead: {units: *f}\n")
    assert data == {"base": [16, 32], "blocks": {"filters": [16, 32]}, "head": {"units": [16, 32]}}
    assert lines[("head", "units")] == 3


def test_a_key_that_is_a_list_is_refused():
    assert refusal("? [a, b]\n: 1\n") == (
        "F:1: <top>: a key is a list or a mapping; expected a plain key (a name or a number), received a list."
    )


def test_a_huge_integer_is_refused_not_a_traceback():
    msg = refusal("epochs: " + "9" * 5000 + "\n")
    assert msg.startswith("F:1: epochs: cannot read the value")
    assert msg.endswith("… (5,000 characters).")


def test_a_large_text_is_refused_by_the_parser_too():
    msg = refusal("#" * (MAX_FILE_BYTES + 1))
    assert msg == (
        f"F: <top>: file too large; expected a space file of at most {MAX_FILE_BYTES:,} bytes, "
        f"received {MAX_FILE_BYTES + 1:,} characters."
    )


def test_many_problems_are_counted_not_all_listed(write_yaml):
    path = write_yaml("".join(f"key{i}: 1\n" for i in range(500)))
    with pytest.raises(SpaceError) as info:
        Space.from_file(path)
    assert len(info.value.problems) == 500
    message = str(info.value)
    assert len(message.splitlines()) == MAX_PROBLEMS + 1
    assert message.endswith(f"... and {500 - MAX_PROBLEMS} more problem(s)")


def test_excerpt_and_problem_rendering():
    assert excerpt("short") == "short"
    assert excerpt("z" * 1000) == "z" * MAX_RECEIVED + "… (1,000 characters)"
    problem = Problem("k" * 1000, "bad " + "w" * 1000, expected="a number", received="'" + "v" * 10**6 + "'")
    text = str(problem)
    assert len(text) < 600
    assert text.endswith(f"received '{'v' * (MAX_RECEIVED - 1)}… (1,000,002 characters).")
    assert problem.received is not None and len(problem.received) == 10**6 + 2  # the field itself is kept
