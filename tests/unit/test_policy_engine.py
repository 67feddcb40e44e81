"""The Cedar policy engine without a database: statements and annotations checked on upload, what a policy set
reads of the context (the decision cache's key), and verdicts (deny wins, approvals, deciding statements)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from strata.errors import InvalidInputError
from strata_supervision import engine
from strata_supervision.schema import uid

TENANT = str(uuid.uuid4())


def _request(tool: str, principal: str = "key:a", **context: Any) -> dict[str, Any]:
    return {
        "principal": uid("Principal", principal),
        "action": uid("Action", "tool.invoke"),
        "resource": uid("Tool", tool),
        "context": {"run_id": "", "task_id": "", "arguments": "", **context},
    }


def _entities(tool: str, requires_approval: bool = False, principal: str = "key:a") -> list[dict[str, Any]]:
    tenant = uid("Tenant", TENANT)
    return [
        {"uid": tenant, "attrs": {}, "parents": []},
        {"uid": uid("Principal", principal), "attrs": {"kind": principal.split(":")[0]}, "parents": [tenant]},
        {"uid": uid("Tool", tool), "attrs": {"source": "builtin", "side_effects": False,
                                             "requires_approval": requires_approval}, "parents": [tenant]},
    ]  # fmt: skip


def _set(*cedar: str) -> engine.CompiledSet:
    policies = [
        {
            "policy_id": f"p{n}",
            "name": f"p{n}",
            "version": 1,
            "cedar": text,
            "statements": engine.parse_statements(text),
        }
        for n, text in enumerate(cedar)
    ]
    return engine.compile_set(1, policies)


def test_annotations_are_read_and_checked() -> None:
    (statement,) = engine.parse_statements(
        '@approval("risky") @approvers("key:a,key:b") @quorum("2") @timeout("15m") @escalate("key:c;key:d,key:e") '
        'permit (principal, action == Strata::Action::"tool.invoke", resource);'
    )
    parsed = engine.Statement("tenant", "p", "p", 1, 0, statement["effect"], statement["annotations"])
    assert [level.view() for level in parsed.approval_levels()] == [
        {"approvers": ["key:a", "key:b"], "quorum": 2, "timeout_s": 900},
        {"approvers": ["key:c"], "quorum": 1, "timeout_s": 900},
        {"approvers": ["key:d", "key:e"], "quorum": 1, "timeout_s": 900},
    ]
    for bad in (
        '@approval("x") @quorum("3") @approvers("key:a,key:b") permit (principal, action, resource);',
        '@approval("x") @timeout("soon") permit (principal, action, resource);',
        '@quorum("2") permit (principal, action, resource);',
        '@approvers("*,key:a") @approval("x") permit (principal, action, resource);',
        "",
    ):
        with pytest.raises(InvalidInputError):
            engine.parse_statements(bad)


def test_what_a_policy_set_reads_of_the_context_keys_the_cache() -> None:
    assert _set().reads_context == ["require_approval"]  # the platform's own policies
    by_argument = _set(
        'forbid (principal, action == Strata::Action::"tool.invoke", resource) when { context.arguments like "*x*" };'
    )
    assert by_argument.reads_context == ["arguments", "require_approval"]
    whole = _set(
        'forbid (principal, action == Strata::Action::"tool.invoke", resource) '
        'when { context == {"run_id": "", "task_id": "", "arguments": ""} };'
    )
    assert whole.reads_context is None  # the whole context matters


def test_deny_wins_and_names_its_statement() -> None:
    compiled = _set(
        'permit (principal, action == Strata::Action::"tool.invoke", resource == Strata::Tool::"python");',
        '@reason("no code") forbid (principal, action == Strata::Action::"tool.invoke", '
        'resource == Strata::Tool::"python");',
    )
    (denied,) = engine.evaluate(compiled, [_request("python")], _entities("python"))
    assert (denied.outcome, denied.reasons) == ("deny", ["no code"])
    assert [(s.name, s.effect) for s in denied.statements] == [("p1", "forbid")]
    (allowed,) = engine.evaluate(compiled, [_request("text")], _entities("text"))
    assert allowed.outcome == "allow"


def test_an_approval_permit_asks_a_human_unless_a_forbid_decides() -> None:
    compiled = _set()
    (asked,) = engine.evaluate(compiled, [_request("text")], _entities("text", requires_approval=True))
    assert asked.outcome == "approval_required"
    assert asked.approval is not None
    assert asked.approval.name == "platform.tool-approval"
    forbidden = _set('forbid (principal, action == Strata::Action::"tool.invoke", resource);')
    (denied,) = engine.evaluate(forbidden, [_request("text")], _entities("text", requires_approval=True))
    assert denied.outcome == "deny"


def test_a_request_that_does_not_fit_the_schema_is_an_error() -> None:
    with pytest.raises(ValueError, match="context"):
        engine.evaluate(_set(), [{**_request("text"), "context": {"bogus": 1}}], _entities("text"))
