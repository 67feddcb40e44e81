"""The SQL of sagas: the saga, its steps and every transition, each change and its transition in one transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from strata import db
from strata.errors import NotFoundError
from strata.pagination import PageRequest, Where, fetch_page

SAGA_COLUMNS = (
    "saga_id, kind, subject_tenant_id, status, input, outputs, current_step, error, requested_by, correlation_id, "
    "created_at, updated_at, finished_at"
)
STEP_COLUMNS = (
    "step_index, name, status, attempts, compensation_attempts, output, error, started_at, finished_at, compensated_at"
)


def _saga(row: Any) -> dict[str, Any]:
    return dict(row)  # jsonb comes back decoded (strata.db's codec)


async def create(
    tenant_id: UUID,
    saga_id: UUID,
    kind: str,
    subject_tenant_id: UUID | None,
    step_names: list[str],
    input_: dict[str, Any],
    requested_by: str,
    correlation_id: str,
    lease_owner: str,
    lease_s: float,
) -> None:
    """The saga (running, leased to its creator so the schedule does not pick it up meanwhile) and its steps."""
    async with db.transaction(tenant_id) as conn:
        await conn.execute(
            "INSERT INTO sagas (tenant_id, saga_id, kind, subject_tenant_id, status, input, requested_by, "
            "correlation_id, lease_owner, lease_until) "
            "VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, now() + make_interval(secs => $9))",
            tenant_id,
            saga_id,
            kind,
            subject_tenant_id,
            input_,
            requested_by,
            correlation_id,
            lease_owner,
            lease_s,
        )
        await conn.executemany(
            "INSERT INTO saga_steps (tenant_id, saga_id, step_index, name, status) VALUES ($1, $2, $3, $4, 'pending')",
            [(tenant_id, saga_id, n, name) for n, name in enumerate(step_names)],
        )
        await conn.execute(
            "INSERT INTO saga_transitions (tenant_id, saga_id, to_status, detail) VALUES ($1, $2, 'running', $3)",
            tenant_id,
            saga_id,
            f"started by {requested_by}",
        )


async def lease(tenant_id: UUID, saga_id: UUID, owner: str, lease_s: float) -> dict[str, Any] | None:
    """Take the saga for `owner` when it is unfinished and nobody else holds it (or `owner` already does)."""
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow(
            "UPDATE sagas SET lease_owner = $3, lease_until = now() + make_interval(secs => $4) "  # noqa: S608
            "WHERE tenant_id = $1 AND saga_id = $2 AND status IN ('running', 'compensating') "
            f"AND (lease_owner = $3 OR lease_until IS NULL OR lease_until < now()) RETURNING {SAGA_COLUMNS}",
            tenant_id,
            saga_id,
            owner,
            lease_s,
        )
    return _saga(row) if row is not None else None


async def release(tenant_id: UUID, saga_id: UUID, owner: str) -> None:
    async with db.transaction(tenant_id) as conn:
        await conn.execute(
            "UPDATE sagas SET lease_owner = NULL, lease_until = NULL "
            "WHERE tenant_id = $1 AND saga_id = $2 AND lease_owner = $3",
            tenant_id,
            saga_id,
            owner,
        )


async def steps(tenant_id: UUID, saga_id: UUID) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {STEP_COLUMNS} FROM saga_steps WHERE tenant_id = $1 AND saga_id = $2 ORDER BY step_index",  # noqa: S608
        tenant_id,
        saga_id,
        tenant_id=tenant_id,
    )
    return [dict(row) for row in rows]


async def set_step(
    tenant_id: UUID,
    saga_id: UUID,
    index: int,
    status: str,
    *,
    owner: str,
    lease_s: float,
    detail: str = "",
    output: dict[str, Any] | None = None,
    error: str | None = None,
    attempt: bool = False,
    compensation_attempt: bool = False,
    saga_status: str | None = None,
    saga_error: str | None = None,
    current_step: int | None = None,
    subject_tenant_id: UUID | None = None,
) -> None:
    """A step's new status (and the saga's, when it changes with it), their transitions, the lease renewed."""
    async with db.transaction(tenant_id) as conn:
        before = await conn.fetchval(
            "SELECT status FROM saga_steps WHERE tenant_id = $1 AND saga_id = $2 AND step_index = $3 FOR UPDATE",
            tenant_id,
            saga_id,
            index,
        )
        await conn.execute(
            "UPDATE saga_steps SET status = $4, "
            "attempts = attempts + $5::int, compensation_attempts = compensation_attempts + $6::int, "
            "output = COALESCE($7::jsonb, output), error = $8, "
            "started_at = CASE WHEN $4 = 'running' THEN COALESCE(started_at, now()) ELSE started_at END, "
            "finished_at = CASE WHEN $4 IN ('succeeded', 'failed') THEN now() ELSE finished_at END, "
            "compensated_at = CASE WHEN $4 IN ('compensated', 'compensation_failed', 'not_compensable') "
            "THEN now() ELSE compensated_at END "
            "WHERE tenant_id = $1 AND saga_id = $2 AND step_index = $3",
            tenant_id,
            saga_id,
            index,
            status,
            int(attempt),
            int(compensation_attempt),
            output,
            error,
        )
        if before != status or detail:
            await conn.execute(
                "INSERT INTO saga_transitions (tenant_id, saga_id, step_index, from_status, to_status, detail) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                tenant_id,
                saga_id,
                index,
                before,
                status,
                detail[:2000],
            )
        await _update_saga(
            conn,
            tenant_id,
            saga_id,
            owner,
            lease_s,
            saga_status,
            saga_error,
            current_step,
            output,
            index,
            subject_tenant_id,
        )


async def set_saga(
    tenant_id: UUID, saga_id: UUID, status: str, *, owner: str, lease_s: float, error: str | None = None
) -> None:
    async with db.transaction(tenant_id) as conn:
        await _update_saga(conn, tenant_id, saga_id, owner, lease_s, status, error, None, None, None, None)


async def _update_saga(
    conn: Any,
    tenant_id: UUID,
    saga_id: UUID,
    owner: str,
    lease_s: float,
    status: str | None,
    error: str | None,
    current_step: int | None,
    output: dict[str, Any] | None,
    index: int | None,
    subject_tenant_id: UUID | None,
) -> None:
    before = await conn.fetchval(
        "SELECT status FROM sagas WHERE tenant_id = $1 AND saga_id = $2 FOR UPDATE", tenant_id, saga_id
    )
    finished = status in ("completed", "compensated", "failed")
    await conn.execute(
        "UPDATE sagas SET status = COALESCE($3, status), error = CASE WHEN $3::text IS NULL THEN error ELSE $4 END, "
        "current_step = COALESCE($5, current_step), "
        "outputs = CASE WHEN $6::jsonb IS NULL THEN outputs "
        "ELSE outputs || jsonb_build_object($7::text, $6::jsonb) END, "
        "updated_at = now(), finished_at = CASE WHEN $8 THEN now() ELSE finished_at END, "
        "lease_until = CASE WHEN $8 THEN NULL ELSE now() + make_interval(secs => $9) END, "
        "lease_owner = CASE WHEN $8 THEN NULL ELSE $10 END, "
        "subject_tenant_id = COALESCE(subject_tenant_id, $11) "
        "WHERE tenant_id = $1 AND saga_id = $2",
        tenant_id,
        saga_id,
        status,
        error,
        current_step,
        output,
        str(index) if index is not None else "",
        finished,
        lease_s,
        owner,
        subject_tenant_id,
    )
    if status is not None and status != before:
        await conn.execute(
            "INSERT INTO saga_transitions (tenant_id, saga_id, from_status, to_status, detail) "
            "VALUES ($1, $2, $3, $4, $5)",
            tenant_id,
            saga_id,
            before,
            status,
            (error or "")[:2000],
        )


async def get(tenant_id: UUID, saga_id: UUID) -> dict[str, Any]:
    """The saga with its steps and transitions (404 when the tenant has none by that id)."""
    rows = await db.fetch(
        f"SELECT {SAGA_COLUMNS} FROM sagas WHERE tenant_id = $1 AND saga_id = $2",  # noqa: S608
        tenant_id,
        saga_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no saga {saga_id}")
    saga = _saga(rows[0])
    saga["steps"] = await steps(tenant_id, saga_id)
    transitions = await db.fetch(
        "SELECT seq, step_index, from_status, to_status, detail, at FROM saga_transitions "
        "WHERE tenant_id = $1 AND saga_id = $2 ORDER BY seq",
        tenant_id,
        saga_id,
        tenant_id=tenant_id,
    )
    saga["transitions"] = [dict(t) for t in transitions]
    return saga


async def list_page(
    tenant_id: UUID, request: PageRequest, kind: str | None, status: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id)
    if kind:
        where.add("kind = {}", kind)
    if status:
        where.add("status = {}", status)
    items, cursor = await fetch_page("sagas", SAGA_COLUMNS, "saga_id", where, request)
    return [_saga(item) for item in items], cursor


async def reopen(tenant_id: UUID, saga_id: UUID, status: str, owner: str, lease_s: float, detail: str) -> None:
    """A failed saga taken up again (forward or its compensation), by the operator's retry."""
    async with db.transaction(tenant_id) as conn:
        await conn.execute(
            "UPDATE sagas SET status = $3, error = NULL, finished_at = NULL, updated_at = now(), lease_owner = $4, "
            "lease_until = now() + make_interval(secs => $5) WHERE tenant_id = $1 AND saga_id = $2",
            tenant_id,
            saga_id,
            status,
            owner,
            lease_s,
        )
        await conn.execute(
            "INSERT INTO saga_transitions (tenant_id, saga_id, from_status, to_status, detail) "
            "VALUES ($1, $2, 'failed', $3, $4)",
            tenant_id,
            saga_id,
            status,
            detail,
        )


async def due(limit: int) -> list[tuple[UUID, UUID]]:
    """Unfinished sagas nobody holds (their runner crashed or timed out), oldest lease first, across tenants."""
    rows = await db.fetch(
        "SELECT tenant_id, saga_id FROM sagas WHERE status IN ('running', 'compensating') "
        "AND (lease_until IS NULL OR lease_until < now()) ORDER BY lease_until NULLS FIRST LIMIT $1",
        limit,
    )
    return [(row["tenant_id"], row["saga_id"]) for row in rows]
