"""L01's configuration and session APIs through the local cloud: ETags and preconditions, history, the read
cache, lifecycles, scheduled expiry, bad input and tenant isolation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem, eventually

pytestmark = pytest.mark.e2e


async def _tenant_headers(platform: Platform, scopes: list[str] | None = None) -> dict[str, str]:
    tenant = await platform.new_tenant(f"l01cs-{uuid.uuid4().hex[:8]}", scopes)
    return platform.auth(tenant["api_key"])


async def _events_of(platform: Platform, headers: dict[str, str], aggregate: str, aggregate_id: str) -> list[Any]:
    page = await platform.api.get(
        "/v1/events", params={"aggregate_type": aggregate, "aggregate_id": aggregate_id}, headers=headers
    )
    assert page.status_code == 200, page.text
    items: list[Any] = page.json()["items"]
    return items


# --- configurations ---------------------------------------------------------------------------------------------


async def test_a_configuration_entry_is_created_replaced_listed_versioned_and_deleted(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    url = "/v1/configurations/billing/max_retries"

    # create-only put: 201, v1, a location; a second create-only put is refused with the current ETag
    created = await platform.api.put(url, json={"value": 3}, headers={**headers, "if-none-match": "*"})
    assert created.status_code == 201, created.text
    assert (created.headers["etag"], created.headers["location"]) == ('"v1"', url)
    entry = created.json()
    assert (entry["namespace"], entry["key"], entry["value"], entry["version"]) == ("billing", "max_retries", 3, 1)
    again = await platform.api.put(url, json={"value": 4}, headers={**headers, "if-none-match": "*"})
    assert assert_problem(again, 412)["current_etag"] == '"v1"'

    # read twice (the second from the cache): the same value and ETag
    for _ in range(2):
        read = await platform.api.get(url, headers=headers)
        assert (read.status_code, read.headers["etag"], read.json()["value"]) == (200, '"v1"', 3)

    # replace with the fresh ETag: 200, v2, and the very next read sees it (the cache was invalidated)
    replaced = await platform.api.put(
        url, json={"value": {"limit": 5, "backoff": [1, 2]}}, headers={**headers, "if-match": '"v1"'}
    )
    assert (replaced.status_code, replaced.headers["etag"]) == (200, '"v2"'), replaced.text
    read = await platform.api.get(url, headers=headers)
    assert (read.headers["etag"], read.json()["value"]) == ('"v2"', {"limit": 5, "backoff": [1, 2]})

    # a stale ETag is refused and changes nothing; an unconditional put just applies
    stale = await platform.api.put(url, json={"value": "late"}, headers={**headers, "if-match": '"v1"'})
    assert assert_problem(stale, 412)["current_etag"] == '"v2"'
    assert (await platform.api.get(url, headers=headers)).json()["value"] == {"limit": 5, "backoff": [1, 2]}
    unconditional = await platform.api.put(url, json={"value": None}, headers=headers)
    assert (unconditional.status_code, unconditional.headers["etag"], unconditional.json()["value"]) == (
        200,
        '"v3"',
        None,
    )

    # If-Match on an entry that does not exist is a failed precondition, not a create
    assert_problem(
        await platform.api.put(
            "/v1/configurations/billing/missing", json={"value": 1}, headers={**headers, "if-match": '"v1"'}
        ),
        412,
    )
    assert_problem(await platform.api.get("/v1/configurations/billing/missing", headers=headers), 404)

    # lists: by namespace, by key prefix ("_" is literal), paginated
    for namespace, key in (("billing", "max_tokens"), ("billing", "maxXretries"), ("search", "max_results")):
        put = await platform.api.put(f"/v1/configurations/{namespace}/{key}", json={"value": 1}, headers=headers)
        assert put.status_code == 201, put.text

    async def keys(**params: str) -> list[str]:
        page = await platform.api.get("/v1/configurations", params=params, headers=headers)
        assert page.status_code == 200, page.text
        return sorted(f"{item['namespace']}/{item['key']}" for item in page.json()["items"])

    assert await keys(namespace="billing") == ["billing/maxXretries", "billing/max_retries", "billing/max_tokens"]
    assert await keys(namespace="billing", key_prefix="max_") == ["billing/max_retries", "billing/max_tokens"]
    assert await keys(key_prefix="max_r") == ["billing/max_retries", "search/max_results"]
    first = (await platform.api.get("/v1/configurations", params={"limit": 2}, headers=headers)).json()
    assert (len(first["items"]), bool(first["next_cursor"])) == (2, True)
    rest = await platform.api.get(
        "/v1/configurations", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
    )
    assert (len(rest.json()["items"]), rest.json()["next_cursor"]) == (2, None)

    # delete: a stale ETag is refused; then soft delete (204), gone from reads and lists, kept in the history
    assert_problem(await platform.api.delete(url, headers={**headers, "if-match": '"v2"'}), 412)
    assert (await platform.api.delete(url, headers={**headers, "if-match": '"v3"'})).status_code == 204
    assert_problem(await platform.api.get(url, headers=headers), 404)
    assert_problem(await platform.api.delete(url, headers=headers), 404)
    assert "billing/max_retries" not in await keys(namespace="billing")
    history = await platform.api.get(f"{url}/versions", headers=headers)
    assert history.status_code == 200, history.text
    assert [(v["version"], v["value"], v["deleted"]) for v in history.json()["items"]] == [
        (4, None, True),
        (3, None, False),
        (2, {"limit": 5, "backoff": [1, 2]}, False),
        (1, 3, False),
    ]

    # the key is free again: a new entry starts at v1
    recreated = await platform.api.put(url, json={"value": 7}, headers={**headers, "if-none-match": "*"})
    assert (recreated.status_code, recreated.headers["etag"]) == (201, '"v1"'), recreated.text
    assert (await platform.api.get(url, headers=headers)).json()["value"] == 7

    # every change was announced with its version (ConfigurationChanged, the delete marked deleted)
    async def changes() -> list[tuple[int, bool]] | None:
        events = await _events_of(platform, headers, "configuration", entry["configuration_id"])
        seen = sorted((e["detail"]["version"], e["detail"]["deleted"]) for e in events)
        return seen if len(seen) == 4 else None

    assert await eventually(changes, what="four ConfigurationChanged events") == [
        (1, False),
        (2, False),
        (3, False),
        (4, True),
    ]


async def test_concurrent_creates_of_one_key_give_one_201_and_never_a_500(platform: Platform) -> None:
    headers = await _tenant_headers(platform)

    async def put(key: str, value: int, extra: dict[str, str]) -> int:
        response = await platform.api.put(
            f"/v1/configurations/race/{key}", json={"value": value}, headers={**headers, **extra}
        )
        return response.status_code

    create_only = await asyncio.gather(*(put("only", n, {"if-none-match": "*"}) for n in range(6)))
    assert sorted(create_only) == [201] + [412] * 5
    upserts = await asyncio.gather(*(put("upsert", n, {}) for n in range(6)))
    assert upserts.count(201) == 1, upserts
    assert set(upserts) <= {200, 201, 409}, upserts
    read = await platform.api.get("/v1/configurations/race/upsert", headers=headers)
    assert (read.status_code, read.headers["etag"]) == (200, f'"v{upserts.count(200) + 1}"')


async def test_configuration_requests_reject_bad_input(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    assert_problem(await platform.api.put("/v1/configurations/Billing/key", json={"value": 1}, headers=headers), 422)
    assert_problem(await platform.api.put("/v1/configurations/billing/-key", json={"value": 1}, headers=headers), 422)
    assert_problem(await platform.api.get(f"/v1/configurations/{'n' * 101}/key", headers=headers), 422)
    assert_problem(await platform.api.get(f"/v1/configurations/billing/{'k' * 201}", headers=headers), 422)
    assert_problem(await platform.api.put("/v1/configurations/billing/key", json={}, headers=headers), 422)
    assert_problem(
        await platform.api.put("/v1/configurations/billing/key", json={"value": 1, "ttl": 5}, headers=headers), 422
    )
    too_big = {"value": "x" * 65_537}
    assert_problem(await platform.api.put("/v1/configurations/billing/key", json=too_big, headers=headers), 422)
    nul = {"value": {"text": "a\u0000b"}}
    assert_problem(await platform.api.put("/v1/configurations/billing/key", json=nul, headers=headers), 422)
    assert_problem(
        await platform.api.put(
            "/v1/configurations/billing/key", json={"value": 1}, headers={**headers, "if-match": "yesterday"}
        ),
        400,
    )
    assert_problem(
        await platform.api.put(
            "/v1/configurations/billing/key", json={"value": 1}, headers={**headers, "if-none-match": '"v1"'}
        ),
        400,
    )
    assert_problem(await platform.api.get("/v1/configurations", params={"namespace": "Nope"}, headers=headers), 422)
    assert_problem(await platform.api.get("/v1/configurations/billing/key/versions", headers=headers), 404)
    assert_problem(await platform.api.delete("/v1/configurations/billing/key", headers=headers), 404)

    # a read-only credential reads but cannot write
    reader = await _tenant_headers(platform, scopes=["config:read"])
    assert (await platform.api.get("/v1/configurations", headers=reader)).status_code == 200
    assert_problem(await platform.api.put("/v1/configurations/billing/key", json={"value": 1}, headers=reader), 403)


async def test_another_tenant_cannot_see_configuration_or_sessions(platform: Platform) -> None:
    owner, other = await _tenant_headers(platform), await _tenant_headers(platform)
    url = "/v1/configurations/shared/secret"
    assert (await platform.api.put(url, json={"value": "mine"}, headers=owner)).status_code == 201
    session = (await platform.api.post("/v1/sessions", json={"state": {"a": 1}}, headers=owner)).json()
    session_url = f"/v1/sessions/{session['session_id']}"

    assert_problem(await platform.api.get(url, headers=other), 404)
    assert_problem(await platform.api.get(f"{url}/versions", headers=other), 404)
    assert_problem(await platform.api.delete(url, headers=other), 404)
    assert (await platform.api.get("/v1/configurations", headers=other)).json()["items"] == []
    assert_problem(await platform.api.get(session_url, headers=other), 404)
    assert_problem(await platform.api.patch(session_url, json={"state": {}}, headers=other), 404)
    assert_problem(await platform.api.post(f"{session_url}/close", headers=other), 404)
    assert (await platform.api.get("/v1/sessions", headers=other)).json()["items"] == []

    # the other tenant's key of the same name is its own entry, and the owner's is untouched
    assert (await platform.api.put(url, json={"value": "theirs"}, headers=other)).status_code == 201
    assert (await platform.api.get(url, headers=owner)).json()["value"] == "mine"
    assert (await platform.api.get(session_url, headers=owner)).json()["status"] == "active"


# --- sessions ---------------------------------------------------------------------------------------------------


async def test_a_session_is_started_updated_and_closed(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    agent = (await platform.api.post("/v1/agents", json={"name": "helper"}, headers=headers)).json()

    created = await platform.api.post(
        "/v1/sessions", json={"agent_id": agent["agent_id"], "ttl_s": 600, "state": {"step": 1}}, headers=headers
    )
    assert created.status_code == 201, created.text
    session = created.json()
    url = f"/v1/sessions/{session['session_id']}"
    assert (created.headers["etag"], created.headers["location"]) == ('"v1"', url)
    assert (session["agent_id"], session["status"], session["state"], session["ended_at"]) == (
        agent["agent_id"],
        "active",
        {"step": 1},
        None,
    )
    read = await platform.api.get(url, headers=headers)
    assert (read.status_code, read.headers["etag"], read.json()["state"]) == (200, '"v1"', {"step": 1})

    # update with the fresh ETag: state replaced, expiry extended from now, v2; the stale ETag is then refused
    patched = await platform.api.patch(
        url, json={"state": {"step": 2}, "ttl_s": 7200}, headers={**headers, "if-match": '"v1"'}
    )
    assert (patched.status_code, patched.headers["etag"]) == (200, '"v2"'), patched.text
    assert patched.json()["state"] == {"step": 2}
    assert datetime.fromisoformat(patched.json()["expires_at"]) > datetime.fromisoformat(session["expires_at"])
    stale = await platform.api.patch(url, json={"state": {"step": 3}}, headers={**headers, "if-match": '"v1"'})
    assert assert_problem(stale, 412)["current_etag"] == '"v2"'
    unconditional = await platform.api.patch(url, json={"state": {"step": 3}}, headers=headers)
    assert (unconditional.status_code, unconditional.headers["etag"]) == (200, '"v3"'), unconditional.text
    assert unconditional.json()["expires_at"] == patched.json()["expires_at"]  # no ttl_s: the expiry stays

    # lists filter by status and agent
    other = await platform.api.post("/v1/sessions", json={}, headers=headers)
    assert (other.status_code, other.json()["agent_id"], other.json()["state"]) == (201, None, {})

    async def ids(**params: str) -> set[str]:
        page = await platform.api.get("/v1/sessions", params=params, headers=headers)
        assert page.status_code == 200, page.text
        return {item["session_id"] for item in page.json()["items"]}

    assert await ids() == {session["session_id"], other.json()["session_id"]}
    assert await ids(agent_id=agent["agent_id"]) == {session["session_id"]}

    # close: closed with an end time; closing again, or updating a closed session, is a conflict
    closed = await platform.api.post(f"{url}/close", headers=headers)
    assert (closed.status_code, closed.headers["etag"], closed.json()["status"]) == (200, '"v4"', "closed")
    assert closed.json()["ended_at"] is not None
    assert_problem(await platform.api.post(f"{url}/close", headers=headers), 409)
    assert_problem(await platform.api.patch(url, json={"state": {}}, headers={**headers, "if-match": '"v4"'}), 409)
    assert await ids(status="closed") == {session["session_id"]}
    assert await ids(status="active") == {other.json()["session_id"]}

    # SessionStarted then SessionEnded (closed) reached the event log
    async def lifecycle() -> list[tuple[str, str | None]] | None:
        events = await _events_of(platform, headers, "session", session["session_id"])
        seen = sorted((e["detail_type"], e["detail"].get("reason")) for e in events)
        return seen if len(seen) == 2 else None

    assert await eventually(lifecycle, what="SessionStarted and SessionEnded") == [
        ("SessionEnded", "closed"),
        ("SessionStarted", None),
    ]


async def test_the_scheduled_job_expires_a_lapsed_session(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    created = await platform.api.post("/v1/sessions", json={"ttl_s": 60, "state": {"k": "v"}}, headers=headers)
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    url = f"/v1/sessions/{session_id}"
    keeper = (await platform.api.post("/v1/sessions", json={"ttl_s": 60}, headers=headers)).json()

    # GIVEN its expiry has passed (set directly rather than waiting a minute)
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        await conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE session_id = $1", uuid.UUID(session_id)
        )
    finally:
        await conn.close()

    # THEN a lapsed session can no longer be extended, even before the job reaches it
    assert_problem(await platform.api.patch(url, json={"ttl_s": 3600}, headers=headers), 409)

    # WHEN the ExpireSessions schedule fires (every second in this test cloud) THEN it is expired, with an end
    async def expired() -> dict[str, Any] | None:
        read = await platform.api.get(url, headers=headers)
        assert read.status_code == 200, read.text
        body: dict[str, Any] = read.json()
        return body if body["status"] == "expired" else None

    session = await eventually(expired, what="the expiry job to expire the session")
    assert session["ended_at"] is not None
    assert session["version"] == 2
    assert_problem(await platform.api.post(f"{url}/close", headers=headers), 409)
    assert (await platform.api.get(f"/v1/sessions/{keeper['session_id']}", headers=headers)).json()["status"] == (
        "active"
    )

    async def ended() -> list[Any] | None:
        events = await _events_of(platform, headers, "session", session_id)
        endings = [e["detail"]["reason"] for e in events if e["detail_type"] == "SessionEnded"]
        return endings or None

    assert await eventually(ended, what="SessionEnded (expired)") == ["expired"]


async def test_session_requests_reject_bad_input(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    session = (await platform.api.post("/v1/sessions", json={}, headers=headers)).json()
    url = f"/v1/sessions/{session['session_id']}"

    # an agent must be a live agent of this tenant
    unknown = await platform.api.post("/v1/sessions", json={"agent_id": str(uuid.uuid4())}, headers=headers)
    assert assert_problem(unknown, 422)["type"].endswith("/validation")
    foreign = await platform.api.post("/v1/agents", json={"name": "theirs"}, headers=await _tenant_headers(platform))
    assert_problem(
        await platform.api.post("/v1/sessions", json={"agent_id": foreign.json()["agent_id"]}, headers=headers), 422
    )
    gone = (await platform.api.post("/v1/agents", json={"name": "gone"}, headers=headers)).json()
    assert (await platform.api.delete(f"/v1/agents/{gone['agent_id']}", headers=headers)).status_code == 204
    assert_problem(await platform.api.post("/v1/sessions", json={"agent_id": gone["agent_id"]}, headers=headers), 422)

    for body in (
        {"ttl_s": 59},
        {"ttl_s": 86_401},
        {"state": ["not", "an", "object"]},
        {"state": {"big": "x" * 65_537}},
        {"agent_id": "not-a-uuid"},
        {"owner": "someone"},
    ):
        assert_problem(await platform.api.post("/v1/sessions", json=body, headers=headers), 422)
    assert_problem(await platform.api.patch(url, json={"ttl_s": 10}, headers=headers), 422)
    assert_problem(await platform.api.patch(url, json={"status": "closed"}, headers=headers), 422)
    assert_problem(await platform.api.patch(url, json={}, headers={**headers, "if-match": "yesterday"}), 400)
    assert_problem(await platform.api.get("/v1/sessions/not-a-uuid", headers=headers), 422)
    assert_problem(await platform.api.get(f"/v1/sessions/{uuid.uuid4()}", headers=headers), 404)
    assert_problem(await platform.api.post(f"/v1/sessions/{uuid.uuid4()}/close", headers=headers), 404)
    assert_problem(await platform.api.get("/v1/sessions", params={"status": "sleepy"}, headers=headers), 422)

    reader = await _tenant_headers(platform, scopes=["sessions:read"])
    assert_problem(await platform.api.post("/v1/sessions", json={}, headers=reader), 403)
