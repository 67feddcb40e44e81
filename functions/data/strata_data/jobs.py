"""L01's scheduled jobs and operator commands."""

from __future__ import annotations

from typing import Any

from strata import db
from strata.events.outbox import sweep_outbox as sweep
from strata.migrations import apply_migrations


async def sweep_outbox() -> dict[str, int]:
    """Republish events whose publish after commit did not happen."""
    return {"published": await sweep()}


async def migrate(args: dict[str, Any]) -> dict[str, list[str]]:
    """Apply pending schema migrations (run at deploy, and by `strata migrate`)."""
    pool = await db.get_pool()
    async with pool.acquire() as conn:
        return {"applied": await apply_migrations(conn)}
