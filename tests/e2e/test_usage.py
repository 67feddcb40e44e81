"""The request log and usage through the local cloud: every authenticated request becomes one row (exactly once,
even when the stream delivers an entry twice), summarised per day, key and route; old rows are pruned."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from strata import spool
from strata.requestlog import REQUEST_LOG, RequestRecord
from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem

pytestmark = pytest.mark.e2e


async def _tenant(platform: Platform) -> tuple[dict[str, str], str, dict[str, str]]:
    """(traffic headers, the traffic key's principal id, reader headers) of a fresh tenant."""
    admin = platform.auth((await platform.new_tenant(f"usage-{uuid.uuid4().hex[:8]}"))["api_key"])
    traffic = await platform.api.post(
        "/v1/api-keys", json={"name": "traffic", "scopes": ["agents:read"]}, headers=admin
    )
    return platform.auth(traffic.json()["api_key"]), f"key:{traffic.json()['key_id']}", admin


async def _logged(platform: Platform, reader: dict[str, str], principal_id: str, count: int) -> list[dict[str, Any]]:
    """The traffic key's logged requests, once `count` have arrived (the flush runs every tick)."""
    items: list[dict[str, Any]] = []
    for _ in range(150):
        page = await platform.api.get(
            "/v1/requests", params={"principal_id": principal_id, "limit": 200}, headers=reader
        )
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        if len(items) >= count:
            break
        await asyncio.sleep(0.1)
    return items


async def test_each_request_is_logged_once_and_summed_into_usage(platform: Platform) -> None:
    traffic, principal_id, reader = await _tenant(platform)
    for _ in range(5):
        assert (await platform.api.get("/v1/agents", headers=traffic)).status_code == 200
    for _ in range(3):
        assert_problem(await platform.api.get(f"/v1/agents/{uuid.uuid4()}", headers=traffic), 404)
    assert_problem(await platform.api.get("/v1/api-keys", headers=traffic), 403)

    logged = await _logged(platform, reader, principal_id, 9)
    assert len(logged) == 9
    routes = sorted((r["route"], r["status"]) for r in logged)
    assert routes == [
        ("GET /v1/agents", 200),
        ("GET /v1/agents", 200),
        ("GET /v1/agents", 200),
        ("GET /v1/agents", 200),
        ("GET /v1/agents", 200),
        ("GET /v1/agents/{agent_id}", 404),
        ("GET /v1/agents/{agent_id}", 404),
        ("GET /v1/agents/{agent_id}", 404),
        ("GET /v1/api-keys", 403),
    ]
    assert all(r["bytes_out"] > 0 and r["latency_ms"] > 0 for r in logged)
    # the flush also tells the key's owner when it was last used
    key = await platform.api.get(f"/v1/api-keys/{principal_id.removeprefix('key:')}", headers=reader)
    assert key.json()["last_used_at"] == max(r["at"] for r in logged)
    assert [r["at"] for r in logged] == sorted((r["at"] for r in logged), reverse=True)

    by_route = await platform.api.get(
        "/v1/usage", params={"group_by": "route", "principal_id": principal_id}, headers=reader
    )
    assert by_route.status_code == 200, by_route.text
    groups = {g["key"]: g for g in by_route.json()["groups"]}
    assert groups["GET /v1/agents"]["requests"] == 5
    assert groups["GET /v1/agents/{agent_id}"]["client_errors"] == 3
    assert by_route.json()["totals"]["requests"] == 9
    assert by_route.json()["totals"]["client_errors"] == 4
    by_day = await platform.api.get("/v1/usage", params={"group_by": "day"}, headers=reader)
    today = datetime.now(UTC).date().isoformat()
    assert [g["key"] for g in by_day.json()["groups"]] == [today]
    by_key = await platform.api.get("/v1/usage", params={"group_by": "key"}, headers=reader)
    assert {g["key"]: g["requests"] for g in by_key.json()["groups"]}[principal_id] == 9

    # filters, pagination and bad input
    only_404 = await platform.api.get(
        "/v1/requests", params={"principal_id": principal_id, "status": 404}, headers=reader
    )
    assert len(only_404.json()["items"]) == 3
    first = await platform.api.get("/v1/requests", params={"principal_id": principal_id, "limit": 4}, headers=reader)
    second = await platform.api.get(
        "/v1/requests",
        params={"principal_id": principal_id, "limit": 10, "cursor": first.json()["next_cursor"]},
        headers=reader,
    )
    ids = [r["request_id"] for r in first.json()["items"] + second.json()["items"]]
    assert sorted(ids) == sorted(r["request_id"] for r in logged)
    assert_problem(await platform.api.get("/v1/requests", params={"cursor": "garbage"}, headers=reader), 400)
    assert_problem(
        await platform.api.get("/v1/usage", params={"from": "2026-02-01", "to": "2026-01-01"}, headers=reader), 400
    )
    assert_problem(await platform.api.get("/v1/usage", params={"group_by": "planet"}, headers=reader), 422)
    assert_problem(await platform.api.get("/v1/usage", headers=traffic), 403)


async def test_another_tenant_sees_none_of_it(platform: Platform) -> None:
    traffic, principal_id, reader = await _tenant(platform)
    await platform.api.get("/v1/agents", headers=traffic)
    assert len(await _logged(platform, reader, principal_id, 1)) == 1
    _, _, stranger = await _tenant(platform)
    theirs = await platform.api.get("/v1/requests", params={"principal_id": principal_id}, headers=stranger)
    assert theirs.json()["items"] == []
    usage = await platform.api.get("/v1/usage", params={"principal_id": principal_id}, headers=stranger)
    assert usage.json()["totals"]["requests"] == 0


async def test_an_entry_delivered_twice_is_recorded_once(platform: Platform) -> None:
    import redis.asyncio as aioredis

    traffic, principal_id, reader = await _tenant(platform)
    await platform.api.get("/v1/agents", headers=traffic)
    [row] = await _logged(platform, reader, principal_id, 1)
    # put the same entry on the stream again, as a flush that crashed before acknowledging would leave it
    client = aioredis.from_url(platform.cloud.services.redis_url, decode_responses=True)
    try:
        tenant_id = (await platform.api.get("/v1/tenant", headers=reader)).json()["tenant_id"]
        record = RequestRecord(
            row["request_id"],
            tenant_id,
            principal_id,
            row["route"],
            row["method"],
            row["path"],
            row["status"],
            row["latency_ms"],
            row["bytes_in"],
            row["bytes_out"],
            row["at"],
        )
        await client.xadd(REQUEST_LOG.stream, {spool.FIELD: record.encode()})
        result = await platform.cloud.invoke("ApiGatewayFunction", {"schedule": "flush_request_log"})
        assert result["read"] >= 1
    finally:
        await client.aclose()
    usage = await platform.api.get("/v1/usage", params={"principal_id": principal_id}, headers=reader)
    assert usage.json()["totals"]["requests"] == 1
    again = await platform.api.get("/v1/requests", params={"principal_id": principal_id}, headers=reader)
    assert len(again.json()["items"]) == 1
