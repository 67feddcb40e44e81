"""Which models a request may go to, in which order: a pinned model (and its named fallbacks), or every enabled
catalogue entry meeting the requirements, ordered by the strategy (cheapest, fastest by measured p50, or
quality). Measured latencies live in Redis, shared by every execution environment."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from strata import background
from strata.cache import get_redis
from strata.errors import InvalidInputError
from strata_model_gateway import registry
from strata_model_gateway.catalogue import LATENCY_ORDER, Capability, Entry, LatencyClass

logger = Logger(child=True)

Strategy = Literal["cheapest", "fastest", "quality", "pinned"]
LATENCY_SAMPLES = 100
_p50_cache: dict[str, tuple[float, float | None]] = {}
P50_CACHE_S = 30.0


class Requirements(BaseModel):
    """What the model must offer when the request names none."""

    model_config = ConfigDict(extra="forbid")
    capabilities: list[Capability] = Field(default_factory=list, max_length=6)
    min_context: int = Field(default=0, ge=0, le=10_000_000)
    latency_class: LatencyClass | None = Field(default=None, description="This class or faster")
    max_cost_micro_usd: int | None = Field(default=None, ge=0, description="Most one call may cost (estimated)")
    min_quality: float = Field(default=0, ge=0, le=1)


def _key(entry: Entry) -> str:
    return f"strata:model-latency:{entry.provider}:{entry.provider_model}"


LATENCY_FLUSH_S = 1.0  # samples are gathered this long in the environment, then written in one round trip
_unsent: dict[str, list[float]] = {}


def note_latency(entry: Entry, latency_ms: float) -> None:
    """Count a successful call's latency: kept with the environment's other samples, written within
    LATENCY_FLUSH_S (best-effort statistics: a frozen environment may lose its last second)."""
    if not _unsent:
        background.spawn(_write_latencies())
    _unsent.setdefault(_key(entry), []).append(round(latency_ms, 2))


async def _write_latencies() -> None:
    """Keep the last LATENCY_SAMPLES successful call latencies of each model."""
    await asyncio.sleep(LATENCY_FLUSH_S)
    samples = dict(_unsent)
    _unsent.clear()
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            for key, values in samples.items():
                pipe.lpush(key, *values)
                pipe.ltrim(key, 0, LATENCY_SAMPLES - 1)
            await pipe.execute()
    except Exception as exc:  # statistics are best effort
        logger.warning("latency not recorded", extra={"error": str(exc)[:200]})


async def p50_ms(entry: Entry) -> float | None:
    """The model's measured median latency (cached per environment for 30 s); None before any call."""
    cached = _p50_cache.get(_key(entry))
    if cached and time.monotonic() - cached[0] < P50_CACHE_S:
        return cached[1]
    try:
        samples = [float(v) for v in await get_redis().lrange(_key(entry), 0, LATENCY_SAMPLES - 1)]
    except Exception:
        samples = []
    value = statistics.median(samples) if samples else None
    _p50_cache[_key(entry)] = (time.monotonic(), value)
    return value


def estimate_cost(entry: Entry, input_tokens: int, max_output_tokens: int) -> int:
    return entry.cost_micro_usd(input_tokens, max_output_tokens)


async def candidates(
    catalogue: list[Entry],
    *,
    model: str | None,
    fallbacks: list[str],
    requirements: Requirements,
    strategy: Strategy,
    needed: set[str],
    input_tokens: int,
    max_output_tokens: int,
    limit: int,
) -> list[Entry]:
    """The models to try, in order (at most `limit`). `needed` holds capabilities the request itself implies
    (tools, json, streaming, embeddings). 422 when nothing fits, saying why."""
    by_name = {e.name: e for e in catalogue}
    configured = registry.configured()
    if model is not None or strategy == "pinned":
        if model is None:
            raise InvalidInputError("the pinned strategy needs a model")
        order = []
        for name in [model, *fallbacks]:
            entry = by_name.get(name)
            if entry is None:
                raise InvalidInputError(f"no model named {name!r} in the catalogue", model=name)
            order.append(entry)
        usable = [e for e in order if e.enabled and e.provider in configured and needed <= set(e.capabilities)]
        if not usable:
            missing = sorted(needed - set(order[0].capabilities))
            why = f"lacks {', '.join(missing)}" if missing else "is disabled or its provider is not configured"
            raise InvalidInputError(f"the model {model!r} {why}", model=model)
        return usable[:limit]

    wanted = needed | set(requirements.capabilities)
    fits = [
        e
        for e in catalogue
        if e.enabled
        and e.provider in configured
        and wanted <= set(e.capabilities)
        and e.context_window >= max(requirements.min_context, input_tokens + 1)
        and (
            requirements.latency_class is None
            or LATENCY_ORDER[e.latency_class] <= LATENCY_ORDER[requirements.latency_class]
        )
        and e.quality >= requirements.min_quality
        and (
            requirements.max_cost_micro_usd is None
            or estimate_cost(e, input_tokens, max_output_tokens) <= requirements.max_cost_micro_usd
        )
    ]
    if not fits:
        raise InvalidInputError(
            "no enabled model in the catalogue meets the requirements",
            requirements={**requirements.model_dump(), "capabilities": sorted(wanted)},
        )
    if strategy == "cheapest":
        fits.sort(key=lambda e: (estimate_cost(e, input_tokens, max_output_tokens), -e.quality, e.name))
    elif strategy == "quality":
        fits.sort(key=lambda e: (-e.quality, estimate_cost(e, input_tokens, max_output_tokens), e.name))
    else:  # fastest: measured p50 first; never-measured models by their declared class after measured ones
        measured = {e.name: await p50_ms(e) for e in fits}
        fits.sort(
            key=lambda e: (
                measured[e.name] is None,
                measured[e.name] if measured[e.name] is not None else LATENCY_ORDER[e.latency_class],
                e.name,
            )
        )
    for name in fallbacks:  # explicitly named fallbacks go after the routed ones
        entry = by_name.get(name)
        if entry is not None and entry not in fits and entry.enabled and entry.provider in configured:
            fits.append(entry)
    return fits[:limit]
