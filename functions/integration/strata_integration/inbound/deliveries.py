"""Records of what arrived at an inbound webhook (table `inbound_webhook_deliveries`): one per verified sender
delivery id, claimed while it is being turned into a goal and settled with its outcome; unverified arrivals apart,
the newest few per endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID, uuid4

from strata import db
from strata.errors import NotFoundError
from strata.pagination import PageRequest, Where, fetch_page
from strata_integration.inbound.mapping import clean_text

COLUMNS = (
    "delivery_id, endpoint_id, verified, sender_delivery_id, event, outcome, reason, goal_id, goal_text, "
    "content_type, body_bytes, body_sha256, attempts, created_at, last_received_at, updated_at"
)
Outcome = Literal["processing", "accepted", "ignored", "rejected", "failed"]
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class Arrival:
    """What is known of a delivery before it is judged."""

    tenant_id: UUID
    endpoint_id: UUID
    content_type: str
    body_bytes: int
    body_sha256: str
    event: str
    sender_delivery_id: str | None
    dedupe_key: str


@dataclass(frozen=True)
class Claim:
    """The record of a verified delivery: `new` when this request is to process it (first arrival, or a resend of
    one that submitted no goal), `accepted` when it already submitted `goal_id`, `busy` while another request is
    processing it."""

    delivery_id: UUID
    state: Literal["new", "accepted", "busy"]
    goal_id: UUID | None
    attempts: int


def _arrival_values(arrival: Arrival) -> list[Any]:
    return [
        arrival.endpoint_id,
        arrival.dedupe_key,
        arrival.sender_delivery_id,
        arrival.event,
        arrival.content_type,
        arrival.body_bytes,
        arrival.body_sha256,
    ]


async def record_rejected(arrival: Arrival, reason: str, keep: int) -> UUID:
    """Record a delivery whose signature did not verify, keeping only the endpoint's newest `keep` such records."""
    delivery_id = uuid4()
    async with db.transaction(arrival.tenant_id) as conn:
        await conn.execute(
            """INSERT INTO inbound_webhook_deliveries (tenant_id, delivery_id, verified, outcome, reason, endpoint_id,
                   dedupe_key, sender_delivery_id, event, content_type, body_bytes, body_sha256)
               VALUES (strata_tenant(), $1, false, 'rejected', $2, $3, $4, $5, $6, $7, $8, $9)""",
            delivery_id,
            clean_text(reason, MAX_REASON_CHARS),
            *_arrival_values(arrival),
        )
        await conn.execute(
            """DELETE FROM inbound_webhook_deliveries WHERE endpoint_id = $1 AND NOT verified AND delivery_id IN (
                   SELECT delivery_id FROM inbound_webhook_deliveries WHERE endpoint_id = $1 AND NOT verified
                   ORDER BY created_at DESC OFFSET $2)""",
            arrival.endpoint_id,
            keep,
        )
    return delivery_id


async def claim(arrival: Arrival, lease_s: float) -> Claim:
    """Record a verified delivery's arrival and say whether this request is to process it (see Claim). A resend
    counts another attempt on the first record; one that submitted no goal is processed afresh."""
    async with db.transaction(arrival.tenant_id) as conn:
        inserted = await conn.fetchval(
            """INSERT INTO inbound_webhook_deliveries (tenant_id, delivery_id, verified, outcome, claimed_until,
                   endpoint_id, dedupe_key, sender_delivery_id, event, content_type, body_bytes, body_sha256)
               VALUES (strata_tenant(), $1, true, 'processing', now() + make_interval(secs => $2::float8),
                       $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (tenant_id, endpoint_id, dedupe_key) WHERE verified DO NOTHING
               RETURNING delivery_id""",
            uuid4(),
            lease_s,
            *_arrival_values(arrival),
        )
        if inserted is not None:
            return Claim(inserted, "new", None, 1)
        # a record exists (committed: the insert waited for any transaction still writing it)
        current = await conn.fetchrow(
            """SELECT delivery_id, outcome, goal_id,
                      outcome = 'accepted' OR (outcome = 'processing' AND claimed_until > now()) AS stays
               FROM inbound_webhook_deliveries WHERE endpoint_id = $1 AND dedupe_key = $2 AND verified
               FOR UPDATE""",
            arrival.endpoint_id,
            arrival.dedupe_key,
        )
        if current is None:  # its endpoint was deleted meanwhile: nothing left to record it under
            raise NotFoundError("the endpoint is gone")
        if current["stays"]:
            attempts = await conn.fetchval(
                """UPDATE inbound_webhook_deliveries SET attempts = attempts + 1, last_received_at = now(),
                       updated_at = now()
                   WHERE delivery_id = $1 RETURNING attempts""",
                current["delivery_id"],
            )
            state: Literal["accepted", "busy"] = "accepted" if current["outcome"] == "accepted" else "busy"
            return Claim(current["delivery_id"], state, current["goal_id"], attempts)
        attempts = await conn.fetchval(
            """UPDATE inbound_webhook_deliveries SET attempts = attempts + 1, last_received_at = now(),
                   updated_at = now(), outcome = 'processing', reason = NULL,
                   claimed_until = now() + make_interval(secs => $2::float8),
                   sender_delivery_id = $3, event = $4, content_type = $5, body_bytes = $6, body_sha256 = $7
               WHERE delivery_id = $1 RETURNING attempts""",
            current["delivery_id"],
            lease_s,
            *_arrival_values(arrival)[2:],
        )
        return Claim(current["delivery_id"], "new", None, attempts)


async def settle(
    tenant_id: UUID,
    delivery_id: UUID,
    outcome: Outcome,
    reason: str | None = None,
    goal_id: UUID | None = None,
    goal_text: str | None = None,
) -> None:
    """Record how a claimed delivery ended (a record that submitted a goal keeps it, whatever a late duplicate
    says)."""
    await db.fetch(
        """UPDATE inbound_webhook_deliveries SET outcome = $2, reason = $3, goal_id = $4,
               goal_text = $5, claimed_until = NULL, updated_at = now()
           WHERE delivery_id = $1 AND outcome <> 'accepted'""",
        delivery_id,
        outcome,
        clean_text(reason, MAX_REASON_CHARS) if reason is not None else None,
        goal_id,
        goal_text,
        tenant_id=tenant_id,
    )


async def list_page(
    tenant_id: UUID, endpoint_id: UUID, page: PageRequest, outcome: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """An endpoint's deliveries, newest first (by first arrival)."""
    exists = await db.fetch("SELECT 1 FROM inbound_webhooks WHERE endpoint_id = $1", endpoint_id, tenant_id=tenant_id)
    if not exists:
        raise NotFoundError(f"no inbound webhook {endpoint_id}")
    where = Where(tenant_id).add("endpoint_id = {}", endpoint_id).add_if(outcome, "outcome = {}")
    return await fetch_page("inbound_webhook_deliveries", COLUMNS, "delivery_id", where, page)
