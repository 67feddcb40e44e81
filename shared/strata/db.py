"""The lazy asyncpg pool, created inside the running loop and kept for the execution environment."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from strata.config import database_url, get_settings

if TYPE_CHECKING:  # asyncpg is imported when the pool is built, keeping it out of the cold start
    import asyncpg

TENANT_SCOPE = "SELECT set_config('app.tenant_id', $1, true), set_config('role', 'strata_app', true)"
TENANT_SCOPE_INLINE = "SELECT set_config('app.tenant_id', '{tenant}', true), set_config('role', 'strata_app', true)"

_pool: asyncpg.Pool | None = None
_pool_loop: asyncio.AbstractEventLoop | None = None
_lock: asyncio.Lock | None = None


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def get_pool() -> asyncpg.Pool:
    """Return the pool, building it on first use in the current loop (min_size=0: idle costs nothing)."""
    global _pool, _pool_loop, _lock
    loop = asyncio.get_running_loop()
    if _pool is not None and _pool_loop is loop:
        return _pool
    if _lock is None or _pool_loop is not loop:
        _lock = asyncio.Lock()
        _pool, _pool_loop = None, loop
    async with _lock:
        if _pool is None:
            import asyncpg

            settings = get_settings()
            _pool = await asyncpg.create_pool(
                database_url(),
                min_size=0,
                max_size=settings.db_pool_max_size,
                command_timeout=settings.db_command_timeout_s,
                timeout=settings.db_connect_timeout_s,
                init=_init_connection,
                reset=_reset_connection,
            )
        return _pool


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool: only an unfinished transaction rolled back. The platform
    keeps no session state (the tenant scope and role are transaction-local; the migration runner releases its
    advisory lock itself), so asyncpg's default reset (unlock all, CLOSE ALL, UNLISTEN *, RESET ALL) would be a
    round trip per transaction for nothing."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def reset_pool() -> None:
    """Close and forget the pool (tests, and after a database restart)."""
    global _pool, _pool_loop
    pool, _pool, _pool_loop = _pool, None, None
    if pool is not None:
        await pool.close()


@asynccontextmanager
async def transaction(tenant_id: UUID | None = None) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction; with `tenant_id`, row-level security limits it to that tenant's rows
    (the unprivileged `strata_app` role and `app.tenant_id`, both reset when the transaction ends)."""
    pool = await get_pool()
    async with pool.acquire() as conn:
        if tenant_id is None:
            async with conn.transaction():
                yield conn
            return
        # BEGIN and the tenant scope in one round trip (a UUID's text is safe to inline), which every tenant
        # transaction on the platform pays
        await conn.execute(f"BEGIN; {TENANT_SCOPE_INLINE.format(tenant=UUID(str(tenant_id)))}")
        try:
            yield conn
        except BaseException:
            if not conn.is_closed():
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")


async def fetch(query: str, *args: Any, tenant_id: UUID | None = None) -> list[asyncpg.Record]:
    """Run one read query in its own tenant-scoped transaction."""
    async with transaction(tenant_id) as conn:
        rows: list[asyncpg.Record] = await conn.fetch(query, *args)
        return rows


async def ping() -> None:
    """Readiness probe: one round trip to Postgres."""
    pool = await get_pool()
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
