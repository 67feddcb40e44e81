"""SQL for the tables L09 owns: tenants and api_keys."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from strata import db
from strata.auth import NewApiKey
from strata.pagination import PageRequest, Where, decode_cursor, encode_cursor, fetch_page
from strata.versioned import update_row

if TYPE_CHECKING:  # asyncpg itself loads with the pool, not at cold start
    import asyncpg

KEY_COLUMNS = "key_id, name, prefix, scopes, expires_at, revoked_at, last_used_at"


async def find_active_key(prefix: str) -> asyncpg.Record | None:
    """The live key with `prefix` (not revoked, not expired, tenant active). Runs as the owner: the authorizer
    does not know the tenant until it has found the key."""
    pool = await db.get_pool()
    row: asyncpg.Record | None = await pool.fetchrow(
        """SELECT k.key_id, k.tenant_id, k.salt, k.digest, k.scopes, t.tier, t.cors_origins FROM api_keys k
           JOIN tenants t ON t.tenant_id = k.tenant_id
           WHERE k.prefix = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
             AND t.status = 'active'""",
        prefix,
    )
    return row


async def tenant_by_name(conn: asyncpg.Connection, name: str) -> UUID | None:
    tenant_id: UUID | None = await conn.fetchval("SELECT tenant_id FROM tenants WHERE name = $1", name)
    return tenant_id


TENANT_COLUMNS = "tenant_id, name, status, tier, cors_origins, version, created_at, updated_at"


async def insert_tenant(conn: asyncpg.Connection, tenant_id: UUID, name: str, tier: str = "standard") -> None:
    await conn.execute("INSERT INTO tenants (tenant_id, name, tier) VALUES ($1, $2, $3)", tenant_id, name, tier)


async def get_tenant(conn: asyncpg.Connection, tenant_id: UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {TENANT_COLUMNS} FROM tenants WHERE tenant_id = $1{lock}",  # noqa: S608 - constants only
        tenant_id,
    )
    return dict(row) if row else None


async def update_tenant(conn: asyncpg.Connection, tenant_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the changed columns, bumping the version."""
    assert changes
    assert set(changes) <= {"status", "tier", "cors_origins"}
    return await update_row(conn, "tenants", "tenant_id", tenant_id, changes, TENANT_COLUMNS)


async def list_tenants(page: PageRequest, status: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Every tenant (the operator's view, so not row-level scoped), newest first."""
    clauses: list[str] = ["true"]
    args: list[Any] = []
    if status is not None:
        args.append(status)
        clauses.append(f"status = ${len(args)}")
    if page.cursor:
        created, tenant_id = decode_cursor(page.cursor)
        args += [created, tenant_id]
        clauses.append(f"(created_at, tenant_id) < (${len(args) - 1}, ${len(args)})")
    args.append(page.limit + 1)
    rows = await db.fetch(
        f"SELECT {TENANT_COLUMNS} FROM tenants WHERE {' AND '.join(clauses)} "  # noqa: S608 - constants and $n only
        f"ORDER BY created_at DESC, tenant_id DESC LIMIT ${len(args)}",
        *args,
    )
    items = [dict(r) for r in rows[: page.limit]]
    more = len(rows) > page.limit
    return items, encode_cursor(items[-1]["created_at"], items[-1]["tenant_id"]) if more else None


async def allowed_origins() -> set[str]:
    """Every browser origin some active tenant allows (what a preflight, which carries no credential, may pass)."""
    rows = await db.fetch("SELECT DISTINCT unnest(cors_origins) AS origin FROM tenants WHERE status = 'active'")
    return {r["origin"] for r in rows}


async def insert_key(
    conn: asyncpg.Connection,
    key_id: UUID,
    tenant_id: UUID,
    name: str,
    key: NewApiKey,
    scopes: list[str],
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"""INSERT INTO api_keys (key_id, tenant_id, name, prefix, salt, digest, scopes, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {KEY_COLUMNS}, created_at""",  # noqa: S608
        key_id,
        tenant_id,
        name,
        key.prefix,
        key.salt,
        key.digest,
        scopes,
        expires_at,
    )
    assert row is not None
    return dict(row)


async def get_key(conn: asyncpg.Connection, key_id: UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {KEY_COLUMNS}, created_at FROM api_keys WHERE key_id = $1{lock}",  # noqa: S608
        key_id,
    )
    return dict(row) if row else None


async def end_key(conn: asyncpg.Connection, key_id: UUID, column: str, at: datetime | None) -> dict[str, Any]:
    """Set `revoked_at` (now) or `expires_at` (`at`) of a key; `column` is one of those two constants."""
    assert column in ("revoked_at", "expires_at")
    row = await conn.fetchrow(
        f"UPDATE api_keys SET {column} = coalesce($2, now()) WHERE key_id = $1 "  # noqa: S608
        f"RETURNING {KEY_COLUMNS}, created_at",
        key_id,
        at,
    )
    assert row is not None
    return dict(row)


async def list_keys(tenant_id: UUID, page: PageRequest, include_ended: bool) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id)
    if not include_ended:
        where.add("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())")
    return await fetch_page("api_keys", KEY_COLUMNS, "key_id", where, page)
