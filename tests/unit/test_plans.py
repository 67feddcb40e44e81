"""The plan contract: structural problems found with reasons, references resolved from earlier outputs, and
signatures that break when anything in the plan changes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from strata.plans import PlanBody, problems, resolve_input, roots, sign, verify


def plan(*tasks: dict[str, Any]) -> PlanBody:
    return PlanBody.model_validate({"tasks": list(tasks)})


def tool(task_id: str, depends_on: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "title": task_id,
        "kind": "tool",
        "tool": "text",
        "depends_on": depends_on or [],
        **extra,
    }


def test_a_valid_dag_has_no_problems_and_its_roots_start_first() -> None:
    body = plan(tool("a"), tool("b"), tool("c", ["a", "b"], input={"x": {"$from": "a", "path": "result"}}))
    assert problems(body) == []
    assert roots(body) == ["a", "b"]


def test_structural_problems_are_named() -> None:
    body = plan(
        tool("a", ["c"]),
        tool("b", ["a", "ghost"]),
        tool("c", ["b"]),
        tool("d", [], input={"x": {"$from": "a"}}),
        tool("d"),
        tool("e", ["e"]),
    )
    found = problems(body)
    assert "task id 'd' is used twice" in found
    assert "task b depends on 'ghost', which the plan does not have" in found
    assert "task d takes input from a but does not depend on it" in found
    assert "task e depends on itself" in found
    assert any(p.startswith("the tasks form a cycle: ") and "a" in p and "c" in p for p in found)


def test_a_malformed_reference_path_is_a_problem() -> None:
    body = plan(tool("a"), tool("b", ["a"], input={"x": {"$from": "a", "path": "result..x"}}))
    assert problems(body) == ["task b: the path 'result..x' into a's output is malformed"]


def test_a_long_chain_is_checked_without_recursion() -> None:
    body = plan(*[tool(f"t{i}", [f"t{i - 1}"] if i else []) for i in range(1000)])
    assert problems(body) == []


def test_assignments_must_fit_the_kind() -> None:
    with pytest.raises(ValidationError):
        plan({"task_id": "a", "title": "a", "kind": "tool"})
    with pytest.raises(ValidationError):
        plan({"task_id": "a", "title": "a", "kind": "agent", "tool": "text"})
    with pytest.raises(ValidationError):
        plan({"task_id": "bad id!", "title": "a", "kind": "agent"})


def test_inputs_take_values_from_earlier_outputs() -> None:
    outputs = {"a": {"result": {"items": [{"n": 1}, {"n": 2}]}}, "b": {"result": "text"}}
    value = {"first": {"$from": "a", "path": "result.items.1.n"}, "all": [{"$from": "b"}], "fixed": 3}
    assert resolve_input(value, outputs) == {"first": 2, "all": [{"result": "text"}], "fixed": 3}
    with pytest.raises(KeyError):
        resolve_input({"$from": "a", "path": "result.missing"}, outputs)
    with pytest.raises(KeyError):
        resolve_input({"$from": "a", "path": "result.items.5"}, outputs)


def test_a_signature_covers_every_byte_of_the_plan() -> None:
    document = plan(tool("a"), tool("b", ["a"])).model_dump(mode="json")
    key = b"k" * 32
    signature = sign(document, key)
    assert verify(document, signature, key)
    assert verify(dict(reversed(list(document.items()))), signature, key)  # key order does not matter
    tampered = {**document, "tasks": [*document["tasks"][:1], {**document["tasks"][1], "tool": "python"}]}
    assert not verify(tampered, signature, key)
    assert not verify(document, signature, b"other-key" * 4)
