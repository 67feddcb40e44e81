"""L01's event consumers: the archive of every event on the bus (from the archive queue, in batches), and the
events DLQ."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger

from strata import db
from strata.errors import BadRequestError
from strata.events import Event, parse_eventbridge
from strata_data import dead_letters, store

logger = Logger(child=True)


async def archive_event(event: Event) -> None:
    """Append every event to event_log; a duplicate delivery changes nothing."""
    async with db.transaction(event.tenant_id) as conn:
        if not await store.archive(conn, event):
            logger.info("duplicate event ignored", extra={"event_id": str(event.event_id)})


async def archive_record(record: Any) -> None:
    """One message of the archive queue (a Powertools SQSRecord: the event as EventBridge delivered it). An event
    that can never be archived (unknown type, broken contract) is kept as a dead letter at once, with the reason;
    any other failure is retried by the queue, then dead-lettered by its redrive policy."""
    try:
        event = parse_eventbridge(json.loads(record.body))
    except (ValueError, BadRequestError) as exc:  # JSON, pydantic's ValidationError, UnknownEventError
        logger.warning("an event cannot be archived; kept as a dead letter", extra={"reason": str(exc)[:500]})
        attributes = {
            "ERROR_CODE": type(exc).__name__,
            "ERROR_MESSAGE": str(exc)[:256],
            "TARGET_ARN": os.environ.get("STRATA_EVENT_ARCHIVE_QUEUE_ARN", ""),
            "RETRY_ATTEMPTS": "0",
        }
        await dead_letters.store(record.message_id, record.body, attributes)
        return
    await archive_event(event)


async def keep_dead_letter(record: Any) -> None:
    """One message of the events DLQ (a Powertools SQSRecord): kept in Postgres for inspection and replay."""
    raw = record.raw_event.get("messageAttributes") or {}
    attributes = {name: str(value.get("stringValue") or "") for name, value in raw.items()}
    await dead_letters.store(record.message_id, record.body, attributes)
