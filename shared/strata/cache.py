"""The lazy Redis client, bound to the loop it was created in."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from strata.config import get_settings

if TYPE_CHECKING:  # redis is imported on first use, keeping it out of the cold start
    import redis.asyncio as aioredis

_client: aioredis.Redis | None = None
_client_loop: asyncio.AbstractEventLoop | None = None


def get_redis() -> aioredis.Redis:
    """Return the Redis client for the running loop (connections open on first command)."""
    global _client, _client_loop
    loop = asyncio.get_running_loop()
    if _client is None or _client_loop is not loop:
        import redis.asyncio as aioredis

        settings = get_settings()
        _client = aioredis.from_url(
            settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0, decode_responses=True
        )
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
