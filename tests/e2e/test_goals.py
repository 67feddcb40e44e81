"""Goals through the local cloud: submitted, then planned by template (active ones only, each use counted), by the
LLM (through L04 against a scripted OpenAI-compatible server) or from the submitter's own plan, the model's invalid
plan repaired once or the goal rejected with reasons, constraints enforced, plans signed and versioned, and a
redelivered GoalSubmitted planning nothing twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Platform, Providers
from tests.e2e.test_plan_templates import template
from tests.e2e.test_platform import assert_problem
from tests.support.provider_servers import Reply

pytestmark = pytest.mark.e2e
PLANNED = ("planned", "running", "completed")  # a planned goal's run may already have started, or finished

GPT = {
    "name": "planner",
    "provider": "openai",
    "provider_model": "gpt-4o-mini",
    "context_window": 128000,
    "capabilities": ["chat", "json", "tools"],
    "input_usd_per_mtok": 1,
    "output_usd_per_mtok": 2,
    "quality": 1.0,
}
MODEL_PLAN = {
    "tasks": [
        {
            "task_id": "fetch",
            "title": "Get the numbers",
            "kind": "tool",
            "tool": "json_query",
            "input": {"data": {"n": [3, 4]}, "query": "n"},
        },
        {
            "task_id": "sum",
            "title": "Add them up",
            "kind": "tool",
            "tool": "python",
            "depends_on": ["fetch"],
            "input": {"code": "result = sum(inputs['n'])", "inputs": {"n": {"$from": "fetch", "path": "result"}}},
        },
    ]
}


async def _tenant(platform: Platform, providers: Providers) -> dict[str, str]:
    providers.reset()
    headers = platform.auth((await platform.new_tenant(f"goals-{uuid.uuid4().hex[:8]}"))["api_key"])
    assert (await platform.api.post("/v1/models", json=GPT, headers=headers)).status_code == 201
    return headers


async def _settled(platform: Platform, headers: dict[str, str], goal_id: str) -> dict[str, Any]:
    for _ in range(300):
        goal: dict[str, Any] = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
        if goal["status"] != "submitted":
            return goal
        await asyncio.sleep(0.1)
    raise AssertionError(f"goal {goal_id} was never planned: {goal}")


async def _finished(platform: Platform, headers: dict[str, str], goal_id: str) -> dict[str, Any]:
    for _ in range(600):
        goal: dict[str, Any] = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
        if goal["status"] in ("completed", "failed", "cancelled", "rejected"):
            return goal
        await asyncio.sleep(0.1)
    raise AssertionError(f"goal {goal_id} did not finish: {goal}")


async def _submit(platform: Platform, headers: dict[str, str], **body: Any) -> str:
    submitted = await platform.api.post("/v1/goals", json=body, headers=headers)
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["status"] == "submitted"
    assert submitted.headers["location"] == f"/v1/goals/{submitted.json()['goal_id']}"
    return str(submitted.json()["goal_id"])


async def test_a_goal_matching_a_template_is_planned_from_it_and_signed(
    platform: Platform, providers: Providers
) -> None:
    headers = await _tenant(platform, providers)
    assert (await platform.api.post("/v1/plan-templates", json=template("words"), headers=headers)).status_code == 201
    goal_id = await _submit(platform, headers, text="Count the words of 'a b c'", strategy="template")
    goal = await _settled(platform, headers, goal_id)
    assert goal["status"] in PLANNED, goal
    plans = (await platform.api.get(f"/v1/goals/{goal_id}/plans", headers=headers)).json()["items"]
    assert [(p["version"], p["strategy"]) for p in plans] == [(1, "template")]
    plan = (await platform.api.get(f"/v1/plans/{goal['plan_id']}", headers=headers)).json()
    assert plan["body"]["tasks"][0]["input"] == {"operation": "count", "text": "a b c"}
    assert plan["signature"].startswith("hmac-sha256:")
    assert providers.openai.requests == []  # no model was asked
    for _ in range(100):
        events = await platform.api.get("/v1/events", params={"detail_type": "PlanCreated"}, headers=headers)
        if events.json()["items"]:
            break
        await asyncio.sleep(0.1)
    [created] = events.json()["items"]
    assert (created["detail"]["plan_id"], created["detail"]["task_count"]) == (goal["plan_id"], 2)


async def test_only_active_templates_plan_goals_and_each_use_is_counted(
    platform: Platform, providers: Providers
) -> None:
    # GIVEN a proposed template (as L07 proposes what it learned) the goal's text matches
    headers = await _tenant(platform, providers)
    made = await platform.api.post(
        "/v1/plan-templates", json={**template("words"), "status": "proposed"}, headers=headers
    )
    assert made.status_code == 201, made.text
    template_id = made.json()["template_id"]
    assert (made.json()["used_count"], made.json()["last_used_at"]) == (0, None)

    # WHEN a goal is submitted for templates only, THEN the proposed template is not used
    waiting = await _submit(platform, headers, text="Count the words of 'a b'", strategy="template")
    assert (await _settled(platform, headers, waiting))["reasons"] == ["no plan template matches the goal"]

    # WHEN a person makes it active, THEN the next goal is planned from it and the use is counted with the plan
    promoted = await platform.api.patch(
        f"/v1/plan-templates/{template_id}", json={"status": "active"}, headers={**headers, "If-Match": '"v1"'}
    )
    assert promoted.status_code == 200, promoted.text
    goal_id = await _submit(platform, headers, text="Count the words of 'a b c'", strategy="template")
    goal = await _settled(platform, headers, goal_id)
    assert goal["status"] in PLANNED, goal
    [plan] = (await platform.api.get(f"/v1/goals/{goal_id}/plans", headers=headers)).json()["items"]
    assert (plan["strategy"], plan["template_id"]) == ("template", template_id)
    used = await platform.api.get(f"/v1/plan-templates/{template_id}", headers=headers)
    assert used.json()["used_count"] == 1
    assert used.json()["last_used_at"] is not None
    assert used.headers["etag"] == '"v2"'  # a use is not an edit: the ETag a person holds stays valid
    again = await _submit(platform, headers, text="Count the words of 'd'", strategy="template")
    assert (await _settled(platform, headers, again))["status"] in PLANNED
    used_twice = (await platform.api.get(f"/v1/plan-templates/{template_id}", headers=headers)).json()
    assert used_twice["used_count"] == 2
    assert used_twice["last_used_at"] >= used.json()["last_used_at"]


async def test_a_given_plan_is_checked_and_run_as_it_is(platform: Platform, providers: Providers) -> None:
    # GIVEN a tenant whose matching template and scripted model would plan otherwise
    headers = await _tenant(platform, providers)
    assert (await platform.api.post("/v1/plan-templates", json=template("words"), headers=headers)).status_code == 201
    # WHEN a goal comes with its own plan
    submitted = await platform.api.post(
        "/v1/goals", json={"text": "Count the words of 'a b'", "plan": MODEL_PLAN}, headers=headers
    )
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["strategy"] == "given"
    # THEN that plan is the goal's plan, and it runs to completion
    goal = await _finished(platform, headers, submitted.json()["goal_id"])
    assert goal["status"] == "completed", goal
    [plan] = (await platform.api.get(f"/v1/goals/{goal['goal_id']}/plans", headers=headers)).json()["items"]
    assert (plan["strategy"], plan["template_id"]) == ("given", None)
    assert [(t["task_id"], t["input"]) for t in plan["body"]["tasks"]] == [
        (t["task_id"], t["input"]) for t in MODEL_PLAN["tasks"]
    ]
    run = (await platform.api.get(f"/v1/runs/{goal['run_id']}", headers=headers)).json()
    assert {t["task_id"]: t["output"]["result"] for t in run["tasks"]} == {"fetch": [3, 4], "sum": 7}
    assert providers.openai.requests == []  # no model was asked
    templates = (await platform.api.get("/v1/plan-templates", headers=headers)).json()["items"]
    assert [t["used_count"] for t in templates] == [0]

    # a given plan that fails is not replanned, whatever the goal's constraints ask
    failing = {
        "tasks": [
            {
                "task_id": "bad",
                "title": "Breaks",
                "kind": "tool",
                "tool": "python",
                "input": {"code": "raise ValueError('wrong approach')"},
                "retry": {"max_attempts": 1},
            }
        ]
    }
    constraints = {"on_failure": "replan", "max_replans": 2}
    failed_id = await _submit(platform, headers, text="Break", plan=failing, strategy="given", constraints=constraints)
    failed = await _finished(platform, headers, failed_id)
    assert failed["status"] == "failed", failed
    assert "wrong approach" in failed["reasons"][0]
    plans = (await platform.api.get(f"/v1/goals/{failed_id}/plans", headers=headers)).json()["items"]
    assert [(p["version"], p["strategy"]) for p in plans] == [(1, "given")]
    assert providers.openai.requests == []


async def test_a_given_plan_that_cannot_run_is_refused_with_reasons(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    # a plan whose structure is wrong is refused at submission, every problem listed, and nothing is stored
    broken = json.loads(json.dumps(MODEL_PLAN))
    broken["tasks"][0]["depends_on"] = ["sum"]
    broken["tasks"][1]["depends_on"] = ["fetch", "ghost"]
    refused = assert_problem(
        await platform.api.post("/v1/goals", json={"text": "x", "plan": broken}, headers=headers), 422
    )
    assert any("cycle" in p and "fetch" in p for p in refused["problems"]), refused
    assert any("'ghost'" in p for p in refused["problems"]), refused
    # a strategy other than given does not go with a plan, and given needs one
    for wrong in (
        {"strategy": "llm", "plan": MODEL_PLAN},
        {"strategy": "template", "plan": MODEL_PLAN},
        {"strategy": "given"},
    ):
        problem = assert_problem(
            await platform.api.post("/v1/goals", json={"text": "x", **wrong}, headers=headers), 422
        )
        assert problem["errors"], problem
    # only the platform's own layers submit a goal on someone's behalf
    on_behalf = {"text": "x", "on_behalf_of": "user:someone-else"}
    assert_problem(await platform.api.post("/v1/goals", json=on_behalf, headers=headers), 403)
    assert (await platform.api.get("/v1/goals", headers=headers)).json()["items"] == []

    # a plan naming a tool the tenant does not have is accepted, then rejected with the reason
    ghost = {"tasks": [{"task_id": "a", "title": "a", "kind": "tool", "tool": "teleport", "input": {}}]}
    rejected = await _settled(platform, headers, await _submit(platform, headers, text="Teleport me", plan=ghost))
    assert rejected["status"] == "rejected"
    assert rejected["strategy"] == "given"
    assert rejected["reasons"] == ["the given plan: task a uses the tool 'teleport', which does not exist"]
    assert rejected["plan_id"] is None
    assert rejected["submitted_by"] != "user:someone-else"
    # and one that breaks the goal's constraints likewise
    limited = await _submit(platform, headers, text="Sum", plan=MODEL_PLAN, constraints={"allowed_tools": ["python"]})
    refused_goal = await _settled(platform, headers, limited)
    assert refused_goal["status"] == "rejected"
    assert any("json_query" in r and "do not allow" in r for r in refused_goal["reasons"]), refused_goal["reasons"]
    assert providers.openai.requests == []


async def test_the_llm_plans_a_goal_no_template_matches(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    providers.openai.script(Reply(json_answer=MODEL_PLAN))
    goal_id = await _submit(platform, headers, text="Add up three and four")
    goal = await _settled(platform, headers, goal_id)
    assert goal["status"] in PLANNED, goal
    plan = (await platform.api.get(f"/v1/plans/{goal['plan_id']}", headers=headers)).json()
    assert (plan["strategy"], [t["task_id"] for t in plan["body"]["tasks"]]) == ("hybrid", ["fetch", "sum"])
    sent = providers.openai.requests[-1].body
    assert "json_query" in sent["messages"][0]["content"]  # the tenant's tools were offered
    assert sent["messages"][1]["content"].startswith("Goal: Add up three and four")
    assert sent["response_format"]["type"] == "json_schema"


async def test_an_invalid_plan_is_repaired_once_else_the_goal_is_rejected_with_reasons(
    platform: Platform, providers: Providers
) -> None:
    headers = await _tenant(platform, providers)
    cyclic = json.loads(json.dumps(MODEL_PLAN))
    cyclic["tasks"][0]["depends_on"] = ["sum"]
    providers.openai.script(Reply(json_answer=cyclic), Reply(json_answer=MODEL_PLAN))
    repaired = await _settled(platform, headers, await _submit(platform, headers, text="Add them", strategy="llm"))
    assert repaired["status"] in PLANNED, repaired
    assert "cycle" in providers.openai.requests[-1].body["messages"][-1]["content"]

    ghost = {"tasks": [{"task_id": "a", "title": "a", "kind": "tool", "tool": "teleport", "input": {}}]}
    providers.openai.script(Reply(json_answer=ghost), Reply(json_answer=ghost))
    rejected = await _settled(platform, headers, await _submit(platform, headers, text="Teleport me", strategy="llm"))
    assert rejected["status"] == "rejected"
    assert any("'teleport', which does not exist" in r for r in rejected["reasons"]), rejected["reasons"]
    assert rejected["plan_id"] is None

    # a tool task whose known input does not fit the tool (json_query needs a query)
    unfit = {"tasks": [{"task_id": "a", "title": "a", "kind": "tool", "tool": "json_query", "input": {"data": [1]}}]}
    providers.openai.script(Reply(json_answer=unfit), Reply(json_answer=unfit))
    misfit = await _settled(platform, headers, await _submit(platform, headers, text="Query it", strategy="llm"))
    assert misfit["status"] == "rejected"
    assert any("does not fit the json_query tool" in r and "'query'" in r for r in misfit["reasons"]), misfit["reasons"]


async def test_constraints_refuse_plans_that_break_them(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    assert (await platform.api.post("/v1/plan-templates", json=template("words"), headers=headers)).status_code == 201
    goal_id = await _submit(
        platform,
        headers,
        text="Count the words of 'x y'",
        strategy="template",
        constraints={"allowed_tools": ["text"]},  # the template's second task uses json_query
    )
    goal = await _settled(platform, headers, goal_id)
    assert goal["status"] == "rejected"
    assert any("json_query" in r and "do not allow" in r for r in goal["reasons"]), goal["reasons"]
    nothing = await _submit(platform, headers, text="Write a poem", strategy="template")
    assert (await _settled(platform, headers, nothing))["reasons"] == ["no plan template matches the goal"]
    assert_problem(await platform.api.post("/v1/goals", json={"text": ""}, headers=headers), 422)
    assert_problem(await platform.api.get(f"/v1/goals/{uuid.uuid4()}", headers=headers), 404)


async def test_a_redelivered_goal_is_planned_once(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    assert (await platform.api.post("/v1/plan-templates", json=template("words"), headers=headers)).status_code == 201
    goal_id = await _submit(platform, headers, text="Count the words of 'once'", strategy="template")
    await _settled(platform, headers, goal_id)
    events = await platform.api.get("/v1/events", params={"detail_type": "GoalSubmitted"}, headers=headers)
    [submitted] = events.json()["items"]
    bus = platform.cloud.resource("EventBus")
    entry = {"EventBusName": bus, "Source": "strata.planning", "DetailType": "GoalSubmitted"}
    platform.aws("events").put_events(Entries=[{**entry, "Detail": json.dumps(submitted["detail"])}] * 2)
    await asyncio.sleep(2)
    plans = (await platform.api.get(f"/v1/goals/{goal_id}/plans", headers=headers)).json()["items"]
    assert len(plans) == 1
