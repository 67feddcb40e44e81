"""L01's scheduled jobs and operator commands."""

from __future__ import annotations

from typing import Any

from strata import db
from strata.events.outbox import sweep_outbox as sweep
from strata.migrations import apply_migrations
from strata_data import sessions


async def sweep_outbox() -> dict[str, int]:
    """Republish events whose publish after commit did not happen."""
    return {"published": await sweep()}


async def expire_sessions() -> dict[str, int]:
    """End the sessions whose expiry has passed (SessionEnded, reason expired), for every tenant."""
    return {"expired": await sessions.expire()}


async def maintain_event_log() -> dict[str, int]:
    """Create the event log's monthly partitions ahead of time (and move early arrivals out of the default)."""
    pool = await db.get_pool()
    created: int = await pool.fetchval("SELECT strata_ensure_event_log_partitions(2)")
    return {"partitions_created": created}


async def migrate(args: dict[str, Any]) -> dict[str, list[str]]:
    """Apply pending schema migrations (run at deploy, and by `strata migrate`)."""
    pool = await db.get_pool()
    async with pool.acquire() as conn:
        return {"applied": await apply_migrations(conn)}
