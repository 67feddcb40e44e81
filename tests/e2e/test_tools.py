"""L03 tool execution through the local cloud: the registry of built-ins with each tenant's settings, calls through
the ledger (a repeated call returns the recorded result and does not run again), the python sandbox and the
http_request tool against a loopback server, and the ToolCalled events."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem
from tests.support.tool_target import ToolTarget

pytestmark = pytest.mark.e2e

BUILTINS = {"document_search", "http_request", "json_query", "python", "text"}


async def _tenant(platform: Platform) -> dict[str, str]:
    return platform.auth((await platform.new_tenant(f"tools-{uuid.uuid4().hex[:8]}"))["api_key"])


async def _invoke(platform: Platform, headers: dict[str, str], tool: str, arguments: dict[str, Any], **key: Any) -> Any:
    body = {"run_id": str(key.get("run_id", uuid.uuid4())), "task_id": key.get("task_id", "t1"), "step": 0}
    body |= {"call_id": key.get("call_id", "c1"), "input": arguments}
    if "step" in key:
        body["step"] = key["step"]
    return await platform.api.post(f"/v1/tools/{tool}/invoke", json=body, headers=headers)


async def test_the_registry_lists_the_builtins_with_schemas_and_settings(platform: Platform) -> None:
    headers = await _tenant(platform)
    listed = await platform.api.get("/v1/tools", headers=headers)
    assert listed.status_code == 200, listed.text
    tools = {t["name"]: t for t in listed.json()["items"]}
    assert set(tools) == BUILTINS
    assert tools["json_query"]["input_schema"]["required"] == ["data", "query"]
    assert tools["http_request"]["side_effects"] is True
    assert tools["python"]["enabled"] is True
    one = await platform.api.get("/v1/tools/text", headers=headers)
    assert one.headers["etag"] == '"v0"'
    assert_problem(await platform.api.get("/v1/tools/no_such_tool", headers=headers), 404)


async def test_a_call_runs_once_and_a_repeat_returns_the_recorded_result(platform: Platform) -> None:
    headers = await _tenant(platform)
    run_id = uuid.uuid4()
    arguments = {"data": {"items": [{"n": 1}, {"n": 2}]}, "query": "items[].n"}
    first = await _invoke(platform, headers, "json_query", arguments, run_id=run_id)
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["output"], first.json()["replayed"]) == (
        "succeeded",
        {"result": [1, 2]},
        False,
    )
    again = await _invoke(platform, headers, "json_query", arguments, run_id=run_id)
    assert again.json()["replayed"] is True
    assert again.json()["output"] == first.json()["output"]
    assert again.json()["finished_at"] == first.json()["finished_at"]
    # the same call id with other input is another call: refused, not confused with the first
    other = await _invoke(platform, headers, "json_query", {**arguments, "query": "items"}, run_id=run_id)
    assert_problem(other, 409)
    calls = await platform.api.get("/v1/tool-calls", params={"run_id": str(run_id)}, headers=headers)
    assert [c["call_id"] for c in calls.json()["items"]] == ["c1"]
    # a call that happened is answered as it happened, even once the tool is disabled
    assert (
        await platform.api.patch("/v1/tools/json_query", json={"enabled": False}, headers=headers)
    ).status_code == 200
    after = await _invoke(platform, headers, "json_query", arguments, run_id=run_id)
    assert (after.status_code, after.json()["replayed"]) == (200, True)
    assert_problem(await _invoke(platform, headers, "json_query", arguments, run_id=run_id, call_id="new"), 403)
    for _ in range(200):  # ToolCalled: the call, and the replays marked as such (published off the call's path)
        events = await platform.api.get("/v1/events", params={"detail_type": "ToolCalled"}, headers=headers)
        items = events.json()["items"]
        if len(items) >= 3:
            break
        await asyncio.sleep(0.1)
    assert sorted(e["detail"]["replayed"] for e in items) == [False, True, True]


async def test_callers_racing_on_one_key_get_one_recorded_call(platform: Platform) -> None:
    # json_query is instant (run inside the transaction that records it), python is claimed first then finished:
    # either way, concurrent requests for one key leave one record, and every answer is that record's
    headers = await _tenant(platform)
    for tool, arguments in (
        ("json_query", {"data": {"n": 7}, "query": "n"}),
        ("python", {"code": "import time\ntime.sleep(0.2)\nresult = 7"}),
    ):
        run_id = uuid.uuid4()
        answers = await asyncio.gather(*(_invoke(platform, headers, tool, arguments, run_id=run_id) for _ in range(4)))
        done = [a.json() for a in answers if a.status_code == 200]
        # a claimed call still running answers 409 with Retry-After (the runtime waits and asks again)
        assert all(a.status_code == 200 or (a.status_code == 409 and a.headers["retry-after"]) for a in answers)
        assert done, tool
        assert {json.dumps(d["output"]) for d in done} == {json.dumps(done[0]["output"])}, tool
        assert [d["replayed"] for d in done].count(False) <= 1
        again = await _invoke(platform, headers, tool, arguments, run_id=run_id)
        assert (again.json()["replayed"], again.json()["output"]["result"]) == (True, 7)
        calls = await platform.api.get("/v1/tool-calls", params={"run_id": str(run_id)}, headers=headers)
        assert len(calls.json()["items"]) == 1, tool


async def test_a_calls_duration_is_the_tools_own_running_time(platform: Platform) -> None:
    from datetime import datetime

    headers = await _tenant(platform)
    slept = await _invoke(platform, headers, "python", {"code": "import time\ntime.sleep(0.3)\nresult = 1"})
    call = slept.json()
    span_ms = (datetime.fromisoformat(call["finished_at"]) - datetime.fromisoformat(call["started_at"])).total_seconds()
    # the tool's time (the sandbox's process and its sleep) is in it; the ledger's claim and finish are not
    assert 300 <= call["duration_ms"] <= span_ms * 1000 + 1
    quick = (await _invoke(platform, headers, "json_query", {"data": 1, "query": "@"})).json()
    assert 0 <= quick["duration_ms"] < 50


async def test_bad_input_is_refused_and_nothing_is_recorded(platform: Platform) -> None:
    headers = await _tenant(platform)
    run_id = uuid.uuid4()
    bad = await _invoke(platform, headers, "json_query", {"query": "a"}, run_id=run_id)
    problem = assert_problem(bad, 422)
    assert "data" in problem["detail"]
    invalid_query = await _invoke(
        platform, headers, "json_query", {"data": 1, "query": "[[["}, run_id=run_id, call_id="c2"
    )
    assert invalid_query.json()["status"] == "failed"
    assert invalid_query.json()["error"]["kind"] == "bad_input"
    calls = await platform.api.get("/v1/tool-calls", params={"run_id": str(run_id)}, headers=headers)
    assert [c["call_id"] for c in calls.json()["items"]] == ["c2"]


async def test_text_operations(platform: Platform) -> None:
    headers = await _tenant(platform)
    counted = await _invoke(platform, headers, "text", {"operation": "count", "text": "a b\nc"})
    assert counted.json()["output"]["result"] == {"characters": 5, "words": 3, "lines": 2}
    between = await _invoke(
        platform, headers, "text", {"operation": "between", "text": "<a>1</a><a>2</a>", "start": "<a>", "end": "</a>"}
    )
    assert between.json()["output"]["result"] == ["1", "2"]


async def test_settings_disable_require_approval_and_bound_limits(platform: Platform) -> None:
    headers = await _tenant(platform)
    changed = await platform.api.patch(
        "/v1/tools/text", json={"enabled": False}, headers={**headers, "If-Match": '"v0"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"v1"'
    assert_problem(await _invoke(platform, headers, "text", {"operation": "upper", "text": "x"}), 403)
    stale = await platform.api.patch("/v1/tools/text", json={"enabled": True}, headers={**headers, "If-Match": '"v0"'})
    assert_problem(stale, 412)
    too_long = await platform.api.patch("/v1/tools/python", json={"limits": {"timeout_s": 9999}}, headers=headers)
    assert_problem(too_long, 422)
    bad_config = await platform.api.patch(
        "/v1/tools/http_request", json={"config": {"allowed_hosts": "x"}}, headers=headers
    )
    assert_problem(bad_config, 422)
    unusable = await platform.api.patch(
        "/v1/tools/http_request", json={"config": {"allowed_hosts": ["a*.example.com"]}}, headers=headers
    )
    assert_problem(unusable, 422)
    approval = await platform.api.patch("/v1/tools/json_query", json={"requires_approval": True}, headers=headers)
    assert approval.json()["requires_approval"] is True
    waiting = await _invoke(platform, headers, "json_query", {"data": 1, "query": "@"})
    assert waiting.status_code == 202, waiting.text  # not made: a human is asked first (supervision's approval)
    assert waiting.json()["status"] == "awaiting_approval"
    assert "approval" in waiting.json()["reasons"][0]


async def test_python_runs_in_a_sandbox(platform: Platform) -> None:
    headers = await _tenant(platform)
    ran = await _invoke(
        platform, headers, "python", {"code": "print('hi')\nresult = sum(inputs['n'])", "inputs": {"n": [1, 2, 3]}}
    )
    assert ran.status_code == 200, ran.text
    assert ran.json()["output"] == {"result": 6, "stdout": "hi\n", "stderr": ""}
    escapes = {
        "network": "import socket\nsocket.create_connection(('127.0.0.1', 80))",
        "files": "result = open('/etc/passwd').read()",
        "processes": "import os\nos.system('echo escaped')",
    }
    for step, (what, code) in enumerate(escapes.items()):
        denied = await _invoke(platform, headers, "python", {"code": code}, step=step + 1)
        assert denied.json()["status"] == "failed", what
        assert denied.json()["error"]["kind"] == "denied", (what, denied.json()["error"])
    slow = await platform.api.patch("/v1/tools/python", json={"limits": {"timeout_s": 1}}, headers=headers)
    assert slow.status_code == 200
    looped = await _invoke(platform, headers, "python", {"code": "while True:\n    pass"}, step=9)
    assert looped.json()["error"]["kind"] == "timeout"


async def test_http_request_reaches_only_allowed_hosts_and_runs_once(
    platform: Platform, tool_target: ToolTarget
) -> None:
    headers = await _tenant(platform)
    url = f"{tool_target.url}/data"
    refused = await _invoke(platform, headers, "http_request", {"url": url})
    assert refused.json()["error"]["kind"] == "denied"  # the tenant allows no host yet
    allowed = await platform.api.patch(
        "/v1/tools/http_request", json={"config": {"allowed_hosts": [tool_target.host]}}, headers=headers
    )
    assert allowed.status_code == 200, allowed.text
    got = await _invoke(platform, headers, "http_request", {"url": url}, step=1)
    assert got.json()["status"] == "succeeded", got.text
    assert got.json()["output"]["json"]["items"][1]["score"] == 7
    metadata = await _invoke(
        platform, headers, "http_request", {"url": "http://169.254.169.254/latest/meta-data/"}, step=2
    )
    assert metadata.json()["error"]["kind"] == "denied"
    # a side effect happens once, however often the call is asked for
    run_id = uuid.uuid4()
    path = f"/orders-{uuid.uuid4().hex[:6]}"
    post = {"url": f"{tool_target.url}{path}", "method": "POST", "json": {"item": "x"}}
    answers = await asyncio.gather(*(_invoke(platform, headers, "http_request", post, run_id=run_id) for _ in range(5)))
    assert {a.status_code for a in answers} <= {200, 409}  # 409: asked while the first was still running
    assert tool_target.hits[path] == 1
    final = await _invoke(platform, headers, "http_request", post, run_id=run_id)
    assert final.json()["output"]["status"] == 201
    assert tool_target.hits[path] == 1


async def test_the_ledger_pages_a_runs_calls_in_order_and_the_tenants_newest_first(platform: Platform) -> None:
    headers = await _tenant(platform)
    run_id = uuid.uuid4()
    for step in range(3):
        made = await _invoke(
            platform, headers, "text", {"operation": "upper", "text": f"s{step}"}, run_id=run_id, step=step
        )
        assert made.status_code == 200, made.text
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"run_id": str(run_id), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await platform.api.get("/v1/tool-calls", params=params, headers=headers)).json()
        seen += [c["step"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [0, 1, 2]
    newest = (await platform.api.get("/v1/tool-calls", params={"limit": 1}, headers=headers)).json()
    assert newest["items"][0]["step"] == 2
    after = await platform.api.get(
        "/v1/tool-calls", params={"limit": 5, "cursor": newest["next_cursor"]}, headers=headers
    )
    assert [c["step"] for c in after.json()["items"]] == [1, 0]
    assert_problem(await platform.api.get("/v1/tool-calls", params={"cursor": "nonsense"}, headers=headers), 400)


async def test_a_call_whose_executor_died_is_closed_as_interrupted_never_run_again(platform: Platform) -> None:
    import asyncpg

    headers = await _tenant(platform)
    tenant_id = (await platform.api.get("/v1/tenant", headers=headers)).json()["tenant_id"]
    run_id = uuid.uuid4()
    arguments = {"operation": "upper", "text": "x"}
    # as an invocation killed mid-call leaves it: claimed, running, and now past its lease
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        await conn.execute(
            """INSERT INTO tool_calls (tenant_id, run_id, task_id, step, call_id, tool_name, tool_version, input,
                                       status, lease_until)
               VALUES ($1, $2, 't1', 0, 'c1', 'text', 1, $3::jsonb, 'running', now() - interval '1 second')""",
            uuid.UUID(tenant_id),
            run_id,
            json.dumps(arguments),
        )
    finally:
        await conn.close()
    answer = await _invoke(platform, headers, "text", arguments, run_id=run_id)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["error"]["kind"]) == ("failed", "interrupted")
    again = await _invoke(platform, headers, "text", arguments, run_id=run_id)
    assert (again.json()["replayed"], again.json()["error"]["kind"]) == (True, "interrupted")


async def test_document_search_finds_the_tenants_documents_through_the_data_layer(platform: Platform) -> None:
    headers = await _tenant(platform)
    other = await _tenant(platform)
    for who, title in ((headers, "Quarterly tariff report"), (other, "Tariff notes of another tenant")):
        made = await platform.api.post(
            "/v1/documents", json={"title": title, "content": "Tariffs rose by 4 percent. " * 40}, headers=who
        )
        assert made.status_code == 201, made.text
    found = await _invoke(platform, headers, "document_search", {"query": "tariffs", "content_chars": 30})
    assert found.json()["status"] == "succeeded", found.text
    documents = found.json()["output"]["documents"]
    assert [d["title"] for d in documents] == ["Quarterly tariff report"]  # never another tenant's
    assert documents[0]["content"] == "Tariffs rose by 4 percent. Tar"
    assert documents[0]["truncated"] is True
