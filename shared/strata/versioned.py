"""SQL shared by versioned entities (L01's agents and documents, L09's tenants): every write bumps `version` (the
ETag) and `updated_at`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from strata.errors import NotFoundError
from strata.etags import check_version

if TYPE_CHECKING:
    import asyncpg


async def update_row(
    conn: asyncpg.Connection, table: str, id_column: str, entity_id: UUID, changes: dict[str, Any], returning: str
) -> dict[str, Any]:
    """Apply `changes` (column -> value) and bump the version. Table and column names are the caller's
    constants (its own fixed set of updatable fields), never input."""
    sets = "".join(f"{column} = ${n}, " for n, column in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE {table} SET {sets}version = version + 1, updated_at = now() "  # noqa: S608
        f"WHERE {id_column} = $1 RETURNING {returning}",
        entity_id,
        *changes.values(),
    )
    assert row is not None
    return dict(row)


async def soft_delete_row(conn: asyncpg.Connection, table: str, id_column: str, entity_id: UUID) -> None:
    """Mark the row deleted (it stays for history and references) and bump the version."""
    await conn.execute(
        f"UPDATE {table} SET deleted_at = now(), version = version + 1, updated_at = now() "  # noqa: S608
        f"WHERE {id_column} = $1",
        entity_id,
    )


async def lock_current(
    conn: asyncpg.Connection, table: str, id_column: str, entity_id: UUID, expected: int | None, what: str
) -> int:
    """Lock the live row for a write and return its version: 404 when it is gone, 412 when `expected` (If-Match)
    names another version."""
    version: int | None = await conn.fetchval(
        f"SELECT version FROM {table} WHERE {id_column} = $1 AND deleted_at IS NULL FOR UPDATE",  # noqa: S608
        entity_id,
    )
    if version is None:
        raise NotFoundError(f"no {what} {entity_id}")
    check_version(expected, version)
    return version
