"""JSON Schema (2020-12) checks every layer shares: is a schema valid (422 when a caller sent a broken one), and
the first way a value fails one, as one readable line. Validators are compiled once per schema and cached."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from strata.errors import InvalidInputError


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_json))


def check_schema(schema: dict[str, Any], what: str) -> None:
    """422 for a schema that is not a valid JSON Schema (2020-12)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidInputError(f"{what} is not a valid JSON Schema: {exc.message}") from exc


def first_error(schema: dict[str, Any], value: Any, unknown: Callable[[Any], bool] | None = None) -> str | None:
    """Where and why `value` fails `schema` (e.g. "at items/0: 'x' is not of type 'integer'"); None if it passes.
    `unknown`: parts of `value` not known yet (e.g. a plan's references to earlier outputs); errors at or inside
    such a part do not count."""
    for error in _validator(json.dumps(schema, sort_keys=True)).iter_errors(value):
        if unknown is not None and _inside_unknown(value, list(error.absolute_path), unknown):
            continue
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return f"at {where}: {error.message}"
    return None


def _inside_unknown(value: Any, path: list[Any], unknown: Callable[[Any], bool]) -> bool:
    node = value
    for part in [None, *path]:
        if part is not None:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return False
        if unknown(node):
            return True
    return False
