"""Assertions on a task's output: a task's success criteria and an evaluation case's expectations. Each names a
place in the output (a dot path; empty: the whole output), an operator and, for most operators, a value::

    {"path": "summary", "op": "contains", "value": "revenue"}
    {"path": "items", "op": "length_gte", "value": 3}
    {"path": "total", "op": "equals", "value": 10}

`check` says whether one holds and, when it does not, why, in words a person reading a score understands."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Operator = Literal[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "matches",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
    "absent",
    "length_gte",
    "length_lte",
    "type_is",
    "one_of",
]
NO_VALUE = frozenset({"exists", "absent"})
NUMERIC = frozenset({"gt", "gte", "lt", "lte"})
JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
_MISSING = object()


class Assertion(BaseModel):
    """One thing the output must satisfy."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str = Field(default="", max_length=500, description="A dot path into the output (list items by index)")
    op: Operator
    value: Any = None
    description: str = Field(default="", max_length=500, description="What it checks, in words (shown with scores)")

    @model_validator(mode="after")
    def _value_fits(self) -> Assertion:
        if self.path and any(part == "" for part in self.path.split(".")):
            raise ValueError(f"the path {self.path!r} is malformed")
        if self.op in NO_VALUE:
            if self.value is not None:
                raise ValueError(f"{self.op} takes no value")
            return self
        if self.op in NUMERIC and (isinstance(self.value, bool) or not isinstance(self.value, int | float)):
            raise ValueError(f"{self.op} compares with a number")
        if self.op in ("length_gte", "length_lte") and (
            isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 0
        ):
            raise ValueError(f"{self.op} takes a length (an integer >= 0)")
        if self.op == "matches":
            if not isinstance(self.value, str):
                raise ValueError("matches takes a regular expression")
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"the regular expression does not compile: {exc}") from exc
        if self.op == "type_is" and (self.value not in (*JSON_TYPES, "number", "integer")):
            raise ValueError(f"type_is takes one of {', '.join([*JSON_TYPES, 'number', 'integer'])}")
        if self.op == "one_of" and not isinstance(self.value, list):
            raise ValueError("one_of takes a list of values")
        return self


def at(output: Any, path: str) -> Any:
    """The part of `output` at a dot path, or a marker that nothing is there."""
    found = output
    for part in filter(None, path.split(".")):
        if isinstance(found, list) and part.isdigit() and int(part) < len(found):
            found = found[int(part)]
        elif isinstance(found, dict) and part in found:
            found = found[part]
        else:
            return _MISSING
    return found


def check(assertion: Assertion, output: Any) -> str | None:
    """None when the assertion holds for the output, else why not."""
    where = assertion.path or "the output"
    found = at(output, assertion.path)
    op, value = assertion.op, assertion.value
    if op == "absent":
        return None if found is _MISSING else f"{where} is present"
    if found is _MISSING:
        return f"{where} is missing"
    if op == "exists":
        return None
    shown = _short(found)
    if op == "equals":
        return None if _same(found, value) else f"{where} is {shown}, not {_short(value)}"
    if op == "not_equals":
        return None if not _same(found, value) else f"{where} is {shown}"
    if op in ("contains", "not_contains"):
        holds = _contains(found, value)
        if holds is None:
            return f"{where} is {type(found).__name__}, which cannot contain anything"
        if op == "contains":
            return None if holds else f"{where} ({shown}) does not contain {_short(value)}"
        return None if not holds else f"{where} ({shown}) contains {_short(value)}"
    if op == "matches":
        if not isinstance(found, str):
            return f"{where} is not text"
        return None if re.search(str(value), found) else f"{where} ({shown}) does not match {value!r}"
    if op in NUMERIC:
        if isinstance(found, bool) or not isinstance(found, int | float):
            return f"{where} is not a number ({shown})"
        holds = {"gt": found > value, "gte": found >= value, "lt": found < value, "lte": found <= value}[op]
        words = {"gt": "above", "gte": "at least", "lt": "below", "lte": "at most"}[op]
        return None if holds else f"{where} is {found}, not {words} {value}"
    if op in ("length_gte", "length_lte"):
        if not isinstance(found, str | list | dict):
            return f"{where} has no length ({shown})"
        holds = len(found) >= value if op == "length_gte" else len(found) <= value
        words = "at least" if op == "length_gte" else "at most"
        return None if holds else f"{where} has length {len(found)}, not {words} {value}"
    if op == "type_is":
        return None if _is_type(found, str(value)) else f"{where} is not a {value} ({shown})"
    # one_of
    return None if any(_same(found, v) for v in value) else f"{where} is {shown}, not one of {_short(value)}"


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _contains(found: Any, value: Any) -> bool | None:
    if isinstance(found, str):
        return isinstance(value, str) and value.casefold() in found.casefold()
    if isinstance(found, list):
        return any(_same(item, value) for item in found)
    if isinstance(found, dict):
        return isinstance(value, str) and value in found
    return None


def _is_type(found: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(found, int) and not isinstance(found, bool)
    if name == "number":
        return isinstance(found, int | float) and not isinstance(found, bool)
    return isinstance(found, JSON_TYPES[name]) and not (name != "boolean" and isinstance(found, bool))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
