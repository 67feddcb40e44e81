"""L01's event consumers: the archive of every event on the bus, and the events DLQ."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from strata import db
from strata.events import Event
from strata_data import dead_letters, store

logger = Logger(child=True)


async def archive_event(event: Event) -> None:
    """Append every event to event_log; a duplicate delivery changes nothing."""
    async with db.transaction(event.tenant_id) as conn:
        if not await store.archive(conn, event):
            logger.info("duplicate event ignored", extra={"event_id": str(event.event_id)})


async def keep_dead_letter(record: Any) -> None:
    """One message of the events DLQ (a Powertools SQSRecord): kept in Postgres for inspection and replay."""
    raw = record.raw_event.get("messageAttributes") or {}
    attributes = {name: str(value.get("stringValue") or "") for name, value in raw.items()}
    await dead_letters.store(record.message_id, record.body, attributes)
