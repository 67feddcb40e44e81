"""Write-behind records (the request log, metered model usage): a request's records go to Redis streams in one
pipelined round trip when it ends, instead of one Postgres commit each on its path; a flush moves them into
Postgres exactly once (consumer group; the writer ignores records already stored; entries are acknowledged only
after the commit). When Redis is unreachable a record is written to Postgres directly, so none goes unrecorded.

A spool's flush runs in an invocation of its own on a schedule (every minute), never on a request's CPU; readers
that must see every record so far (usage summaries, budget rebuilds) flush first."""

from __future__ import annotations

import contextvars
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aws_lambda_powertools import Logger

from strata.cache import get_redis

logger = Logger(child=True)

Record = TypeVar("Record")

FIELD = "r"  # each entry holds its record in one field (cheaper to send and parse than a field per value)
CLAIM_IDLE_MS = 60_000  # entries a crashed flush read but never acknowledged are taken over after this


@dataclass(frozen=True)
class Spool(Generic[Record]):
    """A Redis stream of records and how they reach Postgres. `write` must ignore records already stored (a
    flush that crashed before acknowledging redelivers them) and returns how many were new."""

    name: str
    stream: str
    encode: Callable[[Record], str]
    decode: Callable[[str], Record]
    write: Callable[[list[Record]], Awaitable[int]]
    max_len: int = 2_000_000  # a backstop if flushing stops for long; trimmed approximately
    group: str = "flush"
    batch: int = 2000


@dataclass(frozen=True)
class Write:
    """A Redis write a request leaves for its end, to travel in the same round trip as its records (a budget
    settlement, an answer to cache): `queue` adds the command to a pipeline; `alone` does the write by itself,
    used when there is no batch, or when the pipeline failed or answered an error for this command (`alone` must
    handle its own failures: a deferred write is never raised to the request)."""

    queue: Callable[[Any], Any]
    alone: Callable[[], Awaitable[None]]


@dataclass
class Batch:
    """What one request put on spools, and the writes it deferred; once closed (sent), later ones go on their
    own."""

    items: list[tuple[Spool[Any], Any]] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    closed: bool = False


_batch: contextvars.ContextVar[Batch | None] = contextvars.ContextVar("spool_batch", default=None)


def begin() -> tuple[Batch, contextvars.Token[Batch | None]]:
    """Open the current request's batch (the middleware's hot path: `end` it in a `finally`)."""
    batch = Batch()
    return batch, _batch.set(batch)


async def end(batch: Batch, token: contextvars.Token[Batch | None]) -> None:
    """Close the batch and send what it gathered in one round trip (nothing to send: no round trip)."""
    _batch.reset(token)
    batch.closed = True
    if batch.items or batch.writes:
        await send(batch.items, batch.writes)


@asynccontextmanager
async def request_batch() -> AsyncIterator[Batch]:
    """Gather what a request puts on spools (and the writes it defers) and send it all in one round trip when the
    block ends (still before the response leaves the function). Work the request spawns that outlives the block
    sends its own."""
    batch, token = begin()
    try:
        yield batch
    finally:
        await end(batch, token)


def _open_batch() -> Batch | None:
    batch = _batch.get()
    return batch if batch is not None and not batch.closed else None


async def put(spool: Spool[Record], record: Record) -> None:
    """Queue one record: with the current request's batch, or now when outside one. Never raises."""
    batch = _open_batch()
    if batch is not None:
        batch.items.append((spool, record))
        return
    await send([(spool, record)])


async def defer(write: Write) -> None:
    """Leave `write` for the end of the current request (or do it now when outside one)."""
    batch = _open_batch()
    if batch is not None:
        batch.writes.append(write)
        return
    await write.alone()


async def send(items: list[tuple[Spool[Any], Any]], writes: list[Write] | None = None) -> None:
    """XADD every record and queue every deferred write in one pipeline; records it could not add are written to
    Postgres directly, writes it could not do are done alone. Never raises."""
    writes = writes or []
    if not items and not writes:
        return
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            for spool, record in items:
                pipe.xadd(spool.stream, {FIELD: spool.encode(record)}, maxlen=spool.max_len, approximate=True)
            for write in writes:
                write.queue(pipe)
            results = await pipe.execute(raise_on_error=False)
    except Exception as exc:
        logger.warning("spool streams unavailable; writing directly", extra={"error": str(exc)[:300]})
        await _write_directly(items)
        for write in writes:
            await write.alone()
        return
    unsent = [item for item, result in zip(items, results, strict=False) if isinstance(result, Exception)]
    if unsent:
        await _write_directly(unsent)
    for write, result in zip(writes, results[len(items) :], strict=True):
        if isinstance(result, Exception):  # e.g. NOSCRIPT after a Redis restart: alone, it loads the script
            await write.alone()


async def _write_directly(items: list[tuple[Spool[Any], Any]]) -> None:
    by_spool: dict[str, tuple[Spool[Any], list[Any]]] = {}
    for spool, record in items:
        by_spool.setdefault(spool.name, (spool, []))[1].append(record)
    for spool, records in by_spool.values():
        try:
            await spool.write(records)
        except Exception:
            logger.exception("spooled records lost", extra={"spool": spool.name, "records": len(records)})


def _consumer() -> str:
    """One consumer name per execution environment, so concurrent flushes never read the same entries."""
    return f"{os.environ.get('AWS_LAMBDA_LOG_STREAM_NAME') or os.uname().nodename}:{os.getpid()}"


async def _ensure_group(spool: Spool[Any]) -> None:
    import redis.exceptions

    try:
        await get_redis().xgroup_create(spool.stream, spool.group, id="0", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def flush(
    spool: Spool[Record],
    max_batches: int = 50,
    after_write: Callable[[list[Record]], Awaitable[None]] | None = None,
) -> dict[str, int]:
    """Move queued records into Postgres: first what a crashed flush left pending, then new entries. Entries are
    acknowledged (and deleted) only after `write` (and `after_write`) succeeded."""
    import redis.exceptions

    try:
        return await _flush(spool, max_batches, after_write)
    except redis.exceptions.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
    await _ensure_group(spool)  # the first flush of this stream (or Redis lost it): create the group, go again
    return await _flush(spool, max_batches, after_write)


async def _flush(
    spool: Spool[Record],
    max_batches: int,
    after_write: Callable[[list[Record]], Awaitable[None]] | None,
) -> dict[str, int]:
    redis = get_redis()
    consumer = _consumer()
    moved = seen = 0
    claimed = (await redis.xautoclaim(spool.stream, spool.group, consumer, CLAIM_IDLE_MS, "0-0", count=spool.batch))[1]
    # entries this consumer read but did not acknowledge (a flush of this environment that failed midway)
    own: Any = await redis.xreadgroup(spool.group, consumer, {spool.stream: "0"}, count=spool.batch)
    batches = [b for b in (claimed, own[0][1] if own else []) if b]
    for _ in range(max_batches):
        if not batches:
            answer: Any = await redis.xreadgroup(spool.group, consumer, {spool.stream: ">"}, count=spool.batch)
            if not answer or not answer[0][1]:
                break
            batches.append(answer[0][1])
        entries = batches.pop()
        ids = [entry_id for entry_id, _ in entries]
        records = []
        for entry_id, fields in entries:
            try:
                records.append(spool.decode(fields[FIELD]))
            except (KeyError, ValueError, TypeError):
                logger.error("malformed spool entry dropped", extra={"spool": spool.name, "entry_id": entry_id})
        moved += await spool.write(records)
        if after_write is not None:
            await after_write(records)
        seen += len(entries)
        await redis.xack(spool.stream, spool.group, *ids)
        await redis.xdel(spool.stream, *ids)
    return {"recorded": moved, "read": seen}
