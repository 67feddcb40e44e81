"""API keys through the local cloud: shown once, scoped, rotated with a grace period, revoked, tenant-private."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem

pytestmark = pytest.mark.e2e


async def _admin(platform: Platform) -> dict[str, str]:
    return platform.auth((await platform.new_tenant(f"keys-{uuid.uuid4().hex[:8]}"))["api_key"])


async def _create(platform: Platform, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await platform.api.post(
        "/v1/api-keys", json={"name": "ci", "scopes": ["agents:read"], **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    key: dict[str, Any] = response.json()
    return key


async def test_a_key_is_shown_once_and_works_within_its_scopes(platform: Platform) -> None:
    admin = await _admin(platform)
    key = await _create(platform, admin)

    # the secret is in the creation answer only
    read = await platform.api.get(f"/v1/api-keys/{key['key_id']}", headers=admin)
    assert read.status_code == 200
    assert "api_key" not in read.json()
    assert read.json()["prefix"] == key["prefix"] == key["api_key"].split("_")[1]
    # it works for what it was given, and nothing else
    assert (await platform.api.get("/v1/agents", headers=platform.auth(key["api_key"]))).status_code == 200
    assert_problem(await platform.api.get("/v1/api-keys", headers=platform.auth(key["api_key"])), 403)
    tenant = await platform.api.get("/v1/tenant", headers=admin)
    assert tenant.json()["name"].startswith("keys-")


async def test_keys_cannot_grant_more_than_their_creator_holds(platform: Platform) -> None:
    admin = await _admin(platform)
    manager = await _create(platform, admin, scopes=["keys:write", "agents:read"])
    manager_headers = platform.auth(manager["api_key"])

    assert (
        await platform.api.post("/v1/api-keys", json={"name": "ok", "scopes": ["agents:read"]}, headers=manager_headers)
    ).status_code == 201
    escalation = await platform.api.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=manager_headers
    )
    assert_problem(escalation, 403)
    assert_problem(await platform.api.post("/v1/api-keys", json={"name": "x", "scopes": ["root"]}, headers=admin), 422)
    assert_problem(
        await platform.api.post("/v1/api-keys", json={"name": "x", "scopes": ["service"]}, headers=admin), 422
    )
    assert_problem(await platform.api.post("/v1/api-keys", json={"name": "x", "scopes": []}, headers=admin), 422)


async def test_revoked_expired_and_rotated_keys_stop_working(platform: Platform) -> None:
    admin = await _admin(platform)

    # revoked before first use (a used key stays in the authorizer's cache for its TTL, as on AWS)
    revoked = await _create(platform, admin)
    answer = await platform.api.post(f"/v1/api-keys/{revoked['key_id']}/revoke", headers=admin)
    assert answer.status_code == 200
    assert answer.json()["revoked_at"] is not None
    assert_problem(await platform.api.get("/v1/agents", headers=platform.auth(revoked["api_key"])), 403)

    # rotated with no grace: the new key works, the old one no longer does; with a grace, both work for now
    old = await _create(platform, admin)
    rotated = await platform.api.post(f"/v1/api-keys/{old['key_id']}/rotate", json={"grace_seconds": 0}, headers=admin)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["key_id"] != old["key_id"]
    assert new["scopes"] == old["scopes"]
    assert (await platform.api.get("/v1/agents", headers=platform.auth(new["api_key"]))).status_code == 200
    assert_problem(await platform.api.get("/v1/agents", headers=platform.auth(old["api_key"])), 403)
    graced = await _create(platform, admin)
    assert (await platform.api.post(f"/v1/api-keys/{graced['key_id']}/rotate", headers=admin)).status_code == 201
    assert (await platform.api.get("/v1/agents", headers=platform.auth(graced["api_key"]))).status_code == 200
    # a revoked key cannot be rotated; listing hides ended keys unless asked
    assert_problem(await platform.api.post(f"/v1/api-keys/{revoked['key_id']}/rotate", headers=admin), 409)
    live = {k["key_id"] for k in (await platform.api.get("/v1/api-keys", headers=admin)).json()["items"]}
    assert revoked["key_id"] not in live
    assert new["key_id"] in live
    everything = await platform.api.get("/v1/api-keys", params={"include_ended": "true"}, headers=admin)
    assert revoked["key_id"] in {k["key_id"] for k in everything.json()["items"]}


async def test_another_tenants_keys_are_not_found(platform: Platform) -> None:
    admin_a, admin_b = await _admin(platform), await _admin(platform)
    key = await _create(platform, admin_a)

    for method, path in (("GET", ""), ("POST", "/rotate"), ("POST", "/revoke")):
        answer = await platform.api.request(method, f"/v1/api-keys/{key['key_id']}{path}", headers=admin_b)
        assert_problem(answer, 404)
    listed = (await platform.api.get("/v1/api-keys", headers=admin_b)).json()["items"]
    assert key["key_id"] not in {k["key_id"] for k in listed}


async def test_a_tenant_over_its_tier_gets_429_with_retry_after(platform: Platform) -> None:
    # GIVEN a tenant on a tier of 10 requests of burst per key that barely refills (configured by this cloud)
    tenant = await platform.new_tenant(f"limited-{uuid.uuid4().hex[:8]}")
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        await conn.execute("UPDATE tenants SET tier = 'e2e-slow' WHERE tenant_id = $1", uuid.UUID(tenant["tenant_id"]))
    finally:
        await conn.close()
    headers = platform.auth(tenant["api_key"])

    # WHEN it sends 15 requests at once
    answers = await asyncio.gather(*(platform.api.get("/v1/agents", headers=headers) for _ in range(15)))

    # THEN the burst passes with RateLimit headers, and the rest are 429 problems saying when to retry
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 10
    assert statuses.count(429) == 5
    passed = next(a for a in answers if a.status_code == 200)
    assert passed.headers["ratelimit-limit"] == "10"
    refused = next(a for a in answers if a.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert assert_problem(refused, 429)["type"].endswith("/rate-limited")
