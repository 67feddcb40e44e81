"""The shared JSON Schema checks: one readable error, and parts of a value not known yet left out."""

from __future__ import annotations

from typing import Any

import pytest

from strata.errors import InvalidInputError
from strata.jsonschemas import check_schema, first_error

SCHEMA = {
    "type": "object",
    "properties": {"data": {"type": "array"}, "query": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["data", "query"],
    "additionalProperties": False,
}


def later(value: Any) -> bool:
    return isinstance(value, dict) and "$from" in value


def test_the_first_error_says_where_and_why() -> None:
    assert first_error(SCHEMA, {"data": [], "query": "a"}) is None
    assert first_error(SCHEMA, {"data": [], "query": 3}) == "at query: 3 is not of type 'string'"
    assert first_error(SCHEMA, {"data": []}) == "at (root): 'query' is a required property"


def test_parts_not_known_yet_are_left_out_but_the_rest_is_checked() -> None:
    reference = {"$from": "fetch", "path": "result"}
    assert first_error(SCHEMA, {"data": reference, "query": "a"}, unknown=later) is None
    assert first_error(SCHEMA, {"data": reference}, unknown=later) == "at (root): 'query' is a required property"
    assert (
        first_error(SCHEMA, {"data": reference, "query": "a", "n": "x"}, unknown=later)
        == "at n: 'x' is not of type 'integer'"
    )
    assert (
        first_error(SCHEMA, {"data": reference, "query": "a"}) is not None
    )  # without `unknown`, a reference is just an object


def test_a_broken_schema_is_a_422() -> None:
    with pytest.raises(InvalidInputError, match="not a valid JSON Schema"):
        check_schema({"type": "no-such-type"}, "the schema")
