"""SQL for the tables L01 owns: agents and event_log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from strata.events import Event
from strata.pagination import PageRequest, Where, fetch_page
from strata.versioned import update_row

if TYPE_CHECKING:  # asyncpg itself loads with the pool, not at cold start
    import asyncpg


AGENT_COLUMNS = (
    "agent_id, name, did, description, capabilities, metadata, system_prompt, model, tools, max_steps, status, version,"
    " updated_at, deleted_at"
)


async def insert_agent(conn: asyncpg.Connection, tenant_id: UUID, agent: dict[str, Any]) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"""INSERT INTO agents (agent_id, tenant_id, name, did, description, capabilities, metadata, system_prompt,
                                   model, tools, max_steps)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {AGENT_COLUMNS}, created_at""",  # noqa: S608
        agent["agent_id"],
        tenant_id,
        agent["name"],
        agent["did"],
        agent["description"],
        agent["capabilities"],
        agent["metadata"],
        agent["system_prompt"],
        agent["model"],
        agent["tools"],
        agent["max_steps"],
    )
    assert row is not None
    return dict(row)


async def get_agent(conn: asyncpg.Connection, agent_id: UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {AGENT_COLUMNS}, created_at FROM agents WHERE agent_id = $1 AND deleted_at IS NULL{lock}",  # noqa: S608
        agent_id,
    )
    return dict(row) if row else None


async def update_agent(conn: asyncpg.Connection, agent_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply `changes` (columns from the service's fixed set) and bump the version."""
    return await update_row(conn, "agents", "agent_id", agent_id, changes, f"{AGENT_COLUMNS}, created_at")


async def list_agents(
    tenant_id: UUID,
    page: PageRequest,
    status: str | None,
    name_prefix: str | None,
    capability: str | None,
    include_deleted: bool,
) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add_if(status, "status = {}").add_if(capability, "capabilities ? {}")
    if name_prefix is not None:
        where.add(
            "name LIKE {} ESCAPE '\\'", name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
    if not include_deleted:
        where.add("deleted_at IS NULL")
    return await fetch_page("agents", AGENT_COLUMNS, "agent_id", where, page)


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


EVENT_COLUMNS = "event_id, source, detail_type, correlation_id, causation_id, aggregate_type, aggregate_id, detail"


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
    query = Where(tenant_id)
    for column in ("detail_type", "correlation_id", "aggregate_type", "aggregate_id"):
        query.add_if(getattr(where, column), f"{column} = {{}}")
    query.add_if(where.since, "occurred_at >= {}").add_if(where.until, "occurred_at < {}")
    return await fetch_page("event_log", EVENT_COLUMNS, "event_id", query, page, order_column="occurred_at")
