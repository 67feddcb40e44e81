"""Calls from one layer to another over the public HTTP API, with a service credential and the correlation id.

The client is aiohttp: a call costs about a third of the CPU of the same call through httpx (measured on L02's
tool calls, where every task makes one), and the runtime makes one per task and per model turn."""

from __future__ import annotations

import asyncio
import json as jsonlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from strata.auth import mint_service_token
from strata.breaker import Breaker
from strata.config import api_base_url, get_settings
from strata.errors import DependencyUnavailableError
from strata.layers import LAYERS, layer_of_path

if TYPE_CHECKING:
    import aiohttp

    from strata.events.envelope import Event


@dataclass(frozen=True)
class PeerResponse:
    """What the peer answered: the status, the headers (names in lower case) and the body, read whole."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


_session: aiohttp.ClientSession | None = None
_session_loop: asyncio.AbstractEventLoop | None = None


def _http() -> aiohttp.ClientSession:
    """One session per event loop (the execution environment's), keeping connections to the API alive; cookies
    are never kept (a session serves every tenant)."""
    global _session, _session_loop
    import aiohttp

    loop = asyncio.get_running_loop()
    if _session is None or _session.closed or _session_loop is not loop:
        _session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=20, keepalive_timeout=30),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),  # each call sets its own bound
        )
        _session_loop = loop
    return _session


async def reset_peers() -> None:
    global _session
    session, _session = _session, None
    if session is not None and not session.closed:
        await session.close()


_tokens: dict[tuple[UUID, frozenset[str]], tuple[float, str]] = {}


def _token(tenant_id: UUID, scopes: frozenset[str] = frozenset()) -> str:
    """This service's token for `tenant_id`, reused for the first half of its life: the same credential on
    successive calls lets API Gateway's authorizer cache answer instead of invoking the authorizer each time."""
    now = time.monotonic()
    cached = _tokens.get((tenant_id, scopes))
    if cached is not None and cached[0] > now:
        return cached[1]
    settings = get_settings()
    token = mint_service_token(settings.service_name, tenant_id, extra_scopes=scopes)
    if len(_tokens) > 10_000:
        _tokens.clear()
    _tokens[(tenant_id, scopes)] = (now + settings.service_token_ttl_s / 2, token)
    return token


# Peer circuit breakers, one per layer, state in Redis (strata.breaker) so every execution environment of every
# function sees a failing layer at once. A breaker this environment saw closed is trusted for a moment
# (`peer_breaker_trust_s`) without asking Redis again: a healthy call costs no extra round trip.
_trusted_until: dict[str, float] = {}


def breaker_name(layer: str) -> str:
    """The name of the peer breaker guarding calls to `layer` (its Redis key is `strata:breaker:peer:<layer>`)."""
    return f"peer:{layer}"


def _breaker(layer: str) -> Breaker:
    settings = get_settings()
    breaker = Breaker(breaker_name(layer), settings.peer_breaker_failures, settings.peer_breaker_open_s)
    if _trusted_until.get(layer, 0.0) > time.monotonic():
        breaker.seen("closed", 0)
    return breaker


async def _admit(layer: str, breaker: Breaker) -> None:
    if not await breaker.allow():
        _trusted_until.pop(layer, None)
        raise DependencyUnavailableError(
            f"{LAYERS[layer]} {layer} is failing: calls to it are paused for up to "
            f"{get_settings().peer_breaker_open_s:g} s (circuit open)"
        )


async def _settle(layer: str, breaker: Breaker, ok: bool) -> None:
    state = await breaker.record(ok)
    if ok and state == "closed":
        _trusted_until[layer] = time.monotonic() + get_settings().peer_breaker_trust_s
    else:
        _trusted_until.pop(layer, None)


async def call(
    method: str,
    path: str,
    *,
    tenant_id: UUID | None = None,
    correlation_id: str | None = None,
    json: Any = None,
    params: dict[str, Any] | None = None,
    timeout_s: float | None = None,
    headers: dict[str, str] | None = None,
    scopes: frozenset[str] = frozenset(),
    breaker: bool = True,
) -> PeerResponse:
    """Call another layer's route; authenticated as this service acting for `tenant_id` when given (with
    `scopes` beyond `service`, for the operator's routes). `timeout_s` replaces the default read timeout for calls
    known to take long (a model turn, a tool call); `headers` adds request headers (an `Idempotency-Key`, say).

    The layer's circuit breaker guards the call: a timeout, a refused connection, a crash (500) or a 5xx that did
    not come from the layer's app (API Gateway's or the front's own: the function died or timed out) counts as a
    failure. A 502/503/504 problem the layer itself answered is its report on one of *its* dependencies (a model
    provider, a peer), which has its own breaker there: it does not open this one, so one tenant's failing provider
    cannot stop every tenant's calls to the layer. While the breaker is open the call fails at once with
    DependencyUnavailableError (a 503 to whoever asked) instead of waiting on a layer known to be failing.
    `breaker=False` skips it (the status probes, which must measure the truth)."""
    layer = layer_of_path(path) if breaker else None
    guard = _breaker(layer) if layer is not None else None
    if layer is not None and guard is not None:
        await _admit(layer, guard)
    try:
        response = await _send(method, path, tenant_id, correlation_id, json, params, timeout_s, headers, scopes)
    except DependencyUnavailableError:
        if layer is not None and guard is not None:
            await _settle(layer, guard, False)
        raise
    if layer is not None and guard is not None:
        await _settle(layer, guard, not _layer_failed(response))
    return response


def _layer_failed(response: PeerResponse) -> bool:
    if response.status_code < 500:
        return False
    answered_by_layer = response.headers.get("content-type", "").startswith("application/problem+json")
    return response.status_code == 500 or not answered_by_layer


async def _send(
    method: str,
    path: str,
    tenant_id: UUID | None,
    correlation_id: str | None,
    json: Any,
    params: dict[str, Any] | None,
    timeout_s: float | None,
    extra_headers: dict[str, str] | None,
    scopes: frozenset[str],
) -> PeerResponse:
    import aiohttp

    headers = dict(extra_headers or {})
    if tenant_id is not None:
        headers["authorization"] = f"Bearer {_token(tenant_id, scopes)}"
    if correlation_id:
        headers["x-correlation-id"] = correlation_id
    query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
    read = timeout_s if timeout_s is not None else get_settings().peer_timeout_s
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=2.0, sock_read=read)
    try:
        async with _http().request(
            method, api_base_url().rstrip("/") + path, json=json, params=query, headers=headers, timeout=timeout
        ) as response:
            body = await response.read()
            return PeerResponse(response.status, {k.lower(): v for k, v in response.headers.items()}, body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DependencyUnavailableError(f"{method} {path} failed: {type(exc).__name__}: {exc}") from exc


class PeerStatusError(RuntimeError):
    """A peer answered a read with something other than 200 (the status says what)."""

    def __init__(self, path: str, status: int) -> None:
        super().__init__(f"GET {path} answered {status}")
        self.status = status


async def get_json(
    path: str, *, tenant_id: UUID, correlation_id: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A peer's resource, read as the tenant; anything but 200 raises PeerStatusError."""
    response = await call("GET", path, tenant_id=tenant_id, correlation_id=correlation_id, params=params)
    if response.status_code != 200:
        raise PeerStatusError(path, response.status_code)
    found: dict[str, Any] = response.json()
    return found


async def get_for_event(event: Event, path: str) -> dict[str, Any]:
    """A peer's resource read by an event's consumer, as the event's tenant; anything but 200 raises, so the
    event is retried and then dead-lettered."""
    return await get_json(path, tenant_id=event.tenant_id, correlation_id=event.correlation_id)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
