"""Goals through the local cloud: submitted, then planned by template or by the LLM (through L04 against a
scripted OpenAI-compatible server), the model's invalid plan repaired once or the goal rejected with reasons,
constraints enforced, plans signed and versioned, and a redelivered GoalSubmitted planning nothing twice."""

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
