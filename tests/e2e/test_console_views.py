"""The console's pages and data views over HTTP (no browser): what each view holds, what a narrow credential sees,
and the error paths."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem
from tests.e2e.test_runs import finished_run, run_template
from tests.e2e.test_supervision import _key

pytestmark = pytest.mark.e2e

TEXT_TASK = {"task_id": "up", "title": "Upper", "kind": "tool", "tool": "text",
             "input": {"operation": "upper", "text": "console"}}  # fmt: skip


async def _tenant(platform: Platform) -> dict[str, str]:
    return platform.auth((await platform.new_tenant(f"views-{uuid.uuid4().hex[:8]}"))["api_key"])


async def test_the_overview_counts_runs_spend_approvals_dead_letters_and_reports_every_layer(
    platform: Platform,
) -> None:
    headers = await _tenant(platform)
    budget = {"scope": "tenant", "period": "day", "limit_micro_usd": 5_000_000}
    assert (await platform.api.post("/v1/budgets", json=budget, headers=headers)).status_code == 201
    run = await finished_run(platform, headers, await run_template(platform, headers, [TEXT_TASK]))
    assert run["status"] == "completed"

    for state, count in (("completed", 1), ("failed", 0)):
        listed = await platform.api.get("/v1/runs", params={"status": state}, headers=headers)
        assert len(listed.json()["items"]) == count, listed.text
    of_goal = await platform.api.get("/v1/runs", params={"goal_id": run["goal_id"]}, headers=headers)
    assert [r["run_id"] for r in of_goal.json()["items"]] == [run["run_id"]]
    assert_problem(await platform.api.get("/v1/runs", params={"status": "done"}, headers=headers), 422)

    answer = await platform.api.get("/v1/console/overview", headers=headers)
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    assert view["principal"]["scopes"] == ["admin"]
    assert all(view[part]["ok"] for part in ("runs", "spend", "alerts", "approvals", "dead_letters", "status")), view
    runs = view["runs"]["data"]
    assert runs["runs"] == {"running": 0, "paused": 0, "completed": 1, "failed": 0, "cancelled": 0}
    assert runs["tasks"] == {"running": 0, "waiting": 0, "awaiting_approval": 0}
    spend = view["spend"]["data"]
    assert (spend["today_micro_usd"], spend["calls_today"]) == (0, 0)
    [daily] = spend["budgets"]
    assert (daily["period"], daily["limit_micro_usd"]) == ("day", 5_000_000)
    assert view["approvals"]["data"] == {"count": 0, "more": False, "items": []}
    assert view["alerts"]["data"]["count"] == 0
    layers = view["status"]["data"]["layers"]
    assert sorted(layer["number"] for layer in layers) == [f"L{n:02d}" for n in range(1, 12)]


async def test_a_narrow_credential_sees_only_what_its_scopes_allow(platform: Platform) -> None:
    headers = await _tenant(platform)
    narrow, _ = await _key(platform, headers, "console:read", "runs:read")
    view = (await platform.api.get("/v1/console/overview", headers=narrow)).json()
    assert view["runs"]["ok"] is True
    for part, scope in (("spend", "models:read, budgets:read"), ("alerts", "evaluations:read"),
                        ("approvals", "approvals:read"), ("dead_letters", "dead-letters:read"),
                        ("status", "status:read")):  # fmt: skip
        assert view[part] == {"ok": False, "data": None, "error": f"needs the scope {scope}", "reason": "forbidden"}
    costs = (await platform.api.get("/v1/console/costs", headers=narrow)).json()
    assert not costs["spend_by_model"]["ok"]
    assert costs["agents"] == {}
    # without console:read the views are refused; without a credential they ask for one
    runs_only, _ = await _key(platform, headers, "runs:read")
    assert_problem(await platform.api.get("/v1/console/overview", headers=runs_only), 403)
    assert_problem(await platform.api.get("/v1/console/costs"), 401)


async def test_the_cost_view_is_one_value_per_day_per_model_and_agent(platform: Platform) -> None:
    headers = await _tenant(platform)
    spec = {"provider": "openai", "provider_model": "gpt-4o-mini", "context_window": 128000,
            "capabilities": ["chat", "json"], "input_usd_per_mtok": 1000, "output_usd_per_mtok": 2000,
            "latency_class": "standard", "quality": 0.9}  # fmt: skip
    assert (await platform.api.post("/v1/models", json={"name": "gpt", **spec}, headers=headers)).status_code == 201
    chat = {"model": "gpt", "messages": [{"role": "user", "content": "Say hello."}], "cache": False}
    assert (await platform.api.post("/v1/models/chat", json=chat, headers=headers)).status_code == 200
    costs: dict[str, Any] = {}
    for _ in range(50):
        costs = (await platform.api.get("/v1/console/costs", params={"days": 7}, headers=headers)).json()
        if costs["spend_by_model"]["ok"] and costs["spend_by_model"]["data"]["total_micro_usd"]:
            break
        await asyncio.sleep(0.1)
    assert len(costs["days"]) == 7
    assert costs["days"] == sorted(costs["days"])
    by_model = costs["spend_by_model"]["data"]
    assert list(by_model["series"]) == ["gpt"]
    assert by_model["series"]["gpt"][-1] == by_model["total_micro_usd"] == 11 * 1000 + 7 * 2000
    assert by_model["series"]["gpt"][:-1] == [0] * 6
    assert costs["spend_by_agent"] == {"ok": True, "data": {"series": {}}, "error": None, "reason": None}
    assert costs["budgets"]["data"] == []

    for days in (0, 91, "x"):
        assert_problem(await platform.api.get("/v1/console/costs", params={"days": days}, headers=headers), 422)


async def test_the_run_summary_refuses_a_bad_since(platform: Platform) -> None:
    headers = await _tenant(platform)
    future = await platform.api.get("/v1/run-summary", params={"since": "2999-01-01T00:00:00Z"}, headers=headers)
    assert "future" in assert_problem(future, 400)["detail"]
    naive = await platform.api.get("/v1/run-summary", params={"since": "2026-01-01T00:00:00"}, headers=headers)
    assert "time zone" in assert_problem(naive, 400)["detail"]
    assert_problem(await platform.api.get("/v1/run-summary", params={"since": "yesterday"}, headers=headers), 422)


async def test_the_console_is_served_with_a_strict_policy_and_unknown_assets_are_problems(platform: Platform) -> None:
    page = await platform.api.get("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "connect-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/console/assets/app.js">' in page.text
    script = await platform.api.get("/console/assets/app.js")
    assert (script.status_code, script.headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert_problem(await platform.api.get("/console/assets/nothing.js"), 404)
    assert_problem(await platform.api.get("/console/assets/index.html"), 404)  # the page has its own address
    assert_problem(await platform.api.get("/console/assets/BAD%20NAME"), 422)
    root = await platform.api.get("/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (308, "/console/")
