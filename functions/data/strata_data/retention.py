"""Event-log retention: per-tenant horizons; old events are archived to S3 (gzip JSON lines), then removed."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger
from pydantic import Field

from strata import aws, db
from strata.config import Settings

logger = Logger(child=True)
BATCH = 5000  # events per archive object and per delete


class RetentionSettings(Settings):
    archive_bucket: str = ""
    event_log_retention_days: int = Field(default=400, ge=7, le=3650)


def settings() -> RetentionSettings:
    return RetentionSettings()


async def get_settings_for(tenant_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(
        "SELECT event_log_days, archive, version, updated_at FROM retention_settings WHERE tenant_id = $1",
        tenant_id,
        tenant_id=tenant_id,
    )
    if rows:
        return {**dict(rows[0]), "default": False}
    return {
        "event_log_days": settings().event_log_retention_days,
        "archive": True,
        "version": 0,
        "updated_at": None,
        "default": True,
    }


async def put_settings(tenant_id: UUID, days: int, archive: bool) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow(
            """INSERT INTO retention_settings (tenant_id, event_log_days, archive) VALUES ($1, $2, $3)
               ON CONFLICT (tenant_id) DO UPDATE SET event_log_days = $2, archive = $3,
                   version = retention_settings.version + 1, updated_at = now()
               RETURNING event_log_days, archive, version, updated_at""",
            tenant_id,
            days,
            archive,
        )
    assert row is not None
    return {**dict(row), "default": False}


def _archive_key(tenant_id: UUID, first: datetime, run_id: UUID, part: int) -> str:
    return f"event-log/{tenant_id}/{first:%Y/%m}/{run_id}-{part:04d}.jsonl.gz"


def _put_archive(bucket: str, key: str, rows: list[dict[str, Any]]) -> None:
    body = gzip.compress("".join(json.dumps(row, default=str) + "\n" for row in rows).encode())
    aws.client("s3").put_object(
        Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson", ContentEncoding="gzip"
    )


async def _prune_tenant(tenant_id: UUID, days: int, archive: bool, bucket: str) -> dict[str, Any]:
    cutoff = datetime.now(UTC) - timedelta(days=days)
    run_id, keys, archived, deleted, part = uuid4(), [], 0, 0, 0
    pool = await db.get_pool()
    while True:
        async with pool.acquire() as conn, conn.transaction():  # the owner: event_log is append-only for the app
            rows = [
                dict(r)
                for r in await conn.fetch(
                    """SELECT event_id, tenant_id, source, detail_type, correlation_id, causation_id, aggregate_type,
                          aggregate_id, occurred_at, archived_at, detail
                   FROM event_log WHERE tenant_id = $1 AND occurred_at < $2
                   ORDER BY occurred_at, event_id LIMIT $3 FOR UPDATE SKIP LOCKED""",
                    tenant_id,
                    cutoff,
                    BATCH,
                )
            ]
            if not rows:
                break
            if archive:  # archived before it is removed: a failed upload leaves the events where they were
                part += 1
                key = _archive_key(tenant_id, rows[0]["occurred_at"], run_id, part)
                await asyncio.to_thread(_put_archive, bucket, key, rows)
                keys.append(key)
                archived += len(rows)
            status: str = await conn.execute(
                "DELETE FROM event_log WHERE tenant_id = $1 AND (occurred_at, event_id) IN "
                "(SELECT * FROM unnest($2::timestamptz[], $3::uuid[]))",
                tenant_id,
                [r["occurred_at"] for r in rows],
                [r["event_id"] for r in rows],
            )
            deleted += int(status.split()[-1])
        if len(rows) < BATCH:
            break
    if deleted:
        async with db.transaction(tenant_id) as conn:
            await conn.execute(
                "INSERT INTO retention_runs (retention_run_id, tenant_id, cutoff, archived_rows, deleted_rows, "
                "archive_keys) VALUES ($1, $2, $3, $4, $5, $6)",
                run_id,
                tenant_id,
                cutoff,
                archived,
                deleted,
                keys,
            )
    return {"tenant_id": str(tenant_id), "archived": archived, "deleted": deleted}


async def apply_retention() -> dict[str, Any]:
    """For every tenant with events past its horizon: archive them (unless the tenant opted out), then delete."""
    config = settings()
    pool = await db.get_pool()
    horizon = min(7, config.event_log_retention_days)
    tenants = await pool.fetch(
        """SELECT DISTINCT e.tenant_id, coalesce(r.event_log_days, $1) AS days, coalesce(r.archive, true) AS archive
           FROM event_log e LEFT JOIN retention_settings r ON r.tenant_id = e.tenant_id
           WHERE e.occurred_at < now() - make_interval(days => $2)""",
        config.event_log_retention_days,
        horizon,
    )
    results = []
    for tenant in tenants:
        if tenant["archive"] and not config.archive_bucket:
            logger.error("no archive bucket configured; events kept", extra={"tenant_id": str(tenant["tenant_id"])})
            continue
        results.append(
            await _prune_tenant(tenant["tenant_id"], tenant["days"], tenant["archive"], config.archive_bucket)
        )
    return {"tenants": results}


async def erase_tenant_archive(tenant_id: UUID) -> dict[str, int]:
    """The tenant's archived events in S3, erased with the tenant (strata.tenant_data's hook for L01)."""
    bucket = settings().archive_bucket
    if not bucket:
        return {}
    return {"s3:event-archive": await asyncio.to_thread(aws.delete_prefix, bucket, f"event-log/{tenant_id}/")}
