"""Transactional outbox: a state change and its events commit together, then publish to EventBridge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from aws_lambda_powertools import Logger

from strata import aws, background, db
from strata.config import get_settings
from strata.events.envelope import Event, event_model

if TYPE_CHECKING:
    import asyncpg

logger = Logger(child=True)

PUT_EVENTS_BATCH = 10  # EventBridge accepts at most 10 entries per PutEvents call
# A row that failed this often is parked (left with its last_error for an operator), so it cannot starve the rest.
MAX_PUBLISH_ATTEMPTS = 20


@dataclass
class UnitOfWork:
    """A tenant-scoped transaction that collects events to publish once it has committed."""

    conn: asyncpg.Connection
    events: list[Event] = field(default_factory=list)

    async def emit(self, event: Event) -> None:
        """Record `event` in the outbox, inside this transaction."""
        await self.conn.execute(
            "INSERT INTO outbox (event_id, tenant_id, source, detail_type, detail) VALUES ($1, $2, $3, $4, $5)",
            event.event_id,
            event.tenant_id,
            event.SOURCE,
            event.DETAIL_TYPE,
            event.model_dump(mode="json"),
        )
        self.events.append(event)


@asynccontextmanager
async def unit_of_work(tenant_id: UUID | None = None, publish_soon: bool = False) -> AsyncIterator[UnitOfWork]:
    """Run a state change with its events; after commit the events are published (the sweeper retries).
    `publish_soon`: published off the caller's path (background tasks), so the caller goes on without waiting
    for PutEvents: observations gathered with others for PUBLISH_LINGER_S (fewer, fuller PutEvents calls), the
    rest at once; a caller that must know they are out before its invocation ends awaits `background.drain()`
    (else a frozen environment leaves them to the sweeper)."""
    async with db.transaction(tenant_id) as conn:
        uow = UnitOfWork(conn)
        yield uow
    if uow.events:
        if publish_soon:
            observations = [e for e in uow.events if e.OBSERVATION]
            steps = [e for e in uow.events if not e.OBSERVATION]
            if observations:
                publish_later(observations)
            if steps:
                background.spawn(_publish_quietly(steps))
        else:
            await _publish_quietly(uow.events)


PUBLISH_LINGER_S = 0.1  # publish_later gathers events this long, so PutEvents carries up to 10 at a time
_pending: list[Event] = []


def publish_later(events: Sequence[Event]) -> None:
    """Publish committed outbox events off the caller's path, for hot paths such as metering: they are gathered
    for PUBLISH_LINGER_S and sent in batches (boto3's PutEvents costs ~2 ms of CPU a call, so one call per event
    would cost every request that much). If the environment is frozen first, the outbox sweeper publishes them
    instead (consumers are idempotent, so a late duplicate changes nothing)."""
    if not _pending:
        background.spawn(_flush_pending())
    _pending.extend(events)


async def _flush_pending() -> None:
    await asyncio.sleep(PUBLISH_LINGER_S)
    await flush_pending()


async def flush_pending() -> None:
    """Publish what publish_later is gathering now, without waiting out the linger (an invocation that is about
    to end)."""
    batch = _pending[:]
    _pending.clear()
    if batch:
        await _publish_quietly(batch)


async def _publish_quietly(events: list[Event]) -> None:
    try:
        await publish_events(events)
    except Exception:  # committed is committed: the caller must not see a failure; the sweeper retries
        logger.exception("publishing after commit failed; left for the outbox sweeper")


def put_entries(entries: list[dict[str, Any]]) -> list[bool]:
    """PutEvents (at most 10 entries); which entries EventBridge accepted. Blocking: call it in a thread."""
    response = aws.client("events").put_events(Entries=entries)
    return ["EventId" in result and "ErrorCode" not in result for result in response["Entries"]]


async def publish_events(events: Sequence[Event], conn: asyncpg.Connection | None = None) -> int:
    """Publish committed outbox events and mark the accepted ones sent (on `conn` if the caller holds
    their row locks); returns how many were sent."""
    bus = get_settings().event_bus_name
    sent: list[UUID] = []
    for start in range(0, len(events), PUT_EVENTS_BATCH):
        batch = list(events[start : start + PUT_EVENTS_BATCH])
        try:
            accepted = await asyncio.to_thread(put_entries, [e.to_entry(bus) for e in batch])
        except Exception as exc:  # the sweeper publishes what this misses
            logger.warning("event publish failed; left for the outbox sweeper", extra={"error": str(exc)})
            await _execute(
                conn,
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE event_id = ANY($1::uuid[])",
                [e.event_id for e in batch],
                str(exc)[:2000],
            )
            continue
        sent.extend(e.event_id for e, ok in zip(batch, accepted, strict=True) if ok)
    if sent:
        await _execute(
            conn,
            "UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE event_id = ANY($1::uuid[])",
            sent,
        )
    return len(sent)


async def _execute(conn: asyncpg.Connection | None, query: str, *args: Any) -> None:
    if conn is not None:
        await conn.execute(query, *args)
    else:
        await (await db.get_pool()).execute(query, *args)


async def sweep_outbox(older_than_s: float | None = None, limit: int = 500) -> int:
    """Publish events left unsent for longer than `older_than_s` (a crash between commit and publish)."""
    age = get_settings().outbox_sweep_after_s if older_than_s is None else older_than_s
    pool = await db.get_pool()
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT event_id, detail_type, detail FROM outbox
               WHERE published_at IS NULL AND created_at < now() - make_interval(secs => $1)
                 AND attempts < $3
               ORDER BY attempts, created_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            age,
            limit,
            MAX_PUBLISH_ATTEMPTS,
        )
        events: list[Event] = []
        for row in rows:  # one unreadable row (a contract changed since) must not hold back the others
            try:
                events.append(event_model(row["detail_type"]).from_detail(row["detail"]))
            except Exception as exc:
                logger.error("outbox row cannot be published", extra={"event_id": str(row["event_id"])})
                await conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE event_id = $1",
                    row["event_id"],
                    f"unreadable: {exc}"[:2000],
                )
        return await publish_events(events, conn) if events else 0


async def claim_event(conn: asyncpg.Connection, consumer: str, event: Event) -> bool:
    """Record that `consumer` handled `event` in the caller's transaction; False if it already had."""
    status: str = await conn.execute(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        consumer,
        event.event_id,
    )
    return status.endswith(" 1")
