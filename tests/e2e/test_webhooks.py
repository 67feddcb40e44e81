"""Outbound webhooks through the local cloud, delivering to a loopback receiver: a completed run reaches the webhooks
whose filters it matches, signed so that `verify_strata` accepts it with the subscription's secret, and a duplicate
event delivers nothing more; a failing receiver gets retries, then a dead letter (every attempt recorded), then a
redelivery once it recovers; a hanging receiver times out; a webhook that keeps failing is disabled, and its dead
letters are redelivered in bulk once it is back; a rotated secret signs beside the new one until its overlap ends;
private URLs are refused; bad input is a 4xx problem; another tenant sees nothing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
import pytest

from strata.signatures import SignatureError, verify_strata
from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem
from tests.e2e.test_runs import finished_run, run_template
from tests.support.webhook_receiver import Endpoint, Received, shared_receiver

pytestmark = pytest.mark.e2e

T = TypeVar("T")
MAX_ATTEMPTS = 3  # STRATA_WEBHOOK_MAX_ATTEMPTS in tests/e2e/conftest.py
DISABLE_AFTER = 3  # STRATA_WEBHOOK_DISABLE_AFTER_DEAD_LETTERS


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = 45) -> T:
    """Poll `check` until it returns something (not None), or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def tenant(platform: Platform) -> dict[str, str]:
    return platform.auth((await platform.new_tenant(f"hooks-{uuid.uuid4().hex[:8]}"))["api_key"])


async def subscribe(
    platform: Platform,
    headers: dict[str, str],
    endpoint: Endpoint,
    event_types: list[str] | None = None,
    filters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": endpoint.url, "event_types": event_types or ["RunCompleted"]}
    if filters is not None:
        body["filters"] = filters
    made = await platform.api.post("/v1/webhooks", json=body, headers=headers)
    assert made.status_code == 201, made.text
    webhook: dict[str, Any] = made.json()
    return webhook


async def delivery(platform: Platform, headers: dict[str, str], delivery_id: str) -> dict[str, Any]:
    found = await platform.api.get(f"/v1/webhook-deliveries/{delivery_id}", headers=headers)
    assert found.status_code == 200, found.text
    answer: dict[str, Any] = found.json()
    return answer


async def delivery_when(
    platform: Platform, headers: dict[str, str], delivery_id: str, status: str, timeout_s: float = 45
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await delivery(platform, headers, delivery_id)
        return found if found["status"] == status else None

    return await eventually(check, f"delivery {delivery_id} to be {status}", timeout_s)


async def received(endpoint: Endpoint, count: int, timeout_s: float = 45) -> list[Received]:
    async def check() -> list[Received] | None:
        got = endpoint.received
        return got if len(got) >= count else None

    return await eventually(check, f"{count} request(s) at {endpoint.path}", timeout_s)


def verified(request: Received, *secrets: str) -> None:
    verify_strata(request.headers.get("strata-signature"), request.body, list(secrets))


async def ping(platform: Platform, headers: dict[str, str], webhook_id: str) -> dict[str, Any]:
    made = await platform.api.post(f"/v1/webhooks/{webhook_id}/ping", headers=headers)
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"/v1/webhook-deliveries/{made.json()['delivery_id']}"
    answer: dict[str, Any] = made.json()
    return answer


def queue_idle(platform: Platform, logical_id: str) -> bool:
    """No message of the queue is waiting, in flight or delayed."""
    attributes = platform.aws("sqs").get_queue_attributes(
        QueueUrl=platform.cloud.resource(logical_id),
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


async def test_a_completed_run_is_delivered_signed_to_the_webhooks_it_matches_and_only_once(
    platform: Platform,
) -> None:
    # GIVEN two webhooks on RunCompleted: one takes one-task runs, the other runs of two or three tasks
    headers = await tenant(platform)
    receiver = shared_receiver()
    one_task, more_tasks = receiver.endpoint(), receiver.endpoint()
    takes = await subscribe(platform, headers, one_task, filters={"task_count": 1})
    skips = await subscribe(platform, headers, more_tasks, filters={"task_count": [2, 3]})
    assert takes["secret"].startswith("whsec_")
    assert takes["secret"] != skips["secret"]

    # WHEN a one-task goal runs to completion
    goal_id = await run_template(
        platform,
        headers,
        [{"task_id": "q", "title": "Query", "kind": "tool", "tool": "json_query",
          "input": {"data": {"n": 1}, "query": "n"}}],
    )  # fmt: skip
    run = await finished_run(platform, headers, goal_id)
    assert run["status"] == "completed", run

    # THEN the matching webhook receives the event once, signed with its secret
    [request] = await received(one_task, 1)
    verified(request, takes["secret"])
    with pytest.raises(SignatureError):
        verified(request, skips["secret"])
    body = request.json()
    assert (body["type"], body["source"]) == ("RunCompleted", "strata.runtime")
    assert body["detail"]["run_id"] == run["run_id"]
    assert body["detail"]["goal_id"] == goal_id
    assert body["detail"]["task_count"] == 1
    assert body["tenant_id"] == body["detail"]["tenant_id"]
    assert request.headers["strata-event-type"] == "RunCompleted"
    assert request.headers["strata-event-id"] == body["id"] == body["detail"]["event_id"]
    assert request.headers["strata-webhook-id"] == takes["webhook_id"]
    assert request.headers["strata-attempt"] == "1"
    assert request.headers["user-agent"].startswith("Strata-Webhooks/")
    assert request.headers["content-type"] == "application/json"

    # AND the delivery is inspectable, with its attempt
    page = (await platform.api.get(f"/v1/webhooks/{takes['webhook_id']}/deliveries", headers=headers)).json()
    [summary] = page["items"]
    assert summary["delivery_id"] == request.headers["strata-delivery-id"]
    assert (summary["status"], summary["attempt_count"], summary["event_type"]) == ("succeeded", 1, "RunCompleted")
    assert summary["next_attempt_at"] is None
    detail = await delivery(platform, headers, summary["delivery_id"])
    assert detail["payload"] == body
    [attempt] = detail["attempts"]
    assert (attempt["attempt"], attempt["status_code"], attempt["error"]) == (1, 200, None)
    assert attempt["response_excerpt"] == f"received: {summary['delivery_id']}"
    assert attempt["duration_ms"] > 0
    assert attempt["signed_with"] == 1

    # AND the webhook its filter leaves out has no delivery (they are made in the same transaction)
    assert (await platform.api.get(f"/v1/webhooks/{skips['webhook_id']}/deliveries", headers=headers)).json()[
        "items"
    ] == []
    assert more_tasks.received == []

    # WHEN the same event arrives twice more (EventBridge delivers at least once)
    params = {"aggregate_type": "run", "aggregate_id": run["run_id"], "detail_type": "RunCompleted"}
    [event] = (await platform.api.get("/v1/events", params=params, headers=headers)).json()["items"]
    assert event["event_id"] == body["id"]
    entry = {
        "EventBusName": platform.cloud.resource("EventBus"),
        "Source": "strata.runtime",
        "DetailType": "RunCompleted",
        "Detail": json.dumps(event["detail"]),
    }
    platform.aws("events").put_events(Entries=[entry, entry])

    # THEN once the webhook events queue has taken both, there is still one delivery and one request
    async def events_taken() -> bool | None:
        return True if queue_idle(platform, "WebhookEventQueue") else None

    await eventually(events_taken, "the webhook events queue to take both")
    page = (await platform.api.get(f"/v1/webhooks/{takes['webhook_id']}/deliveries", headers=headers)).json()
    assert [d["delivery_id"] for d in page["items"]] == [summary["delivery_id"]]
    assert len(one_task.received) == 1

    # AND neither listing nor reading a webhook shows its secret
    listed = (await platform.api.get("/v1/webhooks", headers=headers)).json()["items"]
    assert {w["webhook_id"] for w in listed} == {takes["webhook_id"], skips["webhook_id"]}
    one = (await platform.api.get(f"/v1/webhooks/{takes['webhook_id']}", headers=headers)).json()
    assert "secret" not in one
    assert all("secret" not in w for w in listed)
    assert takes["secret"] not in json.dumps(listed)


async def test_a_failing_receiver_gets_retries_then_a_dead_letter_then_a_redelivery(platform: Platform) -> None:
    # GIVEN a receiver that fails every request
    headers = await tenant(platform)
    endpoint = shared_receiver().endpoint().fail(status=500)
    webhook = await subscribe(platform, headers, endpoint)

    # WHEN it is pinged
    pinged = await ping(platform, headers, webhook["webhook_id"])

    # THEN the first attempt is in the answer, and retries follow until the delivery is dead-lettered
    assert pinged["event_type"] == "WebhookPing"
    assert pinged["attempts"][0]["status_code"] == 500
    assert pinged["attempts"][0]["error"] == "the receiver answered 500"
    dead = await delivery_when(platform, headers, pinged["delivery_id"], "dead_lettered")
    assert dead["attempt_count"] == MAX_ATTEMPTS
    assert [a["attempt"] for a in dead["attempts"]] == list(range(1, MAX_ATTEMPTS + 1))
    assert all(a["status_code"] == 500 for a in dead["attempts"])
    assert all(a["response_excerpt"] == f"failing on purpose: {pinged['delivery_id']}" for a in dead["attempts"])
    assert dead["dead_lettered_at"] is not None
    assert dead["last_status_code"] == 500
    requests = endpoint.received
    assert [r.headers["strata-attempt"] for r in requests] == [str(n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert {r.headers["strata-delivery-id"] for r in requests} == {pinged["delivery_id"]}
    for request in requests:  # each attempt is signed anew
        verified(request, webhook["secret"])
    dead_letters = await platform.api.get(
        f"/v1/webhooks/{webhook['webhook_id']}/deliveries", params={"status": "dead_lettered"}, headers=headers
    )
    assert [d["delivery_id"] for d in dead_letters.json()["items"]] == [pinged["delivery_id"]]
    succeeded = await platform.api.get(
        f"/v1/webhooks/{webhook['webhook_id']}/deliveries", params={"status": "succeeded"}, headers=headers
    )
    assert succeeded.json()["items"] == []
    counted = (await platform.api.get(f"/v1/webhooks/{webhook['webhook_id']}", headers=headers)).json()
    assert counted["consecutive_dead_letters"] == 1

    # WHEN the receiver recovers and the delivery is redelivered
    endpoint.recover()
    again = await platform.api.post(f"/v1/webhook-deliveries/{pinged['delivery_id']}/redeliver", headers=headers)
    assert again.status_code == 202, again.text

    # THEN it succeeds with a new round of attempts, the same delivery id and body
    done = await delivery_when(platform, headers, pinged["delivery_id"], "succeeded")
    assert done["redeliveries"] == 1
    assert done["attempt_count"] == MAX_ATTEMPTS + 1
    assert done["attempts"][-1]["status_code"] == 200
    last = endpoint.received[-1]
    assert last.headers["strata-delivery-id"] == pinged["delivery_id"]
    assert last.json() == requests[0].json()
    verified(last, webhook["secret"])
    healthy = (await platform.api.get(f"/v1/webhooks/{webhook['webhook_id']}", headers=headers)).json()
    assert healthy["consecutive_dead_letters"] == 0
    assert healthy["last_success_at"] is not None


async def test_a_receiver_that_hangs_times_out_and_the_retry_succeeds(platform: Platform) -> None:
    # GIVEN a receiver that answers its first request only after the 2 s attempt timeout
    headers = await tenant(platform)
    endpoint = shared_receiver().endpoint().fail(times=1, status=200, delay_s=3.5)
    webhook = await subscribe(platform, headers, endpoint)

    # WHEN it is pinged
    pinged = await ping(platform, headers, webhook["webhook_id"])

    # THEN the first attempt timed out (no status), and the retry succeeded
    [first] = pinged["attempts"]
    assert first["status_code"] is None
    assert first["error"] == "no complete answer within 2 s"
    assert 1900 <= first["duration_ms"] < 3500
    done = await delivery_when(platform, headers, pinged["delivery_id"], "succeeded")
    assert [a["status_code"] for a in done["attempts"]] == [None, 200]


async def test_the_sweeper_sends_a_delivery_whose_queue_message_was_lost(platform: Platform) -> None:
    # GIVEN a delivered ping
    headers = await tenant(platform)
    endpoint = shared_receiver().endpoint()
    webhook = await subscribe(platform, headers, endpoint)
    pinged = await ping(platform, headers, webhook["webhook_id"])
    assert pinged["status"] == "succeeded"

    # WHEN it is pending again and past due, with no queue message (as when sending the message failed)
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        await conn.execute(
            """UPDATE webhook_deliveries SET status = 'pending', attempt_base = attempt_count,
                   next_attempt_at = now() - interval '5 seconds' WHERE delivery_id = $1""",
            uuid.UUID(pinged["delivery_id"]),
        )
    finally:
        await conn.close()

    # THEN the sweeper queues it and it is delivered, as its second attempt
    done = await delivery_when(platform, headers, pinged["delivery_id"], "succeeded")
    assert done["attempt_count"] == 2
    [_, second] = await received(endpoint, 2)
    assert second.headers["strata-attempt"] == "2"
    verified(second, webhook["secret"])


async def test_a_webhook_that_keeps_failing_is_disabled_and_its_dead_letters_redelivered_in_bulk(
    platform: Platform,
) -> None:
    # GIVEN a receiver that fails every request, pinged until its deliveries are dead letters
    headers = await tenant(platform)
    endpoint = shared_receiver().endpoint().fail(status=503)
    webhook = await subscribe(platform, headers, endpoint)
    hook = f"/v1/webhooks/{webhook['webhook_id']}"
    pings = [await ping(platform, headers, webhook["webhook_id"]) for _ in range(DISABLE_AFTER)]

    # THEN after the third dead letter in a row the webhook is disabled, saying why
    for pinged in pings:
        await delivery_when(platform, headers, pinged["delivery_id"], "dead_lettered")
    disabled = await platform.api.get(hook, headers=headers)
    assert disabled.json()["status"] == "disabled"
    assert disabled.json()["disabled_reason"] == f"disabled after {DISABLE_AFTER} dead-lettered deliveries in a row"
    listed = await platform.api.get("/v1/webhooks", params={"status": "disabled"}, headers=headers)
    assert [w["webhook_id"] for w in listed.json()["items"]] == [webhook["webhook_id"]]
    # AND it takes no pings or redeliveries until it is enabled again
    assert_problem(await platform.api.post(f"{hook}/ping", headers=headers), 409)
    assert_problem(await platform.api.post(f"{hook}/redeliver-failed", headers=headers), 409)
    assert_problem(
        await platform.api.post(f"/v1/webhook-deliveries/{pings[0]['delivery_id']}/redeliver", headers=headers), 409
    )

    # WHEN the receiver recovers, the webhook is enabled and its dead letters redelivered in bulk
    endpoint.recover()
    enabled = await platform.api.patch(
        hook, json={"status": "active"}, headers={**headers, "if-match": disabled.headers["etag"]}
    )
    assert enabled.status_code == 200, enabled.text
    assert (enabled.json()["status"], enabled.json()["disabled_reason"]) == ("active", None)
    assert enabled.json()["consecutive_dead_letters"] == 0
    bulk = await platform.api.post(f"{hook}/redeliver-failed", json={"limit": 10}, headers=headers)
    assert bulk.status_code == 202, bulk.text

    # THEN every one of them is delivered
    assert bulk.json()["redelivered"] == DISABLE_AFTER
    assert set(bulk.json()["delivery_ids"]) == {p["delivery_id"] for p in pings}
    for pinged in pings:
        done = await delivery_when(platform, headers, pinged["delivery_id"], "succeeded")
        assert done["redeliveries"] == 1
    nothing_left = await platform.api.post(f"{hook}/redeliver-failed", headers=headers)
    assert nothing_left.json() == {"redelivered": 0, "delivery_ids": []}


async def test_a_rotated_secret_signs_beside_the_new_one_until_its_overlap_ends(platform: Platform) -> None:
    headers = await tenant(platform)
    endpoint = shared_receiver().endpoint()
    webhook = await subscribe(platform, headers, endpoint)
    hook = f"/v1/webhooks/{webhook['webhook_id']}"
    old = webhook["secret"]

    # WHEN the secret is rotated with a 3 s overlap
    rotated = await platform.api.post(f"{hook}/rotate-secret", json={"overlap_s": 3}, headers=headers)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old
    assert rotated.json()["previous_secret_expires_at"] is not None
    assert rotated.json()["version"] == webhook["version"] + 1

    # THEN a delivery during the overlap verifies with either secret
    pinged = await ping(platform, headers, webhook["webhook_id"])
    assert pinged["attempts"][0]["signed_with"] == 2
    [during] = endpoint.received
    verified(during, old)
    verified(during, new)

    # AND once the overlap is over, only with the new one
    async def signed_once() -> Received | None:
        await ping(platform, headers, webhook["webhook_id"])
        latest = endpoint.received[-1]
        return latest if latest.headers["strata-signature"].count("v1=") == 1 else None

    after = await eventually(signed_once, "the overlap to end", timeout_s=30)
    verified(after, new)
    with pytest.raises(SignatureError):
        verified(after, old)
    assert (await platform.api.get(hook, headers=headers)).json()["previous_secret_expires_at"] is None

    # AND a rotation without a body keeps the old secret a day; one with no overlap drops it at once
    by_default = (await platform.api.post(f"{hook}/rotate-secret", headers=headers)).json()
    expires = by_default["previous_secret_expires_at"]
    assert expires is not None
    assert 23 * 3600 < (_epoch(expires) - time.time()) <= 24 * 3600
    at_once = (await platform.api.post(f"{hook}/rotate-secret", json={"overlap_s": 0}, headers=headers)).json()
    assert at_once["previous_secret_expires_at"] is None
    await ping(platform, headers, webhook["webhook_id"])
    latest = endpoint.received[-1]
    verified(latest, at_once["secret"])
    with pytest.raises(SignatureError):
        verified(latest, by_default["secret"])
    for overlap in (-1, 7 * 86_400 + 1, "soon"):
        assert_problem(
            await platform.api.post(f"{hook}/rotate-secret", json={"overlap_s": overlap}, headers=headers), 422
        )
    stale = {**headers, "if-match": f'"v{webhook["version"]}"'}
    assert_problem(await platform.api.post(f"{hook}/rotate-secret", headers=stale), 412)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def test_private_and_malformed_urls_are_refused_with_a_reason(platform: Platform) -> None:
    headers = await tenant(platform)
    receiver = shared_receiver()
    refused = {
        "http://10.0.0.1/hook": "10.0.0.1 is a private address",
        "http://169.254.169.254/latest/meta-data/": "cloud metadata address",
        f"http://localhost:{receiver.port}/hooks/x": "resolves to",  # the name is not on the operator's allowlist
        f"http://127.0.0.1:{receiver.port + 1}/hooks/x": "loopback",  # the allowlist names one port
        "http://[::1]/hook": "loopback",
        "http://0x7f.1/hook": "loopback",
        "http://user:secret@example.com/hook": "credentials",
        "ftp://example.com/hook": "http:// or https://",
        "http://example.com/hook#fragment": "#fragment",
    }
    for url, reason in refused.items():
        answer = await platform.api.post("/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=headers)
        problem = assert_problem(answer, 422)
        assert reason in problem["detail"], (url, problem)
        assert problem["detail"].startswith("the webhook URL is refused: ")

    # a change of URL is checked the same way
    webhook = await subscribe(platform, headers, receiver.endpoint())
    changed = await platform.api.patch(
        f"/v1/webhooks/{webhook['webhook_id']}", json={"url": "http://192.168.1.10/hook"}, headers=headers
    )
    assert "a private address" in assert_problem(changed, 422)["detail"]
    assert (await platform.api.get("/v1/webhooks", headers=headers)).json()["items"][0]["url"] == webhook["url"]


async def test_a_webhook_is_created_read_changed_and_deleted_with_versions(platform: Platform) -> None:
    headers = await tenant(platform)
    endpoint = shared_receiver().endpoint()
    made = await platform.api.post(
        "/v1/webhooks",
        json={"url": endpoint.url, "event_types": ["RunCompleted", "RunFailed"], "description": "ops"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    webhook = made.json()
    hook = f"/v1/webhooks/{webhook['webhook_id']}"
    assert made.headers["location"] == hook
    assert made.headers["etag"] == '"v1"'
    assert (webhook["status"], webhook["filters"], webhook["description"]) == ("active", {}, "ops")
    read = await platform.api.get(hook, headers=headers)
    assert read.headers["etag"] == '"v1"'

    # event types and filters change together, checked against each other
    changed = await platform.api.patch(
        hook,
        json={"event_types": ["*"], "filters": {"goal_id": ["a", "b"]}, "description": "all"},
        headers={**headers, "if-match": '"v1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"v2"'
    assert (changed.json()["event_types"], changed.json()["filters"]) == (["*"], {"goal_id": ["a", "b"]})
    narrowed = await platform.api.patch(hook, json={"event_types": ["TaskCompleted"]}, headers=headers)
    assert "TaskCompleted has no field 'goal_id'" in assert_problem(narrowed, 422)["detail"]
    assert_problem(
        await platform.api.patch(hook, json={"description": "x"}, headers={**headers, "if-match": '"v1"'}), 412
    )
    paused = await platform.api.patch(hook, json={"status": "disabled"}, headers=headers)
    assert paused.json()["status"] == "disabled"
    assert paused.json()["disabled_reason"].startswith("disabled by ")

    # deleted (If-Match honoured), with its deliveries
    assert_problem(await platform.api.delete(hook, headers={**headers, "if-match": '"v1"'}), 412)
    gone = await platform.api.delete(hook, headers={**headers, "if-match": paused.headers["etag"]})
    assert gone.status_code == 204
    assert_problem(await platform.api.get(hook, headers=headers), 404)
    assert_problem(await platform.api.get(f"{hook}/deliveries", headers=headers), 404)
    assert_problem(await platform.api.delete(hook, headers=headers), 404)


async def test_bad_input_is_a_4xx_problem(platform: Platform) -> None:
    headers = await tenant(platform)
    url = shared_receiver().endpoint().url
    bad_bodies: list[tuple[dict[str, Any], str]] = [
        ({"url": url, "event_types": ["RunExploded"]}, "unknown event type"),
        ({"url": url, "event_types": ["TaskReady"]}, "not subscribable"),
        ({"url": url, "event_types": ["*", "RunCompleted"]}, "alone"),
        ({"url": url, "event_types": ["RunCompleted"], "filters": {"colour": "red"}}, "has no field 'colour'"),
        ({"url": url, "event_types": ["RunCompleted"], "filters": {"task_count": {"gt": 1}}}, "did not validate"),
        ({"url": url, "event_types": []}, "did not validate"),
        ({"url": url, "event_types": ["RunCompleted"], "secret": "mine"}, "did not validate"),
        ({"event_types": ["RunCompleted"]}, "did not validate"),
        ({"url": url, "event_types": ["run completed"]}, "did not validate"),
        ({"url": "x" * 3000, "event_types": ["RunCompleted"]}, "did not validate"),
    ]
    for body, reason in bad_bodies:
        problem = assert_problem(await platform.api.post("/v1/webhooks", json=body, headers=headers), 422)
        assert reason in problem["detail"], (body, problem)
    assert_problem(await platform.api.get("/v1/webhooks/not-a-uuid", headers=headers), 422)
    assert_problem(await platform.api.get(f"/v1/webhooks/{uuid.uuid4()}", headers=headers), 404)
    assert_problem(await platform.api.get(f"/v1/webhook-deliveries/{uuid.uuid4()}", headers=headers), 404)
    assert_problem(await platform.api.post(f"/v1/webhook-deliveries/{uuid.uuid4()}/redeliver", headers=headers), 404)
    assert_problem(await platform.api.post(f"/v1/webhooks/{uuid.uuid4()}/ping", headers=headers), 404)
    assert_problem(await platform.api.get("/v1/webhooks", params={"status": "paused"}, headers=headers), 422)
    assert_problem(await platform.api.get("/v1/webhooks", params={"limit": 0}, headers=headers), 422)
    assert_problem(await platform.api.get("/v1/webhooks", params={"cursor": "nonsense"}, headers=headers), 400)
    webhook = await subscribe(platform, headers, shared_receiver().endpoint())
    hook = f"/v1/webhooks/{webhook['webhook_id']}"
    assert_problem(await platform.api.patch(hook, json={"status": "paused"}, headers=headers), 422)
    assert_problem(
        await platform.api.patch(hook, json={"description": "x"}, headers={**headers, "if-match": "v1"}), 400
    )
    assert_problem(await platform.api.get(f"{hook}/deliveries", params={"status": "lost"}, headers=headers), 422)
    assert_problem(await platform.api.post(f"{hook}/redeliver-failed", json={"limit": 5000}, headers=headers), 422)
    assert_problem(
        await platform.api.post(
            "/v1/webhooks", content=b"{not json", headers={**headers, "content-type": "application/json"}
        ),
        422,
    )


async def test_another_tenant_sees_and_touches_nothing_and_scopes_hold(platform: Platform) -> None:
    # GIVEN a tenant's webhook with a delivery
    owner = await tenant(platform)
    endpoint = shared_receiver().endpoint()
    webhook = await subscribe(platform, owner, endpoint)
    pinged = await ping(platform, owner, webhook["webhook_id"])
    hook = f"/v1/webhooks/{webhook['webhook_id']}"
    other = await tenant(platform)

    # THEN another tenant finds none of it, by id or in its lists
    assert (await platform.api.get("/v1/webhooks", headers=other)).json()["items"] == []
    assert_problem(await platform.api.get(hook, headers=other), 404)
    assert_problem(await platform.api.patch(hook, json={"description": "mine"}, headers=other), 404)
    assert_problem(await platform.api.patch(hook, json={"url": "http://10.0.0.1/x"}, headers=other), 404)
    assert_problem(await platform.api.post(f"{hook}/ping", headers=other), 404)
    assert_problem(await platform.api.post(f"{hook}/rotate-secret", headers=other), 404)
    assert_problem(await platform.api.get(f"{hook}/deliveries", headers=other), 404)
    assert_problem(await platform.api.post(f"{hook}/redeliver-failed", headers=other), 404)
    assert_problem(await platform.api.get(f"/v1/webhook-deliveries/{pinged['delivery_id']}", headers=other), 404)
    assert_problem(
        await platform.api.post(f"/v1/webhook-deliveries/{pinged['delivery_id']}/redeliver", headers=other), 404
    )
    assert_problem(await platform.api.delete(hook, headers=other), 404)
    assert (await platform.api.get(hook, headers=owner)).json()["description"] == ""
    assert len(endpoint.received) == 1

    # AND a key that may only read webhooks reads but cannot change them
    made = await platform.api.post("/v1/api-keys", json={"name": "reader", "scopes": ["webhooks:read"]}, headers=owner)
    assert made.status_code == 201, made.text
    reader = platform.auth(made.json()["api_key"])
    assert (await platform.api.get(hook, headers=reader)).status_code == 200
    assert (
        await platform.api.get(f"/v1/webhook-deliveries/{pinged['delivery_id']}", headers=reader)
    ).status_code == 200
    assert_problem(await platform.api.post(f"{hook}/ping", headers=reader), 403)
    assert_problem(await platform.api.post(f"{hook}/rotate-secret", headers=reader), 403)
    assert_problem(
        await platform.api.post("/v1/webhooks", json={"url": endpoint.url, "event_types": ["*"]}, headers=reader), 403
    )
