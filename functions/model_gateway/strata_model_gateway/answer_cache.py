"""Answer caches in Redis, per tenant.

Exact: the key is a hash of the normalised request (routing choice, messages, tools, schema, sampling).
Semantic (when an embeddings model is configured): the last user message is embedded; an earlier request with the
same everything-else whose last user message is at least `threshold` cosine-similar gets its answer. A cache
failure is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger

from strata import spool
from strata.cache import NOT_FETCHED, get_redis
from strata_model_gateway.providers.base import ChatResult, ToolCall, Usage

logger = Logger(child=True)
SEMANTIC_ENTRIES = 200  # most recent entries compared per request shape


def request_key(tenant_id: UUID, routing: dict[str, Any], payload: dict[str, Any]) -> str:
    body = json.dumps({"routing": routing, "payload": payload}, sort_keys=True, separators=(",", ":"), default=str)
    return f"strata:answers:{tenant_id}:{hashlib.sha256(body.encode()).hexdigest()}"


def shape_key(tenant_id: UUID, routing: dict[str, Any], payload: dict[str, Any]) -> str:
    """The semantic index of requests identical but for the last user message."""
    rest = {k: v for k, v in payload.items() if k != "last_user"}
    body = json.dumps({"routing": routing, "payload": rest}, sort_keys=True, separators=(",", ":"), default=str)
    return f"strata:answers-semantic:{tenant_id}:{hashlib.sha256(body.encode()).hexdigest()}"


def _encode(model_name: str, result: ChatResult) -> str:
    return json.dumps({"model": model_name, "result": asdict(result)})


def _decode(raw: str) -> tuple[str, ChatResult]:
    data = json.loads(raw)
    result = data["result"]
    return data["model"], ChatResult(
        content=result["content"],
        tool_calls=tuple(ToolCall(**c) for c in result["tool_calls"]),
        finish_reason=result["finish_reason"],
        usage=Usage(**result["usage"]),
        raw_model=result["raw_model"],
    )


async def get(key: str, prefetched: Any = NOT_FETCHED) -> tuple[str, ChatResult] | None:
    """The cached answer under `key` (`prefetched`: the raw value a pipeline already read)."""
    try:
        raw = await get_redis().get(key) if prefetched is NOT_FETCHED else prefetched
        return _decode(str(raw)) if raw else None
    except Exception as exc:
        logger.warning("answer cache read failed", extra={"error": str(exc)[:200]})
        return None


async def put(key: str, model_name: str, result: ChatResult, ttl_s: int) -> None:
    """Cache an answer: with the request's other writes at its end (strata.spool), in the same round trip."""
    value = _encode(model_name, result)

    async def alone() -> None:
        try:
            await get_redis().set(key, value, ex=ttl_s)
        except Exception as exc:
            logger.warning("answer cache write failed", extra={"error": str(exc)[:200]})

    await spool.defer(spool.Write(lambda pipe: pipe.set(key, value, ex=ttl_s), alone))


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


async def nearest(shape: str, vector: list[float], threshold: float) -> str | None:
    """The exact key of the most similar earlier request of this shape, if similar enough."""
    try:
        entries = await get_redis().lrange(shape, 0, SEMANTIC_ENTRIES - 1)
    except Exception as exc:
        logger.warning("semantic cache read failed", extra={"error": str(exc)[:200]})
        return None
    best: tuple[float, str] | None = None
    for raw in entries:
        entry = json.loads(raw)
        score = cosine(vector, entry["vector"])
        if score >= threshold and (best is None or score > best[0]):
            best = (score, entry["key"])
    return best[1] if best else None


async def remember(shape: str, vector: list[float], key: str, ttl_s: int) -> None:
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            pipe.lpush(shape, json.dumps({"vector": vector, "key": key}))
            pipe.ltrim(shape, 0, SEMANTIC_ENTRIES - 1)
            pipe.expire(shape, ttl_s)
            await pipe.execute()
    except Exception as exc:
        logger.warning("semantic cache write failed", extra={"error": str(exc)[:200]})
