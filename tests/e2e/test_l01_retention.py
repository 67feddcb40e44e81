"""Retention through the local cloud: per-tenant horizons, old events archived to S3, then removed."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem, eventually

pytestmark = pytest.mark.e2e


async def _old_events(platform: Platform, tenant_id: str, ages_days: list[int]) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in ages_days]
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        for event_id, age in zip(ids, ages_days, strict=True):
            await conn.execute(
                "INSERT INTO event_log (event_id, tenant_id, source, detail_type, correlation_id, occurred_at, "
                "detail) VALUES ($1, $2, 'strata.data', 'AgentDeleted', 'retention', $3, '{}')",
                event_id,
                uuid.UUID(tenant_id),
                datetime.now(UTC) - timedelta(days=age),
            )
    finally:
        await conn.close()
    return ids


async def _present(platform: Platform, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        rows = await conn.fetch("SELECT event_id FROM event_log WHERE event_id = ANY($1::uuid[])", ids)
    finally:
        await conn.close()
    return {r["event_id"] for r in rows}


async def test_old_events_are_archived_to_s3_then_removed_per_tenant(platform: Platform) -> None:
    # GIVEN two tenants: one keeps 30 days, the other the default (400 days); both have 60- and 5-day-old events
    short = await platform.new_tenant(f"ret-short-{uuid.uuid4().hex[:8]}")
    default = await platform.new_tenant(f"ret-default-{uuid.uuid4().hex[:8]}")
    headers = platform.auth(short["api_key"])
    assert (await platform.api.get("/v1/retention", headers=headers)).json()["default"] is True
    put = await platform.api.put("/v1/retention", json={"event_log_days": 30, "archive": True}, headers=headers)
    assert (put.status_code, put.json()["event_log_days"], put.json()["default"]) == (200, 30, False)
    ids_short = await _old_events(platform, short["tenant_id"], [60, 60, 5])
    ids_default = await _old_events(platform, default["tenant_id"], [60])

    # WHEN the retention job runs (invoked here; the template's daily schedule also ticks every second in tests,
    # and concurrent runs skip each other's locked rows, so the outcome is awaited, not assumed after one call)
    answer = await platform.invoke("DataFunction", {"schedule": "apply_retention"})
    assert "FunctionError" not in answer, answer["Payload"]

    # THEN the short tenant's old events left the log after being archived; its recent one and the other
    # tenant's (still within 400 days) stayed
    async def settled() -> set[uuid.UUID] | None:
        remaining = await _present(platform, ids_short + ids_default)
        return remaining if remaining == {ids_short[2], ids_default[0]} else None

    await eventually(settled, what="retention to remove the short tenant's old events")
    runs = await platform.api.get("/v1/retention", headers=headers)
    assert runs.json()["event_log_days"] == 30
    s3 = platform.aws("s3")
    bucket = platform.cloud.resource("EventArchiveBucket")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"event-log/{short['tenant_id']}/").get("Contents", [])
    ]
    archived = set()
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        archived |= {json.loads(line)["event_id"] for line in gzip.decompress(body).decode().splitlines()}
    assert {str(i) for i in ids_short[:2]} <= archived


async def test_retention_settings_reject_bad_input(platform: Platform) -> None:
    headers = platform.auth((await platform.new_tenant(f"ret-bad-{uuid.uuid4().hex[:8]}"))["api_key"])

    assert_problem(await platform.api.put("/v1/retention", json={"event_log_days": 1}, headers=headers), 422)
    assert_problem(await platform.api.put("/v1/retention", json={"event_log_days": 30, "x": 1}, headers=headers), 422)
