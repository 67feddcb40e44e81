"""One model call, end to end: rate limits, caches, routing, budget reservation, each candidate model behind its
circuit breaker with retries and jittered backoff, structured-output checks with one repair, metering, settling.

Streaming follows the same path; when a stream fails after it has begun, the caller is told (a `fallback`
event: discard what arrived) and the next model streams from the start.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger

from strata import cache, jsonschemas, ratelimit
from strata.breaker import Breaker
from strata.cache import get_redis, run_script
from strata.errors import BadGatewayError, DependencyUnavailableError, InvalidInputError, TooManyRequestsError
from strata_model_gateway import (
    answer_cache,
    budgets,
    catalogue,
    metering,
    provider_health,
    registry,
    routing,
    structured,
)
from strata_model_gateway.catalogue import Entry
from strata_model_gateway.providers.base import ChatRequest, ChatResult, Message, ProviderError, Tool, Usage
from strata_model_gateway.settings import limits_for, settings

logger = Logger(child=True)


@dataclass(frozen=True)
class Call:
    """A caller's request to the gateway."""

    tenant_id: UUID
    tier: str
    correlation_id: str
    messages: tuple[Message, ...]
    model: str | None = None
    requirements: routing.Requirements = field(default_factory=routing.Requirements)
    strategy: routing.Strategy = "cheapest"
    fallbacks: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    json_schema: dict[str, Any] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    cache: bool = True
    purpose: str = ""
    run_id: UUID | None = None
    task_id: str | None = None


@dataclass
class Attempt:
    model: str
    provider: str
    outcome: str  # ok | breaker_open | <ProviderError kind> | invalid_output
    detail: str = ""
    latency_ms: float = 0.0
    cost_micro_usd: int = 0  # what this attempt's answers cost (an invalid answer is still billed)


@dataclass
class Answer:
    entry: Entry
    result: ChatResult
    usage: Usage
    cost_micro_usd: int
    latency_ms: float
    cache: str  # hit | semantic_hit | miss | off
    attempts: list[Attempt]


def estimate_tokens(call: Call) -> int:
    """A deliberately generous prompt-size estimate (3 characters a token) for budgets and limits."""
    chars = sum(len(m.content) + 16 for m in call.messages)
    chars += sum(len(t.name) + len(t.description) + len(json.dumps(t.parameters)) for t in call.tools)
    chars += len(json.dumps(call.json_schema)) if call.json_schema else 0
    return chars // 3 + 8


def needed_capabilities(call: Call, stream: bool) -> set[str]:
    needed = {"chat"}
    if call.tools:
        needed.add("tools")
    if call.json_schema is not None:
        needed.add("json")
    if stream:
        needed.add("streaming")
    return needed


def _limit_buckets(call: Call, tokens: int) -> list[ratelimit.Bucket]:
    limits = limits_for(call.tier)
    tenant = str(call.tenant_id)
    return [
        ratelimit.Bucket(f"strata:llm-rpm:{tenant}", limits.rpm / 60, limits.rpm, 1),
        ratelimit.Bucket(f"strata:llm-tpm:{tenant}", limits.tpm / 60, limits.tpm, min(tokens, limits.tpm)),
    ]


Charged = tuple[ratelimit.DeferredCharge | None, list[ratelimit.Bucket]]  # the request's own charge; every bucket


def _charged_buckets(call: Call, tokens: int) -> Charged:
    """The buckets a call's one script charges: the request's own (when the middleware deferred them to this
    route), then the tenant's model requests and tokens per minute (its tier's); all or nothing."""
    request = ratelimit.deferred()
    return request, (request.buckets if request is not None else []) + _limit_buckets(call, tokens)


async def enforce_rate_limits(
    call: Call, tokens: int, prefetched: Any = cache.NOT_FETCHED, charged: Charged | None = None
) -> None:
    """The request's own limits (when deferred here) and the tenant's model limits, charged in one Redis script
    (`prefetched`: its answer, already fetched with the call's other reads, for the buckets `charged` names)."""
    request, buckets = charged if charged is not None else _charged_buckets(call, tokens)
    own = len(request.buckets) if request is not None else 0
    try:
        if prefetched is cache.NOT_FETCHED:
            prefetched = await run_script(ratelimit.TOKEN_BUCKETS, *ratelimit.script_arguments(buckets))
    except Exception as exc:
        if request is not None:  # its own policy: fail open, or refuse with 503
            request.decide(await ratelimit.charge_or_policy(request.buckets))
        logger.warning("model rate limits unavailable", extra={"error": str(exc)[:200]})
        return  # the request limits decided how to treat a Redis outage; model limits then admit
    if request is not None:
        request.decide(ratelimit.decision(prefetched, buckets, slice(0, own)))  # raises 429 when those refused
    decision = ratelimit.decision(prefetched, buckets, slice(own, None))
    if not decision.allowed:
        unit = "requests" if decision.denied_by == 0 else "tokens"
        raise TooManyRequestsError(
            f"the tenant is over its model {unit}-per-minute limit", headers=decision.headers(), limit=unit
        )


@dataclass
class Prefetched:
    """What a call reads from Redis before anything else, fetched in one pipelined round trip (NOT_FETCHED:
    the piece reads for itself, e.g. after the pipeline failed)."""

    limits: Any = cache.NOT_FETCHED
    catalogue: Any = cache.NOT_FETCHED
    budgets: Any = cache.NOT_FETCHED
    answer: Any = cache.NOT_FETCHED
    breakers: dict[str, Any] = field(default_factory=dict)  # provider -> [state, failures]


async def _prefetch(call: Call, buckets: list[ratelimit.Bucket], answer_key: str | None) -> Prefetched:
    try:
        sha = await cache.script_sha(ratelimit.TOKEN_BUCKETS)
        keys, args = ratelimit.script_arguments(buckets)
        cached = [catalogue.cache_key(call.tenant_id), budgets.tenant_budgets_key(call.tenant_id)]
        cached += [answer_key] if answer_key is not None else []
        providers = sorted(registry.configured())
        async with get_redis().pipeline(transaction=False) as pipe:
            pipe.evalsha(sha, len(keys), *keys, *args)
            pipe.mget(cached)  # the cached values in one reply
            for name in providers:
                pipe.hmget(provider_health.breaker_key(name), ["state", "failures"])
            results = await pipe.execute(raise_on_error=False)
    except Exception as exc:  # each piece then reads (and handles an outage) on its own
        logger.warning("prefetch failed", extra={"error": str(exc)[:200]})
        return Prefetched()
    limits, values, *breakers = (cache.NOT_FETCHED if isinstance(r, Exception) else r for r in results)
    if values is cache.NOT_FETCHED:
        values = [cache.NOT_FETCHED] * len(cached)
    return Prefetched(
        limits=limits,
        catalogue=values[0],
        budgets=values[1],
        answer=values[2] if answer_key is not None else cache.NOT_FETCHED,
        breakers={
            name: value for name, value in zip(providers, breakers, strict=True) if value is not cache.NOT_FETCHED
        },
    )


def _provider_request(call: Call, entry: Entry, max_tokens: int) -> ChatRequest:
    return ChatRequest(
        model=entry.provider_model,
        messages=call.messages,
        tools=call.tools,
        json_schema=call.json_schema,
        temperature=call.temperature,
        max_tokens=max_tokens,
        stop=call.stop,
        timeout_s=settings().model_timeout_s,
    )


def _cache_parts(call: Call, max_tokens: int) -> tuple[dict[str, Any], dict[str, Any]]:
    routing_choice = {
        "model": call.model,
        "fallbacks": call.fallbacks,
        "requirements": call.requirements.model_dump(),
        "strategy": call.strategy,
    }
    last_user = next((m.content for m in reversed(call.messages) if m.role == "user"), "")
    payload = {
        "messages": [
            [m.role, m.content, [[c.name, c.arguments] for c in m.tool_calls], m.tool_call_id]
            for m in call.messages[:-1]
        ],
        "last_role": call.messages[-1].role if call.messages else "",
        "last_user": last_user,
        "tools": [[t.name, t.description, t.parameters] for t in call.tools],
        "schema": call.json_schema,
        "temperature": call.temperature,
        "max_tokens": max_tokens,
        "stop": call.stop,
    }
    return routing_choice, payload


@dataclass(frozen=True)
class CacheKeys:
    """Where a call's answer is cached: its exact key, and the semantic index of its request shape (None when no
    semantic cache is configured). Derived once per call."""

    exact: str
    shape: str | None


def _cache_keys(call: Call, max_tokens: int) -> CacheKeys:
    routing_choice, payload = _cache_parts(call, max_tokens)
    shape = answer_cache.shape_key(call.tenant_id, routing_choice, payload) if settings().semantic_cache_model else None
    return CacheKeys(answer_cache.request_key(call.tenant_id, routing_choice, payload), shape)


async def _semantic_vector(call: Call, entries: list[Entry]) -> list[float] | None:
    name = settings().semantic_cache_model
    entry = next((e for e in entries if e.name == name and "embeddings" in e.capabilities), None) if name else None
    last_user = next((m.content for m in reversed(call.messages) if m.role == "user"), "")
    if entry is None or not last_user:
        return None
    try:
        embedded = await registry.provider(entry.provider).embed(entry.provider_model, [last_user])
        return list(embedded.vectors[0])
    except ProviderError as exc:
        logger.warning("semantic cache embedding failed", extra={"error": str(exc)[:200]})
        return None


async def _cached(
    call: Call, entries: list[Entry], keys: CacheKeys, prefetched: Any
) -> tuple[Answer | None, list[float] | None]:
    """(a cached answer or None, the semantic vector if one was computed)."""
    found = await answer_cache.get(keys.exact, prefetched)
    kind = "hit"
    vector = None
    if found is None and keys.shape is not None:
        vector = await _semantic_vector(call, entries)
        if vector is not None:
            near = await answer_cache.nearest(keys.shape, vector, settings().semantic_cache_threshold)
            found = await answer_cache.get(near) if near else None
            kind = "semantic_hit"
    if found is None:
        return None, vector
    model_name, result = found
    entry = next((e for e in entries if e.name == model_name), None)
    if entry is None or not entry.enabled:  # an answer of a model since removed or disabled is not served
        return None, vector
    started = time.perf_counter()
    await metering.record(  # a hit costs nothing; it is still counted
        call.tenant_id,
        entry,
        result.usage,
        0,
        purpose=call.purpose,
        run_id=call.run_id,
        task_id=call.task_id,
        cache_hit=True,
        correlation_id=call.correlation_id,
    )
    answer = Answer(entry, result, result.usage, 0, (time.perf_counter() - started) * 1000, kind, [])
    return answer, vector


async def _remember(keys: CacheKeys, vector: list[float] | None, entry: Entry, result: ChatResult) -> None:
    ttl = settings().answer_cache_ttl_s
    await answer_cache.put(keys.exact, entry.name, result, ttl)
    if vector is not None and keys.shape is not None:
        await answer_cache.remember(keys.shape, vector, keys.exact, ttl)


async def _backoff(attempt: int, error: ProviderError) -> None:
    base = settings().model_retry_base_s * (2**attempt)
    delay = random.uniform(0, base)  # noqa: S311 - jitter, not cryptography
    if error.retry_after_s is not None:
        delay = max(delay, min(error.retry_after_s, 5.0))
    await asyncio.sleep(delay)


async def _prepare(
    call: Call, stream: bool, use_cache: bool = False
) -> tuple[list[Entry], list[Entry], int, int, Prefetched, CacheKeys | None]:
    """(the tenant's catalogue, the candidates in order, max output tokens, estimated prompt tokens, what was
    prefetched, the answer cache keys when the cache is used)."""
    if not call.messages:
        raise InvalidInputError("messages must not be empty")
    if call.json_schema is not None:
        jsonschemas.check_schema(call.json_schema, "response_schema")
    for tool in call.tools:
        jsonschemas.check_schema(tool.parameters, f"the parameters of tool {tool.name!r}")
    max_tokens = call.max_tokens or settings().model_default_max_tokens
    tokens = estimate_tokens(call)
    keys = _cache_keys(call, max_tokens) if use_cache else None
    charged = _charged_buckets(call, tokens + max_tokens)
    prefetched = await _prefetch(call, charged[1], keys.exact if keys else None)
    await enforce_rate_limits(call, tokens + max_tokens, prefetched.limits, charged)
    entries = await catalogue.entries(call.tenant_id, prefetched.catalogue)
    candidates = await routing.candidates(
        entries,
        model=call.model,
        fallbacks=list(call.fallbacks),
        requirements=call.requirements,
        strategy=call.strategy,
        needed=needed_capabilities(call, stream),
        input_tokens=tokens,
        max_output_tokens=max_tokens,
        limit=settings().model_max_attempts,
    )
    return entries, candidates, max_tokens, tokens, prefetched, keys


def breaker_for(entry: Entry, prefetched: Prefetched | None = None) -> Breaker:
    """The provider's breaker; when the call's prefetch saw it closed, its first allow() costs no round trip."""
    cfg = settings()
    breaker = Breaker(f"provider:{entry.provider}", cfg.breaker_failures, cfg.breaker_open_s)
    seen = prefetched.breakers.get(entry.provider) if prefetched is not None else None
    if seen is not None:
        breaker.seen(seen[0], seen[1])
    return breaker


async def _reserve(
    call: Call, candidates: list[Entry], tokens: int, max_tokens: int, prefetched: Any = cache.NOT_FETCHED
) -> budgets.Reservation:
    """Hold the worst case: the dearest candidate, answering at full length, twice (one repair)."""
    applicable = await budgets.applicable(call.tenant_id, call.run_id, call.task_id, prefetched)
    repairs = 2 if (call.json_schema is not None or call.tools) else 1
    worst = max(routing.estimate_cost(e, tokens, max_tokens) for e in candidates) * repairs
    hold_s = settings().model_timeout_s * (settings().model_retries + 1) * len(candidates) + 60
    return await budgets.reserve(call.tenant_id, applicable, worst, hold_s, call.correlation_id)


async def meter(call: Call, entry: Entry, usage: Usage, latency_ms: float) -> int:
    _, cost = await metering.record(
        call.tenant_id,
        entry,
        usage,
        latency_ms,
        purpose=call.purpose,
        run_id=call.run_id,
        task_id=call.task_id,
        cache_hit=False,
        correlation_id=call.correlation_id,
    )
    return cost


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(a.input_tokens + b.input_tokens, a.output_tokens + b.output_tokens, a.cached_tokens + b.cached_tokens)


async def _try_model(
    call: Call, entry: Entry, max_tokens: int, attempts: list[Attempt], prefetched: Prefetched
) -> tuple[ChatResult, Usage, int, float] | None:
    """Call one model (retrying retryable errors, repairing one invalid answer); None when it failed."""
    provider = registry.provider(entry.provider)
    breaker = breaker_for(entry, prefetched if not attempts else None)  # after a failure, ask Redis again
    request = _provider_request(call, entry, max_tokens)
    for retry in range(settings().model_retries + 1):
        if not await breaker.allow():
            attempts.append(Attempt(entry.name, entry.provider, "breaker_open", "the provider's circuit is open"))
            return None
        started = time.perf_counter()
        try:
            result = await provider.chat(request)
        except ProviderError as error:
            latency = (time.perf_counter() - started) * 1000
            attempts.append(Attempt(entry.name, entry.provider, error.kind, str(error)[:500], latency))
            await breaker.record(error.kind in ("bad_request", "auth"))  # the caller's mistake is no outage
            await provider_health.note_failure(entry.provider, error)
            if not error.retryable or retry == settings().model_retries:
                return None
            await _backoff(retry, error)
            continue
        latency = (time.perf_counter() - started) * 1000
        await breaker.record(True)
        usage, cost = result.usage, await meter(call, entry, result.usage, latency)
        problem = structured.problem_with(request, result)
        if problem is not None:
            repaired = structured.repair_request(request, result, problem)
            try:
                result = await provider.chat(repaired)
            except ProviderError as error:
                detail = f"{problem}; the repair failed: {error}"
                attempts.append(Attempt(entry.name, entry.provider, "invalid_output", detail, latency, cost))
                return None
            latency = (time.perf_counter() - started) * 1000
            usage = _add(usage, result.usage)
            cost += await meter(call, entry, result.usage, latency)
            still = structured.problem_with(request, result)
            if still is not None:
                detail = f"{problem}; after one repair: {still}"
                attempts.append(Attempt(entry.name, entry.provider, "invalid_output", detail, latency, cost))
                return None
        attempts.append(Attempt(entry.name, entry.provider, "ok", "", latency, cost))
        routing.note_latency(entry, latency)
        return result, usage, cost, latency
    return None


def _all_failed(attempts: list[Attempt]) -> Exception:
    summary = [a.__dict__ for a in attempts]
    if attempts and all(a.outcome in ("bad_request", "auth") for a in attempts):
        return BadGatewayError(f"every model refused the request: {attempts[-1].detail}", attempts=summary)
    return DependencyUnavailableError("no model could answer; the attempts say why", attempts=summary)


async def chat(call: Call) -> Answer:
    use_cache = call.cache and settings().answer_cache_ttl_s > 0
    entries, candidates, max_tokens, tokens, prefetched, keys = await _prepare(call, stream=False, use_cache=use_cache)
    vector = None
    if keys is not None:
        cached, vector = await _cached(call, entries, keys, prefetched.answer)
        if cached is not None:
            return cached
    reservation = await _reserve(call, candidates, tokens, max_tokens, prefetched.budgets)
    attempts: list[Attempt] = []
    try:
        for entry in candidates:
            outcome = await _try_model(call, entry, max_tokens, attempts, prefetched)
            if outcome is not None:
                result, usage, cost, latency = outcome
                if keys is not None:
                    await _remember(keys, vector, entry, result)
                return Answer(entry, result, usage, cost, latency, "miss" if use_cache else "off", attempts)
        raise _all_failed(attempts)
    finally:
        await budgets.settle(reservation, sum(a.cost_micro_usd for a in attempts))


async def stream(call: Call) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs: `delta`s of the answer; `fallback` when a model failed after it began (discard what
    arrived, the next model starts over); then `done` with the whole answer, usage and cost, or `error`.
    Problems found before the first model is called (limits, routing, budget) raise instead."""
    _, candidates, max_tokens, tokens, prefetched, _ = await _prepare(call, stream=True)
    reservation = await _reserve(call, candidates, tokens, max_tokens, prefetched.budgets)
    attempts: list[Attempt] = []
    try:
        for entry in candidates:
            breaker = breaker_for(entry, prefetched if not attempts else None)
            if not await breaker.allow():
                attempts.append(Attempt(entry.name, entry.provider, "breaker_open", "the provider's circuit is open"))
                continue
            request = _provider_request(call, entry, max_tokens)
            started = time.perf_counter()
            parts: list[str] = []
            tool_calls: list[Any] = []
            final = None
            try:
                async for chunk in registry.provider(entry.provider).stream(request):
                    tool_calls.extend(chunk.tool_calls)
                    if chunk.delta:
                        parts.append(chunk.delta)
                        yield "delta", {"model": entry.name, "delta": chunk.delta}
                    if chunk.done:
                        final = chunk
                        break
                if final is None:
                    raise ProviderError("cut", "the stream ended without its final chunk")
            except ProviderError as error:
                latency = (time.perf_counter() - started) * 1000
                attempts.append(Attempt(entry.name, entry.provider, error.kind, str(error)[:500], latency))
                await breaker.record(error.kind in ("bad_request", "auth"))
                await provider_health.note_failure(entry.provider, error)
                if parts:
                    yield "fallback", {"model": entry.name, "reason": error.kind, "detail": str(error)[:500]}
                continue
            latency = (time.perf_counter() - started) * 1000
            await breaker.record(True)
            usage = final.usage or Usage()
            cost = await meter(call, entry, usage, latency)
            result = ChatResult(
                content="".join(parts),
                tool_calls=tuple(tool_calls),
                finish_reason=final.finish_reason or "stop",
                usage=usage,
            )
            problem = structured.problem_with(request, result)
            if problem is not None:
                attempts.append(Attempt(entry.name, entry.provider, "invalid_output", problem, latency, cost))
                yield "fallback", {"model": entry.name, "reason": "invalid_output", "detail": problem}
                continue
            attempts.append(Attempt(entry.name, entry.provider, "ok", "", latency, cost))
            routing.note_latency(entry, latency)
            yield "done", answer_body(Answer(entry, result, usage, cost, latency, "off", attempts))
            return
        failure = _all_failed(attempts)
        assert isinstance(failure, (BadGatewayError, DependencyUnavailableError))
        yield "error", failure.to_problem()
    finally:
        await budgets.settle(reservation, sum(a.cost_micro_usd for a in attempts))


def answer_body(answer: Answer) -> dict[str, Any]:
    """The native API's answer."""
    return {
        "model": answer.entry.name,
        "provider": answer.entry.provider,
        "content": answer.result.content,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in answer.result.tool_calls],
        "finish_reason": answer.result.finish_reason,
        "usage": {
            "input_tokens": answer.usage.input_tokens,
            "output_tokens": answer.usage.output_tokens,
            "cached_tokens": answer.usage.cached_tokens,
        },
        "cost_micro_usd": answer.cost_micro_usd,
        "latency_ms": round(answer.latency_ms, 2),
        "cache": answer.cache,
        "attempts": [a.__dict__ for a in answer.attempts],
    }
