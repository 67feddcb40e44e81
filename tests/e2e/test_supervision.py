"""L08 supervision through the local cloud: Cedar policies (matrix, validation, versions, rollback, dry run), the plan
gate with human approvals (a second principal, a quorum of two, a deadline that escalates then expires), tool calls
denied or waiting for approval, fail-closed when supervision is unreachable, the kill switch, and the audit chain
with tampering detected."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import Platform, Providers
from tests.e2e.test_goals import GPT
from tests.e2e.test_platform import assert_problem
from tests.e2e.test_runs import finished_goal, finished_run, outcome, run_template, tasks_by_id, tenant
from tests.support.provider_servers import FakeToolCall, Reply

pytestmark = pytest.mark.e2e

JSON_QUERY = {"task_id": "q", "title": "Query", "kind": "tool", "tool": "json_query",
              "input": {"data": {"n": 7}, "query": "n"}}  # fmt: skip


async def _key(platform: Platform, admin: dict[str, str], *scopes: str) -> tuple[dict[str, str], str]:
    """A second credential of the tenant: its headers and its principal id."""
    made = await platform.api.post("/v1/api-keys", json={"name": "k", "scopes": list(scopes)}, headers=admin)
    assert made.status_code == 201, made.text
    return platform.auth(made.json()["api_key"]), f"key:{made.json()['key_id']}"


async def _policy(platform: Platform, headers: dict[str, str], cedar: str, name: str | None = None) -> dict[str, Any]:
    made = await platform.api.post(
        "/v1/policies", json={"name": name or f"p-{uuid.uuid4().hex[:8]}", "cedar": cedar}, headers=headers
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def _tool_request(principal: dict[str, str], tool: str = "json_query", **attributes: Any) -> dict[str, Any]:
    return {
        "action": "tool.invoke",
        "principal": principal,
        "resource": {"type": "Tool", "id": tool},
        "resource_attributes": attributes,
        "context": {"arguments": "{}"},
    }


async def _decide(platform: Platform, headers: dict[str, str], request: dict[str, Any]) -> dict[str, Any]:
    answer = await platform.api.post("/v1/decisions", json=request, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _pending_approval(platform: Platform, headers: dict[str, str], subject_type: str) -> dict[str, Any]:
    for _ in range(300):
        page = await platform.api.get(
            "/v1/approvals", params={"status": "pending", "subject_type": subject_type}, headers=headers
        )
        assert page.status_code == 200, page.text
        if page.json()["items"]:
            approval = page.json()["items"][0]
            full: dict[str, Any] = (
                await platform.api.get(f"/v1/approvals/{approval['approval_id']}", headers=headers)
            ).json()
            return full
        await asyncio.sleep(0.1)
    raise AssertionError(f"no pending {subject_type} approval appeared")


async def _vote(platform: Platform, headers: dict[str, str], approval_id: str, decision: str, comment: str = "") -> Any:
    return await platform.api.post(
        f"/v1/approvals/{approval_id}", json={"decision": decision, "comment": comment}, headers=headers
    )


async def test_the_policy_matrix_allow_deny_deny_over_allow_unknown_principal_and_malformed_policies(
    platform: Platform,
) -> None:
    headers = await tenant(platform)
    me = {"type": "Principal", "id": f"key:{uuid.uuid4()}"}

    allowed = await _decide(platform, headers, _tool_request(me))
    assert allowed["outcome"] == "allow"
    assert [p["name"] for p in allowed["policies"]] == ["platform.default"]

    explicit = await _policy(
        platform, headers, '@id("query-ok") permit (principal, action == Strata::Action::"tool.invoke", '
        'resource == Strata::Tool::"json_query");', name="allow-query",
    )  # fmt: skip
    still = await _decide(platform, headers, _tool_request(me))
    assert still["outcome"] == "allow"
    assert {p["name"] for p in still["policies"]} == {"platform.default", "allow-query"}

    forbid = await _policy(
        platform, headers, '@reason("json_query is off for this tenant") forbid (principal, '
        'action == Strata::Action::"tool.invoke", resource == Strata::Tool::"json_query");', name="no-query",
    )  # fmt: skip
    denied = await _decide(platform, headers, _tool_request(me))
    assert denied["outcome"] == "deny"  # deny wins over the explicit permit
    assert denied["reasons"] == ["json_query is off for this tenant"]
    assert [(p["name"], p["version"], p["effect"]) for p in denied["policies"]] == [("no-query", 1, "forbid")]
    other_tool = await _decide(platform, headers, _tool_request(me, tool="text"))
    assert other_tool["outcome"] == "allow"

    unknown = await _decide(platform, headers, _tool_request({"type": "Agent", "id": str(uuid.uuid4())}, tool="text"))
    assert unknown["outcome"] == "deny"
    assert unknown["reasons"][0].startswith("unknown principal Agent::")
    not_a_principal = await _decide(
        platform, headers, _tool_request({"type": "Principal", "id": "nobody"}, tool="text")
    )
    assert not_a_principal["outcome"] == "deny"

    recorded = await platform.api.get(f"/v1/decisions/{denied['decision_id']}", headers=headers)
    assert recorded.status_code == 200
    assert recorded.json()["policies"][0]["policy_id"] == forbid["policy_id"]
    assert recorded.json()["revision"] == denied["revision"]

    malformed = {
        "unparsable": "permit (principal, action",
        "unknown attribute": 'permit (principal, action == Strata::Action::"tool.invoke", resource) '
        'when { resource.owner == "x" };',
        "unknown action": 'forbid (principal, action == Strata::Action::"tool.delete", resource);',
        "template": "permit (principal == ?principal, action, resource);",
        "bad quorum": '@approval("x") @quorum("many") permit (principal, action, resource);',
        "approval on a forbid": '@approval("x") forbid (principal, action, resource);',
        "unknown annotation": '@aproval("typo") permit (principal, action, resource);',
    }
    for what, cedar in malformed.items():
        refused = await platform.api.post("/v1/policies", json={"name": "bad", "cedar": cedar}, headers=headers)
        problem = assert_problem(refused, 422)
        assert problem["detail"], what
        checked = await platform.api.post("/v1/policies/validate", json={"cedar": cedar}, headers=headers)
        assert checked.status_code == 200, checked.text
        assert checked.json()["valid"] is False, (what, checked.text)
    names = [p["name"] for p in (await platform.api.get("/v1/policies", headers=headers)).json()["items"]]
    assert sorted(names) == ["allow-query", "no-query"]  # nothing malformed was stored
    assert explicit["version"] == 1


async def test_policies_are_versioned_rolled_back_and_dry_run_against_recorded_decisions(platform: Platform) -> None:
    headers = await tenant(platform)
    me = {"type": "Principal", "id": f"key:{uuid.uuid4()}"}
    for tool in ("json_query", "text", "python"):
        assert (await _decide(platform, headers, _tool_request(me, tool=tool)))["outcome"] == "allow"
    policy = await _policy(
        platform, headers,
        'forbid (principal, action == Strata::Action::"tool.invoke", resource == Strata::Tool::"python");',
        name="guard",
    )  # fmt: skip

    dry = await platform.api.post(
        "/v1/policies/dry-run",
        json={"changes": [{"cedar": 'forbid (principal, action == Strata::Action::"tool.invoke", '
                                    'resource == Strata::Tool::"text");'}], "action": "tool.invoke"},
        headers=headers,
    )  # fmt: skip
    assert dry.status_code == 200, dry.text
    result = dry.json()
    assert result["replayed"] == 3
    assert result["by_outcome"] == {"allow->deny": 2}  # text newly denied; python denied by "guard" too (now)
    assert {d["resource"] for d in result["differences"]} == {"Tool::text", "Tool::python"}
    nothing_stored = await _decide(platform, headers, _tool_request(me, tool="text"))
    assert nothing_stored["outcome"] == "allow"

    changed = await platform.api.patch(
        f"/v1/policies/{policy['policy_id']}",
        json={
            "cedar": 'forbid (principal, action == Strata::Action::"tool.invoke", resource == Strata::Tool::"text");'
        },
        headers={**headers, "If-Match": '"v1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    stale = await platform.api.patch(
        f"/v1/policies/{policy['policy_id']}", json={"enabled": False}, headers={**headers, "If-Match": '"v1"'}
    )
    assert_problem(stale, 412)
    assert (await _decide(platform, headers, _tool_request(me, tool="text")))["outcome"] == "deny"
    assert (await _decide(platform, headers, _tool_request(me, tool="python")))["outcome"] == "allow"

    rolled = await platform.api.post(
        f"/v1/policies/{policy['policy_id']}/rollback", json={"version": 1}, headers=headers
    )
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 3
    assert rolled.json()["cedar"] == policy["cedar"]
    assert (await _decide(platform, headers, _tool_request(me, tool="python")))["outcome"] == "deny"
    assert (await _decide(platform, headers, _tool_request(me, tool="text")))["outcome"] == "allow"

    deleted = await platform.api.delete(f"/v1/policies/{policy['policy_id']}", headers=headers)
    assert deleted.status_code == 204
    assert_problem(await platform.api.get(f"/v1/policies/{policy['policy_id']}", headers=headers), 404)
    assert (await _decide(platform, headers, _tool_request(me, tool="python")))["outcome"] == "allow"
    versions = await platform.api.get(f"/v1/policies/{policy['policy_id']}/versions", headers=headers)
    assert [(v["version"], v["change"]) for v in versions.json()["items"]] == [
        (4, "deleted"), (3, "rolled_back"), (2, "updated"), (1, "created"),
    ]  # fmt: skip
    assert_problem(
        await platform.api.post(f"/v1/policies/{policy['policy_id']}/rollback", json={"version": 9}, headers=headers),
        404,
    )


async def test_a_plan_needing_approval_waits_until_a_second_principal_approves_then_completes(
    platform: Platform,
) -> None:
    headers = await tenant(platform)
    approver, approver_id = await _key(platform, headers, "approvals:decide", "approvals:read")
    goal_id = await run_template(platform, headers, [JSON_QUERY], require_approval=True)
    approval = await _pending_approval(platform, headers, "plan")
    assert approval["why"] == "the goal asks for a human's approval before its plan runs"
    assert approval["what"].startswith("run plan v1 (1 tasks)")
    assert approval["requested_by"].startswith("key:")
    goal = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
    assert goal["run_id"] is None  # nothing runs while it waits

    own = await _vote(platform, headers, approval["approval_id"], "approve")
    assert "yours" in assert_problem(own, 403)["detail"]  # the requester cannot approve their own work
    approved = await _vote(platform, approver, approval["approval_id"], "approve", "looks fine")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == [approver_id]
    assert_problem(await _vote(platform, approver, approval["approval_id"], "approve"), 409)

    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "completed", outcome(run)
    assert tasks_by_id(run)["q"]["output"] == {"result": 7}


async def test_a_quorum_of_two_named_approvers_is_needed(platform: Platform) -> None:
    headers = await tenant(platform)
    first, first_id = await _key(platform, headers, "approvals:decide")
    second, second_id = await _key(platform, headers, "approvals:decide")
    outsider, _ = await _key(platform, headers, "approvals:decide")
    await _policy(
        platform, headers,
        f'@approval("every plan needs two of the leads") @approvers("{first_id},{second_id}") @quorum("2") '
        'permit (principal, action == Strata::Action::"plan.approve", resource) when { context.task_count >= 1 };',
    )  # fmt: skip
    goal_id = await run_template(platform, headers, [JSON_QUERY])
    approval = await _pending_approval(platform, headers, "plan")
    assert (approval["quorum"], sorted(approval["approvers"])) == (2, sorted([first_id, second_id]))

    assert "not an approver" in assert_problem(await _vote(platform, outsider, approval["approval_id"], "approve"),
                                               403)["detail"]  # fmt: skip
    one = await _vote(platform, first, approval["approval_id"], "approve")
    assert one.status_code == 200, one.text
    assert (one.json()["status"], one.json()["approvals"]) == ("pending", 1)
    assert (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()["run_id"] is None
    two = await _vote(platform, second, approval["approval_id"], "approve")
    assert (two.json()["status"], sorted(two.json()["decided_by"])) == ("approved", sorted([first_id, second_id]))
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "completed", outcome(run)


async def test_a_deadline_escalates_to_the_next_level_then_rejects(platform: Platform) -> None:
    headers = await tenant(platform)
    lead, lead_id = await _key(platform, headers, "approvals:decide")
    boss, boss_id = await _key(platform, headers, "approvals:decide")
    await _policy(
        platform, headers,
        f'@approval("changes need the lead") @approvers("{lead_id}") @timeout("2s") @escalate("{boss_id}") '
        'permit (principal, action == Strata::Action::"plan.approve", resource);',
    )  # fmt: skip
    goal_id = await run_template(platform, headers, [JSON_QUERY])
    approval = await _pending_approval(platform, headers, "plan")
    assert (approval["level"], approval["approvers"]) == (0, [lead_id])
    for _ in range(100):  # the schedule ticks every second here
        current = (await platform.api.get(f"/v1/approvals/{approval['approval_id']}", headers=headers)).json()
        if current["level"] == 1:
            break
        await asyncio.sleep(0.1)
    assert (current["level"], current["approvers"], current["status"]) == (1, [boss_id], "pending")
    assert_problem(await _vote(platform, lead, approval["approval_id"], "approve"), 403)  # the lead's time is up

    goal = await finished_goal(platform, headers, goal_id, timeout_s=20)
    assert goal["status"] == "rejected", goal
    assert any("expired" in r for r in goal["reasons"]), goal["reasons"]
    final = (await platform.api.get(f"/v1/approvals/{approval['approval_id']}", headers=headers)).json()
    assert final["status"] == "expired"
    assert_problem(await _vote(platform, boss, approval["approval_id"], "approve"), 409)
    requested = await platform.api.get(
        "/v1/events", params={"detail_type": "ApprovalRequested", "aggregate_id": approval["approval_id"]},
        headers=headers,
    )  # fmt: skip
    assert sorted(e["detail"]["level"] for e in requested.json()["items"]) == [0, 1]


async def test_a_denied_tool_call_fails_its_step_with_the_policys_reason(platform: Platform) -> None:
    headers = await tenant(platform)
    await _policy(
        platform, headers,
        '@reason("code execution is not allowed in this tenant") forbid (principal, '
        'action == Strata::Action::"tool.invoke", resource == Strata::Tool::"python");',
    )  # fmt: skip
    goal_id = await run_template(
        platform, headers,
        [{"task_id": "code", "title": "Compute", "kind": "tool", "tool": "python", "input": {"code": "result = 1"},
          "retry": {"max_attempts": 3, "backoff_s": 0}}],
    )  # fmt: skip
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "failed", outcome(run)
    code = tasks_by_id(run)["code"]
    assert code["attempt"] == 1  # a denial is not retried
    assert code["error"]["type"] == "tool_denied"
    assert "code execution is not allowed in this tenant" in code["error"]["message"]
    calls = (await platform.api.get("/v1/tool-calls", params={"run_id": run["run_id"]}, headers=headers)).json()
    (call,) = calls["items"]
    assert (call["status"], call["error"]["kind"]) == ("failed", "denied")
    decision = (await platform.api.get(f"/v1/decisions/{call['decision_id']}", headers=headers)).json()
    assert decision["outcome"] == "deny"
    assert decision["principal_id"].startswith("key:")  # a tool task's call is made for the goal's submitter


async def test_a_tool_call_needing_approval_pauses_its_task_until_approved_or_fails_it_when_rejected(
    platform: Platform,
) -> None:
    headers = await tenant(platform)
    approver, _ = await _key(platform, headers, "approvals:decide")
    assert (
        await platform.api.patch("/v1/tools/json_query", json={"requires_approval": True}, headers=headers)
    ).status_code == 200
    tasks = [JSON_QUERY, {"task_id": "after", "title": "After", "kind": "tool", "tool": "text", "depends_on": ["q"],
                          "input": {"operation": "upper", "text": "done"}}]  # fmt: skip
    goal_id = await run_template(platform, headers, tasks)
    approval = await _pending_approval(platform, headers, "tool_call")
    assert approval["what"].startswith("call json_query with")
    goal = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
    run = (await platform.api.get(f"/v1/runs/{goal['run_id']}", headers=headers)).json()
    waiting = tasks_by_id(run)["q"]
    assert (waiting["status"], waiting["approval_id"]) == ("awaiting_approval", approval["approval_id"])
    assert run["status"] == "running"
    # a parked task asks again now and then (here every 2 s): still pending, the same approval, parked again
    await asyncio.sleep(4.5)
    asked = await platform.api.get(
        "/v1/decisions", params={"action": "tool.invoke", "outcome": "approval_required"}, headers=headers
    )
    assert sum(d["approval_id"] == approval["approval_id"] for d in asked.json()["items"]) >= 2
    for _ in range(40):  # (between a recheck's ask and its parking the task is briefly ready or running)
        run = (await platform.api.get(f"/v1/runs/{goal['run_id']}", headers=headers)).json()
        if tasks_by_id(run)["q"]["status"] == "awaiting_approval":
            break
        await asyncio.sleep(0.05)
    assert tasks_by_id(run)["q"]["status"] == "awaiting_approval", outcome(run)
    assert (await _vote(platform, approver, approval["approval_id"], "approve")).status_code == 200
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "completed", outcome(run)
    assert tasks_by_id(run)["q"]["output"] == {"result": 7}

    rejected_goal = await run_template(platform, headers, [{**JSON_QUERY, "input": {"data": {"n": 8}, "query": "n"}}])
    second = await _pending_approval(platform, headers, "tool_call")
    assert (await _vote(platform, approver, second["approval_id"], "reject", "not today")).status_code == 200
    run = await finished_run(platform, headers, rejected_goal)
    assert run["status"] == "failed", outcome(run)
    error = tasks_by_id(run)["q"]["error"]
    assert error["type"] == "tool_denied"
    assert "rejected" in error["message"]
    assert "not today" in error["message"]


async def test_with_supervision_unreachable_tool_calls_are_refused(platform: Platform) -> None:
    headers = await tenant(platform)  # a new tenant: no decision of it is cached anywhere
    run_id = str(uuid.uuid4())
    body = {"run_id": run_id, "task_id": "t", "step": 0, "call_id": "c", "input": {"data": 1, "query": "@"}}
    pool = platform.cloud.pools["SupervisionFunction"]
    pool.throttled = True
    try:
        refused = await platform.api.post("/v1/tools/json_query/invoke", json=body, headers=headers)
        problem = assert_problem(refused, 503)
        assert "refused" in problem["detail"]
        assert "supervision" in problem["detail"]
        calls = await platform.api.get("/v1/tool-calls", params={"run_id": run_id}, headers=headers)
        assert calls.json()["items"] == []  # not made, not recorded
    finally:
        pool.throttled = False
    made = await platform.api.post("/v1/tools/json_query/invoke", json=body, headers=headers)
    assert made.status_code == 200, made.text
    assert made.json()["status"] == "succeeded"


async def test_the_kill_switch_stops_a_running_run_within_one_step_and_lifting_it_resumes(
    platform: Platform, providers: Providers
) -> None:
    providers.reset()
    headers = await tenant(platform)
    assert (await platform.api.post("/v1/models", json=GPT, headers=headers)).status_code == 201
    agent = await platform.api.post("/v1/agents", json={"name": f"worker-{uuid.uuid4().hex[:6]}"}, headers=headers)
    agent_id = agent.json()["agent_id"]
    providers.openai.script(
        *(Reply(tool_calls=(FakeToolCall("text", {"operation": "upper", "text": f"w{n}"}, id=f"t{n}"),), delay_s=0.5)
          for n in range(6)),
        Reply(json_answer={"done": True}),
    )  # fmt: skip
    goal_id = await run_template(
        platform,
        headers,
        [{"task_id": "work", "title": "Work", "kind": "agent", "agent_id": agent_id, "timeout_s": 120}],
    )
    goal = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
    for _ in range(300):
        goal = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
        if goal.get("run_id"):
            steps = (await platform.api.get(f"/v1/runs/{goal['run_id']}/tasks/work/steps", headers=headers)).json()
            if len(steps["items"]) >= 2:
                break
        await asyncio.sleep(0.05)
    suspended = await platform.api.post(
        "/v1/suspensions", json={"scope": "agent", "agent_id": agent_id, "reason": "runaway"}, headers=headers
    )
    assert suspended.status_code == 201, suspended.text
    at_suspension = len(steps["items"])
    run: dict[str, Any] = {}
    for _ in range(100):
        run = (await platform.api.get(f"/v1/runs/{goal['run_id']}", headers=headers)).json()
        if run["status"] == "paused" and tasks_by_id(run)["work"]["status"] == "ready":
            break
        await asyncio.sleep(0.1)
    assert run["status"] == "paused", outcome(run)
    assert tasks_by_id(run)["work"]["status"] == "ready"  # stopped at its step, not failed
    await asyncio.sleep(1.5)  # nothing moves while it is suspended
    stopped = (await platform.api.get(f"/v1/runs/{goal['run_id']}/tasks/work/steps", headers=headers)).json()
    assert len(stopped["items"]) <= at_suspension + 1, "more than one step after the suspension"
    assert_problem(
        await platform.api.post(
            "/v1/suspensions", json={"scope": "agent", "agent_id": agent_id, "reason": "again"}, headers=headers
        ),
        409,
    )
    lifted = await platform.api.delete(f"/v1/suspensions/{suspended.json()['suspension_id']}", headers=headers)
    assert lifted.status_code == 200, lifted.text
    run = await finished_run(platform, headers, goal_id, timeout_s=60)
    assert run["status"] == "completed", outcome(run)
    assert tasks_by_id(run)["work"]["output"] == {"done": True}

    whole = await platform.api.post("/v1/suspensions", json={"scope": "tenant", "reason": "incident"}, headers=headers)
    assert whole.status_code == 201
    refused = await finished_goal(platform, headers, await run_template(platform, headers, [JSON_QUERY]))
    assert refused["status"] == "rejected"
    assert any("suspended" in r for r in refused["reasons"]), refused["reasons"]
    await platform.api.delete(f"/v1/suspensions/{whole.json()['suspension_id']}", headers=headers)
    fine = await finished_run(platform, headers, await run_template(platform, headers, [JSON_QUERY]))
    assert fine["status"] == "completed"


async def test_the_audit_chain_verifies_and_a_tampered_entry_is_found(platform: Platform) -> None:
    headers = await tenant(platform)
    me = {"type": "Principal", "id": f"key:{uuid.uuid4()}"}
    policy = await _policy(platform, headers, 'forbid (principal, action == Strata::Action::"model.call", resource);')
    for tool in ("text", "json_query"):
        await _decide(platform, headers, _tool_request(me, tool=tool))
    entries = (await platform.api.get("/v1/audit", headers=headers)).json()["items"]
    assert [e["kind"] for e in reversed(entries)] == ["policy.created", "decision", "decision"]
    assert entries[-1]["entry"]["details"]["policy_id"] == policy["policy_id"]
    verified = await platform.api.post("/v1/audit/verify", headers=headers)
    assert verified.json() == {"ok": True, "checked": 3, "signed": 3, "first_broken": None}

    tenant_id = (await platform.api.get("/v1/tenant", headers=headers)).json()["tenant_id"]
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:  # someone with database access rewrites the second entry's outcome
        await conn.execute(
            'UPDATE audit_log SET entry = replace(entry, \'"outcome":"allow"\', \'"outcome":"deny"\') '
            "WHERE tenant_id = $1 AND seq = 2",
            uuid.UUID(tenant_id),
        )
    finally:
        await conn.close()
    broken = (await platform.api.post("/v1/audit/verify", headers=headers)).json()
    assert broken["ok"] is False
    assert broken["first_broken"]["seq"] == 2
    assert "changed" in broken["first_broken"]["problem"]
    assert broken["checked"] == 1


async def test_decisions_are_cached_per_policy_revision_and_a_change_is_seen_at_once(platform: Platform) -> None:
    headers = await tenant(platform)  # no policy of its own: its revision is published by the first decision
    run_id = str(uuid.uuid4())

    async def call(step: int) -> Any:
        body = {"run_id": run_id, "task_id": "t", "step": step, "call_id": "c", "input": {"data": 1, "query": "@"}}
        return await platform.api.post("/v1/tools/json_query/invoke", json=body, headers=headers)

    # the cache is each execution environment's own: with several warm L03 workers, the first call each one takes
    # asks, and a later call on the same worker is served from its cache
    answers = [await call(0)]
    assert "decision;dur=" in answers[0].headers["server-timing"]
    while 'desc="cached"' not in answers[-1].headers["server-timing"] and len(answers) < 8:
        answers.append(await call(len(answers)))
    cached = answers[-1]
    assert 'desc="cached"' in cached.headers["server-timing"], [a.headers["server-timing"] for a in answers]
    asked = {a.json()["decision_id"] for a in answers[:-1]}
    assert cached.json()["decision_id"] in asked  # a decision made earlier served it
    await _policy(
        platform, headers,
        '@reason("queries are off") forbid (principal, action == Strata::Action::"tool.invoke", '
        'resource == Strata::Tool::"json_query");',
    )  # fmt: skip
    third = await call(len(answers))
    assert 'desc="asked"' in third.headers["server-timing"]
    assert (third.json()["status"], third.json()["error"]["kind"]) == ("failed", "denied")
    assert "queries are off" in third.json()["error"]["message"]
