"""End to end through the local cloud: health, credentials, every layer's read, events, retries and the DLQ."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import pytest

from strata import __version__
from strata.layers import LAYERS
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e
T = TypeVar("T")

EVERY_LAYER_READ = {
    "data": "/v1/agents",
    "runtime": "/v1/runs",
    "tool_execution": "/v1/tools",
    "model_gateway": "/v1/models",
    "planning": "/v1/goals",
    "evaluation": "/v1/evaluations",
    "learning": "/v1/feedback",
    "supervision": "/v1/policies",
    "api_gateway": "/v1/api-keys",
    "human_interface": "/v1/console/overview",
    "integration": "/v1/webhooks",
}


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout_s: float = 20, what: str = "") -> T:
    """Poll `probe` until it returns something, or fail at the deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = await probe()
        if result is not None:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://strata.dev/problems/")
    assert body["detail"]
    return body


@pytest.mark.parametrize("layer", list(LAYERS))
async def test_every_function_is_ready_with_real_dependencies(platform: Platform, layer: str) -> None:
    response = await platform.api.get(f"/health/{layer}/ready")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["layer"] == layer
    assert {name: dep["status"] for name, dep in body["dependencies"].items()} == {
        "postgres": "ok",
        "redis": "ok",
        "event_bus": "ok",
    }


@pytest.mark.parametrize(("layer", "path"), list(EVERY_LAYER_READ.items()))
async def test_every_layer_serves_an_authenticated_read(platform: Platform, layer: str, path: str) -> None:
    anonymous = await platform.api.get(path)
    assert_problem(anonymous, 401)

    response = await platform.api.get(path, headers=platform.auth())

    assert response.status_code == 200, response.text
    body = response.json()
    assert "items" in body or "status" in body


async def test_status_reports_all_eleven_layers_healthy(platform: Platform) -> None:
    async def every_layer_ok() -> dict[str, Any] | None:
        response = await platform.api.get("/v1/status", headers=platform.auth())
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found if all(item["status"] == "ok" for item in found["layers"]) else None

    # (a function's first probe opens its first connections: on a loaded machine, past the probe's deadline)
    body = await eventually(every_layer_ok, timeout_s=60, what="every layer ready")

    assert [item["number"] for item in body["layers"]] == [f"L{n:02d}" for n in range(1, 12)]
    assert {item["version"] for item in body["layers"]} == {__version__}
    platform_wide = {d["name"]: d["status"] for d in body["dependencies"] if d["kind"] != "model_provider"}
    expected = {"postgres", "redis", "event_bus", "events-dlq", "webhook-deliveries-dlq"}
    assert platform_wide == dict.fromkeys(expected, "ok"), body
    # a model provider an earlier test left failing (its breaker open) degrades the platform, and says so
    assert body["status"] == "ok" or all(r.startswith("model provider") for r in body["reasons"]), body


async def test_credentials_are_checked_against_the_key_store(platform: Platform) -> None:
    forged = "sk_00000000_" + "x" * 43
    tampered = platform.admin_key[:-4] + "AAAA"

    assert_problem(await platform.api.get("/v1/agents", headers=platform.auth(forged)), 403)
    assert_problem(await platform.api.get("/v1/agents", headers=platform.auth(tampered)), 403)
    assert_problem(await platform.api.get("/v1/agents", headers={"authorization": "Basic abc"}), 403)
    # health and the console's static shell are the only open routes
    assert (await platform.api.get("/health/data/live")).status_code == 200
    assert (await platform.api.get("/console/")).status_code == 200
    assert_problem(await platform.api.get("/v1/no-such-route"), 404)


async def test_scopes_are_enforced_by_each_function(platform: Platform) -> None:
    reader = await platform.new_tenant(f"reader-{uuid.uuid4().hex[:8]}", scopes=["agents:read"])

    assert (await platform.api.get("/v1/agents", headers=platform.auth(reader["api_key"]))).status_code == 200
    denied = await platform.api.post("/v1/agents", json={"name": "nope"}, headers=platform.auth(reader["api_key"]))
    assert assert_problem(denied, 403)["required_scope"] == "agents:write"
    assert_problem(await platform.api.get("/v1/runs", headers=platform.auth(reader["api_key"])), 403)


async def test_tenants_see_only_their_own_data(platform: Platform) -> None:
    other = await platform.new_tenant(f"other-{uuid.uuid4().hex[:8]}")
    name = f"private-{uuid.uuid4().hex[:8]}"
    created = await platform.api.post("/v1/agents", json={"name": name}, headers=platform.auth())
    assert created.status_code == 201, created.text

    theirs = await platform.api.get("/v1/agents", params={"limit": 200}, headers=platform.auth(other["api_key"]))

    assert name not in {agent["name"] for agent in theirs.json()["items"]}


async def test_bad_input_gets_a_problem_never_a_500(platform: Platform) -> None:
    headers = platform.auth()
    name = f"dup-{uuid.uuid4().hex[:8]}"
    assert (await platform.api.post("/v1/agents", json={"name": name}, headers=headers)).status_code == 201

    assert_problem(await platform.api.post("/v1/agents", json={"name": name}, headers=headers), 409)
    assert_problem(await platform.api.post("/v1/agents", json={"name": ""}, headers=headers), 422)
    assert_problem(await platform.api.post("/v1/agents", json={"name": "a", "extra": 1}, headers=headers), 422)
    assert_problem(await platform.api.post("/v1/agents", content=b"{not json", headers=headers), 422)
    assert_problem(await platform.api.get("/v1/agents", params={"limit": 0}, headers=headers), 422)
    assert_problem(await platform.api.get("/v1/agents", params={"cursor": "garbage!"}, headers=headers), 400)
    unknown = await platform.api.get("/v1/events", params={"detail_type": "NoSuchEvent"}, headers=headers)
    assert assert_problem(unknown, 400)["type"].endswith("/unknown-event")
    big = {"name": "big", "capabilities": ["x" * 90] * 20000}
    assert_problem(await platform.api.post("/v1/agents", json=big, headers=headers), 413)


async def test_header_size_and_json_depth_are_limited(platform: Platform) -> None:
    headers = platform.auth()
    huge_headers = {**headers, **{f"x-pad-{i}": "p" * 1000 for i in range(9)}}
    assert_problem(await platform.api.get("/v1/agents", headers=huge_headers), 431)
    deep = b'{"name": "deep", "capabilities": ' + b"[" * 40 + b"]" * 40 + b"}"
    too_deep = await platform.api.post(
        "/v1/agents", content=deep, headers={**headers, "content-type": "application/json"}
    )
    assert "deeper than 32" in assert_problem(too_deep, 400)["detail"]
    # brackets inside strings are text, not nesting
    shallow = {"title": "brackets", "content": "[" * 100 + '{"' * 100}
    created = await platform.api.post("/v1/documents", json=shallow, headers=headers)
    assert created.status_code == 201, created.text


async def test_pages_are_complete_and_disjoint(platform: Platform) -> None:
    tenant = await platform.new_tenant(f"pages-{uuid.uuid4().hex[:8]}")
    headers = platform.auth(tenant["api_key"])
    names = {f"agent-{i:02d}" for i in range(7)}
    for name in names:
        assert (await platform.api.post("/v1/agents", json={"name": name}, headers=headers)).status_code == 201

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await platform.api.get("/v1/agents", params=params, headers=headers)).json()
        seen += [agent["name"] for agent in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted(names)


async def test_an_event_published_by_one_function_reaches_its_subscriber(platform: Platform) -> None:
    # GIVEN L09 creates a tenant and key: TenantCreated and ApiKeyCreated go through its outbox to the bus
    tenant = await platform.new_tenant(f"events-{uuid.uuid4().hex[:8]}")
    headers = platform.auth(tenant["api_key"])

    # WHEN L01's archive rule (source prefix strata.) drains them
    async def archived() -> list[dict[str, Any]] | None:
        page = (await platform.api.get("/v1/events", headers=headers)).json()
        types = {item["detail_type"] for item in page["items"]}
        return page["items"] if {"TenantCreated", "ApiKeyCreated"} <= types else None

    items = await eventually(archived, what="L01 to archive L09's events")

    # THEN L01's event log holds them as L09 published them, and L09's outbox marks them sent
    key_event = next(item for item in items if item["detail_type"] == "ApiKeyCreated")
    assert key_event["source"] == "strata.api_gateway"
    assert key_event["detail"]["key_id"] == tenant["key_id"]
    assert (key_event["aggregate_type"], key_event["aggregate_id"]) == ("key", tenant["key_id"])
    by_aggregate = await platform.api.get(
        "/v1/events", params={"aggregate_type": "key", "aggregate_id": tenant["key_id"]}, headers=headers
    )
    assert [item["event_id"] for item in by_aggregate.json()["items"]] == [key_event["event_id"]]
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        published = await conn.fetchval(
            "SELECT published_at FROM outbox WHERE event_id = $1", uuid.UUID(key_event["event_id"])
        )
    finally:
        await conn.close()
    assert published is not None


async def test_the_scheduled_sweeper_publishes_what_a_crash_left_unsent(platform: Platform) -> None:
    # GIVEN an event committed to the outbox whose publish never happened (the producer died after commit)
    event_id, agent_id = uuid.uuid4(), uuid.uuid4()
    detail = {
        "event_id": str(event_id),
        "tenant_id": platform.tenant_id,
        "correlation_id": f"sweep-{event_id}",
        "causation_id": None,
        "occurred_at": "2026-01-01T00:00:00Z",
        "schema_version": 1,
        "agent_id": str(agent_id),
        "name": "swept",
        "did": f"did:strata:agent:{agent_id}",
    }
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        await conn.execute(
            "INSERT INTO outbox (event_id, tenant_id, source, detail_type, detail, created_at) "
            "VALUES ($1, $2, 'strata.data', 'AgentCreated', $3::jsonb, now() - interval '1 minute')",
            event_id,
            uuid.UUID(platform.tenant_id),
            json.dumps(detail),
        )

        # WHEN the template's SweepOutbox schedule fires (every second in this test cloud)
        async def marked_sent() -> bool | None:
            sent = await conn.fetchval("SELECT published_at FROM outbox WHERE event_id = $1", event_id)
            return True if sent is not None else None

        # THEN the event is marked sent and reaches L01's archive
        await eventually(marked_sent, what="the sweeper to publish the stranded event")
    finally:
        await conn.close()

    async def archived() -> bool | None:
        page = await platform.api.get(
            "/v1/events", params={"correlation_id": f"sweep-{event_id}"}, headers=platform.auth()
        )
        return True if page.json()["items"] else None

    await eventually(archived, what="the swept event in the event log")


async def test_functions_answer_the_lambda_invoke_api(platform: Platform) -> None:
    result = await platform.invoke("DataFunction", {"command": "migrate"})
    missing = await platform.invoke("DataFunction", {"command": "no-such-command"})

    assert "FunctionError" not in result
    assert result["Payload"] == {"applied": []}  # the cloud migrated at start
    assert missing["FunctionError"] == "Unhandled"
    assert missing["Payload"]["errorType"] == "NoConsumerError"


async def _dead_letter_where(platform: Platform, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        page = await platform.api.get("/v1/dead-letters", params={"limit": 200}, headers=platform.auth())
        assert page.status_code == 200, page.text
        return next((item for item in page.json()["items"] if match(item)), None)

    return await eventually(probe, what="the dead letter through GET /v1/dead-letters")


async def test_a_failing_consumer_is_retried_then_dead_lettered(platform: Platform) -> None:
    # GIVEN an event that claims to be a GoalSubmitted but breaks its contract
    marker = uuid.uuid4().hex
    bus = platform.cloud.resource("EventBus")
    rule = next(t.rule for t in platform.cloud.targets if t.rule.name == "PlanningFunction-PlanSubmittedGoals")
    before = platform.cloud.pools["PlanningFunction"].invocations

    # WHEN it is published
    detail = {"marker": marker, "tenant_id": platform.tenant_id}
    platform.aws("events").put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": "strata.planning",
                "DetailType": "GoalSubmitted",
                "Detail": json.dumps(detail),
            }
        ]
    )

    # THEN the planner's rule retries it until its policy runs out, the DLQ takes it with EventBridge's attributes,
    # and L01 keeps it
    item = await _dead_letter_where(
        platform,
        lambda d: d["event"].get("detail", {}).get("marker") == marker and d["rule_arn"].endswith(rule.name),
    )
    assert item["retry_attempts"] == rule.max_retries
    assert item["error_code"] == "ValidationError"
    assert item["status"] == "pending"
    assert platform.cloud.pools["PlanningFunction"].invocations - before >= rule.max_retries + 1
    one = await platform.api.get(f"/v1/dead-letters/{item['dead_letter_id']}", headers=platform.auth())
    assert one.json()["message_id"] == item["message_id"]
    assert_problem(await platform.api.get("/v1/dead-letters/not-a-uuid", headers=platform.auth()), 422)
    assert_problem(await platform.api.get(f"/v1/dead-letters/{uuid.uuid4()}", headers=platform.auth()), 404)

    # AND the archive, which can never store it, kept it as a dead letter at once, saying why
    archived = await _dead_letter_where(
        platform,
        lambda d: d["event"].get("detail", {}).get("marker") == marker and d["target_arn"].endswith("event-archive"),
    )
    assert archived["error_code"] == "ValidationError"
    assert archived["retry_attempts"] == 0


async def test_a_dead_letter_replays_through_the_idempotent_consumers(platform: Platform) -> None:
    # GIVEN a valid event that reached the DLQ (its consumer had failed, e.g. while Postgres restarted)
    event_id, agent_id = uuid.uuid4(), uuid.uuid4()
    detail = {
        "event_id": str(event_id),
        "tenant_id": platform.tenant_id,
        "correlation_id": f"dlq-{event_id}",
        "causation_id": None,
        "occurred_at": "2026-11-27T10:00:00Z",
        "schema_version": 1,
        "agent_id": str(agent_id),
    }
    envelope = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AgentDeleted",
        "source": "strata.data",
        "account": "000000000000",
        "time": "2026-11-27T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }
    dlq_url = platform.cloud.resource("EventsDeadLetterQueue")
    platform.aws("sqs").send_message(
        QueueUrl=dlq_url,
        MessageBody=json.dumps(envelope),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "OperationalError"},
            "RETRY_ATTEMPTS": {"DataType": "String", "StringValue": "4"},
        },
    )
    item = await _dead_letter_where(platform, lambda d: d["event_id"] == str(event_id))

    # WHEN it is replayed, twice
    for _ in range(2):
        replayed = await platform.api.post(f"/v1/dead-letters/{item['dead_letter_id']}/replay", headers=platform.auth())
        assert replayed.status_code == 202, replayed.text

    # THEN the event reaches its consumer (L01's archive) once, and the dead letter is marked replayed
    async def archived() -> list[dict[str, Any]] | None:
        page = await platform.api.get(
            "/v1/events", params={"correlation_id": f"dlq-{event_id}"}, headers=platform.auth()
        )
        return page.json()["items"] or None

    assert [e["event_id"] for e in await archived_eventually(archived)] == [str(event_id)]
    after = (await platform.api.get(f"/v1/dead-letters/{item['dead_letter_id']}", headers=platform.auth())).json()
    assert (after["status"], after["replay_count"]) == ("replayed", 2)


async def archived_eventually(probe: Callable[[], Awaitable[list[dict[str, Any]] | None]]) -> list[dict[str, Any]]:
    found = await eventually(probe, what="the replayed event in the event log")
    await asyncio.sleep(1.0)  # let the second replay's delivery land too; it must not add a row
    return await probe() or found
