"""Tenants through the local cloud: the operator creates, lists, suspends and reactivates them; a tenant reads its
own record and sets the browser origins allowed to call the API (CORS per tenant)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem

pytestmark = pytest.mark.e2e


async def _operator(platform: Platform) -> dict[str, str]:
    key = await platform.new_tenant(f"operator-{uuid.uuid4().hex[:8]}", ["admin", "platform:admin"])
    return platform.auth(key["api_key"])


async def _create(platform: Platform, operator: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await platform.api.post(
        "/v1/tenants", json={"name": f"acme-{uuid.uuid4().hex[:8]}", **body}, headers=operator
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/tenants/{response.json()['tenant_id']}"
    tenant: dict[str, Any] = response.json()
    return tenant


async def test_the_operator_creates_a_tenant_whose_first_key_works_at_once(platform: Platform) -> None:
    operator = await _operator(platform)
    tenant = await _create(platform, operator, tier="standard")
    admin = platform.auth(tenant["admin_key"]["api_key"])
    own = await platform.api.get("/v1/tenant", headers=admin)
    assert own.status_code == 200
    assert own.json()["tenant_id"] == tenant["tenant_id"]
    assert own.headers["etag"] == '"v1"'
    # the new tenant's admin is not an operator: `admin` does not imply platform:admin
    assert_problem(await platform.api.get("/v1/tenants", headers=admin), 403)
    assert_problem(await platform.api.post("/v1/tenants", json={"name": "sneaky"}, headers=admin), 403)
    # nor can it mint itself an operator key
    escalate = await platform.api.post("/v1/api-keys", json={"name": "x", "scopes": ["platform:admin"]}, headers=admin)
    assert_problem(escalate, 403)
    # names are unique; bad tiers and unknown fields are refused
    assert_problem(await platform.api.post("/v1/tenants", json={"name": tenant["name"]}, headers=operator), 409)
    bad_tier = await platform.api.post(
        "/v1/tenants", json={"name": "t-" + uuid.uuid4().hex, "tier": "gold"}, headers=operator
    )
    assert "gold" in assert_problem(bad_tier, 422)["detail"]
    assert_problem(await platform.api.post("/v1/tenants", json={"name": "x", "plan": 1}, headers=operator), 422)


async def test_the_operator_lists_and_reads_every_tenant(platform: Platform) -> None:
    operator = await _operator(platform)
    created = [await _create(platform, operator) for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 20, **({"cursor": cursor} if cursor else {})}
        page = await platform.api.get("/v1/tenants", params=params, headers=operator)
        assert page.status_code == 200, page.text
        seen += [t["tenant_id"] for t in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert {t["tenant_id"] for t in created} <= set(seen)
    assert len(seen) == len(set(seen))
    one = await platform.api.get(f"/v1/tenants/{created[0]['tenant_id']}", headers=operator)
    assert one.json()["name"] == created[0]["name"]
    assert_problem(await platform.api.get(f"/v1/tenants/{uuid.uuid4()}", headers=operator), 404)
    assert_problem(await platform.api.get("/v1/tenants/not-a-uuid", headers=operator), 422)


async def test_a_suspended_tenant_is_locked_out_until_reactivated(platform: Platform) -> None:
    operator = await _operator(platform)
    tenant = await _create(platform, operator)
    tenant_id = tenant["tenant_id"]
    # a second key, never used before the suspension (so no authorizer decision is cached for it)
    fresh = await platform.api.post(
        "/v1/api-keys",
        json={"name": "later", "scopes": ["tenant:read"]},
        headers=platform.auth(tenant["admin_key"]["api_key"]),
    )
    later = platform.auth(fresh.json()["api_key"])
    stale = await platform.api.patch(
        f"/v1/tenants/{tenant_id}", json={"status": "suspended"}, headers={**operator, "if-match": '"v9"'}
    )
    assert_problem(stale, 412)
    suspended = await platform.api.patch(
        f"/v1/tenants/{tenant_id}", json={"status": "suspended"}, headers={**operator, "if-match": '"v1"'}
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["version"] == 2
    assert_problem(await platform.api.get("/v1/tenant", headers=later), 403)
    back = await platform.api.patch(f"/v1/tenants/{tenant_id}", json={"status": "active"}, headers=operator)
    assert back.json()["status"] == "active"
    listed = await platform.api.get("/v1/tenants", params={"status": "suspended", "limit": 100}, headers=operator)
    assert tenant_id not in [t["tenant_id"] for t in listed.json()["items"]]
    # the change is an event on the bus (archived by L01)
    events = platform.auth(tenant["admin_key"]["api_key"])
    for _ in range(100):
        found = await platform.api.get("/v1/events", params={"detail_type": "TenantUpdated"}, headers=events)
        if len(found.json()["items"]) == 2:
            break
        await asyncio.sleep(0.1)
    assert sorted(e["detail"]["status"] for e in found.json()["items"]) == ["active", "suspended"]


async def test_a_tenant_sets_its_browser_origins_and_only_those_get_cors_headers(platform: Platform) -> None:
    operator = await _operator(platform)
    tenant = await _create(platform, operator)
    admin = platform.auth(tenant["admin_key"]["api_key"])
    origin = f"https://{uuid.uuid4().hex[:8]}.example.com"
    bad = await platform.api.patch(
        "/v1/tenant", json={"cors_origins": ["https://x.example.com/path", "ftp://y"]}, headers=admin
    )
    assert set(assert_problem(bad, 422)["origins"]) == {"https://x.example.com/path", "ftp://y"}
    changed = await platform.api.patch("/v1/tenant", json={"cors_origins": [origin, origin + "/"]}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["cors_origins"] == [origin]
    # a key minted after the change carries the origins in its authorizer context
    key = await platform.api.post("/v1/api-keys", json={"name": "web", "scopes": ["tenant:read"]}, headers=admin)
    web = platform.auth(key.json()["api_key"])
    allowed = await platform.api.get("/v1/tenant", headers={**web, "origin": origin})
    assert allowed.headers["access-control-allow-origin"] == origin
    assert "x-request-id" in allowed.headers["access-control-expose-headers"]
    other = await platform.api.get("/v1/tenant", headers={**web, "origin": "https://evil.example.com"})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers
    # errors carry CORS headers too, so a browser script can read the problem
    missing = await platform.api.get("/v1/api-keys", headers={**web, "origin": origin})
    assert_problem(missing, 403)
    assert missing.headers["access-control-allow-origin"] == origin

    # preflights carry no credential: they pass for an origin some tenant allows (new ones within seconds)
    preflight = {
        "origin": origin,
        "access-control-request-method": "PATCH",
        "access-control-request-headers": "authorization, content-type, if-match",
    }
    for _ in range(100):
        answer = await platform.api.options("/v1/tenant", headers=preflight)
        if answer.status_code == 204:
            break
        await asyncio.sleep(0.1)
    assert answer.status_code == 204, answer.text
    assert answer.headers["access-control-allow-origin"] == origin
    assert "PATCH" in answer.headers["access-control-allow-methods"]
    assert "if-match" in answer.headers["access-control-allow-headers"]
    unknown = await platform.api.options("/v1/tenant", headers={**preflight, "origin": "https://evil.example.com"})
    assert_problem(unknown, 403)
    odd_header = await platform.api.options(
        "/v1/agents", headers={**preflight, "access-control-request-headers": "x-evil"}
    )
    assert_problem(odd_header, 403)
    assert_problem(await platform.api.options("/v1/agents", headers={"origin": origin}), 400)
