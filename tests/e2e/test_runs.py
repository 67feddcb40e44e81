"""Runs through the local cloud, every function in its own worker: a goal is planned, approved by supervision's
plan gate, and run by L02 to completion with real tool calls (python in its sandbox, http_request against a
loopback server) and outputs bound into later tasks' inputs; an agent task's loop of model turns and tool calls
against a scripted OpenAI-compatible server; failures retried then failing the run and blocking dependents;
pause, resume and cancel; an operator's retry of a failed task reopening the run; the run readable with every
task's state and steps, and revalidated by ETag."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import Platform, Providers
from tests.e2e.test_goals import GPT
from tests.e2e.test_platform import assert_problem
from tests.support.provider_servers import FakeToolCall, Reply
from tests.support.tool_target import ToolTarget

pytestmark = pytest.mark.e2e

FINISHED = ("completed", "failed", "cancelled", "rejected")


async def tenant(platform: Platform, tool_target: ToolTarget | None = None) -> dict[str, str]:
    headers = platform.auth((await platform.new_tenant(f"runs-{uuid.uuid4().hex[:8]}"))["api_key"])
    if tool_target is not None:
        allowed = await platform.api.patch(
            "/v1/tools/http_request", json={"config": {"allowed_hosts": [tool_target.host]}}, headers=headers
        )
        assert allowed.status_code == 200, allowed.text
    return headers


async def run_template(
    platform: Platform, headers: dict[str, str], tasks: list[dict[str, Any]], **constraints: Any
) -> str:
    """Register a one-off template with `tasks`, submit the goal that matches it; the goal's id."""
    name = f"t{uuid.uuid4().hex[:8]}"
    made = await platform.api.post(
        "/v1/plan-templates",
        json={"name": name, "patterns": [f"do {name}"], "parameters": {"type": "object"}, "body": {"tasks": tasks}},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = {"text": f"do {name}", "strategy": "template"}
    if constraints:
        body["constraints"] = constraints
    submitted = await platform.api.post("/v1/goals", json=body, headers=headers)
    assert submitted.status_code == 202, submitted.text
    return str(submitted.json()["goal_id"])


async def finished_goal(
    platform: Platform, headers: dict[str, str], goal_id: str, timeout_s: float = 60
) -> dict[str, Any]:
    goal: dict[str, Any] = {}
    for _ in range(int(timeout_s * 10)):
        goal = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
        if goal["status"] in FINISHED:
            return goal
        await asyncio.sleep(0.1)
    raise AssertionError(f"goal {goal_id} did not finish: {goal}")


async def run_of(platform: Platform, headers: dict[str, str], goal_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """The goal's run once it has one."""
    for _ in range(int(timeout_s * 10)):
        goal = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
        if goal.get("run_id"):
            run: dict[str, Any] = (await platform.api.get(f"/v1/runs/{goal['run_id']}", headers=headers)).json()
            return run
        if goal["status"] in ("rejected",):
            raise AssertionError(f"goal {goal_id} was rejected: {goal['reasons']}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"goal {goal_id} has no run")


async def finished_run(
    platform: Platform, headers: dict[str, str], goal_id: str, timeout_s: float = 60
) -> dict[str, Any]:
    goal = await finished_goal(platform, headers, goal_id, timeout_s)
    assert goal["run_id"], goal
    run: dict[str, Any] = (await platform.api.get(f"/v1/runs/{goal['run_id']}", headers=headers)).json()
    return run


async def until(
    platform: Platform,
    headers: dict[str, str],
    path: str,
    wanted: Callable[[dict[str, Any]], bool],
    params: dict[str, Any] | None = None,
    timeout_s: float = 60,
) -> dict[str, Any]:
    """GET `path` until its JSON is what is `wanted` (events are archived, goals and scores follow, asynchronously)."""
    found: dict[str, Any] = {}
    for _ in range(int(timeout_s * 10)):
        found = (await platform.api.get(path, params=params, headers=headers)).json()
        if wanted(found):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never became what was wanted: {found}")


async def run_events(
    platform: Platform, headers: dict[str, str], run_id: str, detail_type: str, count: int
) -> list[dict[str, Any]]:
    """The run's `count` events of one type, oldest first, once the event log has archived them all."""
    params = {"aggregate_type": "run", "aggregate_id": run_id, "detail_type": detail_type, "limit": 100}
    found = await until(platform, headers, "/v1/events", lambda page: len(page["items"]) >= count, params)
    assert len(found["items"]) == count, found["items"]
    return sorted(found["items"], key=lambda e: e["occurred_at"])


def tasks_by_id(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["task_id"]: t for t in run["tasks"]}


def outcome(run: dict[str, Any]) -> list[tuple[str, str, int, Any]]:
    """What became of each task (for assertion messages)."""
    return [(t["task_id"], t["status"], t["attempt"], t["error"]) for t in run["tasks"]]


async def test_a_template_goal_runs_to_completion_with_real_tool_calls_and_data_between_tasks(
    platform: Platform, tool_target: ToolTarget
) -> None:
    headers = await tenant(platform, tool_target)
    report = f"/report-{uuid.uuid4().hex[:6]}"
    goal_id = await run_template(
        platform,
        headers,
        [
            {"task_id": "fetch", "title": "Fetch", "kind": "tool", "tool": "http_request",
             "input": {"url": f"{tool_target.url}/data"}},
            {"task_id": "total", "title": "Add the scores", "kind": "tool", "tool": "python", "depends_on": ["fetch"],
             "input": {"code": "result = sum(i['score'] for i in inputs['items'])",
                       "inputs": {"items": {"$from": "fetch", "path": "json.items"}}}},
            {"task_id": "names", "title": "Names", "kind": "tool", "tool": "json_query", "depends_on": ["fetch"],
             "input": {"data": {"$from": "fetch", "path": "json"}, "query": "items[].name"}},
            {"task_id": "send", "title": "Report", "kind": "tool", "tool": "http_request",
             "depends_on": ["total", "names"],
             "input": {"url": f"{tool_target.url}{report}", "method": "POST",
                       "json": {"total": {"$from": "total", "path": "result"},
                                "names": {"$from": "names", "path": "result"}}}},
        ],
    )  # fmt: skip
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "completed", outcome(run)
    assert (run["task_count"], run["tasks_done"]) == (4, 4)
    tasks = tasks_by_id(run)
    assert tasks["total"]["output"]["result"] == 10
    assert tasks["names"]["output"]["result"] == ["a", "b"]
    assert tasks["send"]["input"]["json"] == {"total": 10, "names": ["a", "b"]}
    assert tasks["send"]["output"]["status"] == 201
    assert tool_target.hits[report] == 1
    assert all(t["status"] == "completed" and t["attempt"] == 1 and t["steps"] == 1 for t in tasks.values())
    steps = (await platform.api.get(f"/v1/runs/{run['run_id']}/tasks/send/steps", headers=headers)).json()
    [step] = steps["items"]
    assert (step["kind"], step["detail"]["tool"], step["detail"]["status"]) == ("tool", "http_request", "succeeded")
    # the run's events are on the bus, in order
    for _ in range(100):
        events = await platform.api.get(
            "/v1/events", params={"aggregate_type": "run", "aggregate_id": run["run_id"], "limit": 100}, headers=headers
        )
        kinds = [e["detail_type"] for e in events.json()["items"]]
        if "RunCompleted" in kinds:
            break
        await asyncio.sleep(0.1)
    assert kinds.count("TaskCompleted") == 4, kinds
    assert kinds.count("RunCompleted") == 1, kinds


async def test_a_wide_plan_runs_within_its_parallelism_and_joins_every_output(platform: Platform) -> None:
    # twelve independent tasks with literal inputs, then one joining them: three at a time at most
    headers = await tenant(platform)
    leaves: list[dict[str, Any]] = [
        {"task_id": f"leaf{n:02d}", "title": f"leaf {n}", "kind": "tool", "tool": "json_query",
         "input": {"data": {"n": n}, "query": "n"}}
        for n in range(12)
    ]  # fmt: skip
    join = {
        "task_id": "join",
        "title": "join",
        "kind": "tool",
        "tool": "json_query",
        "depends_on": [t["task_id"] for t in leaves],
        "input": {"data": [{"$from": t["task_id"], "path": "result"} for t in leaves], "query": "sum(@)"},
    }
    goal_id = await run_template(platform, headers, [*leaves, join], max_parallelism=3)
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "completed", outcome(run)
    tasks = tasks_by_id(run)
    assert tasks["join"]["output"] == {"result": sum(range(12))}
    assert [tasks[t["task_id"]]["output"] for t in leaves] == [{"result": n} for n in range(12)]
    # no instant had more than three tasks between their start and their finish
    spans = sorted(
        (datetime.fromisoformat(t["first_started_at"]), datetime.fromisoformat(t["finished_at"])) for t in run["tasks"]
    )
    for started, _ in spans:
        assert sum(1 for s, f in spans if s <= started < f) <= 3, spans


async def test_a_failing_tool_is_retried_then_fails_the_run_and_blocks_its_dependents(platform: Platform) -> None:
    headers = await tenant(platform)
    goal_id = await run_template(
        platform,
        headers,
        [
            {"task_id": "ok", "title": "Fine", "kind": "tool", "tool": "text",
             "input": {"operation": "upper", "text": "x"}},
            {"task_id": "boom", "title": "Fails", "kind": "tool", "tool": "python",
             "input": {"code": "raise RuntimeError('no luck')"}, "retry": {"max_attempts": 3, "backoff_s": 0.1}},
            {"task_id": "after", "title": "Needs boom", "kind": "tool", "tool": "text", "depends_on": ["boom"],
             "input": {"operation": "upper", "text": "y"}},
            {"task_id": "later", "title": "Needs after", "kind": "tool", "tool": "text", "depends_on": ["after"],
             "input": {"operation": "upper", "text": "z"}},
        ],
    )  # fmt: skip
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "failed", run
    tasks = tasks_by_id(run)
    assert (tasks["boom"]["status"], tasks["boom"]["attempt"]) == ("failed", 3)
    assert "no luck" in tasks["boom"]["error"]["message"]
    assert tasks["after"]["status"] == tasks["later"]["status"] == "blocked"
    assert tasks["ok"]["status"] in ("completed", "cancelled")  # fail fast: a task still open when the run fails stops
    assert "boom" in run["error"]
    goal = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
    assert goal["status"] == "failed"
    assert "boom" in goal["reasons"][0]
    steps = (await platform.api.get(f"/v1/runs/{run['run_id']}/tasks/boom/steps", headers=headers)).json()["items"]
    assert [s["attempt"] for s in steps] == [1, 2, 3]


async def test_an_agent_task_loops_model_turns_and_tool_calls_until_it_answers(
    platform: Platform, providers: Providers
) -> None:
    providers.reset()
    headers = await tenant(platform)
    assert (await platform.api.post("/v1/models", json=GPT, headers=headers)).status_code == 201
    providers.openai.script(
        Reply(tool_calls=(FakeToolCall("python", {"code": "result = 6 * 7"}, id="c1"),)),
        Reply(json_answer={"answer": 42}),
    )
    goal_id = await run_template(
        platform,
        headers,
        [
            {"task_id": "think", "title": "Work out six times seven", "kind": "agent",
             "instructions": "Use the python tool.", "output_schema": {"type": "object", "required": ["answer"]}},
            {"task_id": "shout", "title": "Shout", "kind": "tool", "tool": "text", "depends_on": ["think"],
             "input": {"operation": "upper", "text": "done"}},
        ],
    )  # fmt: skip
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "completed", outcome(run)
    think = tasks_by_id(run)["think"]
    assert think["output"] == {"answer": 42}
    assert think["input_tokens"] > 0
    assert think["cost_micro_usd"] >= 0
    steps = (await platform.api.get(f"/v1/runs/{run['run_id']}/tasks/think/steps", headers=headers)).json()["items"]
    assert [s["kind"] for s in steps] == ["model", "tools", "model"]
    assert steps[1]["detail"]["results"][0]["output"]["result"] == 42
    second = providers.openai.requests[-1].body
    assert second["messages"][-1]["role"] == "tool"  # the tool's result went back to the model
    assert second["tools"]
    assert any(t["function"]["name"] == "python" for t in second["tools"])


async def test_a_run_is_paused_resumed_and_cancelled(platform: Platform) -> None:
    headers = await tenant(platform)
    slow = {"code": "import time\ntime.sleep(1.0)\nresult = 1"}
    goal_id = await run_template(
        platform,
        headers,
        [
            {"task_id": "a", "title": "A", "kind": "tool", "tool": "python", "input": slow},
            {"task_id": "b", "title": "B", "kind": "tool", "tool": "python", "input": slow, "depends_on": ["a"]},
            {"task_id": "c", "title": "C", "kind": "tool", "tool": "python", "input": slow, "depends_on": ["b"]},
        ],
    )
    run = await run_of(platform, headers, goal_id)
    paused = await platform.api.post(f"/v1/runs/{run['run_id']}/pause", json={"reason": "look"}, headers=headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    await asyncio.sleep(2.5)  # a finishes; nothing new starts
    held = (await platform.api.get(f"/v1/runs/{run['run_id']}", headers=headers)).json()
    assert held["status"] == "paused"
    assert tasks_by_id(held)["c"]["status"] in ("pending", "queued")
    assert tasks_by_id(held)["b"]["status"] in ("queued", "ready", "pending")
    resumed = await platform.api.post(f"/v1/runs/{run['run_id']}/resume", headers=headers)
    assert resumed.json()["status"] == "running"
    for _ in range(50):
        now = (await platform.api.get(f"/v1/runs/{run['run_id']}", headers=headers)).json()
        if tasks_by_id(now)["b"]["status"] == "completed":
            break
        await asyncio.sleep(0.1)
    cancelled = await platform.api.post(f"/v1/runs/{run['run_id']}/cancel", json={"reason": "enough"}, headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    goal = await finished_goal(platform, headers, goal_id)
    assert goal["status"] == "cancelled"
    final = (await platform.api.get(f"/v1/runs/{run['run_id']}", headers=headers)).json()
    assert tasks_by_id(final)["c"]["status"] in ("cancelled", "completed")
    again = await platform.api.post(f"/v1/runs/{run['run_id']}/resume", headers=headers)
    assert_problem(again, 409)
    missing = await platform.api.get(f"/v1/runs/{uuid.uuid4()}", headers=headers)
    assert_problem(missing, 404)


async def test_a_killed_runtime_worker_loses_nothing_and_repeats_no_side_effect(
    platform: Platform, tool_target: ToolTarget
) -> None:
    headers = await tenant(platform, tool_target)
    effect = f"/slow-{uuid.uuid4().hex[:6]}"
    goal_id = await run_template(
        platform,
        headers,
        [
            {"task_id": "post", "title": "Side effect", "kind": "tool", "tool": "http_request",
             "input": {"url": f"{tool_target.url}{effect}", "method": "POST", "json": {"n": 1}}},
            {"task_id": "next", "title": "After", "kind": "tool", "tool": "json_query", "depends_on": ["post"],
             "input": {"data": {"$from": "post", "path": "json"}, "query": "path"}},
        ],
    )  # fmt: skip
    run = await run_of(platform, headers, goal_id)
    for _ in range(100):  # the POST is in flight: L03 is waiting on the slow server, the runtime on L03
        if tool_target.hits.get(effect):
            break
        await asyncio.sleep(0.05)
    assert tool_target.hits.get(effect) == 1
    pool = platform.cloud.pools["RuntimeFunction"]
    killed = [w.process.pid for w in pool.workers.values() if w.current is not None and w.process is not None]
    assert killed, "no runtime worker was busy"
    for worker in list(pool.workers.values()):
        if worker.current is not None and worker.process is not None:
            worker.process.kill()
    final = await finished_run(platform, headers, goal_id)
    assert final["status"] == "completed", outcome(final)
    tasks = tasks_by_id(final)
    assert tool_target.hits[effect] == 1  # the side effect happened once
    assert tasks["post"]["attempt"] == 1
    assert tasks["post"]["invocations"] >= 2
    assert tasks["next"]["output"]["result"] == effect
    [step] = (await platform.api.get(f"/v1/runs/{run['run_id']}/tasks/post/steps", headers=headers)).json()["items"]
    assert step["detail"]["replayed"] is True  # the resumed task got the ledger's record, not a new call


async def test_every_event_delivered_twice_changes_nothing(platform: Platform, tool_target: ToolTarget) -> None:
    headers = await tenant(platform, tool_target)
    effect = f"/twice-{uuid.uuid4().hex[:6]}"
    tasks = [
        {"task_id": "a", "title": "A", "kind": "tool", "tool": "http_request",
         "input": {"url": f"{tool_target.url}{effect}", "method": "POST", "json": {"n": 1}}},
        {"task_id": "b", "title": "B", "kind": "tool", "tool": "python", "depends_on": ["a"],
         "input": {"code": "result = inputs['s'] * 2", "inputs": {"s": {"$from": "a", "path": "status"}}}},
        {"task_id": "c", "title": "C", "kind": "tool", "tool": "text", "depends_on": ["a"],
         "input": {"operation": "upper", "text": "c"}},
        {"task_id": "d", "title": "D", "kind": "tool", "tool": "json_query", "depends_on": ["b", "c"],
         "input": {"data": {"b": {"$from": "b", "path": "result"}, "c": {"$from": "c", "path": "result"}},
                   "query": "[b, c]"}},
    ]  # fmt: skip
    assert platform.cloud.router is not None
    platform.cloud.router.copies = 2
    try:
        goal_id = await run_template(platform, headers, tasks)
        twice = await finished_run(platform, headers, goal_id)
    finally:
        platform.cloud.router.copies = 1
    assert twice["status"] == "completed", outcome(twice)
    assert tool_target.hits[effect] == 1
    assert tasks_by_id(twice)["d"]["output"]["result"] == [402, "C"]
    assert all(t["attempt"] == 1 for t in twice["tasks"])
    # once each: the run's start and end, each task's completion and each tool call made (a call answered again
    # from the ledger, when a slow invocation lost its lease under load, is a replayed ToolCalled, not a new call;
    # ToolCalled is published off the tool call's path, by the outbox sweeper at the latest)
    wanted = {"RunStarted": 1, "RunCompleted": 1, "TaskCompleted": 4, "ToolCalled": 4}
    for _ in range(150):
        events = await platform.api.get(
            "/v1/events",
            params={"aggregate_type": "run", "aggregate_id": twice["run_id"], "limit": 100},
            headers=headers,
        )
        made = [e for e in events.json()["items"] if e["detail_type"] != "ToolCalled" or not e["detail"]["replayed"]]
        counts = {kind: [e["detail_type"] for e in made].count(kind) for kind in wanted}
        if counts == wanted:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)  # late duplicates would have arrived by now
    events = await platform.api.get(
        "/v1/events", params={"aggregate_type": "run", "aggregate_id": twice["run_id"], "limit": 100}, headers=headers
    )
    made = [e for e in events.json()["items"] if e["detail_type"] != "ToolCalled" or not e["detail"]["replayed"]]
    assert {kind: [e["detail_type"] for e in made].count(kind) for kind in wanted} == wanted


async def test_a_task_that_outlasts_its_invocation_continues_in_the_next(
    platform: Platform, providers: Providers
) -> None:
    providers.reset()
    headers = await tenant(platform)
    assert (await platform.api.post("/v1/models", json=GPT, headers=headers)).status_code == 201
    providers.openai.script(
        Reply(tool_calls=(FakeToolCall("text", {"operation": "upper", "text": "one"}, id="t1"),), delay_s=1.5),
        Reply(tool_calls=(FakeToolCall("text", {"operation": "upper", "text": "two"}, id="t2"),), delay_s=1.5),
        Reply(tool_calls=(FakeToolCall("text", {"operation": "upper", "text": "three"}, id="t3"),), delay_s=1.5),
        Reply(json_answer={"said": ["ONE", "TWO", "THREE"]}, delay_s=1.5),
    )
    goal_id = await run_template(
        platform, headers, [{"task_id": "talk", "title": "Talk a while", "kind": "agent", "timeout_s": 120}]
    )
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "completed", outcome(run)
    talk = tasks_by_id(run)["talk"]
    assert talk["output"] == {"said": ["ONE", "TWO", "THREE"]}
    assert talk["invocations"] >= 2
    assert talk["attempt"] == 1
    steps = (await platform.api.get(f"/v1/runs/{run['run_id']}/tasks/talk/steps", headers=headers)).json()["items"]
    assert [s["kind"] for s in steps] == ["model", "tools"] * 3 + ["model"]
    assert len(providers.openai.requests) == 4  # no model turn was asked twice
    events = await platform.api.get(
        "/v1/events", params={"aggregate_type": "run", "aggregate_id": run["run_id"], "detail_type": "TaskContinued"},
        headers=headers,
    )  # fmt: skip
    assert events.json()["items"], "no TaskContinued"


async def test_a_goal_planned_by_the_llm_runs_its_agent_and_tool_tasks(
    platform: Platform, providers: Providers
) -> None:
    providers.reset()
    headers = await tenant(platform)
    assert (await platform.api.post("/v1/models", json=GPT, headers=headers)).status_code == 201
    plan = {
        "tasks": [
            {"task_id": "find", "title": "Find the largest score", "kind": "agent",
             "instructions": "Use json_query on the scores.", "input": {"scores": [3, 9, 4]}},
            {"task_id": "say", "title": "Say it", "kind": "tool", "tool": "text", "depends_on": ["find"],
             "input": {"operation": "upper", "text": {"$from": "find", "path": "answer"}}},
        ]
    }  # fmt: skip
    providers.openai.script(
        Reply(json_answer=plan),  # the plan
        Reply(tool_calls=(FakeToolCall("json_query", {"data": [3, 9, 4], "query": "max(@)"}, id="q1"),)),
        Reply(json_answer={"answer": "the largest is nine"}),
    )
    submitted = await platform.api.post("/v1/goals", json={"text": "Which score is largest?"}, headers=headers)
    assert submitted.status_code == 202, submitted.text
    run = await finished_run(platform, headers, submitted.json()["goal_id"])
    assert run["status"] == "completed", outcome(run)
    tasks = tasks_by_id(run)
    assert tasks["say"]["output"]["result"] == "THE LARGEST IS NINE"
    steps = (await platform.api.get(f"/v1/runs/{run['run_id']}/tasks/find/steps", headers=headers)).json()["items"]
    assert steps[1]["detail"]["results"][0]["output"]["result"] == 9
    assert len(providers.openai.requests) == 3  # one plan, two agent turns
    turn = providers.openai.requests[1].body
    assert "Find the largest score" in turn["messages"][1]["content"]
    assert '"scores": [3, 9, 4]' in turn["messages"][1]["content"]


async def test_an_agent_on_the_embedded_local_model_completes(platform: Platform) -> None:
    headers = await tenant(platform)
    agent = await platform.api.post(
        "/v1/agents",
        json={
            "name": f"local-{uuid.uuid4().hex[:6]}",
            "system_prompt": "You greet people.",
            "model": {"name": "local/gemma3-270m", "temperature": 0},
            "tools": [],
            "max_steps": 2,
        },
        headers=headers,
    )
    assert agent.status_code == 201, agent.text
    schema = {
        "type": "object",
        "properties": {"greeting": {"type": "string", "maxLength": 40}},
        "required": ["greeting"],
        "additionalProperties": False,
    }
    goal_id = await run_template(
        platform,
        headers,
        [{"task_id": "greet", "title": "Greet Ada", "kind": "agent", "agent_id": agent.json()["agent_id"],
          "output_schema": schema, "timeout_s": 240}],
    )  # fmt: skip
    run = await finished_run(platform, headers, goal_id, timeout_s=240)
    assert run["status"] == "completed", outcome(run)
    greet = tasks_by_id(run)["greet"]
    assert isinstance(greet["output"]["greeting"], str)  # what it says may be poor; the platform stays correct
    steps = (await platform.api.get(f"/v1/runs/{run['run_id']}/tasks/greet/steps", headers=headers)).json()["items"]
    assert steps[0]["detail"]["model"] == "local/gemma3-270m"
    assert greet["output_tokens"] > 0


async def test_a_failed_run_is_replanned_as_a_new_plan_version_when_the_goal_asks(
    platform: Platform, providers: Providers
) -> None:
    providers.reset()
    headers = await tenant(platform)
    assert (await platform.api.post("/v1/models", json=GPT, headers=headers)).status_code == 201
    first = {
        "tasks": [
            {"task_id": "ok", "title": "Works", "kind": "tool", "tool": "text",
             "input": {"operation": "upper", "text": "a"}},
            {"task_id": "bad", "title": "Breaks", "kind": "tool", "tool": "python", "depends_on": ["ok"],
             "input": {"code": "raise ValueError('wrong approach')"}, "retry": {"max_attempts": 1}},
        ]
    }  # fmt: skip
    second = {
        "tasks": [
            {"task_id": "fixed", "title": "Another way", "kind": "tool", "tool": "python",
             "input": {"code": "result = 'A' + 'b'"}},
        ]
    }  # fmt: skip
    providers.openai.script(Reply(json_answer=first), Reply(json_answer=second))
    submitted = await platform.api.post(
        "/v1/goals",
        json={"text": "Combine letters", "strategy": "llm", "constraints": {"on_failure": "replan", "max_replans": 1}},
        headers=headers,
    )
    assert submitted.status_code == 202, submitted.text
    goal_id = submitted.json()["goal_id"]
    goal = await finished_goal(platform, headers, goal_id)
    assert goal["status"] == "completed", goal
    plans = (await platform.api.get(f"/v1/goals/{goal_id}/plans", headers=headers)).json()["items"]
    assert [(p["version"], p["supersedes_version"]) for p in plans] == [(2, 1), (1, None)]
    assert goal["plan_id"] == plans[0]["plan_id"]
    run = (await platform.api.get(f"/v1/runs/{goal['run_id']}", headers=headers)).json()
    assert tasks_by_id(run)["fixed"]["output"]["result"] == "Ab"
    told = providers.openai.requests[1].body["messages"][1]["content"]
    assert "A previous plan for this goal failed" in told
    assert "wrong approach" in told
    assert '"result": "A"' in told  # what completed is passed on


async def test_the_goals_budget_bounds_the_runs_model_calls(platform: Platform, providers: Providers) -> None:
    providers.reset()
    headers = await tenant(platform)
    assert (await platform.api.post("/v1/models", json=GPT, headers=headers)).status_code == 201
    providers.openai.script(Reply(text="never asked"))
    goal_id = await run_template(
        platform,
        headers,
        [{"task_id": "think", "title": "Think hard", "kind": "agent", "retry": {"max_attempts": 1}}],
        budget_micro_usd=1,
    )
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "failed", outcome(run)
    think = tasks_by_id(run)["think"]
    assert think["error"]["type"] == "budget_exceeded", think["error"]
    assert providers.openai.requests == []  # refused before the provider was asked
    budgets = (await platform.api.get("/v1/budgets", headers=headers)).json()["items"]
    assert [(b["scope"], b["scope_id"], b["limit_micro_usd"]) for b in budgets] == [("run", run["run_id"], 1)]


async def test_each_attempt_has_the_whole_task_timeout(platform: Platform, providers: Providers) -> None:
    providers.reset()
    headers = await tenant(platform)
    assert (await platform.api.post("/v1/models", json=GPT, headers=headers)).status_code == 201
    slow_turn = Reply(tool_calls=(FakeToolCall("text", {"operation": "upper", "text": "x"}, id="t"),), delay_s=1.2)
    providers.openai.script(slow_turn, slow_turn)
    goal_id = await run_template(
        platform,
        headers,
        [{"task_id": "slow", "title": "Too slow", "kind": "agent", "timeout_s": 1,
          "retry": {"max_attempts": 2, "backoff_s": 0.1}}],
    )  # fmt: skip
    run = await finished_run(platform, headers, goal_id)
    slow = tasks_by_id(run)["slow"]
    assert (run["status"], slow["attempt"], slow["error"]["type"]) == ("failed", 2, "timeout"), outcome(run)
    assert len(providers.openai.requests) == 2  # the second attempt got its own second, and used it


async def test_an_operator_retries_a_failed_task_and_the_reopened_run_completes_and_is_scored_again(
    platform: Platform, tool_target: ToolTarget
) -> None:
    # GIVEN a run whose fetch fails at once (the tenant has not allowed the host yet), blocking the task after it,
    # while a slow independent task is still running (the failure cancels it)
    headers = await tenant(platform)
    data = f"/data-{uuid.uuid4().hex[:6]}"
    goal_id = await run_template(
        platform,
        headers,
        [
            {"task_id": "fetch", "title": "Fetch", "kind": "tool", "tool": "http_request",
             "input": {"url": f"{tool_target.url}{data}"}, "retry": {"max_attempts": 1}},
            {"task_id": "total", "title": "Add the scores", "kind": "tool", "tool": "python", "depends_on": ["fetch"],
             "input": {"code": "result = sum(i['score'] for i in inputs['items'])",
                       "inputs": {"items": {"$from": "fetch", "path": "json.items"}}}},
            {"task_id": "slow", "title": "Slow", "kind": "tool", "tool": "python",
             "input": {"code": "import time\ntime.sleep(2)\nresult = 'slept'"}},
        ],
    )  # fmt: skip
    failed = await finished_run(platform, headers, goal_id)
    run_id = failed["run_id"]
    tasks = tasks_by_id(failed)
    assert failed["status"] == "failed", outcome(failed)
    assert (tasks["fetch"]["status"], tasks["fetch"]["error"]["type"]) == ("failed", "tool_denied")
    assert (tasks["total"]["status"], tasks["slow"]["status"]) == ("blocked", "cancelled")
    await run_events(platform, headers, run_id, "RunEvaluated", 1)  # L06 scored the failure

    # WHEN the operator allows the host and retries the failed task
    allowed = await platform.api.patch(
        "/v1/tools/http_request", json={"config": {"allowed_hosts": [tool_target.host]}}, headers=headers
    )
    assert allowed.status_code == 200, allowed.text
    retried = await platform.api.post(
        f"/v1/runs/{run_id}/tasks/fetch/retry", json={"reason": "host allowed now"}, headers=headers
    )

    # THEN the run is running again, the task on its next attempt with a fresh budget
    assert retried.status_code == 200, retried.text
    reopened = retried.json()
    assert (reopened["status"], reopened["error"], reopened["finished_at"]) == ("running", None, None)
    fetch = tasks_by_id(reopened)["fetch"]
    assert (fetch["attempt"], fetch["attempt_base"], fetch["max_attempts"]) == (2, 1, 1)

    # AND the run completes: the blocked task ran with the new output, the cancelled one resumed its attempt
    done = await until(platform, headers, f"/v1/runs/{run_id}", lambda run: run["status"] in FINISHED)
    assert done["status"] == "completed", outcome(done)
    tasks = tasks_by_id(done)
    assert tasks["total"]["output"]["result"] == 10
    assert (tasks["slow"]["output"]["result"], tasks["slow"]["attempt"]) == ("slept", 1)
    assert (tasks["fetch"]["attempt"], tasks["fetch"]["error"]) == (2, None)
    assert tool_target.hits[data] == 1  # the denied attempt reached nothing; the retry, once
    steps = (await platform.api.get(f"/v1/runs/{run_id}/tasks/fetch/steps", headers=headers)).json()["items"]
    assert [(s["attempt"], s["detail"]["status"]) for s in steps] == [(1, "failed"), (2, "succeeded")]

    # AND the goal completed, with no failure left in its reasons
    goal = await until(platform, headers, f"/v1/goals/{goal_id}", lambda g: g["status"] == "completed")
    assert goal["reasons"] == []

    # AND the reopening is in the event log, and L06 scored the run again: its evaluation is of the completed end
    [event] = await run_events(platform, headers, run_id, "RunReopened", 1)
    assert {k: event["detail"][k] for k in ("task_id", "reason", "reopened_by", "goal_id")} == {
        "task_id": "fetch",
        "reason": "host allowed now",
        "reopened_by": reopened["requested_by"],
        "goal_id": goal_id,
    }
    evaluated = await run_events(platform, headers, run_id, "RunEvaluated", 2)
    assert [e["detail"]["outcome"] for e in evaluated] == ["failed", "completed"]
    runs_scores = await platform.api.get(
        "/v1/evaluations", params={"run_id": run_id, "subject_type": "run"}, headers=headers
    )
    [evaluation] = runs_scores.json()["items"]
    assert (evaluation["status"], evaluation["output"]["outcome"], evaluation["task_count"]) == ("done", "completed", 3)
    assert (evaluation["passed"], evaluation["score"], evaluation["scores"]["completion"]) == (True, 1.0, 1.0)
    assert (
        evaluated[1]["detail"]["evaluation_id"]
        == evaluation["evaluation_id"]
        != evaluated[0]["detail"]["evaluation_id"]
    )


async def test_a_retry_gets_a_fresh_attempt_budget_and_only_a_failed_runs_failed_task_can_be_retried(
    platform: Platform,
) -> None:
    headers = await tenant(platform)
    goal_id = await run_template(
        platform,
        headers,
        [
            {"task_id": "ok", "title": "Fine", "kind": "tool", "tool": "text",
             "input": {"operation": "upper", "text": "x"}},
            {"task_id": "boom", "title": "Fails", "kind": "tool", "tool": "python", "depends_on": ["ok"],
             "input": {"code": "raise RuntimeError('no luck')"}, "retry": {"max_attempts": 2, "backoff_s": 0.1}},
        ],
    )  # fmt: skip
    failed = await finished_run(platform, headers, goal_id)
    run_id = failed["run_id"]
    assert (failed["status"], tasks_by_id(failed)["boom"]["attempt"]) == ("failed", 2), outcome(failed)
    url = f"/v1/runs/{run_id}/tasks/boom/retry"

    # a task that did not fail, a task or run that is not there, another tenant, and bad bodies are refused
    assert (
        "completed"
        in assert_problem(await platform.api.post(f"/v1/runs/{run_id}/tasks/ok/retry", headers=headers), 409)["detail"]
    )
    assert_problem(await platform.api.post(f"/v1/runs/{run_id}/tasks/nope/retry", headers=headers), 404)
    assert_problem(await platform.api.post(f"/v1/runs/{uuid.uuid4()}/tasks/boom/retry", headers=headers), 404)
    assert_problem(await platform.api.post(url, headers=await tenant(platform)), 404)
    assert_problem(await platform.api.post(url, json={"reason": "x", "force": True}, headers=headers), 422)
    assert_problem(await platform.api.post(url, json={"reason": "x" * 2001}, headers=headers), 422)

    # WHEN two operators retry it at once: one reopens the run, the other finds it running
    answers = await asyncio.gather(*(platform.api.post(url, headers=headers) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]

    # THEN the task gets max_attempts (2) more attempts, not one, and the run fails again when they fail
    again = await until(platform, headers, f"/v1/runs/{run_id}", lambda run: run["status"] in FINISHED)
    boom = tasks_by_id(again)["boom"]
    assert (again["status"], boom["status"], boom["attempt"], boom["attempt_base"]) == ("failed", "failed", 4, 2)
    steps = (await platform.api.get(f"/v1/runs/{run_id}/tasks/boom/steps", headers=headers)).json()["items"]
    assert [s["attempt"] for s in steps] == [1, 2, 3, 4]

    # AND L06 scored each end: the run's one evaluation is of the second failure
    evaluated = await run_events(platform, headers, run_id, "RunEvaluated", 2)
    assert [e["detail"]["outcome"] for e in evaluated] == ["failed", "failed"]
    runs_scores = await platform.api.get(
        "/v1/evaluations", params={"run_id": run_id, "subject_type": "run"}, headers=headers
    )
    [evaluation] = runs_scores.json()["items"]
    assert evaluation["evaluation_id"] == evaluated[1]["detail"]["evaluation_id"]
    assert (evaluation["status"], evaluation["passed"], evaluation["score"]) == ("done", False, 0.0)
    [event] = await run_events(platform, headers, run_id, "RunReopened", 1)
    assert event["detail"]["task_id"] == "boom"


async def test_a_run_is_revalidated_by_etag_and_a_cancelled_run_is_never_reopened(platform: Platform) -> None:
    headers = await tenant(platform)
    slow = {"code": "import time\ntime.sleep(2)\nresult = 1"}
    goal_id = await run_template(
        platform,
        headers,
        [
            {"task_id": "a", "title": "A", "kind": "tool", "tool": "python", "input": slow},
            {"task_id": "b", "title": "B", "kind": "tool", "tool": "python", "input": slow, "depends_on": ["a"]},
        ],
    )
    run_id = (await run_of(platform, headers, goal_id))["run_id"]
    url = f"/v1/runs/{run_id}"
    running = await platform.api.get(url, headers=headers)
    assert running.status_code == 200, running.text
    first = running.headers["etag"]
    assert first.startswith('"')
    assert "no-cache" in running.headers["cache-control"]

    # WHEN the run changes (cancelled), the old ETag gets the new representation with a new ETag
    assert (await platform.api.post(f"{url}/cancel", headers=headers)).status_code == 200
    changed = await platform.api.get(url, headers={**headers, "if-none-match": first})
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "cancelled"
    current = changed.headers["etag"]
    assert current != first

    # THEN while it stays as it is, its ETag (strong or weak, alone or in a list) answers 304 without a body
    for tag in (current, f"W/{current}", f'"stale", {current}'):
        unchanged = await platform.api.get(url, headers={**headers, "if-none-match": tag})
        assert unchanged.status_code == 304, unchanged.text
        assert (unchanged.content, unchanged.headers["etag"]) == (b"", current)
    stale = await platform.api.get(url, headers={**headers, "if-none-match": '"stale"'})
    assert (stale.status_code, stale.headers["etag"], stale.json()) == (200, current, changed.json())

    # AND a cancelled run is never reopened, whatever its tasks
    for task_id in ("a", "b"):
        refused = assert_problem(await platform.api.post(f"{url}/tasks/{task_id}/retry", headers=headers), 409)
        assert "cancelled" in refused["detail"]
