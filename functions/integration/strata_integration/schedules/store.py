"""The SQL of scheduled goals: the schedules (each write bumps the version, the ETag) and their firings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from strata import db
from strata.pagination import PageRequest, Where, fetch_page
from strata.versioned import update_row

if TYPE_CHECKING:
    import asyncpg

COLUMNS = (
    "schedule_id, name, description, expression, timezone, start_at, end_at, rate_anchor, goal, submits_as, state, "
    "sync_status, version, created_by, created_at, updated_at"
)
RUN_COLUMNS = "schedule_id, scheduled_time, fired_at, last_attempt_at, attempts, execution_id, outcome, goal_id, reason"
# What a write may change (the service's fixed set: column names are never input)
DEFINITION = (
    "name",
    "description",
    "expression",
    "timezone",
    "start_at",
    "end_at",
    "rate_anchor",
    "goal",
    "submits_as",
    "state",
)


async def insert(conn: asyncpg.Connection, tenant_id: UUID, schedule: dict[str, Any]) -> dict[str, Any]:
    """A new schedule, version 1, on its way to Scheduler (sync_status pending)."""
    row = await conn.fetchrow(
        f"""INSERT INTO schedules (tenant_id, schedule_id, name, description, expression, timezone, start_at, end_at,
                                   rate_anchor, goal, submits_as, state, sync_status, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13)
            RETURNING {COLUMNS}""",  # noqa: S608 - constant columns
        tenant_id,
        schedule["schedule_id"],
        schedule["name"],
        schedule["description"],
        schedule["expression"],
        schedule["timezone"],
        schedule["start_at"],
        schedule["end_at"],
        schedule["rate_anchor"],
        schedule["goal"],
        schedule["submits_as"],
        schedule["state"],
        schedule["created_by"],
    )
    assert row is not None
    return dict(row)


async def count(conn: asyncpg.Connection) -> int:
    """The transaction's tenant's schedules."""
    found: int = await conn.fetchval("SELECT count(*) FROM schedules")
    return found


async def get(conn: asyncpg.Connection, schedule_id: UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM schedules WHERE schedule_id = $1{lock}", schedule_id)  # noqa: S608
    return dict(row) if row is not None else None


async def update(conn: asyncpg.Connection, schedule_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply `changes` (columns of DEFINITION), bump the version, and mark the schedule unsynced."""
    assert set(changes) <= set(DEFINITION), changes
    unsynced = {"sync_status": "pending", "sync_changed_at": datetime.now(UTC)}
    return await update_row(conn, "schedules", "schedule_id", schedule_id, {**changes, **unsynced}, COLUMNS)


async def set_sync_status(
    conn: asyncpg.Connection, schedule_id: UUID, status: str, *, version: int | None = None, when: str | None = None
) -> dict[str, Any] | None:
    """Record what Scheduler holds: only at `version` and from sync status `when`, if given (else a later write
    has taken over and will record its own). The schedule as it is then, or None when the condition did not hold."""
    row = await conn.fetchrow(
        f"UPDATE schedules SET sync_status = $2, sync_changed_at = now() WHERE schedule_id = $1 "  # noqa: S608
        f"AND ($3::integer IS NULL OR version = $3) AND ($4::text IS NULL OR sync_status = $4) RETURNING {COLUMNS}",
        schedule_id,
        status,
        version,
        when,
    )
    return dict(row) if row is not None else None


async def delete(conn: asyncpg.Connection, schedule_id: UUID) -> None:
    """The schedule and (cascading) its firings."""
    await conn.execute("DELETE FROM schedules WHERE schedule_id = $1", schedule_id)


async def list_page(tenant_id: UUID, page: PageRequest, state: str | None) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add("sync_status <> 'deleting'").add_if(state, "state = {}")
    return await fetch_page("schedules", COLUMNS, "schedule_id", where, page)


async def runs_page(tenant_id: UUID, schedule_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    """A schedule's firings, the latest scheduled time first."""
    where = Where(tenant_id).add("schedule_id = {}", schedule_id)
    return await fetch_page("schedule_runs", RUN_COLUMNS, "schedule_id", where, page, order_column="scheduled_time")


async def claim_run(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    schedule_id: UUID,
    scheduled_time: datetime,
    execution_id: str | None,
    request: dict[str, Any],
) -> dict[str, Any]:
    """The firing's row, made on its first invocation; a later one (a retry or a duplicate) counts an attempt and
    submits again unless the goal was submitted already (the last failure's reason stays until an attempt ends).
    `request` is kept from the first, so every attempt sends the same body."""
    row = await conn.fetchrow(
        """INSERT INTO schedule_runs AS r (tenant_id, schedule_id, scheduled_time, execution_id, outcome, request)
           VALUES ($1, $2, $3, $4, 'submitting', $5)
           ON CONFLICT (tenant_id, schedule_id, scheduled_time) DO UPDATE
               SET attempts = r.attempts + 1, last_attempt_at = now(), outcome = 'submitting'
               WHERE r.outcome <> 'submitted'
           RETURNING outcome, goal_id, request, attempts""",
        tenant_id,
        schedule_id,
        scheduled_time,
        execution_id,
        request,
    )
    if row is None:  # submitted already: a duplicate firing
        row = await conn.fetchrow(
            "SELECT outcome, goal_id, request, attempts FROM schedule_runs "
            "WHERE schedule_id = $1 AND scheduled_time = $2",
            schedule_id,
            scheduled_time,
        )
        assert row is not None
        return {**dict(row), "duplicate": True}
    return {**dict(row), "duplicate": False}


async def finish_run(
    tenant_id: UUID,
    schedule_id: UUID,
    scheduled_time: datetime,
    outcome: str,
    goal_id: UUID | None,
    reason: str | None,
) -> None:
    """The attempt's outcome; a submitted goal is never overwritten (by a duplicate's failure, say)."""
    async with db.transaction(tenant_id) as conn:
        await conn.execute(
            "UPDATE schedule_runs SET outcome = $3, goal_id = coalesce($4, goal_id), reason = $5 "
            "WHERE schedule_id = $1 AND scheduled_time = $2 AND outcome <> 'submitted'",
            schedule_id,
            scheduled_time,
            outcome,
            goal_id,
            reason,
        )


async def unsynced(older_than_s: float, limit: int = 100) -> list[tuple[UUID, UUID]]:
    """(tenant, schedule) of every tenant's schedules a write left unsynced for longer than `older_than_s`."""
    async with db.transaction() as conn:  # across tenants: the sync job's own connection
        rows = await conn.fetch(
            "SELECT tenant_id, schedule_id FROM schedules WHERE sync_status <> 'synced' "
            "AND sync_changed_at < now() - make_interval(secs => $1) ORDER BY sync_changed_at LIMIT $2",
            older_than_s,
            limit,
        )
    return [(row["tenant_id"], row["schedule_id"]) for row in rows]


async def mark_tenant_deleting(tenant_id: UUID) -> list[UUID]:
    """Every schedule of the tenant, marked as being deleted (firings skip them from now on)."""
    async with db.transaction(tenant_id) as conn:
        rows = await conn.fetch(
            "UPDATE schedules SET sync_status = 'deleting', sync_changed_at = now() RETURNING schedule_id"
        )
    return [row["schedule_id"] for row in rows]


async def delete_tenant(tenant_id: UUID) -> dict[str, int]:
    """Every row of the tenant in both tables."""
    erased: dict[str, int] = {}
    async with db.transaction() as conn:  # the platform's connection, as strata.tenant_data erases
        for table in ("schedule_runs", "schedules"):
            status = await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1", tenant_id)  # noqa: S608
            erased[table] = int(status.rsplit(" ", 1)[-1])
    return erased
