"""Inbound webhooks through the local cloud: endpoints managed by the tenant (secret shown once, If-Match, rotation
with an overlap, isolation between tenants, templates validated), and the public route senders deliver to: GitHub's,
Slack's and Strata's signatures verified, handshakes answered, a payload mapped to a goal once however often it is
resent, filters, mapping failures, forged and stale requests refused alike and recorded."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from strata.signatures import strata_signature
from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem

pytestmark = pytest.mark.e2e

PR_MAPPING = {
    "text": "Review pull request {{ pull_request.title }} ({{ pull_request.html_url }}) [{{ $event }}]",
    "strategy": "template",
}
PR_FILTER = [
    {"field": "$event", "equals": "pull_request"},
    {"field": "action", "in": ["opened", "synchronize"]},
]
NOT_SIGNED_TYPE = "https://strata.dev/problems/unauthorized"


def pull_request(action: str = "opened", number: int = 7) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "title": f"Fix the flaky test #{number}",
            "html_url": f"https://github.com/acme/app/pull/{number}",
            "user": {"login": "octocat"},
        },
        "repository": {"full_name": "acme/app"},
    }


async def tenant(platform: Platform) -> dict[str, str]:
    return platform.auth((await platform.new_tenant(f"hooks-{uuid.uuid4().hex[:8]}"))["api_key"])


async def create_endpoint(platform: Platform, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body = {"name": f"hook-{uuid.uuid4().hex[:8]}", "mapping": PR_MAPPING, **body}
    made = await platform.api.post("/v1/inbound-webhooks", json=body, headers=headers)
    assert made.status_code == 201, made.text
    endpoint: dict[str, Any] = made.json()
    assert made.headers["location"] == f"/v1/inbound-webhooks/{endpoint['endpoint_id']}"
    assert made.headers["etag"] == '"v1"'
    assert endpoint["url_path"] == f"/v1/hooks/{endpoint['endpoint_id']}"
    return endpoint


def github_headers(secret: str, body: bytes, event: str, delivery: str) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": f"sha256={signature}",
        "user-agent": "GitHub-Hookshot/test",
    }


async def deliver_github(
    platform: Platform,
    endpoint: dict[str, Any],
    secret: str,
    payload: dict[str, Any],
    event: str = "pull_request",
    delivery: str | None = None,
) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = github_headers(secret, body, event, delivery or str(uuid.uuid4()))
    return await platform.api.post(endpoint["url_path"], content=body, headers=headers)


def slack_headers(secret: str, body: bytes, content_type: str, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": f"v0={signature}",
    }


async def deliveries(
    platform: Platform, headers: dict[str, str], endpoint: dict[str, Any], **params: Any
) -> list[dict[str, Any]]:
    listed = await platform.api.get(
        f"/v1/inbound-webhooks/{endpoint['endpoint_id']}/deliveries", params=params, headers=headers
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def goals_with_text(platform: Platform, headers: dict[str, str], text: str) -> list[dict[str, Any]]:
    listed = await platform.api.get("/v1/goals", params={"limit": 200}, headers=headers)
    assert listed.status_code == 200, listed.text
    return [g for g in listed.json()["items"] if g["text"] == text]


async def settled(platform: Platform, headers: dict[str, str], goal_id: str) -> dict[str, Any]:
    """The goal once planning has decided on it (a webhook's goal is planned like any other)."""
    deadline = time.monotonic() + 30
    while True:
        goal: dict[str, Any] = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
        if goal["status"] != "submitted" or time.monotonic() > deadline:
            return goal
        await asyncio.sleep(0.1)


async def test_a_github_delivery_becomes_one_goal_however_often_it_is_resent(platform: Platform) -> None:
    # GIVEN a GitHub endpoint for opened or updated pull requests, with a generated secret
    headers = await tenant(platform)
    endpoint = await create_endpoint(platform, headers, scheme="github", filter=PR_FILTER)
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")
    assert endpoint["secret_source"] == "generated"

    # WHEN GitHub delivers an opened pull request
    delivery = str(uuid.uuid4())
    first = await deliver_github(platform, endpoint, secret, pull_request("opened", 7), delivery=delivery)

    # THEN the goal is submitted with the mapped text, for the endpoint's own principal
    assert first.status_code == 202, first.text
    answer = first.json()
    assert (answer["outcome"], answer["duplicate"]) == ("accepted", False)
    text = "Review pull request Fix the flaky test #7 (https://github.com/acme/app/pull/7) [pull_request]"
    goal = await settled(platform, headers, answer["goal_id"])
    assert goal["text"] == text
    assert goal["strategy"] == "template"
    assert goal["submitted_by"] == f"service:inbound-webhook/{endpoint['endpoint_id']}"

    # WHEN GitHub redelivers it (the same X-GitHub-Delivery)
    again = await deliver_github(platform, endpoint, secret, pull_request("opened", 7), delivery=delivery)

    # THEN it answers the same goal and submits no second one
    assert again.status_code == 202, again.text
    assert (again.json()["goal_id"], again.json()["duplicate"]) == (answer["goal_id"], True)
    assert [g["goal_id"] for g in await goals_with_text(platform, headers, text)] == [answer["goal_id"]]
    [record] = await deliveries(platform, headers, endpoint)
    assert record["delivery_id"] == answer["delivery_id"]
    assert (record["outcome"], record["verified"], record["attempts"]) == ("accepted", True, 2)
    assert (record["sender_delivery_id"], record["event"], record["goal_id"]) == (
        delivery,
        "pull_request",
        answer["goal_id"],
    )
    assert record["goal_text"] == text
    body = json.dumps(pull_request("opened", 7)).encode()
    assert (record["body_bytes"], record["body_sha256"]) == (len(body), hashlib.sha256(body).hexdigest())


async def test_copies_of_a_delivery_arriving_together_submit_one_goal(platform: Platform) -> None:
    headers = await tenant(platform)
    endpoint = await create_endpoint(platform, headers, scheme="github")
    payload = pull_request(number=11)

    answers = await asyncio.gather(
        *(deliver_github(platform, endpoint, endpoint["secret"], payload, delivery="same") for _ in range(5))
    )

    # each copy either answers the goal or asks to be retried while the first is being processed
    assert {a.status_code for a in answers} <= {202, 409}, [a.text for a in answers]
    assert len({a.json()["goal_id"] for a in answers if a.status_code == 202}) == 1
    for busy in (a for a in answers if a.status_code == 409):
        assert_problem(busy, 409)
        assert int(busy.headers["retry-after"]) >= 1
    retried = await deliver_github(platform, endpoint, endpoint["secret"], payload, delivery="same")
    assert retried.status_code == 202, retried.text
    text = "Review pull request Fix the flaky test #11 (https://github.com/acme/app/pull/11) [pull_request]"
    assert [g["goal_id"] for g in await goals_with_text(platform, headers, text)] == [retried.json()["goal_id"]]
    [record] = await deliveries(platform, headers, endpoint)
    assert (record["outcome"], record["attempts"]) == ("accepted", 6)


async def test_github_ping_and_filtered_events_submit_nothing(platform: Platform) -> None:
    headers = await tenant(platform)
    endpoint = await create_endpoint(platform, headers, scheme="github", filter=PR_FILTER)
    secret = endpoint["secret"]

    ping = await deliver_github(platform, endpoint, secret, {"zen": "Design for failure.", "hook_id": 1}, "ping")
    assert ping.status_code == 200, ping.text
    assert ping.json()["outcome"] == "ignored"
    assert "goal_id" not in ping.json()

    closed = await deliver_github(platform, endpoint, secret, pull_request("closed", 8), delivery="closed-8")
    assert closed.status_code == 200, closed.text
    assert closed.json()["outcome"] == "ignored"
    assert closed.json()["reason"] == 'filtered out: action is "closed", not one of ["opened","synchronize"]'

    issue = await deliver_github(platform, endpoint, secret, {"action": "opened", "issue": {}}, "issues")
    assert issue.status_code == 200, issue.text
    assert issue.json()["reason"] == 'filtered out: $event is "issues", not "pull_request"'

    records = await deliveries(platform, headers, endpoint)
    assert [(r["event"], r["outcome"], r["goal_id"]) for r in records] == [
        ("issues", "ignored", None),
        ("pull_request", "ignored", None),
        ("ping", "ignored", None),
    ]
    assert (await deliveries(platform, headers, endpoint, outcome="accepted")) == []
    assert (await platform.api.get("/v1/goals", headers=headers)).json()["items"] == []

    # once the filter admits closed pull requests, GitHub's redelivery of the ignored one becomes a goal
    wider = [PR_FILTER[0], {"field": "action", "not_in": ["reopened"]}]
    changed = await platform.api.patch(
        f"/v1/inbound-webhooks/{endpoint['endpoint_id']}", json={"filter": wider}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["filter"] == wider
    redelivered = await deliver_github(platform, endpoint, secret, pull_request("closed", 8), delivery="closed-8")
    assert redelivered.status_code == 202, redelivered.text
    [record] = await deliveries(platform, headers, endpoint, outcome="accepted")
    assert (record["sender_delivery_id"], record["attempts"]) == ("closed-8", 2)


async def test_forged_and_unknown_deliveries_get_the_same_401_and_forgeries_are_recorded(platform: Platform) -> None:
    headers = await tenant(platform)
    endpoint = await create_endpoint(platform, headers, scheme="github")
    payload = pull_request()

    forged = await deliver_github(platform, endpoint, "not-the-secret-at-all", payload, delivery="forged-1")
    unsigned = await platform.api.post(
        endpoint["url_path"], json=payload, headers={"x-github-event": "pull_request", "x-github-delivery": "u-1"}
    )
    unknown = await deliver_github(
        platform, {"url_path": f"/v1/hooks/{uuid.uuid4()}"}, endpoint["secret"], payload, delivery="unknown-1"
    )

    bodies = [assert_problem(r, 401) for r in (forged, unsigned, unknown)]
    assert {(b["type"], b["detail"]) for b in bodies} == {
        (NOT_SIGNED_TYPE, "the request is not signed with this endpoint's secret, or there is no such endpoint")
    }
    records = await deliveries(platform, headers, endpoint, outcome="rejected")
    assert [(r["verified"], r["sender_delivery_id"], r["reason"], r["goal_id"]) for r in records] == [
        (False, "u-1", "the X-Hub-Signature-256 header is missing or not sha256=", None),
        (False, "forged-1", "no signature matches", None),
    ]
    # a forged delivery id never blocks the genuine delivery that carries it
    genuine = await deliver_github(platform, endpoint, endpoint["secret"], payload, delivery="forged-1")
    assert genuine.status_code == 202, genuine.text
    assert genuine.json()["duplicate"] is False
    assert_problem(await platform.api.post(f"/v1/hooks/{uuid.uuid4()}", json={}), 401)
    assert_problem(await platform.api.post("/v1/hooks/not-a-uuid", json={}), 422)


async def test_a_slack_endpoint_answers_the_challenge_and_dedupes_retries_by_event_id(platform: Platform) -> None:
    # GIVEN a Slack endpoint holding the app's signing secret, for app mentions
    headers = await tenant(platform)
    signing_secret = uuid.uuid4().hex
    endpoint = await create_endpoint(
        platform,
        headers,
        scheme="slack",
        secret=signing_secret,
        mapping={"text": "Answer {{ event.user }} in {{ event.channel }}: {{ event.text }}", "strategy": "template"},
        filter=[{"field": "$event", "equals": "app_mention"}],
    )
    assert (endpoint["secret"], endpoint["secret_source"]) == (None, "supplied")

    # WHEN Slack verifies the URL
    challenge = {
        "token": "t",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }
    body = json.dumps(challenge).encode()
    verified = await platform.api.post(
        endpoint["url_path"], content=body, headers=slack_headers(signing_secret, body, "application/json")
    )
    # THEN the challenge is answered
    assert verified.status_code == 200, verified.text
    assert verified.json() == {"challenge": challenge["challenge"]}

    # WHEN an app mention arrives, then Slack retries it
    event_id = f"Ev{uuid.uuid4().hex[:10].upper()}"
    mention = {
        "type": "event_callback",
        "event_id": event_id,
        "event": {"type": "app_mention", "user": "U123", "channel": "C42", "text": "<@U0> summarise the incident"},
    }
    body = json.dumps(mention).encode()
    first = await platform.api.post(
        endpoint["url_path"], content=body, headers=slack_headers(signing_secret, body, "application/json")
    )
    retry_headers = {**slack_headers(signing_secret, body, "application/json"), "x-slack-retry-num": "1"}
    retried = await platform.api.post(endpoint["url_path"], content=body, headers=retry_headers)

    # THEN one goal, answered to both
    assert first.status_code == 202, first.text
    assert retried.status_code == 202, retried.text
    assert retried.json()["goal_id"] == first.json()["goal_id"]
    goal = await settled(platform, headers, first.json()["goal_id"])
    assert goal["text"] == "Answer U123 in C42: <@U0> summarise the incident"

    # WHEN a request is signed with a timestamp older than five minutes (a replay)
    stale = slack_headers(signing_secret, body, "application/json", timestamp=int(time.time()) - 600)
    replayed = await platform.api.post(endpoint["url_path"], content=body, headers=stale)
    # THEN it is refused like a forgery, and recorded
    assert assert_problem(replayed, 401)["type"] == NOT_SIGNED_TYPE
    [rejected] = await deliveries(platform, headers, endpoint, outcome="rejected")
    assert "from now (a replay?)" in rejected["reason"]

    records = await deliveries(platform, headers, endpoint, outcome="accepted")
    assert [(r["sender_delivery_id"], r["event"], r["attempts"]) for r in records] == [(event_id, "app_mention", 2)]


async def test_a_slack_slash_command_sent_as_a_form_gets_a_message_for_its_user(platform: Platform) -> None:
    headers = await tenant(platform)
    signing_secret = uuid.uuid4().hex
    endpoint = await create_endpoint(
        platform,
        headers,
        scheme="slack",
        secret=signing_secret,
        mapping={"text": "{{ text }} (asked by {{ user_name }} via {{ command }})", "strategy": "template"},
        filter=[{"field": "command", "equals": "/strata"}],
    )
    trigger = f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:8]}"
    form = urlencode(
        {"command": "/strata", "text": "triage ticket 42", "user_name": "ada", "trigger_id": trigger}
    ).encode()
    sent = await platform.api.post(
        endpoint["url_path"],
        content=form,
        headers=slack_headers(signing_secret, form, "application/x-www-form-urlencoded"),
    )
    assert sent.status_code == 200, sent.text
    reply = sent.json()
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == f"Submitted as goal {reply['goal_id']}"
    goal = await settled(platform, headers, reply["goal_id"])
    assert goal["text"] == "triage ticket 42 (asked by ada via /strata)"
    [record] = await deliveries(platform, headers, endpoint)
    assert (record["event"], record["sender_delivery_id"], record["content_type"]) == (
        "slash_command",
        trigger,
        "application/x-www-form-urlencoded",
    )


async def test_a_strata_signed_delivery_carries_the_mappings_constraints(platform: Platform) -> None:
    headers = await tenant(platform)
    mapping = {
        "text": 'Restock {{ item.sku }} ({{ item.count }} left, note: {{ item.note ?? "none" }})',
        "strategy": "template",
        "constraints": {"require_approval": True, "budget_micro_usd": 250000, "max_parallelism": 2},
    }
    endpoint = await create_endpoint(platform, headers, scheme="strata", mapping=mapping)
    body = json.dumps({"item": {"sku": "AB-1", "count": 3}}).encode()
    sent = await platform.api.post(
        endpoint["url_path"],
        content=body,
        headers={
            "content-type": "application/json",
            "strata-signature": strata_signature([endpoint["secret"]], body),
            "strata-delivery-id": "inv-1",
            "strata-event-type": "stock.low",
        },
    )
    assert sent.status_code == 202, sent.text
    goal = await settled(platform, headers, sent.json()["goal_id"])
    assert goal["text"] == "Restock AB-1 (3 left, note: none)"
    assert goal["constraints"]["require_approval"] is True
    assert (goal["constraints"]["budget_micro_usd"], goal["constraints"]["max_parallelism"]) == (250000, 2)
    [record] = await deliveries(platform, headers, endpoint)
    assert (record["sender_delivery_id"], record["event"]) == ("inv-1", "stock.low")


async def test_a_payload_missing_a_mapped_field_fails_and_a_fixed_mapping_takes_its_redelivery(
    platform: Platform,
) -> None:
    headers = await tenant(platform)
    endpoint = await create_endpoint(platform, headers, scheme="github")
    payload = {"action": "opened", "pull_request": {"title": "No URL here"}}

    failed = await deliver_github(platform, endpoint, endpoint["secret"], payload, delivery="d-missing")
    problem = assert_problem(failed, 422)
    assert problem["type"] == "https://strata.dev/problems/mapping-failed"
    assert "pull_request.html_url is missing" in problem["detail"]
    [record] = await deliveries(platform, headers, endpoint)
    assert (record["outcome"], record["goal_id"]) == ("failed", None)
    assert "pull_request.html_url is missing" in record["reason"]

    # the tenant gives the placeholder a fallback; GitHub's "Redeliver" then becomes a goal
    fixed = {**PR_MAPPING, "text": PR_MAPPING["text"].replace("pull_request.html_url", 'pull_request.html_url ?? "-"')}
    changed = await platform.api.patch(
        f"/v1/inbound-webhooks/{endpoint['endpoint_id']}",
        json={"mapping": fixed},
        headers={**headers, "if-match": '"v1"'},
    )
    assert changed.status_code == 200, changed.text
    redelivered = await deliver_github(platform, endpoint, endpoint["secret"], payload, delivery="d-missing")
    assert redelivered.status_code == 202, redelivered.text
    goal = await settled(platform, headers, redelivered.json()["goal_id"])
    assert goal["text"] == "Review pull request No URL here (-) [pull_request]"
    [record] = await deliveries(platform, headers, endpoint)
    assert (record["outcome"], record["attempts"], record["reason"]) == ("accepted", 2, None)


async def test_rotation_keeps_the_old_secret_for_its_overlap_only(platform: Platform) -> None:
    headers = await tenant(platform)
    endpoint = await create_endpoint(platform, headers, scheme="github")
    path = f"/v1/inbound-webhooks/{endpoint['endpoint_id']}/rotate-secret"
    old = endpoint["secret"]

    stale = await platform.api.post(path, json={"overlap_s": 3600}, headers={**headers, "if-match": '"v9"'})
    assert_problem(stale, 412)
    rotated = await platform.api.post(path, json={"overlap_s": 3600}, headers={**headers, "if-match": '"v1"'})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old
    assert rotated.headers["etag"] == '"v2"'
    assert rotated.json()["previous_secret_expires_at"] is not None

    # during the overlap both secrets verify
    assert (await deliver_github(platform, endpoint, old, pull_request(number=1))).status_code == 202
    assert (await deliver_github(platform, endpoint, new, pull_request(number=2))).status_code == 202

    # a rotation without overlap retires the previous secret at once; a supplied secret is not echoed
    supplied = f"mine-{uuid.uuid4().hex}"
    again = await platform.api.post(path, json={"overlap_s": 0, "secret": supplied}, headers=headers)
    assert again.status_code == 200, again.text
    assert (again.json()["secret"], again.json()["previous_secret_expires_at"]) == (None, None)
    assert_problem(await deliver_github(platform, endpoint, new, pull_request(number=3)), 401)
    assert (await deliver_github(platform, endpoint, supplied, pull_request(number=4))).status_code == 202
    read = await platform.api.get(f"/v1/inbound-webhooks/{endpoint['endpoint_id']}", headers=headers)
    assert "secret" not in read.json()
    assert supplied not in read.text
    assert new not in read.text


async def test_a_disabled_or_deleted_endpoint_refuses_deliveries(platform: Platform) -> None:
    headers = await tenant(platform)
    endpoint = await create_endpoint(platform, headers, scheme="github")
    url = f"/v1/inbound-webhooks/{endpoint['endpoint_id']}"

    disabled = await platform.api.patch(url, json={"enabled": False}, headers=headers)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["enabled"] is False
    refused = await deliver_github(platform, endpoint, endpoint["secret"], pull_request(), delivery="while-off")
    assert "disabled" in assert_problem(refused, 403)["detail"]
    [record] = await deliveries(platform, headers, endpoint)
    assert (record["outcome"], record["verified"]) == ("rejected", True)

    stale = await platform.api.delete(url, headers={**headers, "if-match": '"v1"'})
    assert_problem(stale, 412)
    assert (await platform.api.delete(url, headers={**headers, "if-match": '"v2"'})).status_code == 204
    assert_problem(await platform.api.get(url, headers=headers), 404)
    gone = await deliver_github(platform, endpoint, endpoint["secret"], pull_request(), delivery="after-delete")
    assert assert_problem(gone, 401)["type"] == NOT_SIGNED_TYPE


async def test_another_tenants_endpoint_is_not_found_on_every_management_route(platform: Platform) -> None:
    owner = await tenant(platform)
    other = await tenant(platform)
    endpoint = await create_endpoint(platform, owner, scheme="github")
    url = f"/v1/inbound-webhooks/{endpoint['endpoint_id']}"

    attempts = [
        platform.api.get(url, headers=other),
        platform.api.patch(url, json={"enabled": False}, headers=other),
        platform.api.delete(url, headers=other),
        platform.api.post(f"{url}/rotate-secret", json={}, headers=other),
        platform.api.get(f"{url}/deliveries", headers=other),
        platform.api.post(f"{url}/preview", json={"payload": {}}, headers=other),
    ]
    for response in await asyncio.gather(*attempts):
        assert_problem(response, 404)
    listed = await platform.api.get("/v1/inbound-webhooks", headers=other)
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    # and the owner's endpoint is as it was
    read = await platform.api.get(url, headers=owner)
    assert (read.json()["enabled"], read.json()["version"]) == (True, 1)


async def test_management_refuses_bad_input_with_the_field_named(platform: Platform) -> None:
    headers = await tenant(platform)

    async def refused(body: dict[str, Any], status: int = 422) -> dict[str, Any]:
        answer = await platform.api.post("/v1/inbound-webhooks", json=body, headers=headers)
        return assert_problem(answer, status)

    base = {"name": "n", "scheme": "github", "mapping": PR_MAPPING}
    bad_template = await refused({**base, "mapping": {"text": "Review {{ pull_request..title }}"}})
    assert bad_template["errors"][0]["loc"] == ["body", "mapping", "text"]
    assert "field path" in bad_template["errors"][0]["msg"]
    unclosed = await refused({**base, "mapping": {"text": "Review {{ pull_request.title"}})
    assert "not closed" in unclosed["errors"][0]["msg"]
    two_ops = await refused({**base, "filter": [{"field": "action", "equals": "a", "in": ["b"]}]})
    assert two_ops["errors"][0]["loc"][:3] == ["body", "filter", "0"]
    bad_constraints = await refused({**base, "mapping": {**PR_MAPPING, "constraints": {"max_parallelism": 0}}})
    assert bad_constraints["errors"][0]["loc"][:4] == ["body", "mapping", "constraints", "max_parallelism"]
    slack_without_secret = await refused({**base, "scheme": "slack"})
    assert slack_without_secret["errors"][0]["loc"] == ["body", "secret"]
    strata_with_secret = await refused({**base, "scheme": "strata", "secret": "x" * 32})
    assert strata_with_secret["errors"][0]["loc"] == ["body", "secret"]
    await refused({**base, "scheme": "gitlab"})
    await refused({**base, "unknown": 1})
    await refused({**base, "secret": "short"})

    endpoint = await create_endpoint(platform, headers, name="taken", scheme="github")
    assert_problem(
        await platform.api.post("/v1/inbound-webhooks", json={**base, "name": "taken"}, headers=headers), 409
    )
    url = f"/v1/inbound-webhooks/{endpoint['endpoint_id']}"
    assert_problem(await platform.api.patch(url, json={"scheme": "slack"}, headers=headers), 422)
    assert_problem(await platform.api.patch(url, json={}, headers={**headers, "if-match": "v1"}), 400)
    assert_problem(await platform.api.get(f"{url}/deliveries", params={"cursor": "!!"}, headers=headers), 400)
    assert_problem(await platform.api.get(f"{url}/deliveries", params={"outcome": "lost"}, headers=headers), 422)
    read_only = platform.auth(
        (
            await platform.api.post("/v1/api-keys", json={"name": "ro", "scopes": ["webhooks:read"]}, headers=headers)
        ).json()["api_key"]
    )
    assert (await platform.api.get(url, headers=read_only)).status_code == 200
    assert_problem(await platform.api.patch(url, json={"enabled": False}, headers=read_only), 403)


async def test_a_delivery_that_is_not_json_or_a_form_or_too_large_is_refused(platform: Platform) -> None:
    headers = await tenant(platform)
    endpoint = await create_endpoint(platform, headers, scheme="github")
    body = b"<xml/>"
    signed = {**github_headers(endpoint["secret"], body, "pull_request", "xml-1"), "content-type": "application/xml"}
    assert_problem(await platform.api.post(endpoint["url_path"], content=body, headers=signed), 415)
    broken = b'{"action": '
    sent = await platform.api.post(
        endpoint["url_path"], content=broken, headers=github_headers(endpoint["secret"], broken, "push", "json-1")
    )
    assert "not valid JSON" in assert_problem(sent, 400)["detail"]
    records = await deliveries(platform, headers, endpoint, outcome="failed")
    assert sorted(r["sender_delivery_id"] for r in records) == ["json-1", "xml-1"]
    huge = json.dumps({"blob": "x" * 1_100_000}).encode()
    too_large = await platform.api.post(
        endpoint["url_path"], content=huge, headers=github_headers(endpoint["secret"], huge, "push", "big-1")
    )
    assert_problem(too_large, 413)


async def test_preview_shows_what_a_payload_would_become(platform: Platform) -> None:
    headers = await tenant(platform)
    endpoint = await create_endpoint(platform, headers, scheme="github", filter=PR_FILTER)
    url = f"/v1/inbound-webhooks/{endpoint['endpoint_id']}/preview"

    accepted = await platform.api.post(url, json={"payload": pull_request(), "event": "pull_request"}, headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["outcome"] == "accepted"
    assert accepted.json()["goal"]["text"].startswith("Review pull request Fix the flaky test #7")
    ignored = await platform.api.post(
        url, json={"payload": pull_request("closed"), "event": "pull_request"}, headers=headers
    )
    assert (ignored.json()["outcome"], ignored.json()["goal"]) == ("ignored", None)
    trial = await platform.api.post(
        url, json={"payload": {}, "event": "push", "filter": [], "mapping": {"text": "{{ ref }}"}}, headers=headers
    )
    assert (trial.json()["outcome"], trial.json()["goal"]) == ("failed", None)
    assert "ref is missing" in trial.json()["reason"]
    assert (await platform.api.get("/v1/goals", headers=headers)).json()["items"] == []
    assert await deliveries(platform, headers, endpoint) == []


async def test_endpoints_are_listed_newest_first_with_a_cursor(platform: Platform) -> None:
    headers = await tenant(platform)
    made = [await create_endpoint(platform, headers, scheme="github") for _ in range(3)]
    first = await platform.api.get("/v1/inbound-webhooks", params={"limit": 2}, headers=headers)
    assert first.status_code == 200, first.text
    second = await platform.api.get(
        "/v1/inbound-webhooks", params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=headers
    )
    listed = [e["endpoint_id"] for e in first.json()["items"] + second.json()["items"]]
    assert listed == [e["endpoint_id"] for e in reversed(made)]
    assert second.json()["next_cursor"] is None
    assert all("secret" not in e for e in first.json()["items"])
