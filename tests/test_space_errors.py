"""Every error message of the space language, pinned (STYLE.md: Keras conv_test habit)."""

from __future__ import annotations

import pytest

from search import Space, SpaceError
from search.space._yaml import parse_yaml


def problems(write_yaml, text: str) -> list[str]:
    path = write_yaml(text)
    with pytest.raises(SpaceError) as info:
        Space.from_file(path)
    return [str(p).replace(str(path), "F") for p in info.value.problems]


def test_typo_key_names_file_line_path_and_suggests(write_yaml):
    msgs = problems(write_yaml, "name: x\nblocks:\n  depth: 2\n  filtres: [16, 32]\n")
    assert msgs == [
        "F:4: blocks.filtres: unknown key 'filtres'; expected one of depth, convs_per_block, filters, "
        "filters_growth, kernel_size, strides, padding, activation, conv_type, batch_norm, residual, dropout, "
        "pooling, pool_size, pool_strides, shared, received 'filtres'. Did you mean 'filters'?"
    ]


def test_unknown_activation_suggests_near_miss(write_yaml):
    [msg] = problems(write_yaml, "blocks:\n  activation: [relu, rleu]\n")
    assert msg.startswith("F:2: blocks.activation.1: unknown activation 'rleu'; expected one of relu, relu6,")
    assert msg.endswith("received the string 'rleu'. Did you mean 'relu'?")


def test_quoted_number_is_refused_with_hint(write_yaml):
    [msg] = problems(write_yaml, "training:\n  learning_rate: '1e-3'\n")
    assert msg == (
        "F:2: training.learning_rate: wrong type; expected a number > 0, received the string '1e-3'. "
        "Write the number without quotes (1e-3 and 0.001 are both read as numbers)."
    )


def test_unquoted_exponent_is_a_number():
    data, _ = parse_yaml("a: 1e-3\nb: 5E+2\nc: 2.5e-4\nd: 1_000\ne: '1e-3'\n")
    assert data == {"a": 0.001, "b": 500.0, "c": 0.00025, "d": 1000, "e": "1e-3"}
    space = Space.from_dict({"training": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}})
    assert space.training["learning_rate"].to_raw() == {"low": 1e-4, "high": 1e-2, "log": True}


def test_duplicate_key_refused(write_yaml):
    [msg] = problems(write_yaml, "blocks:\n  filters: 8\n  filters: 16\n")
    assert (
        msg
        == "F:3: blocks.filters: duplicate key; expected each key once, received a second 'filters' (first on line 2)."
    )


def test_min_greater_than_max(write_yaml):
    [msg] = problems(write_yaml, "blocks:\n  depth: {low: 4, high: 2}\n")
    assert msg == "F:2: blocks.depth: low is greater than high; expected low <= high, received low=4, high=2."


def test_empty_file(write_yaml):
    [msg] = problems(write_yaml, "# nothing here\n")
    assert (
        msg
        == "F: <top>: empty space; expected a mapping with keys name, description, goals, input, blocks, head, training, budget, start, received nothing."
    )


def test_top_level_not_a_mapping(write_yaml):
    [msg] = problems(write_yaml, "- relu\n- elu\n")
    assert msg.startswith("F:1: <top>: wrong type; expected a mapping with keys name,")
    assert msg.endswith("received ['relu', 'elu'].")


def test_empty_choices(write_yaml):
    [msg] = problems(write_yaml, "blocks:\n  filters: []\n")
    assert msg == "F:2: blocks.filters: empty list of choices; expected at least one of an integer >= 1, received []."


def test_kernel_size_below_one(write_yaml):
    [msg] = problems(write_yaml, "blocks:\n  kernel_size: [3, 0]\n")
    assert msg == "F:2: blocks.kernel_size.1: out of range; expected an integer >= 1, received 0."


def test_wrong_types(write_yaml):
    msgs = problems(
        write_yaml,
        "blocks:\n  filters: 2.5\n  batch_norm: 'yes'\n  padding: 3\nhead:\n  units: '64'\n",
    )
    assert msgs == [
        "F:2: blocks.filters: wrong type; expected an integer >= 1, received 2.5 (a float).",
        "F:3: blocks.batch_norm: wrong type; expected true or false, received the string 'yes'.",
        "F:4: blocks.padding: wrong type; expected one of same, valid, received 3.",
        "F:6: head.units: wrong type; expected an integer >= 1, received the string '64'. "
        "Write the number without quotes (1e-3 and 0.001 are both read as numbers).",
    ]


def test_every_problem_reported_at_once(write_yaml):
    msgs = problems(write_yaml, "blocks:\n  depth: 0\nhead:\n  dropout: 1.0\ntraning: {}\n")
    assert [m.split(":")[1] for m in msgs] == ["2", "4", "5"]
    assert "Did you mean 'training'?" in msgs[2]
    assert "head.dropout: out of range; expected a number >= 0 and < 1, received 1.0 (a float)." in msgs[1]


def test_python_tag_refused_and_nothing_runs(write_yaml, tmp_path):
    marker = tmp_path / "pwned"
    text = f"name: !!python/object/apply:os.system ['touch {marker}']\n"
    [msg] = problems(write_yaml, text)
    assert msg == (
        "F:1: name: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed; expected plain "
        "YAML data (mappings, lists, numbers, strings, booleans, null), received "
        "tag:yaml.org,2002:python/object/apply:os.system."
    )
    assert not marker.exists()


def test_invalid_yaml_syntax(write_yaml):
    [msg] = problems(write_yaml, "blocks:\n  filters: [16, 32\n")
    assert msg.startswith(
        "F:2: <top>: not valid YAML: the '[' opened on line 2, column 12 is never closed; add the ']'. (PyYAML: "
    )


def test_range_only_for_numbers(write_yaml):
    [msg] = problems(write_yaml, "blocks:\n  activation: {low: relu, high: elu}\n")
    assert msg == (
        "F:2: blocks.activation: a range is only for numbers; expected one of "
        + ", ".join(__import__("search._vocab", fromlist=["x"]).ACTIVATIONS)
        + ", or a list of them, received {'low': 'relu', 'high': 'elu'}."
    )


def test_range_key_typo_and_step(write_yaml):
    msgs = problems(write_yaml, "blocks:\n  filters: {low: 8, hihg: 64}\n  depth: {low: 1, high: 4, step: 2}\n")
    assert msgs[0] == (
        "F:2: blocks.filters.hihg: unknown key 'hihg'; expected one of low, high, step, log, received 'hihg'. "
        "Did you mean 'high'?"
    )
    assert (
        msgs[1]
        == "F:2: blocks.filters.high: missing key; expected {low: ..., high: ...} with an integer >= 1, received no high."
    )
    assert msgs[2] == (
        "F:3: blocks.depth: high - low is not a multiple of step; expected high in 1 + k*2, received low=1, high=4, step=2."
    )


def test_log_range_needs_positive_low(write_yaml):
    [msg] = problems(write_yaml, "training:\n  weight_decay: {low: 0.0, high: 0.1, log: true}\n")
    assert msg == "F:2: training.weight_decay.low: a log range needs low > 0; expected low > 0, received low=0.0."


def test_repeated_choices(write_yaml):
    [msg] = problems(write_yaml, "blocks:\n  filters: [16, 16]\n")
    assert msg == "F:2: blocks.filters: repeated choices; expected distinct values, received [16, 16]."


def test_fixed_key_refuses_choices(write_yaml):
    [msg] = problems(write_yaml, "blocks:\n  filters_growth: [1, 2]\n")
    assert msg == (
        "F:2: blocks.filters_growth: this key is not searched; expected a single value: a number >= 1 or null, "
        "received [1, 2]."
    )


def test_shared_names_checked(write_yaml):
    [msg] = problems(write_yaml, "blocks:\n  shared: [activaton]\n")
    assert msg.startswith("F:2: blocks.shared.0: unknown block key 'activaton'; expected one of convs_per_block,")
    assert msg.endswith("Did you mean 'activation'?")


def test_image_size_and_budget(write_yaml):
    msgs = problems(write_yaml, "input:\n  image_size: [32]\nbudget:\n  max_params: -5\n")
    assert msgs == [
        "F:2: input.image_size: wrong value; expected an integer >= 1 or [height, width], received [32].",
        "F:4: budget.max_params: out of range; expected a whole number >= 1 or null, received -5.",
    ]
    ok = Space.from_dict({"input": {"image_size": 16}, "budget": {"max_flops": 1e8}})
    assert ok.sections["input"]["image_size"].to_raw() == [16, 16]
    assert ok.budget["max_flops"] == 100_000_000


def test_section_not_a_mapping(write_yaml):
    [msg] = problems(write_yaml, "head: flatten\n")
    assert msg.startswith("F:1: head: wrong type; expected a mapping of pooling, dense_layers,")


def test_python_api_validates_the_same_way():
    with pytest.raises(SpaceError) as info:
        Space(name="p", blocks={"filtres": [8]})
    assert str(info.value) == (
        "blocks.filtres: unknown key 'filtres'; expected one of depth, convs_per_block, filters, filters_growth, "
        "kernel_size, strides, padding, activation, conv_type, batch_norm, residual, dropout, pooling, pool_size, "
        "pool_strides, shared, received 'filtres'. Did you mean 'filters'?"
    )


def test_unreadable_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpaceError, match=r"latin1.yaml: <top>: cannot read the file: 'utf-8' codec"):
        Space.from_file(path)


def test_unknown_space_name_suggests():
    from search import load_space

    with pytest.raises(SpaceError) as info:
        load_space("vgj")
    assert str(info.value) == (
        "<top>: unknown space 'vgj'; expected a YAML file or one of alexnet, lenet, mobilenet, resnet, tiny, vgg, "
        "received vgj. Did you mean 'vgg'?"
    )


def test_bad_start_points_are_refused_with_file_line_and_key(write_yaml):
    msgs = problems(
        write_yaml,
        "blocks:\n  depth: {low: 1, high: 3}\n  filters: [16, 32]\n"
        "start:\n"
        "  - blocks/depth: 2\n    block_0/filters: 32\n"  # fine
        "  - blocks/depth: 1\n    block_1/filters: 16\n"  # block 1 does not exist at depth 1
        "  - blocks/depht: 1\n"  # typo
        "  - block_0/filters: 48\n"  # outside the space
        "  - 3\n",
    )
    assert msgs == [
        "F:8: start.1.block_1/filters: not used by this point; expected one of the names its values use: "
        "block_0/filters, blocks/depth, received 'block_1/filters'.",
        "F:9: start.2.blocks/depht: unknown parameter; expected one of block_0/filters, block_1/filters, "
        "block_2/filters, blocks/depth, received 'blocks/depht'. Did you mean 'blocks/depth'?",
        "F:10: start.3.block_0/filters: value outside the space; expected one of [16, 32], received 48.",
        "F:11: start.4: wrong type; expected a mapping from parameter names to values, received 3.",
    ]


def test_start_points_keep_the_spaces_own_values_and_not_its_fingerprint(write_yaml):
    from search import Space

    with_start = Space.from_file(write_yaml("blocks:\n  depth: [1, 2]\nstart:\n  - blocks/depth: '2'\n"))
    without = Space.from_file(write_yaml("blocks:\n  depth: [1, 2]\n", name="plain.yaml"))
    assert with_start.start == ({"blocks/depth": 2},)  # MLflow-style strings become the space's values
    assert with_start.fingerprint() == without.fingerprint()  # what is tried first is not what is searched
    assert Space.from_dict(with_start.to_dict()).start == with_start.start
