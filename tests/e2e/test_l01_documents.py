"""L01's documents API through the local cloud: versions, ETags and If-Match, full-text search, soft delete,
tenant isolation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem, eventually

pytestmark = pytest.mark.e2e


async def _tenant_headers(platform: Platform, scopes: list[str] | None = None) -> dict[str, str]:
    tenant = await platform.new_tenant(f"docs-{uuid.uuid4().hex[:8]}", scopes)
    return platform.auth(tenant["api_key"])


async def _create(platform: Platform, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    created = await platform.api.post("/v1/documents", json=body, headers=headers)
    assert created.status_code == 201, created.text
    document: dict[str, Any] = created.json()
    return document


async def _ids(platform: Platform, headers: dict[str, str], **params: str) -> set[str]:
    page = await platform.api.get("/v1/documents", params=params, headers=headers)
    assert page.status_code == 200, page.text
    return {d["document_id"] for d in page.json()["items"]}


async def test_a_document_lives_through_create_update_and_delete(platform: Platform) -> None:
    headers = await _tenant_headers(platform)

    # create: 201 with its ETag and location; the defaults filled in
    created = await platform.api.post(
        "/v1/documents", json={"title": "Runbook", "content": "restart the worker"}, headers=headers
    )
    assert created.status_code == 201, created.text
    document = created.json()
    assert created.headers["etag"] == '"v1"'
    assert created.headers["location"] == f"/v1/documents/{document['document_id']}"
    assert (document["content_type"], document["metadata"], document["version"]) == ("text/plain", {}, 1)
    assert document["deleted_at"] is None
    url = f"/v1/documents/{document['document_id']}"

    # read (twice: the second from the cache) gives the same document and ETag
    for _ in range(2):
        read = await platform.api.get(url, headers=headers)
        assert (read.status_code, read.headers["etag"]) == (200, '"v1"')
        assert read.json()["content"] == "restart the worker"

    # lists carry no content
    listed = (await platform.api.get("/v1/documents", headers=headers)).json()["items"]
    assert [d["document_id"] for d in listed] == [document["document_id"]]
    assert "content" not in listed[0]
    assert listed[0]["title"] == "Runbook"

    # an update with a fresh ETag succeeds; one with the old ETag is refused and changes nothing
    updated = await platform.api.patch(
        url,
        json={"content": "restart the worker twice", "metadata": {"team": "ops"}},
        headers={**headers, "if-match": '"v1"'},
    )
    assert updated.status_code == 200, updated.text
    assert (updated.headers["etag"], updated.json()["version"]) == ('"v2"', 2)
    stale = await platform.api.patch(url, json={"title": "late"}, headers={**headers, "if-match": '"v1"'})
    assert assert_problem(stale, 412)["current_etag"] == '"v2"'
    after = await platform.api.get(url, headers=headers)  # the cache was invalidated by the update
    assert (after.headers["etag"], after.json()["title"]) == ('"v2"', "Runbook")
    assert (after.json()["content"], after.json()["metadata"]) == ("restart the worker twice", {"team": "ops"})

    # an update without If-Match is unconditional; one that changes nothing (or only sends nulls) keeps the version
    unconditional = await platform.api.patch(url, json={"content_type": "text/markdown"}, headers=headers)
    assert (unconditional.status_code, unconditional.headers["etag"]) == (200, '"v3"')
    for no_op in ({"content_type": "text/markdown", "title": "Runbook"}, {"title": None}, {}):
        same = await platform.api.patch(url, json=no_op, headers={**headers, "if-match": '"v3"'})
        assert (same.status_code, same.headers["etag"], same.json()["version"]) == (200, '"v3"', 3), same.text

    # delete is soft and honours If-Match: gone from reads, versions and lists, kept for include_deleted
    assert_problem(await platform.api.delete(url, headers={**headers, "if-match": '"v2"'}), 412)
    deleted = await platform.api.delete(url, headers={**headers, "if-match": '"v3"'})
    assert deleted.status_code == 204, deleted.text
    assert_problem(await platform.api.get(url, headers=headers), 404)
    assert_problem(await platform.api.get(f"{url}/versions", headers=headers), 404)
    assert_problem(await platform.api.patch(url, json={"title": "back"}, headers=headers), 404)
    assert_problem(await platform.api.delete(url, headers=headers), 404)
    assert document["document_id"] not in await _ids(platform, headers)
    everything = (await platform.api.get("/v1/documents", params={"include_deleted": "true"}, headers=headers)).json()
    [gone] = [d for d in everything["items"] if d["document_id"] == document["document_id"]]
    assert gone["deleted_at"] is not None
    assert gone["version"] == 4

    # each write published its event through the outbox, and L01 archived it under the document
    async def archived() -> list[tuple[str, int | None]] | None:
        page = await platform.api.get(
            "/v1/events",
            params={"aggregate_type": "document", "aggregate_id": document["document_id"]},
            headers=headers,
        )
        items = page.json()["items"]
        return [(e["detail_type"], e["detail"].get("version")) for e in items] if len(items) >= 4 else None

    events = await eventually(archived, what="the document's events in the event log")
    assert sorted(events, key=str) == sorted(
        [("DocumentCreated", 1), ("DocumentUpdated", 2), ("DocumentUpdated", 3), ("DocumentDeleted", None)], key=str
    )


async def test_full_text_search_finds_documents_by_their_words(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    kafka = await _create(
        platform, headers, title="Streaming notes", content="Partitions rebalance when consumers join the group."
    )
    postgres = await _create(
        platform,
        headers,
        title="Database notes",
        content="Vacuum reclaims dead tuples.",
        content_type="text/markdown; charset=utf-8",
    )

    assert await _ids(platform, headers, q="rebalance") == {kafka["document_id"]}
    assert await _ids(platform, headers, q="partition") == {kafka["document_id"]}  # stemmed: partitions
    assert await _ids(platform, headers, q="vacuum tuples") == {postgres["document_id"]}
    assert await _ids(platform, headers, q="notes") == {kafka["document_id"], postgres["document_id"]}  # titles
    assert await _ids(platform, headers, q="notes -vacuum") == {kafka["document_id"]}
    assert await _ids(platform, headers, q="kubernetes") == set()
    assert await _ids(platform, headers, content_type="text/markdown; charset=utf-8") == {postgres["document_id"]}
    assert await _ids(platform, headers, q="notes", content_type="text/plain") == {kafka["document_id"]}

    # search follows updates: the old word no longer finds it, the new one does
    url = f"/v1/documents/{kafka['document_id']}"
    assert (await platform.api.patch(url, json={"content": "Offsets commit."}, headers=headers)).status_code == 200
    assert await _ids(platform, headers, q="rebalance") == set()
    assert await _ids(platform, headers, q="offsets") == {kafka["document_id"]}


async def test_document_lists_are_cursor_paginated(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    made = [(await _create(platform, headers, title=f"page {n}", content="x"))["document_id"] for n in range(5)]
    seen: list[str] = []
    params = {"limit": "2"}
    while True:
        page = (await platform.api.get("/v1/documents", params=params, headers=headers)).json()
        seen += [d["document_id"] for d in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": "2", "cursor": page["next_cursor"]}
    assert seen == made[::-1]  # newest first, each once


async def test_every_write_keeps_a_version(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    document = await _create(platform, headers, title="Draft", content="first words", metadata={"stage": "draft"})
    url = f"/v1/documents/{document['document_id']}"
    assert (await platform.api.patch(url, json={"content": "second words"}, headers=headers)).status_code == 200
    assert (
        await platform.api.patch(url, json={"title": "Final", "metadata": {"stage": "final"}}, headers=headers)
    ).status_code == 200

    versions = await platform.api.get(f"{url}/versions", headers=headers)
    assert versions.status_code == 200, versions.text
    items = versions.json()["items"]
    assert [(v["version"], v["title"]) for v in items] == [(3, "Final"), (2, "Draft"), (1, "Draft")]
    assert all("content" not in v for v in items)
    assert versions.json()["next_cursor"] is None
    first = await platform.api.get(f"{url}/versions", params={"limit": 2}, headers=headers)
    assert [v["version"] for v in first.json()["items"]] == [3, 2]
    rest = await platform.api.get(
        f"{url}/versions", params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=headers
    )
    assert [v["version"] for v in rest.json()["items"]] == [1]
    assert rest.json()["next_cursor"] is None

    expected = {
        1: ("Draft", "first words", {"stage": "draft"}),
        2: ("Draft", "second words", {"stage": "draft"}),
        3: ("Final", "second words", {"stage": "final"}),
    }
    for number, (title, content, metadata) in expected.items():
        version = await platform.api.get(f"{url}/versions/{number}", headers=headers)
        assert version.status_code == 200, version.text
        body = version.json()
        assert (body["version"], body["title"], body["content"], body["metadata"]) == (number, title, content, metadata)
        assert body["document_id"] == document["document_id"]

    assert_problem(await platform.api.get(f"{url}/versions/4", headers=headers), 404)
    assert_problem(await platform.api.get(f"{url}/versions/0", headers=headers), 422)
    assert_problem(await platform.api.get(f"{url}/versions/latest", headers=headers), 422)
    assert_problem(await platform.api.get(f"/v1/documents/{uuid.uuid4()}/versions/1", headers=headers), 404)


async def test_document_writes_reject_bad_input(platform: Platform) -> None:
    headers = await _tenant_headers(platform)
    document = await _create(platform, headers, title="Strict", content="rules")
    url = f"/v1/documents/{document['document_id']}"

    async def post(body: dict[str, Any]) -> Any:
        return await platform.api.post("/v1/documents", json=body, headers=headers)

    assert_problem(await post({"title": "t", "content": "c", "owner": "me"}), 422)  # unknown field
    assert_problem(await post({"title": "t" * 201, "content": "c"}), 422)
    assert_problem(await post({"title": "", "content": "c"}), 422)
    assert_problem(await post({"title": "t"}), 422)  # no content
    assert_problem(await post({"title": "t", "content": "c", "content_type": "not a type"}), 422)
    assert_problem(await post({"title": "t", "content": "c", "metadata": {f"k{n}": n for n in range(51)}}), 422)
    assert_problem(await post({"title": "t", "content": "nul \u0000 inside"}), 422)
    assert_problem(await post({"title": "t", "content": "c", "metadata": {"k": "nul \u0000"}}), 422)
    assert (await post({"title": "t", "content": "c" * 1_000_000})).status_code == 201
    assert_problem(await post({"title": "t", "content": "c" * 1_000_001}), 422)
    # within the length limit, but more distinct words than a Postgres tsvector (1 MiB) can index
    words = " ".join(f"w{n:06x}" for n in range(124_000))
    assert len(words) <= 1_000_000
    assert "index" in assert_problem(await post({"title": "t", "content": words}), 413)["detail"]

    assert_problem(await platform.api.patch(url, json={"version": 7}, headers=headers), 422)  # unknown field
    assert_problem(await platform.api.patch(url, json={"title": "t" * 201}, headers=headers), 422)
    assert_problem(await platform.api.patch(url, json={}, headers={**headers, "if-match": "yesterday"}), 400)
    assert_problem(await platform.api.delete(url, headers={**headers, "if-match": "v1"}), 400)
    assert_problem(await platform.api.get("/v1/documents/not-a-uuid", headers=headers), 422)
    assert_problem(await platform.api.get("/v1/documents/not-a-uuid/versions", headers=headers), 422)
    missing = f"/v1/documents/{uuid.uuid4()}"
    assert_problem(await platform.api.get(missing, headers=headers), 404)
    assert_problem(await platform.api.patch(missing, json={"title": "x"}, headers=headers), 404)
    assert_problem(await platform.api.delete(missing, headers=headers), 404)
    assert_problem(await platform.api.get("/v1/documents", params={"cursor": "bogus"}, headers=headers), 400)
    assert_problem(await platform.api.get("/v1/documents", params={"limit": "0"}, headers=headers), 422)

    read_only = await _tenant_headers(platform, scopes=["documents:read"])
    assert_problem(
        await platform.api.post("/v1/documents", json={"title": "t", "content": "c"}, headers=read_only), 403
    )
    assert (await platform.api.get("/v1/documents", headers=read_only)).status_code == 200

    after = await platform.api.get(url, headers=headers)  # none of that changed the document
    assert (after.headers["etag"], after.json()["title"], after.json()["content"]) == ('"v1"', "Strict", "rules")


async def test_a_tenant_sees_only_its_own_documents(platform: Platform) -> None:
    owner = await _tenant_headers(platform)
    other = await _tenant_headers(platform)
    document = await _create(platform, owner, title="Secret plan", content="confidential zeppelin")
    url = f"/v1/documents/{document['document_id']}"
    assert (await platform.api.get(url, headers=owner)).status_code == 200  # cached for the owner

    assert_problem(await platform.api.get(url, headers=other), 404)
    assert_problem(await platform.api.get(f"{url}/versions", headers=other), 404)
    assert_problem(await platform.api.get(f"{url}/versions/1", headers=other), 404)
    assert_problem(await platform.api.patch(url, json={"title": "mine"}, headers=other), 404)
    assert_problem(await platform.api.delete(url, headers=other), 404)
    assert await _ids(platform, other) == set()
    assert await _ids(platform, other, q="zeppelin") == set()
    assert await _ids(platform, other, include_deleted="true") == set()

    # the owner's document is untouched by the other tenant's attempts
    read = await platform.api.get(url, headers=owner)
    assert (read.headers["etag"], read.json()["title"]) == ('"v1"', "Secret plan")
    assert await _ids(platform, owner, q="zeppelin") == {document["document_id"]}
