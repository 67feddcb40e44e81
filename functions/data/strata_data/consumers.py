"""L01's event consumers: the archive of every event on the bus."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from strata import db
from strata.events import Event
from strata_data import store

logger = Logger(child=True)


async def archive_event(event: Event) -> None:
    """Append every event to event_log; a duplicate delivery changes nothing."""
    async with db.transaction(event.tenant_id) as conn:
        if not await store.archive(conn, event):
            logger.info("duplicate event ignored", extra={"event_id": str(event.event_id)})
