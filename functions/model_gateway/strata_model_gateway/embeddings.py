"""Embeddings through the gateway: the same limits, breaker, budget hold and metering as chat calls."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from strata.auth import Principal
from strata.errors import BadGatewayError, DependencyUnavailableError, InvalidInputError
from strata_model_gateway import budgets, gateway, provider_health, registry
from strata_model_gateway.catalogue import Entry
from strata_model_gateway.providers.base import Message, ProviderError


async def embed(
    principal: Principal,
    entries: list[Entry],
    model: str,
    texts: list[str],
    purpose: str,
    run_id: UUID | None,
    task_id: str | None,
    correlation_id: str,
) -> dict[str, Any]:
    entry = next((e for e in entries if e.name == model), None)
    if entry is None:
        raise InvalidInputError(f"no model named {model!r} in the catalogue", model=model)
    if "embeddings" not in entry.capabilities or not entry.enabled:
        raise InvalidInputError(f"the model {model!r} does not serve embeddings", model=model)
    call = gateway.Call(
        tenant_id=principal.tenant_id,
        tier=principal.tier,
        correlation_id=correlation_id,
        messages=tuple(Message(role="user", content=t) for t in texts),
        model=model,
        purpose=purpose,
        run_id=run_id,
        task_id=task_id,
    )
    tokens = gateway.estimate_tokens(call)
    await gateway.enforce_rate_limits(call, tokens)
    applicable = await budgets.applicable(principal.tenant_id, run_id, task_id)
    reservation = await budgets.reserve(
        principal.tenant_id, applicable, entry.cost_micro_usd(tokens, 0), 120, correlation_id
    )
    cost = 0
    breaker = gateway.breaker_for(entry)
    try:
        if not await breaker.allow():
            raise DependencyUnavailableError(f"the provider {entry.provider!r} is failing; its circuit is open")
        started = time.perf_counter()
        try:
            result = await registry.provider(entry.provider).embed(entry.provider_model, texts)
        except ProviderError as error:
            await breaker.record(error.kind in ("bad_request", "auth"))
            await provider_health.note_failure(entry.provider, error)
            if error.kind in ("bad_request", "auth"):
                raise BadGatewayError(f"the provider refused the request: {error}") from error
            raise DependencyUnavailableError(f"the provider failed: {error}") from error
        await breaker.record(True)
        latency = (time.perf_counter() - started) * 1000
        cost = await gateway.meter(call, entry, result.usage, latency)
    finally:
        await budgets.settle(reservation, cost)
    return {
        "model": entry.name,
        "data": [{"index": i, "embedding": list(v)} for i, v in enumerate(result.vectors)],
        "usage": {"input_tokens": result.usage.input_tokens, "output_tokens": 0, "cached_tokens": 0},
        "cost_micro_usd": cost,
    }
