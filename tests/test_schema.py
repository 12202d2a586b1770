"""The JSON Schema for editors: generated from the rule table, committed, and agreeing with it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from search.space import json_schema
from search.space._yaml import read_yaml

SPACES = Path(__file__).resolve().parents[1] / "spaces"


def test_committed_schema_is_the_generated_one():
    committed = json.loads((SPACES / "schema.json").read_text())
    assert committed == json_schema(), "run: cnn-search spaces schema > spaces/schema.json"


@pytest.mark.parametrize("path", sorted(SPACES.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_spaces_satisfy_the_schema(path):
    data, _ = read_yaml(path)
    jsonschema.validate(data, json_schema())


def test_schema_rejects_what_the_loader_rejects():
    schema = json_schema()
    for bad in (
        {"blocks": {"filtres": 8}},
        {"blocks": {"activation": "rleu"}},
        {"training": {"epochs": 0}},
        {"blocks": {"kernel_size": {"low": 1, "hihg": 3}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
