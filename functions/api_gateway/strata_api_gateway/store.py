"""SQL for the tables L09 owns: tenants and api_keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from strata import db
from strata.auth import NewApiKey

if TYPE_CHECKING:  # asyncpg itself loads with the pool, not at cold start
    import asyncpg


async def find_active_key(prefix: str) -> asyncpg.Record | None:
    """The live key with `prefix` (not revoked, not expired, tenant active)."""
    pool = await db.get_pool()
    row: asyncpg.Record | None = await pool.fetchrow(
        """SELECT k.key_id, k.tenant_id, k.salt, k.digest, k.scopes FROM api_keys k
           JOIN tenants t ON t.tenant_id = k.tenant_id
           WHERE k.prefix = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
             AND t.status = 'active'""",
        prefix,
    )
    return row


async def tenant_by_name(conn: asyncpg.Connection, name: str) -> UUID | None:
    tenant_id: UUID | None = await conn.fetchval("SELECT tenant_id FROM tenants WHERE name = $1", name)
    return tenant_id


async def insert_tenant(conn: asyncpg.Connection, tenant_id: UUID, name: str) -> None:
    await conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)", tenant_id, name)


async def insert_key(
    conn: asyncpg.Connection, key_id: UUID, tenant_id: UUID, name: str, key: NewApiKey, scopes: list[str]
) -> dict[str, Any]:
    row = await conn.fetchrow(
        """INSERT INTO api_keys (key_id, tenant_id, name, prefix, salt, digest, scopes)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING key_id, name, prefix, scopes, created_at""",
        key_id,
        tenant_id,
        name,
        key.prefix,
        key.salt,
        key.digest,
        scopes,
    )
    assert row is not None
    return dict(row)
