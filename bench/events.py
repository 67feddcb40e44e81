"""Event backbone benchmark: the outbox's added cost per write (insert with vs without it, same run), and events
per second from commit to consumer through the local cloud (outbox -> EventBridge emulator -> rule queue -> L01)."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "shared"), str(ROOT / "cli")]


async def outbox_cost(database_url: str, writes: int) -> None:
    """Median and p95 per write: an agent row alone, vs the same row plus its outbox event in one transaction."""
    import asyncpg

    from strata.events.entities import AgentCreated

    conn = await asyncpg.connect(database_url)
    tenant = uuid.uuid4()
    timings: dict[str, list[float]] = {"insert": [], "insert + outbox": []}

    async def write(with_outbox: bool) -> float:
        agent_id = uuid.uuid4()
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO agents (agent_id, tenant_id, name, did) VALUES ($1, $2, $3, $4)",
                agent_id,
                tenant,
                f"bench-{agent_id}",
                f"did:strata:agent:{agent_id}",
            )
            if with_outbox:
                event = AgentCreated(tenant_id=tenant, correlation_id="bench", agent_id=agent_id, name="b", did="d")
                await conn.execute(
                    "INSERT INTO outbox (event_id, tenant_id, source, detail_type, detail) VALUES ($1, $2, $3, $4, $5)",
                    event.event_id,
                    tenant,
                    event.SOURCE,
                    event.DETAIL_TYPE,
                    event.model_dump_json(),
                )
        return (time.perf_counter() - started) * 1000

    for _ in range(50):  # warm-up
        await write(False)
        await write(True)
    for i in range(writes):  # interleaved, so drift hits both alike
        for kind in (
            (("insert", False), ("insert + outbox", True)) if i % 2 else (("insert + outbox", True), ("insert", False))
        ):
            timings[kind[0]].append(await write(kind[1]))
    await conn.close()
    base = statistics.median(timings["insert"])
    print(f"\nOutbox cost per write ({writes} writes each, interleaved, one connection)")
    print(f"{'write':<18} {'median ms':>10} {'p95 ms':>8} {'vs insert':>10}")
    for name, values in timings.items():
        p95 = statistics.quantiles(values, n=20)[18]
        print(f"{name:<18} {statistics.median(values):>10.3f} {p95:>8.3f} {statistics.median(values) / base:>9.2f}x")


async def throughput(events: int) -> None:
    """Commit `events` events through the outbox as fast as possible; measure until L01 has archived them all."""
    import asyncpg

    from strata import db
    from strata.config import get_settings
    from strata.events.entities import AgentDeleted
    from strata.events.outbox import unit_of_work
    from strata_cli.localcloud.cloud import LocalCloud, LocalCloudConfig

    state = Path(tempfile.mkdtemp(prefix="strata-bench-"))
    os.chmod(state, 0o755)
    cloud = LocalCloud(LocalCloudConfig(root=ROOT, state_dir=state, port=0, max_concurrency=4))
    await cloud.start()
    try:
        os.environ.update(
            DATABASE_URL=cloud.services.database_url,
            AWS_ENDPOINT_URL=cloud.services.aws_endpoint_url,
            STRATA_EVENT_BUS_NAME=cloud.resolver.physical["EventBus"],  # type: ignore[union-attr]
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",
            AWS_REGION="us-east-1",
        )
        get_settings.cache_clear()
        await outbox_cost(cloud.services.database_url, 500)
        tenant, correlation = uuid.uuid4(), f"bench-{uuid.uuid4()}"
        started = time.perf_counter()

        async def produce(n: int) -> None:
            async with unit_of_work(tenant) as uow:
                await uow.emit(AgentDeleted(tenant_id=tenant, correlation_id=correlation, agent_id=uuid.uuid4()))

        semaphore = asyncio.Semaphore(8)

        async def bounded(n: int) -> None:
            async with semaphore:
                await produce(n)

        await asyncio.gather(*(bounded(n) for n in range(events)))
        committed = time.perf_counter() - started
        conn = await asyncpg.connect(cloud.services.database_url)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = await conn.fetchval("SELECT count(*) FROM event_log WHERE correlation_id = $1", correlation)
            if done >= events:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        lags = [
            r["lag"]
            for r in await conn.fetch(
                "SELECT extract(epoch FROM archived_at - occurred_at) * 1000 AS lag FROM event_log "
                "WHERE correlation_id = $1",
                correlation,
            )
        ]
        await conn.close()
        await db.reset_pool()
        print(f"\nCommit to consumer through the local cloud ({events} events, 8 concurrent producers)")
        print(
            f"  committed in {committed:.2f} s ({events / committed:.0f}/s); all archived by L01 after "
            f"{elapsed:.2f} s: {done / elapsed:.1f} events/s end to end"
        )
        print(
            f"  commit -> archived latency: p50 {statistics.median(lags):.0f} ms, "
            f"p95 {statistics.quantiles(lags, n=20)[18]:.0f} ms, max {max(lags):.0f} ms"
        )
    finally:
        await cloud.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300, help="events to push through the bus (300)")
    args = parser.parse_args()
    asyncio.run(throughput(args.events))


if __name__ == "__main__":
    main()
