"""Circuit breakers in a real Redis: closed -> open -> half-open (one probe) -> closed or open again."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from strata import cache
from strata.breaker import Breaker
from strata.config import get_settings


def breaker() -> Breaker:
    return Breaker(f"test-{uuid.uuid4().hex[:8]}", failure_threshold=3, open_for_s=0.2)


async def test_consecutive_failures_open_it_and_a_successful_probe_closes_it(redis_url: str) -> None:
    b = breaker()
    for _ in range(2):
        assert await b.allow()
        assert await b.record(False) == "closed"
    assert await b.record(True) == "closed"  # a success resets the count
    for _ in range(2):
        await b.record(False)
    assert await b.record(False) == "open"
    assert not await b.allow()
    await asyncio.sleep(0.25)
    # half-open: exactly one probe goes through, even when asked concurrently
    answers = await asyncio.gather(*(b.allow() for _ in range(5)))
    assert answers.count(True) == 1
    assert await b.state() == "half_open"
    assert await b.record(True) == "closed"
    assert all(await asyncio.gather(*(b.allow() for _ in range(5))))


async def test_a_failed_probe_opens_it_again(redis_url: str) -> None:
    b = breaker()
    for _ in range(3):
        await b.record(False)
    await asyncio.sleep(0.25)
    assert await b.allow()
    assert await b.record(False) == "open"
    assert not await b.allow()


async def test_state_is_shared_by_every_process_through_redis(redis_url: str) -> None:
    name = f"shared-{uuid.uuid4().hex[:8]}"
    one, other = Breaker(name, failure_threshold=1), Breaker(name, failure_threshold=1)
    await one.record(False)
    assert not await other.allow()


async def test_without_redis_it_admits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    await cache.reset_redis()
    try:
        b = breaker()
        assert await b.allow()
        assert await b.record(False) is None
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        await cache.reset_redis()


async def test_a_state_seen_closed_by_a_pipelined_read_admits_once_without_a_round_trip(redis_url: str) -> None:
    b = breaker()
    for _ in range(3):
        await b.record(False)  # open in Redis
    stale = Breaker(b.name, failure_threshold=3, open_for_s=0.2)
    assert stale.seen("closed", "0")  # what an earlier pipelined read saw
    assert await stale.allow()  # admitted on what was seen
    assert not await stale.allow()  # then it asks Redis, which says open
    assert not Breaker(b.name).seen("open", "3")
