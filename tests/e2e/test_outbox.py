"""The outbox through the local cloud: a producer killed between commit and publish loses nothing, and the
sweeper delivers its event exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import Platform
from tests.e2e.test_platform import eventually

pytestmark = pytest.mark.e2e

PRODUCER = textwrap.dedent(
    """
    import asyncio, os, sys, uuid
    from strata.events import outbox
    from strata.events.entities import AgentDeleted

    async def die_before_publishing(*args, **kwargs):
        os._exit(9)  # the process is killed after the commit, before the publish

    async def main():
        outbox.publish_events = die_before_publishing
        tenant = uuid.UUID(sys.argv[1])
        async with outbox.unit_of_work(tenant) as uow:
            await uow.emit(AgentDeleted(tenant_id=tenant, correlation_id=sys.argv[2], agent_id=uuid.uuid4()))

    asyncio.run(main())
    """
)


async def test_a_producer_killed_between_commit_and_publish_is_delivered_once(platform: Platform) -> None:
    # GIVEN a producer process that commits an event to the outbox and dies before publishing it
    correlation = f"killed-{uuid.uuid4()}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "shared"),
        "DATABASE_URL": platform.cloud.services.database_url,
        "STRATA_EVENT_BUS_NAME": platform.cloud.resource("EventBus"),
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", PRODUCER, platform.tenant_id, correlation],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 9, result.stderr
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT event_id, published_at FROM outbox WHERE detail->>'correlation_id' = $1", correlation
        )
        assert row is not None
        assert row["published_at"] is None  # committed, never published

        # WHEN the scheduled sweeper runs (every second here), and then is invoked once more by hand
        async def archived() -> int | None:
            count: int = await conn.fetchval("SELECT count(*) FROM event_log WHERE correlation_id = $1", correlation)
            return count or None

        await eventually(archived, what="the swept event in the event log")
        again = await platform.invoke("DataFunction", {"schedule": "sweep_outbox"})
        await asyncio.sleep(1.0)  # time for a second delivery, if the sweeper wrongly made one

        # THEN the event reached its consumer exactly once, and the outbox row is marked sent
        assert "FunctionError" not in again
        assert await conn.fetchval("SELECT count(*) FROM event_log WHERE correlation_id = $1", correlation) == 1
        assert await conn.fetchval("SELECT published_at FROM outbox WHERE event_id = $1", row["event_id"]) is not None
    finally:
        await conn.close()


async def test_every_event_type_delivered_twice_changes_nothing_the_second_time(platform: Platform) -> None:
    # GIVEN one fresh event of every registered type, for this tenant
    correlation = f"twice-{uuid.uuid4()}"
    now = datetime.now(UTC).isoformat()
    samples = sorted((ROOT / "events" / "eventbridge").glob("*.json"))
    events = []
    for path in samples:
        event = json.loads(path.read_text())
        event["detail"].update(
            event_id=str(uuid.uuid4()), tenant_id=platform.tenant_id, correlation_id=correlation, occurred_at=now
        )  # recent: older samples would fall to the retention job
        events.append(event)

    # WHEN L01's archive receives each of them twice (at-least-once delivery), in queue batches of up to ten
    assert platform.cloud.resolver is not None
    queue_arn = platform.cloud.resolver.arns["EventArchiveQueue"]
    twice = events + events
    for start in range(0, len(twice), 10):
        records = [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "local",
                "body": json.dumps(event),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for event in twice[start : start + 10]
        ]
        result = await platform.invoke("DataFunction", {"Records": records})
        assert "FunctionError" not in result, result["Payload"]
        assert result["Payload"] == {"batchItemFailures": []}, result["Payload"]

    # THEN each is archived exactly once
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        rows = await conn.fetch(
            "SELECT detail_type, count(*) AS n FROM event_log WHERE correlation_id = $1 GROUP BY detail_type",
            correlation,
        )
    finally:
        await conn.close()
    assert {r["detail_type"]: r["n"] for r in rows} == {path.stem: 1 for path in samples}
