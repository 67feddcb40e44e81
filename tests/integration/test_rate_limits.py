"""Rate limits on a real Redis: token buckets per key and per tenant, atomic under concurrency, fail open/closed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends

from strata import ratelimit
from strata.auth import Principal
from strata.config import get_settings
from strata.handler import make_handler
from strata.web import create_service_app, require_scope


def tier(**values: float) -> ratelimit.Tier:
    return ratelimit.Tier(**{"key_rps": 1000, "key_burst": 1000, "tenant_rps": 1000, "tenant_burst": 1000, **values})


async def test_a_key_gets_its_burst_then_429_with_a_retry_after(redis_url: str) -> None:
    tenant, key, limits = str(uuid.uuid4()), "key:a", tier(key_rps=0.5, key_burst=5)

    decisions = [await ratelimit.charge(tenant, key, limits) for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].retry_after_s == 2  # one token at 0.5/s
    assert decisions[5].headers()["Retry-After"] == "2"
    assert decisions[0].headers()["RateLimit-Limit"] == "5"


async def test_the_tenant_bucket_is_shared_by_all_its_keys(redis_url: str) -> None:
    tenant, limits = str(uuid.uuid4()), tier(tenant_rps=0.1, tenant_burst=3)

    allowed = [(await ratelimit.charge(tenant, f"key:{i % 2}", limits)).allowed for i in range(5)]

    assert allowed == [True, True, True, False, False]
    other_tenant = await ratelimit.charge(str(uuid.uuid4()), "key:0", limits)
    assert other_tenant.allowed


async def test_concurrent_requests_never_overspend_a_bucket(redis_url: str) -> None:
    tenant, limits = str(uuid.uuid4()), tier(key_rps=0.01, key_burst=10)

    decisions = await asyncio.gather(*(ratelimit.charge(tenant, "key:hot", limits) for _ in range(40)))

    assert sum(d.allowed for d in decisions) == 10


async def test_a_bucket_refills_at_its_rate(redis_url: str) -> None:
    tenant, limits = str(uuid.uuid4()), tier(key_rps=20, key_burst=1)
    assert (await ratelimit.charge(tenant, "key:r", limits)).allowed
    assert not (await ratelimit.charge(tenant, "key:r", limits)).allowed

    deadline = time.monotonic() + 5
    while not (await ratelimit.charge(tenant, "key:r", limits)).allowed:
        assert time.monotonic() < deadline, "the bucket never refilled"
        await asyncio.sleep(0.02)


def _authenticated_event(principal: Principal) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "GET /unit/limited",
        "rawPath": "/unit/limited",
        "rawQueryString": "",
        "headers": {"host": "unit.test"},
        "requestContext": {
            "http": {
                "method": "GET",
                "path": "/unit/limited",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "t",
            },
            "requestId": "rl",
            "routeKey": "GET /unit/limited",
            "stage": "$default",
            "authorizer": {"lambda": principal.to_context()},
        },
        "isBase64Encoded": False,
    }


class Context:
    function_name = "unit"
    aws_request_id = "rl"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:unit"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.mark.parametrize(("fail_open", "status"), [("true", 200), ("false", 503)])
def test_when_redis_is_down_the_configured_choice_applies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fail_open: str, status: int
) -> None:
    monkeypatch.setenv("REDIS_URL", f"unix://{tmp_path / 'nobody-listens.sock'}?db=0")
    monkeypatch.setenv("STRATA_RATE_LIMIT_FAIL_OPEN", fail_open)
    get_settings.cache_clear()
    router = APIRouter()

    @router.get("/unit/limited")
    async def limited(principal: Principal = Depends(require_scope("agents:read"))) -> dict[str, str]:  # noqa: B008
        return {"ok": "yes"}

    handler = make_handler(create_service_app(layer="unit", title="t", routers=[router], readiness={}))
    principal = Principal(uuid.uuid4(), "key:x", "api_key", frozenset({"agents:read"}))
    try:
        response = handler(_authenticated_event(principal), Context())
    finally:
        get_settings.cache_clear()

    assert response["statusCode"] == status
    if status == 503:
        assert json.loads(response["body"])["type"].endswith("/unavailable")


def test_tiers_come_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "STRATA_RATE_LIMIT_TIERS",
        json.dumps({"tiny": {"key_rps": 1, "key_burst": 2, "tenant_rps": 1, "tenant_burst": 2}}),
    )
    get_settings.cache_clear()
    ratelimit.tiers.cache_clear()
    try:
        assert ratelimit.tier("tiny").key_burst == 2
        assert ratelimit.tier("no-such-tier") == ratelimit.DEFAULT_TIERS["standard"]
    finally:
        get_settings.cache_clear()
        ratelimit.tiers.cache_clear()
