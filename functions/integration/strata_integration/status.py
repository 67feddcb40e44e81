"""The platform's status: every layer measured over the real API, and every dependency checked once for the platform.

Each layer's `/health/<layer>/ready` is called through the public API (as a client would reach it), concurrently and
each under its own deadline, so a slow layer costs its own row, not the answer. The latencies of each layer's last
checks are kept in Redis (one capped list per layer) for their median and maximum; Postgres, Redis, the event bus,
the dead-letter queues and the model providers (as L04 sees them) are checked from here, once. The whole answer is
cached for a moment, so any number of consoles polling it costs one check per `status_cache_s`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import Field, TypeAdapter

from strata import peers
from strata.breaker import Breaker
from strata.config import Settings, get_settings
from strata.errors import DependencyUnavailableError
from strata.layers import LAYERS

logger = Logger(child=True)

ANSWER_KEY = "strata:status:answer"
LAST_OK_KEY = "strata:status:last-ok"  # hash: layer -> when its readiness last answered ok
HISTORY_TTL_S = 7 * 86_400  # the history of a platform nobody looked at for a week is not worth keeping


def history_key(layer: str) -> str:
    return f"strata:status:latency:{layer}"


def peer_breaker_key(layer: str) -> str:
    """The Redis hash of the breaker guarding calls to `layer` (strata.peers)."""
    return Breaker(peers.breaker_name(layer)).key


# What a failure takes down. Postgres holds every layer's state; L09's authorizer admits every authenticated request.
CRITICAL_DEPENDENCIES = frozenset({"postgres"})
CRITICAL_LAYERS = frozenset({"api_gateway"})
ALL_PROVIDERS = "model_providers"  # the one row standing for every provider when L04 cannot be asked


class StatusSettings(Settings):
    status_history_size: int = Field(default=20, ge=1, le=1000, description="Checks per layer the p50 spans")
    status_check_timeout_s: float = Field(default=5.0, gt=0, le=25, description="Each probe's deadline")
    status_cache_s: float = Field(default=2.0, ge=0, le=60, description="How long one answer serves (0: never)")
    dead_letter_queues: str = Field(default="", description='JSON: {"name": "queue URL"}, each DLQ of the template')


@lru_cache
def status_settings() -> StatusSettings:
    return StatusSettings()


@lru_cache
def dead_letter_queues() -> dict[str, str]:
    """The template's dead-letter queues by name (their URLs), from `STRATA_DEAD_LETTER_QUEUES`."""
    raw = status_settings().dead_letter_queues.strip()
    return TypeAdapter(dict[str, str]).validate_python(json.loads(raw)) if raw else {}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _now() -> str:
    return datetime.now(UTC).isoformat()


# ---- pure rules (unit tested) ----


def latency_summary(samples: Iterable[float]) -> dict[str, Any]:
    """The median and maximum of a layer's recent check latencies, and how many checks they span."""
    values = list(samples)
    if not values:
        return {"latency_p50_ms": None, "latency_max_ms": None, "latency_samples": 0}
    return {
        "latency_p50_ms": round(statistics.median(values), 2),
        "latency_max_ms": round(max(values), 2),
        "latency_samples": len(values),
    }


def layer_row(layer: str, http_status: int, body: Any, latency_ms: float) -> dict[str, Any]:
    """One layer's row from what `/health/<layer>/ready` answered. Only the layer's own app names the layer in its
    answer: anything else (API Gateway's 503 for a throttled function, a 502 for one that crashed or timed out)
    means the function was not reached."""
    row: dict[str, Any] = {"layer": layer, "number": LAYERS[layer], "http_status": http_status}
    if not (isinstance(body, dict) and body.get("layer") == layer):
        said = body.get("detail") or body.get("message") if isinstance(body, dict) else None
        error = f"HTTP {http_status}" + (f": {str(said)[:200]}" if said else "") + " (not from the layer)"
        return {**unreachable_row(layer, error), "http_status": http_status}
    reported = body.get("dependencies")
    dependencies: dict[str, Any] = reported if isinstance(reported, dict) else {}
    failing = sorted(
        name for name, dep in dependencies.items() if not (isinstance(dep, dict) and dep.get("status") == "ok")
    )
    healthy = http_status == 200 and body.get("status") == "ok"
    return {
        **row,
        "reachable": True,
        "status": "ok" if healthy else "unavailable",
        "version": body.get("version"),
        "latency_ms": latency_ms,
        "failing_dependencies": failing,
        "error": None if healthy else "not ready: " + (", ".join(failing) or f"HTTP {http_status}"),
    }


def unreachable_row(layer: str, error: str) -> dict[str, Any]:
    return {
        "layer": layer,
        "number": LAYERS[layer],
        "http_status": None,
        "reachable": False,
        "status": "unreachable",
        "version": None,
        "latency_ms": None,
        "failing_dependencies": [],
        "error": error,
    }


def provider_status(breaker: str) -> str:
    """A model provider's status from its breaker: closed is fine (a failure or two below the threshold is noise);
    half-open has failed and not proved itself since; open is skipped by every call."""
    return {"closed": "ok", "half_open": "degraded", "open": "error"}.get(breaker, "unknown")


def provider_row(provider: dict[str, Any]) -> dict[str, Any]:
    """A model provider's row from what L04 reports of it. No latency: nothing here calls the provider (L04's
    breaker sums up the real calls); a provider whose breaker is not closed says why with its latest failure."""
    breaker = provider["breaker"]
    failure = provider.get("last_failure") or {}
    return {
        "name": provider["name"],
        "kind": "model_provider",
        "critical": False,
        "status": provider_status(breaker),
        "latency_ms": None,
        "error": failure.get("message") if breaker != "closed" else None,
        "provider_kind": provider["kind"],
        "breaker": breaker,
        "consecutive_failures": provider.get("consecutive_failures"),
        "last_failure": provider.get("last_failure"),
    }


def overall_status(layers: list[dict[str, Any]], dependencies: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """`down` when something every request needs is gone (Postgres, L09's authorizer, or the API itself: no layer
    answered), `degraded` when anything else is not ok, else `ok`; with the reasons, most serious first."""
    down: list[str] = []
    degraded: list[str] = []
    if layers and not any(layer["reachable"] for layer in layers):
        down.append("the API: no layer answered its readiness probe")
    for layer in layers:
        if layer["status"] == "ok":
            continue
        reason = f"{layer['number']} {layer['layer']}: {layer['status']}" + (
            f" ({layer['error']})" if layer.get("error") else ""
        )
        (down if layer["layer"] in CRITICAL_LAYERS and not layer["reachable"] else degraded).append(reason)
    for dependency in dependencies:
        if dependency["status"] == "ok":
            continue
        what = dependency["name"]
        if dependency["kind"] == "model_provider":
            what = "model providers" if what == ALL_PROVIDERS else f"model provider {what}"
        reason = f"{what}: {dependency['status']}" + (f" ({dependency['error']})" if dependency.get("error") else "")
        (down if dependency["name"] in CRITICAL_DEPENDENCIES else degraded).append(reason)
    return ("down" if down else "degraded" if degraded else "ok"), down + degraded


# ---- the checks ----


async def probe_layer(layer: str, correlation_id: str, timeout_s: float) -> dict[str, Any]:
    """One layer's readiness over the API, with the round trip's latency; never raises."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            response = await peers.call(
                "GET", f"/health/{layer}/ready", correlation_id=correlation_id, timeout_s=timeout_s, breaker=False
            )
    except TimeoutError:
        return unreachable_row(layer, f"no answer within {timeout_s:g} s")
    except DependencyUnavailableError as exc:
        return unreachable_row(layer, exc.detail)
    latency_ms = _ms(started)
    try:
        body = response.json()
    except ValueError:
        body = None
    return layer_row(layer, response.status_code, body, latency_ms)


async def _bounded(
    name: str, kind: str, check: Callable[[], Awaitable[dict[str, Any]]], timeout_s: float, critical: bool = False
) -> dict[str, Any]:
    """Run one dependency check under its deadline: its facts and latency, or why it failed (the kind of failure
    only: connection strings and hosts go to the log, not to every tenant's status page)."""
    base = {"name": name, "kind": kind, "critical": critical}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            facts = await check()
    except TimeoutError:
        return {**base, "status": "error", "latency_ms": None, "error": f"no answer within {timeout_s:g} s"}
    except Exception as exc:  # a status check reports failures, it does not raise them
        logger.warning("dependency check failed", extra={"dependency": name, "error": str(exc)[:500]})
        return {**base, "status": "error", "latency_ms": None, "error": type(exc).__name__}
    return {**base, "status": "ok", "latency_ms": _ms(started), "error": None, **facts}


POSTGRES_FACTS = """SELECT current_setting('server_version') AS version,
       current_setting('max_connections')::int AS max_connections,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS connections"""


async def _postgres() -> dict[str, Any]:
    from strata import db

    pool = await db.get_pool()
    async with pool.acquire() as conn:
        row = await conn.fetchrow(POSTGRES_FACTS)
    return {"version": row["version"], "connections": row["connections"], "max_connections": row["max_connections"]}


async def _redis() -> dict[str, Any]:
    from strata.cache import get_redis

    async with get_redis().pipeline(transaction=False) as pipe:
        pipe.ping()
        pipe.info("server")
        pipe.info("memory")
        pong, server, memory = await pipe.execute(raise_on_error=False)
    if isinstance(pong, Exception):
        raise pong
    server = server if isinstance(server, dict) else {}  # some managed servers refuse INFO: the facts are optional
    memory = memory if isinstance(memory, dict) else {}
    used, limit = memory.get("used_memory"), memory.get("maxmemory")
    return {
        "version": server.get("redis_version"),
        "used_memory_bytes": int(used) if used is not None else None,
        "max_memory_bytes": int(limit) if limit else None,  # 0: no limit set
    }


_clients_lock = threading.Lock()


def _aws(service: str) -> Any:
    """A boto3 client, made in a worker thread one at a time: boto3's default session is not thread-safe, and the
    event bus and queue checks make their first clients at the same moment."""
    from strata import aws

    with _clients_lock:
        return aws.client(service)


async def _event_bus() -> dict[str, Any]:
    name = get_settings().event_bus_name
    await asyncio.to_thread(lambda: _aws("events").describe_event_bus(Name=name))
    return {}


VISIBLE, IN_FLIGHT, DELAYED = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def _queue_check(url: str) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def check() -> dict[str, Any]:
        names = [VISIBLE, IN_FLIGHT, DELAYED]
        answer = await asyncio.to_thread(lambda: _aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names))
        visible, in_flight, delayed = (int(answer["Attributes"].get(n, 0)) for n in names)
        return {"depth": visible + in_flight + delayed, "visible": visible, "in_flight": in_flight, "delayed": delayed}

    return check


async def model_providers(tenant_id: UUID, correlation_id: str, timeout_s: float) -> list[dict[str, Any]]:
    """Each model provider as L04 reports it (its breaker, its latest failure); one `unknown` row when L04 cannot
    be asked."""
    base = {"kind": "model_provider", "critical": False}
    try:
        async with asyncio.timeout(timeout_s):
            response = await peers.call(
                "GET",
                "/v1/models/providers",
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                timeout_s=timeout_s,
                breaker=False,
            )
        if response.status_code != 200:
            raise peers.PeerStatusError("/v1/models/providers", response.status_code)
        providers = response.json()["providers"]
    except TimeoutError:
        error = f"L04 did not answer within {timeout_s:g} s"
    except DependencyUnavailableError as exc:
        error = f"L04 unreachable: {exc.detail}"
    except (peers.PeerStatusError, ValueError, KeyError, TypeError) as exc:
        error = f"L04 could not say: {exc}"
    else:
        return [provider_row(provider) for provider in providers]
    unknown = {"provider_kind": None, "breaker": "unknown", "consecutive_failures": None, "last_failure": None}
    return [{**base, "name": ALL_PROVIDERS, "status": "unknown", "latency_ms": None, "error": error, **unknown}]


async def dependencies(tenant_id: UUID, correlation_id: str, timeout_s: float) -> list[dict[str, Any]]:
    """Postgres, Redis, the event bus, every dead-letter queue and every model provider, concurrently."""
    checks = [
        _bounded("postgres", "postgres", _postgres, timeout_s, critical=True),
        _bounded("redis", "redis", _redis, timeout_s),
        _bounded("event_bus", "event_bus", _event_bus, timeout_s),
        *(
            _bounded(name, "dead_letter_queue", _queue_check(url), timeout_s)
            for name, url in dead_letter_queues().items()
        ),
    ]
    found, providers = await asyncio.gather(
        asyncio.gather(*checks), model_providers(tenant_id, correlation_id, timeout_s)
    )
    return [*found, *providers]


# ---- the history (Redis) ----


def this_check_only(layers: list[dict[str, Any]]) -> None:
    """Fill in the rows from this check alone (Redis, which keeps the history and the breakers, is down)."""
    now = _now()
    for layer in layers:
        layer.update(latency_summary([layer["latency_ms"]] if layer["latency_ms"] is not None else []))
        layer.update(last_ok_at=now if layer["status"] == "ok" else None, peer_breaker="unknown")


async def record_history(layers: list[dict[str, Any]], size: int) -> bool:
    """Add this check's latencies to each layer's history and fill in each row's p50, max and sample count, when
    it last answered ok, and its peer breaker's state; all in one round trip. With Redis down the rows summarise
    this check only (returns False)."""
    from strata.cache import get_redis

    now = _now()
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            for layer in layers:
                key = history_key(layer["layer"])
                if layer["latency_ms"] is not None:
                    pipe.lpush(key, layer["latency_ms"])
                    pipe.ltrim(key, 0, size - 1)
                    pipe.expire(key, HISTORY_TTL_S)
                pipe.lrange(key, 0, size - 1)
                pipe.hget(peer_breaker_key(layer["layer"]), "state")
            ok: dict[Any, Any] = {layer["layer"]: now for layer in layers if layer["status"] == "ok"}
            if ok:
                pipe.hset(LAST_OK_KEY, mapping=ok)
            pipe.hgetall(LAST_OK_KEY)
            results = await pipe.execute()
    except Exception as exc:  # the status goes on without its history
        logger.warning("status history unavailable", extra={"error": str(exc)[:300]})
        this_check_only(layers)
        return False
    last_ok: dict[str, str] = results[-1] or {}
    position = 0
    for layer in layers:
        position += 3 if layer["latency_ms"] is not None else 0
        samples, breaker = results[position], results[position + 1]
        position += 2
        layer.update(latency_summary(float(s) for s in samples or []), last_ok_at=last_ok.get(layer["layer"]))
        layer["peer_breaker"] = breaker if breaker in ("open", "half_open") else "closed"
    return True


async def _cached_answer() -> dict[str, Any] | None:
    from strata.cache import get_redis

    try:
        raw = await get_redis().get(ANSWER_KEY)
    except Exception as exc:  # a cache miss; the checks will say what is wrong with Redis
        logger.warning("status cache unreadable", extra={"error": str(exc)[:200]})
        return None
    return {**json.loads(raw), "cached": True} if raw else None


async def _cache(answer: dict[str, Any], ttl_s: float) -> None:
    from strata.cache import get_redis

    try:
        await get_redis().set(ANSWER_KEY, json.dumps(answer), px=int(ttl_s * 1000))
    except Exception as exc:
        logger.warning("status cache unwritable", extra={"error": str(exc)[:200]})


async def platform_status(tenant_id: UUID, correlation_id: str) -> dict[str, Any]:
    """Every layer and every dependency, checked concurrently (or the answer of a check made a moment ago)."""
    settings = status_settings()
    if settings.status_cache_s > 0:
        cached = await _cached_answer()
        if cached is not None:
            return cached
    started = time.perf_counter()
    timeout_s = settings.status_check_timeout_s
    probes, found = await asyncio.gather(
        asyncio.gather(*(probe_layer(name, correlation_id, timeout_s) for name in LAYERS)),
        dependencies(tenant_id, correlation_id, timeout_s),
    )
    layers = list(probes)
    redis_ok = next(d["status"] == "ok" for d in found if d["kind"] == "redis")
    kept = redis_ok and await record_history(layers, settings.status_history_size)
    if not redis_ok:  # asking it again would only wait on it again
        this_check_only(layers)
    status, reasons = overall_status(layers, found)
    answer = {
        "status": status,
        "reasons": reasons,
        "checked_at": _now(),
        "duration_ms": _ms(started),
        "cached": False,
        "latency_history": {"kept": kept, "size": settings.status_history_size},
        "layers": layers,
        "dependencies": found,
    }
    if settings.status_cache_s > 0 and redis_ok:
        await _cache(answer, settings.status_cache_s)
    return answer
