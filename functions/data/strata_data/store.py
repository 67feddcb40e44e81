"""SQL for the tables L01 owns: agents and event_log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from strata import db
from strata.events import Event
from strata.pagination import PageRequest, decode_cursor, encode_cursor

if TYPE_CHECKING:  # asyncpg itself loads with the pool, not at cold start
    import asyncpg


async def insert_agent(
    conn: asyncpg.Connection, tenant_id: UUID, agent_id: UUID, name: str, did: str, capabilities: list[str]
) -> dict[str, Any]:
    row = await conn.fetchrow(
        """INSERT INTO agents (agent_id, tenant_id, name, did, capabilities) VALUES ($1, $2, $3, $4, $5)
           RETURNING agent_id, name, did, capabilities, status, created_at, updated_at""",
        agent_id,
        tenant_id,
        name,
        did,
        capabilities,
    )
    assert row is not None
    return dict(row)


async def archive(conn: asyncpg.Connection, event: Event) -> bool:
    """Append `event` to event_log; False when it was archived before (a duplicate delivery)."""
    status: str = await conn.execute(
        """INSERT INTO event_log (event_id, tenant_id, source, detail_type, correlation_id, causation_id,
                                  occurred_at, detail, aggregate_type, aggregate_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING""",
        event.event_id,
        event.tenant_id,
        event.SOURCE,
        event.DETAIL_TYPE,
        event.correlation_id,
        event.causation_id,
        event.occurred_at,
        event.model_dump(mode="json"),
        *event.aggregate,
    )
    return status.endswith(" 1")


@dataclass(frozen=True)
class EventFilter:
    """What `GET /v1/events` narrows the log by; every field is optional."""

    detail_type: str | None = None
    correlation_id: str | None = None
    aggregate_type: str | None = None
    aggregate_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_events(
    tenant_id: UUID, page: PageRequest, where: EventFilter
) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's archived events, newest first, filtered and cursor paginated."""
    clauses, args = ["tenant_id = $1"], [tenant_id]

    def bind(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    for column in ("detail_type", "correlation_id", "aggregate_type", "aggregate_id"):
        value = getattr(where, column)
        if value:
            clauses.append(f"{column} = {bind(value)}")
    if where.since:
        clauses.append(f"occurred_at >= {bind(where.since)}")
    if where.until:
        clauses.append(f"occurred_at < {bind(where.until)}")
    if page.cursor:
        occurred_at, event_id = decode_cursor(page.cursor)
        clauses.append(f"(occurred_at, event_id) < ({bind(occurred_at)}, {bind(event_id)})")
    limit = bind(page.limit + 1)
    rows = await db.fetch(
        "SELECT event_id, source, detail_type, correlation_id, causation_id, occurred_at, aggregate_type, "  # noqa: S608 - only $n markers are interpolated
        "aggregate_id, detail FROM event_log "
        f"WHERE {' AND '.join(clauses)} ORDER BY occurred_at DESC, event_id DESC LIMIT {limit}",
        *args,
        tenant_id=tenant_id,
    )
    items = [dict(r) for r in rows[: page.limit]]
    more = len(rows) > page.limit
    return items, encode_cursor(items[-1]["occurred_at"], items[-1]["event_id"]) if more else None
