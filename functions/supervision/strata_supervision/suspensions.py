"""The kill switch: suspend a whole tenant or one agent. While a suspension stands every decision it covers is a
deny (nothing new starts: plans are rejected, tool calls refused), and SuspensionChanged tells the runtime to
pause the runs it covers, whose running tasks stop at their next step; lifting it resumes them."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from strata import db
from strata.errors import ConflictError, NotFoundError
from strata.events.outbox import UnitOfWork, unit_of_work
from strata.events.supervision import SuspensionChanged
from strata.pagination import PageRequest, Where, fetch_page
from strata_supervision import audit
from strata_supervision.policies import bump_revision, publish_revision

COLUMNS = "suspension_id, scope, agent_id, reason, suspended_by, created_at, lifted_at, lifted_by"


async def suspend(
    tenant_id: UUID, scope: str, agent_id: UUID | None, reason: str, by: str, correlation_id: str
) -> dict[str, Any]:
    async with unit_of_work(tenant_id) as uow:
        row = await uow.conn.fetchrow(
            f"""INSERT INTO suspensions (tenant_id, suspension_id, scope, agent_id, reason, suspended_by)
                VALUES (strata_tenant(), $1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING {COLUMNS}""",  # noqa: S608
            uuid4(),
            scope,
            agent_id,
            reason,
            by,
        )
        if row is None:
            what = "the tenant is" if scope == "tenant" else f"the agent {agent_id} is"
            raise ConflictError(f"{what} suspended already; lift that suspension first")
        revision = await _announce(uow, tenant_id, correlation_id, row, by)
    await publish_revision(tenant_id, revision)
    return dict(row)


async def lift(tenant_id: UUID, suspension_id: UUID, by: str, correlation_id: str) -> dict[str, Any]:
    async with unit_of_work(tenant_id) as uow:
        row = await uow.conn.fetchrow(
            f"""UPDATE suspensions SET lifted_at = now(), lifted_by = $2
                WHERE suspension_id = $1 AND lifted_at IS NULL RETURNING {COLUMNS}""",  # noqa: S608
            suspension_id,
            by,
        )
        if row is None:
            exists = await uow.conn.fetchval("SELECT true FROM suspensions WHERE suspension_id = $1", suspension_id)
            if exists:
                raise ConflictError("the suspension was lifted already")
            raise NotFoundError(f"no suspension {suspension_id}")
        revision = await _announce(uow, tenant_id, correlation_id, row, by)
    await publish_revision(tenant_id, revision)
    return dict(row)


async def _announce(uow: UnitOfWork, tenant_id: UUID, correlation_id: str, row: Any, by: str) -> int:
    """A suspension made or lifted (in `row`): the policy revision moves on (decisions change at once), the
    runtime is told (SuspensionChanged), and the change is audited; the new revision."""
    suspended = row["lifted_at"] is None
    revision = await bump_revision(uow.conn)
    await uow.emit(
        SuspensionChanged(
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            suspension_id=row["suspension_id"],
            scope=row["scope"],
            agent_id=row["agent_id"],
            suspended=suspended,
            reason=row["reason"],
            changed_by=by[:200],
        )
    )
    details = {
        "suspension_id": str(row["suspension_id"]),
        "scope": row["scope"],
        "agent_id": str(row["agent_id"]) if row["agent_id"] else None,
        "reason": row["reason"],
        "revision": revision,
    }
    await audit.append(uow.conn, tenant_id, "suspension.created" if suspended else "suspension.lifted", by, details)
    return revision


async def get(tenant_id: UUID, suspension_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM suspensions WHERE suspension_id = $1",  # noqa: S608 - constant columns
        suspension_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no suspension {suspension_id}")
    return dict(rows[0])


async def list_page(tenant_id: UUID, active: bool | None, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id)
    if active is not None:
        where.add("lifted_at IS NULL" if active else "lifted_at IS NOT NULL")
    return await fetch_page("suspensions", COLUMNS, "suspension_id", where, page)
