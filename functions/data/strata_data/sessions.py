"""L01's sessions: state kept for a time-to-live, extended by updates, ended by a close or by expiry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger

from strata import db
from strata.errors import ConflictError, InvalidInputError, NotFoundError
from strata.etags import check_version
from strata.events.entities import SessionEnded, SessionStarted
from strata.events.outbox import unit_of_work
from strata.pagination import PageRequest, Where, fetch_page
from strata_data.configurations import dump_json

if TYPE_CHECKING:  # asyncpg itself loads with the pool, not at cold start
    import asyncpg

logger = Logger(child=True)

MAX_STATE_BYTES = 65_536
MIN_TTL_S, MAX_TTL_S, DEFAULT_TTL_S = 60, 86_400, 3_600
EXPIRY_BATCH = 500
EXPIRY_MAX_BATCHES = 20  # per run: a backlog larger than this is finished by the next runs
COLUMNS = "session_id, agent_id, state, status, version, expires_at, updated_at, ended_at"


async def _get(conn: asyncpg.Connection, session_id: UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS}, created_at FROM sessions WHERE session_id = $1{lock}",  # noqa: S608 - constants only
        session_id,
    )
    return dict(row) if row else None


async def _active(conn: asyncpg.Connection, session_id: UUID, expected_version: int | None) -> dict[str, Any]:
    """The session, locked, when the caller may still change it: 404 / 412 (stale ETag) / 409 (ended) otherwise."""
    current = await _get(conn, session_id, for_update=True)
    if current is None:
        raise NotFoundError(f"no session {session_id}")
    check_version(expected_version, current["version"])
    if current["status"] != "active":
        raise ConflictError(f"session {session_id} is {current['status']}, not active")
    if current["expires_at"] <= datetime.now(UTC):  # lapsed, and the expiry job has not reached it yet
        raise ConflictError(f"session {session_id} expired at {current['expires_at'].isoformat()}")
    return current


async def create(
    tenant_id: UUID, agent_id: UUID | None, ttl_s: int, state: dict[str, Any], correlation_id: str
) -> dict[str, Any]:
    async with unit_of_work(tenant_id) as uow:
        if agent_id is not None:
            # FOR SHARE: the agent cannot be deleted until this session is in (row-level security: the tenant's only)
            live = await uow.conn.fetchval(
                "SELECT true FROM agents WHERE agent_id = $1 AND deleted_at IS NULL FOR SHARE", agent_id
            )
            if not live:
                raise InvalidInputError(f"no agent {agent_id}: a session's agent must be one of the tenant's agents")
        row = await uow.conn.fetchrow(
            f"""INSERT INTO sessions (session_id, tenant_id, agent_id, state, expires_at)
                VALUES ($1, $2, $3, $4::text::jsonb, now() + make_interval(secs => $5))
                RETURNING {COLUMNS}, created_at""",  # noqa: S608 - constants and $n only
            uuid4(),
            tenant_id,
            agent_id,
            dump_json(state, MAX_STATE_BYTES),
            ttl_s,
        )
        assert row is not None
        session = dict(row)
        await uow.emit(
            SessionStarted(
                tenant_id=tenant_id, correlation_id=correlation_id, session_id=session["session_id"], agent_id=agent_id
            )
        )
    return session


async def get(tenant_id: UUID, session_id: UUID) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        session = await _get(conn, session_id)
    if session is None:
        raise NotFoundError(f"no session {session_id}")
    return session


async def list_page(
    tenant_id: UUID, page: PageRequest, status: str | None, agent_id: UUID | None
) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add_if(status, "status = {}").add_if(agent_id, "agent_id = {}")
    return await fetch_page("sessions", COLUMNS, "session_id", where, page)


async def update(
    tenant_id: UUID,
    session_id: UUID,
    state: dict[str, Any] | None,
    ttl_s: int | None,
    expected_version: int | None,
) -> dict[str, Any]:
    """Replace the state and/or extend the expiry to `ttl_s` from now; only an active session changes."""
    async with db.transaction(tenant_id) as conn:
        current = await _active(conn, session_id, expected_version)
        if state is None and ttl_s is None:
            return current
        row = await conn.fetchrow(
            f"""UPDATE sessions SET state = coalesce($2::text::jsonb, state),
                       expires_at = CASE WHEN $3::integer IS NULL THEN expires_at
                                         ELSE now() + make_interval(secs => $3::integer) END,
                       version = version + 1, updated_at = now()
                WHERE session_id = $1 RETURNING {COLUMNS}, created_at""",  # noqa: S608 - constants and $n only
            session_id,
            None if state is None else dump_json(state, MAX_STATE_BYTES),
            ttl_s,
        )
    assert row is not None
    return dict(row)


async def close(tenant_id: UUID, session_id: UUID, expected_version: int | None, correlation_id: str) -> dict[str, Any]:
    async with unit_of_work(tenant_id) as uow:
        await _active(uow.conn, session_id, expected_version)
        row = await uow.conn.fetchrow(
            f"""UPDATE sessions SET status = 'closed', ended_at = now(), version = version + 1, updated_at = now()
                WHERE session_id = $1 RETURNING {COLUMNS}, created_at""",  # noqa: S608 - constants and $n only
            session_id,
        )
        assert row is not None
        await uow.emit(
            SessionEnded(tenant_id=tenant_id, correlation_id=correlation_id, session_id=session_id, reason="closed")
        )
    return dict(row)


async def expire(batch: int = EXPIRY_BATCH, max_batches: int = EXPIRY_MAX_BATCHES) -> int:
    """End every active session whose expiry has passed, for all tenants (so as the table owner, not a tenant),
    in batches that skip rows other runs hold; one SessionEnded per session, in its tenant. Returns how many."""
    expired = 0
    for _ in range(max_batches):
        async with unit_of_work() as uow:
            rows = await uow.conn.fetch(
                """WITH due AS (
                       SELECT session_id FROM sessions WHERE status = 'active' AND expires_at < now()
                       ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                   UPDATE sessions s SET status = 'expired', ended_at = now(), version = s.version + 1,
                          updated_at = now()
                   FROM due WHERE s.session_id = due.session_id
                   RETURNING s.session_id, s.tenant_id""",
                batch,
            )
            for row in rows:
                await uow.emit(
                    SessionEnded(
                        tenant_id=row["tenant_id"],
                        correlation_id=f"session-expiry-{row['session_id']}",
                        session_id=row["session_id"],
                        reason="expired",
                    )
                )
        expired += len(rows)
        if len(rows) < batch:
            break
    if expired:
        logger.info("sessions expired", extra={"count": expired})
    return expired
