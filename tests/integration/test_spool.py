"""strata.spool against a real Redis: a request's records leave in one round trip at its end, a flush moves each
exactly once (redelivery after a failed write included), and an unreachable Redis writes them directly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from strata import cache, spool


@dataclass
class Store:
    """The Postgres side of a spool: records by id, ignoring ids already stored (as every spool's write must)."""

    rows: dict[str, str] = field(default_factory=dict)
    writes: int = 0
    fail_next: bool = False

    async def write(self, records: list[str]) -> int:
        self.writes += 1
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the database went away mid-flush")
        new = [r for r in records if r not in self.rows]
        self.rows.update((r, r) for r in new)
        return len(new)


def make_spool(store: Store, name: str = "test") -> spool.Spool[str]:
    return spool.Spool(name=name, stream=f"strata:test-spool:{name}", encode=str, decode=str, write=store.write)


@pytest.fixture
async def redis(redis_url: str) -> None:
    await cache.get_redis().flushdb()


async def _stream_length(s: spool.Spool[str]) -> int:
    return int(await cache.get_redis().xlen(s.stream))


async def test_a_requests_records_are_sent_together_when_it_ends(redis: None) -> None:
    store = Store()
    s = make_spool(store)
    async with spool.request_batch() as batch:
        await spool.put(s, "a")
        await spool.put(s, "b")
        assert await _stream_length(s) == 0  # nothing left yet
        assert len(batch.items) == 2
    assert await _stream_length(s) == 2
    await spool.put(s, "late")  # after the batch: sent on its own
    assert await _stream_length(s) == 3
    assert await spool.flush(s) == {"recorded": 3, "read": 3}
    assert set(store.rows) == {"a", "b", "late"}
    assert await _stream_length(s) == 0  # acknowledged entries are deleted


async def test_work_spawned_by_a_request_that_outlives_it_still_lands(redis: None) -> None:
    store = Store()
    s = make_spool(store)
    started = asyncio.Event()

    async def slow() -> None:
        await started.wait()
        await spool.put(s, "after")

    async with spool.request_batch():
        task = asyncio.create_task(slow())  # copies the request's context, batch included
    started.set()
    await task
    await spool.flush(s)
    assert set(store.rows) == {"after"}


async def test_a_redelivered_record_is_stored_once(redis: None) -> None:
    store = Store()
    s = make_spool(store)
    await spool.put(s, "x")
    await spool.flush(s)
    await cache.get_redis().xadd(s.stream, {spool.FIELD: "x"})  # as a flush that crashed before acknowledging
    assert await spool.flush(s) == {"recorded": 0, "read": 1}
    assert list(store.rows) == ["x"]


async def test_a_flush_that_fails_leaves_its_records_for_the_next(redis: None) -> None:
    store = Store(fail_next=True)
    s = make_spool(store)
    for record in ("1", "2"):
        await spool.put(s, record)
    with pytest.raises(RuntimeError):
        await spool.flush(s)
    assert await _stream_length(s) == 2  # read but not acknowledged
    assert await spool.flush(s) == {"recorded": 2, "read": 2}
    assert set(store.rows) == {"1", "2"}


async def test_a_malformed_entry_is_dropped_not_retried_forever(redis: None) -> None:
    store = Store()
    s = make_spool(store)
    await cache.get_redis().xadd(s.stream, {"other": "field"})
    await spool.put(s, "good")
    assert await spool.flush(s) == {"recorded": 1, "read": 2}
    assert await _stream_length(s) == 0


async def test_records_are_written_directly_when_redis_is_unreachable(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store()
    s = make_spool(store)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    from strata.config import get_settings

    get_settings.cache_clear()
    await cache.reset_redis()
    async with spool.request_batch():
        await spool.put(s, "kept")
    assert store.rows == {"kept": "kept"}


async def test_deferred_writes_ride_the_requests_round_trip_and_fall_back_alone(redis: None) -> None:
    store = Store()
    s = make_spool(store)
    client = cache.get_redis()
    alone: list[str] = []

    def write(name: str, queue: Callable[[Any], Any]) -> spool.Write:
        async def by_itself() -> None:
            alone.append(name)
            await client.set(name, "alone")

        return spool.Write(queue, by_itself)

    async with spool.request_batch():
        await spool.put(s, "r")
        await spool.defer(write("ok", lambda pipe: pipe.set("ok", "pipelined")))
        # a script Redis does not know (as after a restart): the pipeline answers NOSCRIPT, so it is done alone
        await spool.defer(write("noscript", lambda pipe: pipe.evalsha("0" * 40, 0)))
        assert await client.get("ok") is None  # nothing sent before the request ends
    assert await client.get("ok") == "pipelined"
    assert alone == ["noscript"]
    assert await _stream_length(s) == 1
    await spool.defer(write("outside", lambda pipe: pipe.set("outside", "pipelined")))  # no batch: alone, now
    assert await client.get("outside") == "alone"
