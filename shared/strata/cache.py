"""The lazy Redis client, bound to the loop it was created in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from strata.config import redis_url

if TYPE_CHECKING:  # redis is imported on first use, keeping it out of the cold start
    import redis.asyncio as aioredis

logger = Logger(child=True)

_client: aioredis.Redis | None = None
_client_loop: asyncio.AbstractEventLoop | None = None


def get_redis() -> aioredis.Redis:
    """Return the Redis client for the running loop (connections open on first command)."""
    global _client, _client_loop
    loop = asyncio.get_running_loop()
    if _client is None or _client_loop is not loop:
        import redis.asyncio as aioredis

        _client = aioredis.from_url(redis_url(), socket_timeout=2.0, socket_connect_timeout=2.0, decode_responses=True)
        _client_loop = loop
    return _client


async def reset_redis() -> None:
    """Close and forget the client (tests)."""
    global _client, _client_loop
    client, _client, _client_loop = _client, None, None
    if client is not None:
        await client.aclose()


async def ping() -> None:
    """Readiness probe: PING."""
    await get_redis().ping()


_script_shas: dict[str, str] = {}


async def run_script(source: str, keys: list[str], args: list[Any]) -> Any:
    """Run a Lua script by its SHA (loaded once per process; loaded again if the server forgot it)."""
    redis = get_redis()
    sha = _script_shas.get(source)
    if sha is None:
        sha = _script_shas[source] = await redis.script_load(source)
    try:
        return await redis.evalsha(sha, len(keys), *keys, *args)
    except Exception as exc:  # a restarted server has an empty script cache
        if "NOSCRIPT" not in str(exc):
            raise
        sha = _script_shas[source] = await redis.script_load(source)
        return await redis.evalsha(sha, len(keys), *keys, *args)


NOT_FETCHED: Any = object()  # read_through's `prefetched` default: go to Redis


async def script_sha(source: str) -> str:
    """The SHA of a Lua script, loaded once per process (for pipelines that EVALSHA it with other commands)."""
    sha = _script_shas.get(source)
    if sha is None:
        sha = _script_shas[source] = await get_redis().script_load(source)
    return sha


async def read_through(
    key: str, load: Callable[[], Awaitable[Any]], ttl_s: int = 300, *, prefetched: Any = NOT_FETCHED
) -> Any:
    """The JSON value cached under `key`, else `load()` cached for `ttl_s`. Redis being down costs a cache miss,
    never a failed request. `prefetched`: the raw value a pipeline already read for `key` (None: absent)."""
    try:
        cached = await get_redis().get(key) if prefetched is NOT_FETCHED else prefetched
        if cached is not None:
            return json.loads(cached)
    except Exception as exc:  # a cache is an optimisation: fall through to the source of truth
        logger.warning("cache read failed", extra={"key": key, "error": str(exc)})
    value = await load()
    if value is not None:
        try:
            await get_redis().set(key, json.dumps(value, default=str), ex=ttl_s)
        except Exception as exc:
            logger.warning("cache write failed", extra={"key": key, "error": str(exc)})
    return value


async def invalidate(*keys: str) -> None:
    """Forget cached values after a write (committed first, so a reader cannot re-cache the old value for long)."""
    try:
        await get_redis().delete(*keys)
    except Exception as exc:  # the TTL bounds how long a stale entry can live
        logger.warning("cache invalidation failed", extra={"keys": list(keys), "error": str(exc)})
