"""The web console in a real browser (Debian's Chromium driven by Playwright) against the local cloud: sign in,
submit a goal and watch it complete, approve a tool call and see the run resume, replay a dead letter, see the cost
chart, verify the audit chain. Every page is photographed at laptop and phone widths into .artifacts/console/."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.conftest import Platform, Providers
from tests.e2e.test_runs import run_of, tenant
from tests.e2e.test_supervision import JSON_QUERY, _key, _pending_approval
from tests.support.oidc import TestIssuer

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, ViewportSize

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "console"
LAPTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}
CONSOLE_SCOPES = ("console:read", "runs:read", "runs:write", "goals:read", "goals:write", "status:read")


def chromium_path() -> str:
    """Debian's Chromium (scripts/bootstrap installs it; Playwright downloads no browser here)."""
    found = os.environ.get("STRATA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "no Chromium on this machine: scripts/bootstrap installs Debian's `chromium` package"
    return found


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield launched
        await launched.close()


class Console:
    """One browser tab on the console, failing the test on any script error the page raises."""

    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._on_console)

    def _on_console(self, message: Any) -> None:
        # the browser logs every 4xx the page asked for (a refused sign-in); the page handles those itself
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    async def sign_in(self, key: str) -> None:
        await self.page.goto(f"{self.base}/console/")
        await self.page.get_by_label("API key or OIDC token").fill(key)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.get_by_role("navigation", name="Main").wait_for()

    async def go(self, route: str, heading: str) -> None:
        await self.page.goto(f"{self.base}/console/#{route}")
        await self.page.get_by_role("heading", level=1, name=heading).wait_for()

    async def toast(self, text: str) -> None:
        await self.page.locator("#toasts .toast", has_text=text).first.wait_for()

    async def shot(self, name: str) -> None:
        """The page as it is, at laptop then phone width (the page is full height in each)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for label, size in (("laptop", LAPTOP), ("phone", PHONE)):
            await self.page.set_viewport_size(size)
            await asyncio.sleep(0.2)
            await self.page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
        await self.page.set_viewport_size(LAPTOP)

    def assert_clean(self) -> None:
        assert not self.errors, self.errors


@pytest.fixture
async def console(platform: Platform, browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Console]:
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    page.set_default_timeout(30_000)
    opened = Console(page, platform.cloud.front_url)
    yield opened
    # what the page showed at the end: printed (pytest shows it when the test failed) and kept as a picture
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"last-{request.node.name[:80]}.png"), full_page=True)
    print(await page.inner_text("body"))
    await context.close()
    opened.assert_clean()


async def _admin(platform: Platform) -> tuple[dict[str, str], str]:
    made = await platform.new_tenant(f"console-{uuid.uuid4().hex[:8]}")
    return platform.auth(made["api_key"]), str(made["api_key"])


WORD_COUNT = [
    {"task_id": "count", "title": "Count words", "kind": "tool", "tool": "text",
     "input": {"operation": "count", "text": "{{text}}"}},
    {"task_id": "words", "title": "Keep the word count", "kind": "tool", "tool": "json_query",
     "depends_on": ["count"], "input": {"data": {"$from": "count", "path": "result"}, "query": "words"}},
]  # fmt: skip


async def test_sign_in_shows_the_overview_keeps_the_key_out_of_urls_and_cookies_and_signs_out(
    platform: Platform, console: Console, oidc_issuer: TestIssuer
) -> None:
    page = console.page
    await page.goto(f"{console.base}/console/")
    await page.get_by_label("API key or OIDC token").fill("sk_00000000_" + "x" * 40)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("alert").filter(has_text="not accepted").wait_for()
    await console.shot("sign-in")

    _, key = await _admin(platform)
    await console.sign_in(key)
    await page.get_by_role("heading", level=1, name="Overview").wait_for()
    health = page.get_by_role("table", name="Layers")
    await health.wait_for()
    assert await health.locator("tbody tr").count() == 11
    assert await page.get_by_role("cell", name="L11 integration", exact=True).count() == 1
    dependencies = page.get_by_role("table", name="Dependencies")
    for name in ("postgres (critical)", "redis", "event_bus", "events-dlq", "openai"):
        assert await dependencies.get_by_role("cell", name=name, exact=True).count() == 1, name
    for card in ("Runs", "Spend today", "Open alerts", "Pending approvals", "Dead letters"):
        await page.get_by_role("region", name=card).wait_for()
    assert await page.evaluate("sessionStorage.getItem('strata.credential')") == key
    assert await page.evaluate("document.cookie") == ""
    assert key not in page.url
    await console.shot("overview")

    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("heading", level=1, name="Sign in").wait_for()
    assert await page.evaluate("sessionStorage.getItem('strata.credential')") is None

    # an OIDC token signs in as well, and the console shows only what its scopes allow
    tenant_id = (await platform.api.get("/v1/tenant", headers=platform.auth(key))).json()["tenant_id"]
    await console.sign_in(oidc_issuer.token(tenant_id=tenant_id, scope="console:read runs:read", sub="ada"))
    await page.get_by_role("region", name="Runs").get_by_text("Last 24 h").wait_for()
    await page.get_by_role("region", name="Spend today").get_by_text("needs the scope models:read").wait_for()
    assert "ada" in await page.locator("#who").inner_text()


async def test_a_goal_submitted_in_the_console_is_planned_run_and_followed_to_completion(
    platform: Platform, console: Console
) -> None:
    headers, key = await _admin(platform)
    name = f"t{uuid.uuid4().hex[:8]}"
    template = {"name": name, "patterns": [f"count the words of {name} {{text}}"],
                "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
                "body": {"tasks": WORD_COUNT}}  # fmt: skip
    assert (await platform.api.post("/v1/plan-templates", json=template, headers=headers)).status_code == 201
    await console.sign_in(key)
    page = console.page
    await console.go("/goals", "Goals")
    await page.get_by_label("Goal", exact=True).fill(f"count the words of {name} 'one two three four'")
    await page.get_by_label("Planning").select_option("template")
    await page.get_by_label("Max parallel tasks").fill("2")
    await page.get_by_role("button", name="Submit goal").click()
    await console.toast("Goal submitted")
    plan = page.get_by_role("group", name="Task graph")
    await plan.wait_for()
    assert await plan.get_by_role("button").count() == 2
    await page.get_by_role("link", name="Open its run").wait_for()
    await console.shot("goals")

    await page.get_by_role("link", name="Open its run").click()
    await page.locator("#run-status .s-completed").wait_for()
    graph = page.get_by_role("group", name="Task graph")
    assert await graph.locator(".node.n-completed").count() == 2
    node = graph.get_by_role("button", name="words: Keep the word count (completed)")
    await node.focus()
    await page.keyboard.press("Enter")  # the graph is usable from the keyboard
    panel = page.locator("#task-panel")
    await panel.get_by_role("heading", name="Task words").wait_for()
    assert '"result": 4' in await panel.locator("pre").nth(1).inner_text()
    await panel.get_by_text("tool call").first.wait_for()
    await console.shot("run")

    await console.go("/runs", "Runs")
    await page.get_by_role("table", name="The newest runs").wait_for()
    assert await page.locator("tbody tr").count() == 1
    await console.shot("runs")


async def test_a_tool_call_approved_in_the_inbox_resumes_its_run(platform: Platform, console: Console) -> None:
    headers = await tenant(platform)
    approver, _ = await _key(platform, headers, *CONSOLE_SCOPES, "approvals:read", "approvals:decide", "audit:read")
    approver_key = approver["authorization"].removeprefix("Bearer ")
    patched = await platform.api.patch("/v1/tools/json_query", json={"requires_approval": True}, headers=headers)
    assert patched.status_code == 200, patched.text
    name = f"t{uuid.uuid4().hex[:8]}"
    after = {"task_id": "after", "title": "After", "kind": "tool", "tool": "text", "depends_on": ["q"],
             "input": {"operation": "upper", "text": "ok"}}  # fmt: skip
    template = {"name": name, "patterns": [f"do {name}"], "parameters": {"type": "object"},
                "body": {"tasks": [JSON_QUERY, after]}}  # fmt: skip
    assert (await platform.api.post("/v1/plan-templates", json=template, headers=headers)).status_code == 201
    goal = {"text": f"do {name}", "strategy": "template"}
    submitted = await platform.api.post("/v1/goals", json=goal, headers=headers)
    approval = await _pending_approval(platform, approver, "tool_call")
    run = await run_of(platform, headers, submitted.json()["goal_id"])

    await console.sign_in(approver_key)
    page = console.page
    await console.go(f"/runs/{run['run_id']}", "Run")
    graph = page.get_by_role("group", name="Task graph")
    await graph.get_by_role("button", name="q: Query (awaiting approval)").wait_for()

    await console.go("/approvals", "Approvals")
    card = page.locator(f"[data-approval='{approval['approval_id']}']")
    await card.get_by_role("heading", name=approval["what"]).wait_for()
    await card.get_by_label("Comment").fill("looked at it: fine")
    await console.shot("approvals")
    await card.get_by_role("button", name="Approve").click()
    await console.toast("Approved: the request is now approved")

    await console.go(f"/runs/{run['run_id']}", "Run")
    await page.locator("#run-status .s-completed").wait_for()
    assert await graph.locator(".node.n-completed").count() == 2
    decided = (await platform.api.get(f"/v1/approvals/{approval['approval_id']}", headers=approver)).json()
    assert (decided["status"], decided["comment"]) == ("approved", "looked at it: fine")

    # the decisions made on the way are in the audit trail, whose chain verifies
    await console.go("/audit", "Audit trail")
    await page.get_by_role("table", name="Audit entries, newest first").wait_for()
    await page.get_by_role("button", name="Verify the chain").click()
    await page.locator("#audit-verification").get_by_text("Verified:").wait_for()
    await console.shot("audit")


async def test_a_dead_letter_is_replayed_from_the_events_page(platform: Platform, console: Console) -> None:
    headers, key = await _admin(platform)
    tenant_id = (await platform.api.get("/v1/tenant", headers=headers)).json()["tenant_id"]
    marker = uuid.uuid4().hex
    platform.aws("events").put_events(Entries=[{
        "EventBusName": platform.cloud.resource("EventBus"), "Source": "strata.test", "DetailType": "NoSuchEvent",
        "Detail": json.dumps({"marker": marker, "tenant_id": tenant_id})}])  # fmt: skip
    dead: dict[str, Any] = {}
    for _ in range(300):
        items = (await platform.api.get("/v1/dead-letters", headers=headers)).json()["items"]
        dead = next((d for d in items if d["event"].get("detail", {}).get("marker") == marker), {})
        if dead:
            break
        await asyncio.sleep(0.1)
    assert dead, "the dead letter never arrived"
    agent = await platform.api.post("/v1/agents", json={"name": f"a-{marker[:8]}"}, headers=headers)
    assert agent.status_code == 201, agent.text

    await console.sign_in(key)
    page = console.page
    await console.go("/events", "Events")
    dead_letters = page.get_by_role("table", name="Pending dead letters")
    await dead_letters.get_by_role("cell", name="NoSuchEvent", exact=True).wait_for()
    await page.get_by_label("Type").fill("AgentCreated")
    await page.get_by_role("button", name="Filter").click()
    log = page.get_by_role("table", name="Events, newest first")
    await log.get_by_role("cell", name="AgentCreated").first.wait_for()
    await console.shot("events")
    await page.locator(f"button[data-replay='{dead['dead_letter_id']}']").click()
    await console.toast("Replayed NoSuchEvent")
    after = (await platform.api.get(f"/v1/dead-letters/{dead['dead_letter_id']}", headers=headers)).json()
    assert (after["status"], after["replay_count"]) == ("replayed", 1)


async def test_the_cost_chart_draws_the_days_spend_per_model(
    platform: Platform, providers: Providers, console: Console
) -> None:
    headers, key = await _admin(platform)
    spec = {"provider": "openai", "provider_model": "gpt-4o-mini", "context_window": 128000,
            "capabilities": ["chat", "json"], "input_usd_per_mtok": 3000, "output_usd_per_mtok": 6000,
            "latency_class": "standard", "quality": 0.9}  # fmt: skip
    assert (await platform.api.post("/v1/models", json={"name": "pricey", **spec}, headers=headers)).status_code == 201
    for _ in range(2):
        answer = await platform.api.post(
            "/v1/models/chat",
            json={"model": "pricey", "messages": [{"role": "user", "content": "Say hello."}], "cache": False},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
    spent = 0
    for _ in range(50):
        usage = (await platform.api.get("/v1/models/usage", params={"group_by": "model"}, headers=headers)).json()
        spent = usage["totals"]["cost_micro_usd"]
        if usage["totals"]["calls"] == 2:
            break
        await asyncio.sleep(0.1)
    assert spent > 0

    await console.sign_in(key)
    page = console.page
    await console.go("/costs", "Quality and cost")
    chart = page.locator("figure.chart", has_text="Spend per day by model")
    await chart.wait_for()
    assert await chart.get_by_role("img", name="Spend per day by model: chart").count() == 1
    assert await chart.locator("path[stroke]").count() == 1  # one series: the model
    assert await chart.locator(".legend li").all_inner_texts() == ["pricey"]
    await chart.get_by_text("Show the numbers").click()
    assert f"${spent / 1e6:.4f}" in await chart.locator("table").inner_text()
    await console.shot("costs")
