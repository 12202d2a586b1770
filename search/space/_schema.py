"""The JSON Schema of the space format, generated from the rule table (``_rules.py``).

Point an editor at it (``# yaml-language-server: $schema=...``) for completion and checks while
typing; ``cnn-search spaces schema`` prints it, and ``spaces/schema.json`` is kept equal to it by a test.
"""

from __future__ import annotations

from typing import Any

from search.space._rules import GOALS_DOC, PER_BLOCK_KEYS, SECTIONS, START_DOC, TOP_RULES, Rule

_JSON_TYPES = {
    "int": "integer",
    "float": "number",
    "count": "number",
    "str": "string",
    "bool": "boolean",
    "text": "string",
}


def _value_schema(rule: Rule) -> dict[str, Any]:
    if rule.kind == "size":
        square: dict[str, Any] = {"type": "integer", "minimum": 1}
        return {"oneOf": [square, {"type": "array", "items": square, "minItems": 2, "maxItems": 2}]}
    if rule.kind == "augment":
        from search.data._augment import _RANGES, FLIP_MODES

        props: dict[str, Any] = {"flip": {"enum": [*FLIP_MODES, "none", False, None]}}
        props.update({k: {"type": "number", "minimum": 0, "maximum": v} for k, v in _RANGES.items()})
        return {"type": "object", "properties": props, "additionalProperties": False}
    if rule.kind == "names":
        return {"type": "array", "items": {"enum": list(PER_BLOCK_KEYS)}, "uniqueItems": True}
    schema: dict[str, Any] = {"type": _JSON_TYPES[rule.kind]}
    if rule.choices is not None:
        schema["enum"] = list(rule.choices)
    if rule.minimum is not None:
        schema["exclusiveMinimum" if rule.exclusive_minimum else "minimum"] = rule.minimum
    if rule.maximum is not None:
        schema["exclusiveMaximum" if rule.exclusive_maximum else "maximum"] = rule.maximum
    return schema


def _key_schema(rule: Rule) -> dict[str, Any]:
    value = _value_schema(rule)
    options = [value]
    if rule.searchable:
        options.append({"type": "array", "items": value, "minItems": 1, "description": "choose one of"})
        if rule.kind in ("int", "float"):
            rng: dict[str, Any] = {
                "type": "object",
                "properties": {"low": value, "high": value, "log": {"type": "boolean"}},
                "required": ["low", "high"],
                "additionalProperties": False,
            }
            if rule.kind == "int":
                rng["properties"]["step"] = {"type": "integer", "minimum": 1}
            options.append(rng)
    if rule.nullable:
        options.append({"type": "null"})
    schema: dict[str, Any] = {"description": rule.help}
    if rule.default is not None:
        schema["default"] = rule.default
    if len(options) == 1:
        schema.update(options[0])
    else:
        schema["anyOf"] = options
    return schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a space file."""
    properties: dict[str, Any] = {key: _key_schema(rule) for key, rule in TOP_RULES.items()}
    properties["goals"] = {
        "description": GOALS_DOC,
        "anyOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1}, {"type": "string"}],
    }
    for section, rules in SECTIONS.items():
        properties[section] = {
            "type": "object",
            "properties": {key: _key_schema(rule) for key, rule in rules.items()},
            "additionalProperties": False,
        }
    value = {"type": ["integer", "number", "string", "boolean"]}
    point = {"type": "object", "additionalProperties": value, "minProperties": 1}
    properties["start"] = {"description": START_DOC, "type": "array", "items": point}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cnn-search space",
        "description": "A search space of convolutional networks for cnn-search.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
