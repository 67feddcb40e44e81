"""L01's entity APIs through the local cloud: ETags and If-Match, filters, soft delete, the read cache."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem

pytestmark = pytest.mark.e2e


async def _tenant_headers(platform: Platform) -> dict[str, str]:
    tenant = await platform.new_tenant(f"l01-{uuid.uuid4().hex[:8]}")
    return platform.auth(tenant["api_key"])


async def test_an_agent_lives_through_create_update_and_delete(platform: Platform) -> None:
    headers = await _tenant_headers(platform)

    # create: 201 with its ETag and location
    created = await platform.api.post(
        "/v1/agents", json={"name": "triage", "capabilities": ["search"]}, headers=headers
    )
    assert created.status_code == 201, created.text
    agent = created.json()
    assert created.headers["etag"] == '"v1"'
    assert created.headers["location"] == f"/v1/agents/{agent['agent_id']}"
    assert agent["did"] == f"did:strata:agent:{agent['agent_id']}"
    url = f"/v1/agents/{agent['agent_id']}"

    # read (twice: the second from the cache) gives the same entity and ETag
    for _ in range(2):
        read = await platform.api.get(url, headers=headers)
        assert (read.status_code, read.headers["etag"], read.json()["name"]) == (200, '"v1"', "triage")

    # a write with a fresh ETag succeeds; one with the old ETag is refused, and the entity is unchanged
    updated = await platform.api.patch(
        url, json={"status": "paused", "capabilities": ["search", "summarise"]}, headers={**headers, "if-match": '"v1"'}
    )
    assert updated.status_code == 200, updated.text
    assert (updated.headers["etag"], updated.json()["status"]) == ('"v2"', "paused")
    stale = await platform.api.patch(url, json={"description": "late"}, headers={**headers, "if-match": '"v1"'})
    assert assert_problem(stale, 412)["current_etag"] == '"v2"'
    after = await platform.api.get(url, headers=headers)
    assert (after.headers["etag"], after.json()["description"]) == ('"v2"', "")  # the cache was invalidated

    # lifecycle: retired is terminal
    assert (await platform.api.patch(url, json={"status": "retired"}, headers=headers)).status_code == 200
    assert_problem(await platform.api.patch(url, json={"status": "active"}, headers=headers), 409)

    # delete is soft: gone from reads and lists, kept for include_deleted, and the name is free again
    assert_problem(await platform.api.delete(url, headers={**headers, "if-match": '"v1"'}), 412)
    assert (await platform.api.delete(url, headers=headers)).status_code == 204
    assert_problem(await platform.api.get(url, headers=headers), 404)
    listed = (await platform.api.get("/v1/agents", headers=headers)).json()["items"]
    assert agent["agent_id"] not in {a["agent_id"] for a in listed}
    everything = (await platform.api.get("/v1/agents", params={"include_deleted": "true"}, headers=headers)).json()
    assert agent["agent_id"] in {a["agent_id"] for a in everything["items"]}
    assert (await platform.api.post("/v1/agents", json={"name": "triage"}, headers=headers)).status_code == 201


async def test_agent_lists_filter_by_status_name_and_capability(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    for name, caps in (("alpha_1", ["search"]), ("alpha_2", ["email"]), ("beta", ["search"])):
        assert (
            await platform.api.post("/v1/agents", json={"name": name, "capabilities": caps}, headers=headers)
        ).status_code == 201

    async def names(**params: str) -> list[str]:
        page = await platform.api.get("/v1/agents", params=params, headers=headers)
        assert page.status_code == 200, page.text
        return sorted(a["name"] for a in page.json()["items"])

    assert await names(name_prefix="alpha") == ["alpha_1", "alpha_2"]
    assert await names(name_prefix="alpha_") == ["alpha_1", "alpha_2"]  # "_" is literal, not a wildcard
    assert await names(capability="search") == ["alpha_1", "beta"]
    assert await names(status="paused") == []
    assert_problem(await platform.api.get("/v1/agents", params={"status": "sleepy"}, headers=headers), 422)


async def test_agent_writes_reject_bad_input(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    agent = (await platform.api.post("/v1/agents", json={"name": "strict"}, headers=headers)).json()
    url = f"/v1/agents/{agent['agent_id']}"

    assert_problem(await platform.api.get("/v1/agents/not-a-uuid", headers=headers), 422)
    assert_problem(await platform.api.get(f"/v1/agents/{uuid.uuid4()}", headers=headers), 404)
    assert_problem(await platform.api.patch(url, json={"name": "renamed"}, headers=headers), 422)
    assert_problem(await platform.api.patch(url, json={"capabilities": ["Bad Cap"]}, headers=headers), 422)
    assert_problem(await platform.api.patch(url, json={}, headers={**headers, "if-match": "yesterday"}), 400)


async def test_an_idempotency_key_makes_a_retried_create_harmless(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    retry = {**headers, "idempotency-key": f"create-{uuid.uuid4()}"}

    first = await platform.api.post("/v1/agents", json={"name": "once"}, headers=retry)
    again = await platform.api.post("/v1/agents", json={"name": "once"}, headers=retry)
    changed = await platform.api.post("/v1/agents", json={"name": "twice"}, headers=retry)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["agent_id"] == first.json()["agent_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert_problem(changed, 422)
    listed = (await platform.api.get("/v1/agents", headers=headers)).json()["items"]
    assert [a["name"] for a in listed] == ["once"]


async def test_an_agent_carries_what_the_runtime_runs_it_with(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    definition = {
        "name": "researcher",
        "system_prompt": "You research carefully and cite sources.",
        "model": {"name": "gpt", "capabilities": ["tools"], "strategy": "quality", "temperature": 0.2},
        "tools": ["http_request", "document_search"],
        "max_steps": 8,
    }
    created = await platform.api.post("/v1/agents", json=definition, headers=headers)
    assert created.status_code == 201, created.text
    agent = created.json()
    assert (agent["system_prompt"], agent["tools"], agent["max_steps"]) == (
        definition["system_prompt"],
        ["http_request", "document_search"],
        8,
    )
    assert agent["model"] == {
        "name": "gpt",
        "capabilities": ["tools"],
        "min_context": 0,
        "strategy": "quality",
        "temperature": 0.2,
    }
    url = f"/v1/agents/{agent['agent_id']}"
    # null tools: every tool of the tenant
    opened = await platform.api.patch(url, json={"tools": None, "max_steps": 30}, headers=headers)
    assert (opened.json()["tools"], opened.json()["max_steps"]) == (None, 30)
    assert (await platform.api.get(url, headers=headers)).json()["tools"] is None
    defaults = (await platform.api.post("/v1/agents", json={"name": "plain"}, headers=headers)).json()
    assert (defaults["system_prompt"], defaults["tools"], defaults["max_steps"]) == ("", None, 20)
    for bad in ({"tools": ["Not A Tool"]}, {"max_steps": 0}, {"model": {"strategy": "random"}}):
        assert_problem(await platform.api.patch(url, json=bad, headers=headers), 422)
