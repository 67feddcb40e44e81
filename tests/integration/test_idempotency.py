"""Idempotency-Key on a real Redis: replay of the first answer, 422 for another body, one creation under races."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from strata.auth import Principal
from strata.web import create_service_app, require_scope

pytestmark = pytest.mark.usefixtures("redis_url")


def build(created: list[dict[str, Any]], principal: Principal) -> ASGIApp:
    """A small app whose POST creates something (slowly, to widen race windows), behind API Gateway's context."""
    router = APIRouter()

    @router.post("/unit/things", status_code=201)
    async def create(request: Request, _: Principal = Depends(require_scope("agents:write"))) -> dict[str, Any]:  # noqa: B008
        await asyncio.sleep(0.05)
        thing = {"id": str(uuid.uuid4()), **(await request.json())}
        created.append(thing)
        return thing

    app = create_service_app(layer="unit", title="t", routers=[router], readiness={})
    event = {"requestContext": {"requestId": "idem", "authorizer": {"lambda": principal.to_context()}}}

    async def behind_api_gateway(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "aws.event": event}, receive, send)

    return behind_api_gateway


@pytest.fixture
def principal() -> Principal:
    return Principal(uuid.uuid4(), f"key:{uuid.uuid4()}", "api_key", frozenset({"agents:write"}))


async def test_the_same_key_and_body_replays_the_first_answer(principal: Principal) -> None:
    created: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(build(created, principal)), base_url="http://t"
    ) as client:
        first = await client.post("/unit/things", json={"name": "a"}, headers={"idempotency-key": "k-1"})
        again = await client.post("/unit/things", json={"name": "a"}, headers={"idempotency-key": "k-1"})
        other_body = await client.post("/unit/things", json={"name": "b"}, headers={"idempotency-key": "k-1"})
        no_key = await client.post("/unit/things", json={"name": "a"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert other_body.status_code == 422
    assert other_body.headers["content-type"] == "application/problem+json"
    assert no_key.status_code == 201
    assert len(created) == 2  # the first request and the one without a key


async def test_concurrent_duplicates_create_exactly_once(principal: Principal) -> None:
    created: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(build(created, principal)), base_url="http://t"
    ) as client:
        answers = await asyncio.gather(
            *(
                client.post("/unit/things", json={"name": "race"}, headers={"idempotency-key": "k-race"})
                for _ in range(10)
            )
        )

    assert len(created) == 1
    assert sorted({a.status_code for a in answers}) in ([201, 409], [201])
    assert all(a.json()["id"] == created[0]["id"] for a in answers if a.status_code == 201)


async def test_keys_are_private_to_their_credential(principal: Principal) -> None:
    created: list[dict[str, Any]] = []
    other = Principal(principal.tenant_id, f"key:{uuid.uuid4()}", "api_key", frozenset({"agents:write"}))
    for caller in (principal, other):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(build(created, caller)), base_url="http://t"
        ) as client:
            answer = await client.post("/unit/things", json={"name": "x"}, headers={"idempotency-key": "shared"})
            assert answer.status_code == 201

    assert len(created) == 2


async def test_a_malformed_key_is_a_400(principal: Principal) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(build([], principal)), base_url="http://t") as client:
        answer = await client.post("/unit/things", json={}, headers={"idempotency-key": "x" * 300})

    assert answer.status_code == 400
