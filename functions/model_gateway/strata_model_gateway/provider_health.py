"""How each provider endpoint is doing, for the platform status (L11): its breaker and its latest failure.

Nothing here calls a provider: the breaker (in Redis, shared by every execution environment) already sums up
the real calls, and a failure's note costs one Redis write on a path that has failed anyway. A successful call
writes nothing, so the gateway's hot path pays nothing for this.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from strata.breaker import Breaker
from strata.cache import get_redis
from strata_model_gateway import registry
from strata_model_gateway.providers.base import ProviderError
from strata_model_gateway.settings import settings

logger = Logger(child=True)

FAILURE_TTL_S = 86_400  # a failure older than a day says nothing about the provider now
MAX_MESSAGE = 300


def failure_key(provider: str) -> str:
    return f"strata:provider-failure:{provider}"


def breaker_key(provider: str) -> str:
    return Breaker(f"provider:{provider}").key


async def note_failure(provider: str, error: ProviderError) -> None:
    """Remember the provider's latest failure (a malformed request is the caller's, not the provider's). Redis
    being down costs the note only."""
    if error.kind == "bad_request":
        return
    failure: dict[Any, Any] = {
        "kind": error.kind,
        "message": str(error)[:MAX_MESSAGE],
        "status": "" if error.status is None else str(error.status),
        "at": datetime.now(UTC).isoformat(),
    }
    key = failure_key(provider)
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=failure)
            pipe.expire(key, FAILURE_TTL_S)
            await pipe.execute()
    except Exception as exc:  # the status page loses a detail; the call's own error is what matters
        logger.warning("provider failure not noted", extra={"provider": provider, "error": str(exc)[:200]})


def breaker_state(state: str | None, changed_ms: str | None, now_ms: int, open_for_s: float) -> str:
    """The state a call would find: an open breaker whose pause is over lets the next call through as a probe."""
    if state == "open":
        return "half_open" if now_ms - int(changed_ms or 0) >= open_for_s * 1000 else "open"
    return "half_open" if state == "half_open" else "closed"


def _failure(raw: dict[str, str] | None) -> dict[str, Any] | None:
    if not raw or "kind" not in raw:
        return None
    status = raw.get("status") or ""
    return {
        "kind": raw["kind"],
        "message": raw.get("message", ""),
        "status": int(status) if status.isdigit() else None,
        "at": raw.get("at"),
    }


def _changed_at(changed_ms: str | None) -> str | None:
    if not changed_ms or not changed_ms.isdigit() or changed_ms == "0":
        return None
    return datetime.fromtimestamp(int(changed_ms) / 1000, UTC).isoformat()


async def provider_health() -> list[dict[str, Any]]:
    """Every provider endpoint of this deployment (the embedded model included when installed), by name: its kind,
    its breaker's state and consecutive failures, and its latest failure; read in one Redis round trip. With Redis
    down the breaker reads `unknown` (and the gateway admits calls meanwhile, see strata.breaker)."""
    configured = registry.configured()
    names = sorted(configured)
    results: list[Any] | None = None
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(breaker_key(name), ["state", "failures", "changed"])
                pipe.hgetall(failure_key(name))
            results = await pipe.execute()
    except Exception as exc:
        logger.warning("provider breakers unreadable", extra={"error": str(exc)[:200]})
    now_ms, open_for_s = int(time.time() * 1000), settings().breaker_open_s
    rows = []
    for index, name in enumerate(names):
        row: dict[str, Any] = {"name": name, "kind": configured[name].kind}
        if results is None:
            row.update(breaker="unknown", consecutive_failures=None, breaker_changed_at=None, last_failure=None)
        else:
            state, failures, changed = results[2 * index]
            row.update(
                breaker=breaker_state(state, changed, now_ms, open_for_s),
                consecutive_failures=int(failures or 0),
                breaker_changed_at=_changed_at(changed),
                last_failure=_failure(results[2 * index + 1]),
            )
        rows.append(row)
    return rows
