"""Outbound webhooks' logic: subscriptions (secrets shown once, rotated with an overlap), the fan-out of events into
deliveries, each attempt (signed, retried with backoff, dead-lettered after the last), redelivery and the sweeper.

Deliveries wait in an SQS queue, so the event consumer never waits on a receiver: a message names a delivery and the
attempt it is for (a stale or duplicate message finds the attempt made and does nothing), and a retry is a message
sent with `DelaySeconds` (at most 900; a longer wait hops through the queue until it is due). A delivery row leased
by an attempt in flight has no second sender. The sweeper queues again what a lost message left pending.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger

from strata import aws, db
from strata.errors import ConflictError, InvalidInputError, NotFoundError
from strata.etags import check_version
from strata.events.envelope import Event
from strata.pagination import PageRequest, Where, fetch_page
from strata_integration.webhooks import matching, store
from strata_integration.webhooks.delivery import (
    UrlRefusedError,
    backoff_s,
    body_bytes,
    check_url,
    delivery_headers,
    send,
)
from strata_integration.webhooks.settings import WebhookSettings, webhook_settings

logger = Logger(child=True)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix that marks a value as a webhook secret, not one
LEASE_MARGIN_S = 30.0  # an attempt holds its delivery this long beyond its timeout
MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds
SQS_BATCH = 10
INLINE_WAIT_S = 1.0  # a message this close to its delivery's due time waits in the consumer instead of the queue


def new_secret() -> str:
    """A signing secret: 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _checked(event_types: list[str], filters: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    try:
        types = matching.check_event_types(event_types)
        return types, matching.check_filters(filters, types)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc


async def _check_url(url: str, settings: WebhookSettings) -> None:
    try:
        await check_url(url, settings.private_hosts, settings.webhook_allow_http)
    except UrlRefusedError as exc:
        raise InvalidInputError(f"the webhook URL is refused: {exc}", field="url") from exc


async def _webhook_or_404(conn: Any, webhook_id: UUID, *, lock: bool = False) -> dict[str, Any]:
    found = await store.webhook(conn, webhook_id, lock=lock)
    if found is None:
        raise NotFoundError(f"no webhook {webhook_id}")
    return found


def _require_active(webhook: dict[str, Any]) -> None:
    if webhook["status"] != "active":
        raise ConflictError(
            f"the webhook is disabled ({webhook['disabled_reason'] or 'no reason given'}): "
            "PATCH its status to active first"
        )


# --- subscriptions -----------------------------------------------------------------------------------------------


async def create(
    tenant_id: UUID, url: str, description: str, event_types: list[str], filters: dict[str, Any]
) -> dict[str, Any]:
    """Subscribe `url`; the answer carries the signing secret, the only time it is shown."""
    settings = webhook_settings()
    types, chosen = _checked(event_types, filters)
    await _check_url(url, settings)
    secret = new_secret()
    async with db.transaction(tenant_id) as conn:
        # one subscription at a time per tenant, so the limit holds under concurrent requests
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('webhooks:' || strata_tenant()::text, 0))")
        if await store.count_webhooks(conn) >= settings.webhook_max_per_tenant:
            raise ConflictError(f"the tenant has {settings.webhook_max_per_tenant} webhooks, the most allowed")
        made = await store.insert_webhook(conn, uuid4(), url, description, types, chosen, secret)
    logger.info("webhook created", extra={"webhook_id": str(made["webhook_id"]), "event_types": types})
    return {**made, "secret": secret}


async def get(tenant_id: UUID, webhook_id: UUID) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        return await _webhook_or_404(conn, webhook_id)


async def list_page(
    tenant_id: UUID, page: PageRequest, status: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add_if(status, "status = {}")
    return await fetch_page("webhooks", store.WEBHOOK_COLUMNS, "webhook_id", where, page)


async def update(
    tenant_id: UUID, by: str, webhook_id: UUID, expected: int | None, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a webhook (If-Match honoured). Its event types and filters are checked together; a new URL passes the
    SSRF guard; turning a disabled webhook back on starts its dead-letter count again."""
    if "url" in changes:  # resolved before the row is locked, for a webhook that exists
        await get(tenant_id, webhook_id)
        await _check_url(changes["url"], webhook_settings())
    async with db.transaction(tenant_id) as conn:
        current = await _webhook_or_404(conn, webhook_id, lock=True)
        check_version(expected, current["version"])
        if not changes:
            return current
        if "event_types" in changes or "filters" in changes:
            changes["event_types"], changes["filters"] = _checked(
                changes.get("event_types", current["event_types"]), changes.get("filters", current["filters"])
            )
        status = changes.get("status", current["status"])
        enabled = status == "active" and current["status"] == "disabled"
        disabled_by = by if status == "disabled" and current["status"] == "active" else None
        return await store.update_webhook(conn, webhook_id, changes, enabled=enabled, disabled_by=disabled_by)


async def delete(tenant_id: UUID, webhook_id: UUID, expected: int | None) -> None:
    """Delete a webhook with its deliveries (If-Match honoured); a delivery in flight finishes unrecorded."""
    async with db.transaction(tenant_id) as conn:
        current = await _webhook_or_404(conn, webhook_id, lock=True)
        check_version(expected, current["version"])
        await store.delete_webhook(conn, webhook_id)


async def rotate_secret(tenant_id: UUID, webhook_id: UUID, overlap_s: int, expected: int | None) -> dict[str, Any]:
    """A new signing secret, shown once; the replaced one keeps signing beside it for `overlap_s` seconds."""
    secret = new_secret()
    async with db.transaction(tenant_id) as conn:
        current = await _webhook_or_404(conn, webhook_id, lock=True)
        check_version(expected, current["version"])
        rotated = await store.rotate_secret(conn, webhook_id, secret, overlap_s)
    logger.info("webhook secret rotated", extra={"webhook_id": str(webhook_id), "overlap_s": overlap_s})
    return {**rotated, "secret": secret}


# --- deliveries: reading, ping, redelivery -----------------------------------------------------------------------


async def deliveries_page(
    tenant_id: UUID, webhook_id: UUID, page: PageRequest, status: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    await get(tenant_id, webhook_id)
    where = Where(tenant_id).add("webhook_id = {}", webhook_id).add_if(status, "status = {}")
    return await fetch_page("webhook_deliveries", store.DELIVERY_COLUMNS, "delivery_id", where, page)


async def delivery(tenant_id: UUID, delivery_id: UUID) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        found = await store.delivery(conn, delivery_id)
    if found is None:
        raise NotFoundError(f"no webhook delivery {delivery_id}")
    return found


async def ping(tenant_id: UUID, webhook_id: UUID) -> dict[str, Any]:
    """A test delivery (type WebhookPing), attempted at once: the answer shows how that attempt went. If it failed,
    it is retried like any delivery."""
    event_id, delivery_id = uuid4(), uuid4()
    async with db.transaction(tenant_id) as conn:
        webhook = await _webhook_or_404(conn, webhook_id)
        _require_active(webhook)
        payload = matching.ping_payload(tenant_id, event_id, webhook_id, webhook["url"], webhook["event_types"])
        await store.insert_deliveries(conn, [webhook_id], [delivery_id], event_id, matching.PING_EVENT_TYPE, payload)
    await attempt(tenant_id, delivery_id, 1)
    return await delivery(tenant_id, delivery_id)


async def redeliver(tenant_id: UUID, delivery_id: UUID) -> dict[str, Any]:
    """Send a finished delivery (dead-lettered, or succeeded) again, with a whole new round of attempts."""
    async with db.transaction(tenant_id) as conn:
        found = await store.delivery_status(conn, delivery_id)
        if found is None:
            raise NotFoundError(f"no webhook delivery {delivery_id}")
        if found["webhook_status"] != "active":
            raise ConflictError("the delivery's webhook is disabled: PATCH its status to active first")
        if found["status"] == "pending":
            raise ConflictError("the delivery is pending already: its next attempt is scheduled")
        reopened = await store.reopen(conn, [delivery_id])
    await enqueue([Queued(tenant_id, r["delivery_id"], r["attempt_count"] + 1, 0.0) for r in reopened])
    return await delivery(tenant_id, delivery_id)


async def redeliver_failed(tenant_id: UUID, webhook_id: UUID, since: datetime | None, limit: int) -> dict[str, Any]:
    """Send a webhook's dead-lettered deliveries (oldest first, up to `limit`) again."""
    async with db.transaction(tenant_id) as conn:
        _require_active(await _webhook_or_404(conn, webhook_id))
        reopened = await store.reopen(conn, await store.dead_lettered_of(conn, webhook_id, since, limit))
    await enqueue([Queued(tenant_id, r["delivery_id"], r["attempt_count"] + 1, 0.0) for r in reopened])
    return {"redelivered": len(reopened), "delivery_ids": [r["delivery_id"] for r in reopened]}


# --- the event fan-out -------------------------------------------------------------------------------------------


async def fan_out(event: Event) -> list[UUID]:
    """One delivery for each of the tenant's active webhooks that takes the event (type and filters); a duplicate
    event creates none. Returns the deliveries created, which are queued at once."""
    if event.DETAIL_TYPE in matching.INTERNAL_EVENT_TYPES:
        return []
    async with db.transaction(event.tenant_id) as conn:
        candidates = await store.matching_webhooks(conn, event.DETAIL_TYPE)
        if not candidates:
            return []
        detail = event.model_dump(mode="json")
        chosen = [c["webhook_id"] for c in candidates if matching.matches(c["filters"], detail)]
        if not chosen:
            return []
        created = await store.insert_deliveries(
            conn, chosen, [uuid4() for _ in chosen], event.event_id, event.DETAIL_TYPE, matching.event_payload(event)
        )
    if len(created) < len(chosen):
        logger.info("duplicate event: deliveries exist", extra={"event_id": str(event.event_id)})
    await enqueue([Queued(event.tenant_id, delivery_id, 1, 0.0) for delivery_id in created])
    return created


# --- attempts ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    """A queue message: the attempt number `attempt` of a delivery, due in `delay_s`."""

    tenant_id: UUID
    delivery_id: UUID
    attempt: int
    delay_s: float

    def body(self) -> str:
        return json.dumps(
            {"tenant_id": str(self.tenant_id), "delivery_id": str(self.delivery_id), "attempt": self.attempt}
        )

    @classmethod
    def parse(cls, body: str) -> Queued:
        """ValueError (or KeyError, TypeError) for a message this code did not send."""
        message = json.loads(body)
        attempt = message["attempt"]
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
            raise ValueError(f"a message's attempt is a positive integer, not {attempt!r}")
        return cls(UUID(message["tenant_id"]), UUID(message["delivery_id"]), attempt, 0.0)


async def enqueue(messages: list[Queued]) -> None:
    """Queue attempts (each `DelaySeconds` its delay, whole seconds down, at most 900). A failure is logged, not
    raised: the sweeper queues what stays pending past due."""
    url = webhook_settings().webhook_delivery_queue_url
    if not messages:
        return
    if not url:
        logger.warning("STRATA_WEBHOOK_DELIVERY_QUEUE_URL is not set: deliveries wait for the sweeper")
        return
    for start in range(0, len(messages), SQS_BATCH):
        batch = messages[start : start + SQS_BATCH]
        entries = [
            {"Id": str(n), "MessageBody": m.body(), "DelaySeconds": min(MAX_DELAY_SECONDS, max(0, int(m.delay_s)))}
            for n, m in enumerate(batch)
        ]
        try:
            answer = await asyncio.to_thread(aws.client("sqs").send_message_batch, QueueUrl=url, Entries=entries)
        except Exception as exc:  # the rows are committed: the sweeper queues them
            logger.warning("queueing deliveries failed; left for the sweeper", extra={"error": str(exc)[:300]})
            continue
        if answer.get("Failed"):
            logger.warning("some deliveries were not queued; left for the sweeper", extra={"failed": answer["Failed"]})


@dataclass(frozen=True)
class Wait:
    """The delivery is not due for `seconds` yet."""

    seconds: float


async def attempt(tenant_id: UUID, delivery_id: UUID, number: int) -> Wait | None:
    """Make attempt `number` of a delivery if it is due and nobody else is making it: sign, send, record, and then
    retry later, dead-letter (counting against the webhook, which may be disabled), or finish. A stale message (the
    attempt made, the delivery finished or gone) does nothing. Returns Wait when the delivery is not due yet."""
    settings = webhook_settings()
    async with db.transaction(tenant_id) as conn:
        row = await store.delivery_for_attempt(conn, delivery_id)
        if row is None or row["status"] != "pending" or row["attempt_count"] + 1 != number or row["leased"]:
            return None
        if row["due_in_s"] > 0:
            return Wait(float(row["due_in_s"]))
        if row["webhook_status"] != "active":
            await store.dead_letter_unsent(conn, delivery_id, "not sent: the webhook is disabled")
            return None
        await store.lease(conn, delivery_id, settings.webhook_timeout_s + LEASE_MARGIN_S)
    signing = [row["secret"], *([row["previous_secret"]] if row["previous_secret"] else [])]
    body = body_bytes(row["payload"])
    headers = delivery_headers(
        secrets=signing,
        body=body,
        delivery_id=delivery_id,
        event_id=row["event_id"],
        event_type=row["event_type"],
        webhook_id=row["webhook_id"],
        attempt=number,
    )
    result = await send(
        row["url"],
        body,
        headers,
        timeout_s=settings.webhook_timeout_s,
        private_hosts=settings.private_hosts,
        allow_http=settings.webhook_allow_http,
        excerpt_bytes=settings.webhook_response_excerpt_bytes,
    )
    in_round = number - row["attempt_base"]
    retry_in: float | None = None
    if result.succeeded:
        status = "succeeded"
    elif in_round >= settings.webhook_max_attempts:
        status = "dead_lettered"
    else:
        status = "pending"
        retry_in = backoff_s(in_round, settings.backoff_schedule, settings.webhook_backoff_jitter)
    from asyncpg import ForeignKeyViolationError

    try:
        async with db.transaction(tenant_id) as conn:
            await store.record_attempt(
                conn, delivery_id, number, result.started_at, result.duration_ms, result.status_code, result.error,
                result.response_excerpt, len(signing),
            )  # fmt: skip
            await store.finish_attempt(conn, delivery_id, number, status, result.status_code, result.error, retry_in)
            disabled = False
            if status == "succeeded":
                await store.webhook_succeeded(conn, row["webhook_id"])
            elif status == "dead_lettered":
                disabled = await store.webhook_dead_lettered(
                    conn, row["webhook_id"], settings.webhook_disable_after_dead_letters
                )
            else:
                await store.webhook_attempted(conn, row["webhook_id"])
    except ForeignKeyViolationError:  # the webhook was deleted while the attempt was in flight
        logger.info("delivery gone during its attempt", extra={"delivery_id": str(delivery_id)})
        return None
    logger.info(
        "webhook delivery attempted",
        extra={
            "delivery_id": str(delivery_id),
            "webhook_id": str(row["webhook_id"]),
            "attempt": number,
            "status_code": result.status_code,
            "error": result.error,
            "outcome": status,
            "retry_in_s": retry_in,
        },
    )
    if disabled:
        logger.warning("webhook disabled after repeated dead letters", extra={"webhook_id": str(row["webhook_id"])})
    if retry_in is not None:
        await enqueue([Queued(tenant_id, delivery_id, number + 1, retry_in)])
    return None


async def attempt_queued(message: Queued) -> None:
    """Make the attempt a queue message is for; one that arrived early waits (in the consumer if the wait is short,
    else in the queue again)."""
    waited = False
    while True:
        outcome = await attempt(message.tenant_id, message.delivery_id, message.attempt)
        if outcome is None:
            return
        if outcome.seconds <= INLINE_WAIT_S and not waited:
            waited = True
            await asyncio.sleep(outcome.seconds)
            continue
        await enqueue([Queued(message.tenant_id, message.delivery_id, message.attempt, outcome.seconds)])
        return


async def sweep() -> dict[str, int]:
    """Queue again every delivery left pending past due (plus the sweep's grace) and not in flight: its message
    was lost (a failed send, a queue's redrive)."""
    settings = webhook_settings()
    rows = await store.sweep_due(settings.webhook_sweep_after_s, settings.webhook_sweep_batch)
    await enqueue([Queued(r["tenant_id"], r["delivery_id"], r["attempt_count"] + 1, 0.0) for r in rows])
    if rows:
        logger.info("pending deliveries queued again", extra={"count": len(rows)})
    return {"queued": len(rows)}
