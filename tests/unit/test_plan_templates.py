"""Plan templates: a goal's text matched to the most specific template, typed parameters, filled plans,
templates refused with reasons when they could never produce a runnable plan, and only the platform's own layers
saying a template was learned."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from strata.auth import Principal
from strata.errors import ForbiddenError, InvalidInputError
from strata_planning.routes.templates import PlanTemplateCreate, authorship
from strata_planning.templates import best_match, check, fill

SUMMARY: dict[str, Any] = {
    "name": "summarise",
    "patterns": ["summarise {url}", "summarise {url} in {words} words"],
    "parameters": {
        "type": "object",
        "properties": {
            "url": {"type": "string", "pattern": "^https?://"},
            "words": {"type": "integer", "maximum": 500},
        },
        "required": ["url"],
    },
    "body": {
        "tasks": [
            {
                "task_id": "fetch",
                "title": "Fetch {{url}}",
                "kind": "tool",
                "tool": "http_request",
                "input": {"url": "{{url}}"},
            },
            {
                "task_id": "sum",
                "title": "Summarise",
                "kind": "agent",
                "instructions": "Summarise in {{words}} words",
                "input": {"page": {"$from": "fetch", "path": "body"}, "limit": "{{words}}"},
                "depends_on": ["fetch"],
            },
        ]
    },
}
GENERIC: dict[str, Any] = {
    "name": "generic",
    "patterns": ["{anything}"],
    "parameters": {"type": "object", "properties": {"anything": {"type": "string"}}},
    "body": {"tasks": [{"task_id": "do", "title": "{{anything}}", "kind": "agent"}]},
}


def test_the_most_specific_template_wins_and_parameters_are_typed() -> None:
    match = best_match("Summarise  https://example.com/a in 120 words.", [GENERIC, SUMMARY])
    assert match is not None
    assert match.template["name"] == "summarise"
    assert match.parameters == {"url": "https://example.com/a", "words": 120}
    plan = fill(SUMMARY["body"], match.parameters)
    assert plan["tasks"][0]["input"] == {"url": "https://example.com/a"}
    assert plan["tasks"][1]["input"]["limit"] == 120  # a whole-string slot keeps the value's type
    assert plan["tasks"][1]["instructions"] == "Summarise in 120 words"


def test_a_goal_whose_values_fail_the_schema_matches_something_else_or_nothing() -> None:
    assert best_match("summarise ftp://x in 5 words", [SUMMARY]) is None
    fallback = best_match("summarise ftp://x in 5 words", [SUMMARY, GENERIC])
    assert fallback is not None
    assert fallback.template["name"] == "generic"
    assert best_match("write a poem", [SUMMARY]) is None


def test_templates_that_could_never_run_are_refused_with_reasons() -> None:
    check(SUMMARY)
    undeclared = {**SUMMARY, "patterns": ["summarise {page}"]}
    with pytest.raises(InvalidInputError, match="page"):
        check(undeclared)
    cyclic = {
        **GENERIC,
        "body": {
            "tasks": [
                {"task_id": "a", "title": "a", "kind": "agent", "depends_on": ["b"]},
                {"task_id": "b", "title": "b", "kind": "agent", "depends_on": ["a"]},
            ]
        },
    }
    with pytest.raises(InvalidInputError, match="cycle"):
        check(cyclic)
    slot = {**GENERIC, "body": {"tasks": [{"task_id": "a", "title": "{{missing}}", "kind": "agent"}]}}
    with pytest.raises(InvalidInputError, match="missing"):
        check(slot)
    with pytest.raises(InvalidInputError):
        check({**GENERIC, "parameters": {"type": "string"}})


def _principal(kind: str) -> Principal:
    return Principal(uuid4(), f"{kind}:someone", kind, frozenset({"goals:write"}))


def test_only_the_platforms_layers_say_a_template_was_learned_and_where_from() -> None:
    lineage = {"run_id": str(uuid4()), "goal_id": str(uuid4()), "plan_id": str(uuid4()), "score": 0.92}
    learned = PlanTemplateCreate.model_validate(
        {**GENERIC, "origin": "learned", "lineage": lineage, "status": "proposed"}
    )
    authorship(_principal("service"), learned)
    for kind in ("api_key", "jwt"):
        with pytest.raises(ForbiddenError):
            authorship(_principal(kind), learned)
        with pytest.raises(ForbiddenError):
            authorship(_principal(kind), PlanTemplateCreate.model_validate({**GENERIC, "origin": "authored"}))
        authorship(_principal(kind), PlanTemplateCreate.model_validate({**GENERIC, "status": "proposed"}))
    with pytest.raises(InvalidInputError, match="lineage"):
        authorship(_principal("service"), PlanTemplateCreate.model_validate({**GENERIC, "lineage": lineage}))
    with pytest.raises(ValueError, match="score"):
        PlanTemplateCreate.model_validate({**GENERIC, "origin": "learned", "lineage": {**lineage, "score": 3}})
