"""Remote MCP servers through the local cloud: a real MCP server (the SDK's FastMCP over streamable HTTP) on
loopback is registered by URL, its tools become the tenant's Strata tools, are called through the ledger (a
repeated call answered from the record, the server's side effect made once), fail cleanly, run as plan tasks, and
go when the server is removed; URLs that point inside the platform's network are refused."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem
from tests.e2e.test_runs import finished_run, run_template, tasks_by_id
from tests.support.mcp_server import McpTestServer

pytestmark = pytest.mark.e2e


async def _tenant_with_server(platform: Platform, mcp_server: McpTestServer) -> tuple[dict[str, str], dict[str, Any]]:
    headers = platform.auth((await platform.new_tenant(f"mcp-{uuid.uuid4().hex[:8]}"))["api_key"])
    made = await platform.api.post(
        "/v1/mcp-servers",
        json={"name": "test", "url": mcp_server.url, "headers": {"X-Api-Key": "secret-value"}},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    return headers, made.json()


async def _invoke(
    platform: Platform, headers: dict[str, str], name: str, arguments: dict[str, Any], run_id: uuid.UUID
) -> Any:
    return await platform.api.post(
        f"/v1/tools/{name}/invoke",
        json={"run_id": str(run_id), "task_id": "t", "step": 0, "call_id": "c", "input": arguments},
        headers=headers,
    )


async def test_a_registered_servers_tools_become_strata_tools_called_through_the_ledger(
    platform: Platform, mcp_server: McpTestServer
) -> None:
    headers, server = await _tenant_with_server(platform, mcp_server)
    assert server["headers"] == ["X-Api-Key"]  # names only, never the value
    assert server["server_info"]["name"] == "strata-test-tools"
    names = {t["remote_name"]: t["name"] for t in server["tools"]}
    assert names == {"add": "mcp_test_add", "Record.Note": "mcp_test_record_note", "explode": "mcp_test_explode"}
    listed = (await platform.api.get("/v1/tools", params={"limit": 200}, headers=headers)).json()["items"]
    add = next(t for t in listed if t["name"] == "mcp_test_add")
    assert (add["source"], add["server"]) == ("mcp", "test")
    assert add["input_schema"]["required"] == ["a", "b"]

    summed = await _invoke(platform, headers, "mcp_test_add", {"a": 2, "b": 3}, uuid.uuid4())
    assert summed.status_code == 200, summed.text
    assert summed.json()["status"] == "succeeded", summed.json()
    assert summed.json()["output"]["structured"] == {"result": 5}
    assert summed.json()["output"]["content"][0]["text"] == "5"

    run_id = uuid.uuid4()
    before = len(mcp_server.notes)
    first = await _invoke(platform, headers, "mcp_test_record_note", {"note": "once"}, run_id)
    again = await _invoke(platform, headers, "mcp_test_record_note", {"note": "once"}, run_id)
    assert first.json()["status"] == again.json()["status"] == "succeeded"
    assert again.json()["replayed"] is True
    assert len(mcp_server.notes) == before + 1  # the server's side effect happened once

    failed = await _invoke(platform, headers, "mcp_test_explode", {"reason": "no fuel"}, uuid.uuid4())
    assert failed.json()["status"] == "failed"
    assert failed.json()["error"]["kind"] == "error"
    assert "no fuel" in failed.json()["error"]["message"]
    wrong = await _invoke(platform, headers, "mcp_test_add", {"a": "two"}, uuid.uuid4())
    assert_problem(wrong, 422)


async def test_an_mcp_tool_runs_as_a_plan_task(platform: Platform, mcp_server: McpTestServer) -> None:
    headers, _ = await _tenant_with_server(platform, mcp_server)
    goal_id = await run_template(
        platform,
        headers,
        [
            {"task_id": "sum", "title": "Add", "kind": "tool", "tool": "mcp_test_add", "input": {"a": 20, "b": 22}},
            {"task_id": "show", "title": "Show", "kind": "tool", "tool": "json_query", "depends_on": ["sum"],
             "input": {"data": {"$from": "sum", "path": "structured"}, "query": "result"}},
        ],
    )  # fmt: skip
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "completed", run
    assert tasks_by_id(run)["show"]["output"]["result"] == 42


async def test_servers_are_refreshed_removed_and_refused_inside_the_network(
    platform: Platform, mcp_server: McpTestServer
) -> None:
    headers, server = await _tenant_with_server(platform, mcp_server)
    twice = await platform.api.post("/v1/mcp-servers", json={"name": "test", "url": mcp_server.url}, headers=headers)
    assert_problem(twice, 409)
    refreshed = await platform.api.post(f"/v1/mcp-servers/{server['server_id']}/refresh", headers=headers)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["version"] == server["version"] + 1
    for url in ("http://10.1.2.3/mcp", "http://169.254.169.254/latest", "http://127.0.0.1:1/mcp", "ftp://x.example/"):
        refused = await platform.api.post("/v1/mcp-servers", json={"name": "inside", "url": url}, headers=headers)
        assert_problem(refused, 422)
    gone = await platform.api.delete(f"/v1/mcp-servers/{server['server_id']}", headers=headers)
    assert gone.status_code == 204
    assert_problem(await platform.api.get("/v1/tools/mcp_test_add", headers=headers), 404)
    assert_problem(await platform.api.get(f"/v1/mcp-servers/{server['server_id']}", headers=headers), 404)
