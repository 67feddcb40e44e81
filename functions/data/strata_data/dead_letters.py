"""Dead letters: events no consumer could handle, kept per tenant, inspected and replayed onto the bus."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger

from strata import db
from strata.config import get_settings
from strata.errors import NotFoundError
from strata.events.outbox import PUT_EVENTS_BATCH, put_entries
from strata.pagination import PageRequest, Where, fetch_page

logger = Logger(child=True)

NO_TENANT = UUID(int=0)  # events that name no valid tenant: kept, but visible to no tenant's credential
COLUMNS = (
    "dead_letter_id, message_id, event_id, source, detail_type, rule_arn, target_arn, error_code, error_message, "
    "retry_attempts, event, status, replay_count, created_at, replayed_at"
)


def _tenant_of(event: dict[str, Any]) -> UUID:
    detail = event.get("detail")
    try:
        return UUID(str(detail.get("tenant_id"))) if isinstance(detail, dict) else NO_TENANT
    except ValueError:
        return NO_TENANT


async def store(message_id: str, body: str, attributes: dict[str, str]) -> bool:
    """Keep one DLQ message (once, whatever SQS redelivers); returns False for a duplicate delivery."""
    try:
        event = json.loads(body)
        if not isinstance(event, dict):
            event = {"raw": body}
    except ValueError:
        event = {"raw": body}
    raw_detail = event.get("detail")
    detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    tenant_id = _tenant_of(event)
    async with db.transaction(tenant_id) as conn:
        status: str = await conn.execute(
            """INSERT INTO dead_letters (dead_letter_id, tenant_id, message_id, event_id, source, detail_type,
                   rule_arn, target_arn, error_code, error_message, retry_attempts, event)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (message_id) DO NOTHING""",
            uuid4(),
            tenant_id,
            message_id,
            str(detail.get("event_id", "")),
            str(event.get("source", "")),
            str(event.get("detail-type", "")),
            attributes.get("RULE_ARN", ""),
            attributes.get("TARGET_ARN", ""),
            attributes.get("ERROR_CODE", ""),
            attributes.get("ERROR_MESSAGE", ""),
            int(attributes.get("RETRY_ATTEMPTS", "0") or 0),
            event,
        )
    return status.endswith(" 1")


async def list_page(
    tenant_id: UUID, page: PageRequest, status: str | None, detail_type: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add_if(status, "status = {}").add_if(detail_type, "detail_type = {}")
    return await fetch_page("dead_letters", COLUMNS, "dead_letter_id", where, page)


async def get(tenant_id: UUID, dead_letter_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM dead_letters WHERE dead_letter_id = $1",  # noqa: S608 - a constant column list
        dead_letter_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no dead letter {dead_letter_id}")
    return dict(rows[0])


async def replay(tenant_id: UUID, dead_letter_ids: list[UUID]) -> list[UUID]:
    """Put each dead letter's original event back on the bus, unchanged (same event id: consumers that already
    handled it ignore it); returns the ids EventBridge accepted, which are marked replayed."""
    rows = await db.fetch(
        "SELECT dead_letter_id, source, detail_type, event FROM dead_letters "
        "WHERE dead_letter_id = ANY($1::uuid[]) AND source <> '' AND detail_type <> ''",
        dead_letter_ids,
        tenant_id=tenant_id,
    )
    bus = get_settings().event_bus_name
    accepted: list[UUID] = []
    for start in range(0, len(rows), PUT_EVENTS_BATCH):
        batch = rows[start : start + PUT_EVENTS_BATCH]
        entries = [
            {
                "EventBusName": bus,
                "Source": r["source"],
                "DetailType": r["detail_type"],
                "Detail": json.dumps(r["event"].get("detail", {})),
            }
            for r in batch
        ]
        results = await asyncio.to_thread(put_entries, entries)
        accepted += [r["dead_letter_id"] for r, ok in zip(batch, results, strict=True) if ok]
    if accepted:
        async with db.transaction(tenant_id) as conn:
            await conn.execute(
                "UPDATE dead_letters SET status = 'replayed', replay_count = replay_count + 1, replayed_at = now() "
                "WHERE dead_letter_id = ANY($1::uuid[])",
                accepted,
            )
    logger.info("dead letters replayed", extra={"count": len(accepted), "asked": len(dead_letter_ids)})
    return accepted


async def matching_ids(tenant_id: UUID, status: str, detail_type: str | None, limit: int) -> list[UUID]:
    args: list[Any] = [tenant_id, status, limit]
    extra = ""
    if detail_type:
        args.append(detail_type)
        extra = "AND detail_type = $4"
    rows = await db.fetch(
        f"SELECT dead_letter_id FROM dead_letters WHERE tenant_id = $1 AND status = $2 {extra} "  # noqa: S608
        "ORDER BY created_at LIMIT $3",
        *args,
        tenant_id=tenant_id,
    )
    return [r["dead_letter_id"] for r in rows]
