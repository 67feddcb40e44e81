"""Calls from one layer to another over the public HTTP API, with a service credential and the correlation id."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

from strata.auth import mint_service_token
from strata.config import api_base_url, get_settings
from strata.errors import DependencyUnavailableError

if TYPE_CHECKING:
    import httpx

_client: httpx.AsyncClient | None = None


def _http() -> httpx.AsyncClient:
    global _client
    import httpx

    if _client is None or _client.is_closed:
        settings = get_settings()
        _client = httpx.AsyncClient(
            base_url=api_base_url(),
            timeout=httpx.Timeout(settings.peer_timeout_s, connect=2.0),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )
    return _client


_tokens: dict[UUID, tuple[float, str]] = {}


def _token(tenant_id: UUID) -> str:
    """This service's token for `tenant_id`, reused for the first half of its life: the same credential on
    successive calls lets API Gateway's authorizer cache answer instead of invoking the authorizer each time."""
    now = time.monotonic()
    cached = _tokens.get(tenant_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    settings = get_settings()
    token = mint_service_token(settings.service_name, tenant_id)
    if len(_tokens) > 10_000:
        _tokens.clear()
    _tokens[tenant_id] = (now + settings.service_token_ttl_s / 2, token)
    return token


async def reset_peers() -> None:
    global _client
    client, _client = _client, None
    if client is not None:
        await client.aclose()


async def call(
    method: str,
    path: str,
    *,
    tenant_id: UUID | None = None,
    correlation_id: str | None = None,
    json: Any = None,
    params: dict[str, Any] | None = None,
    timeout_s: float | None = None,
) -> httpx.Response:
    """Call another layer's route; authenticated as this service acting for `tenant_id` when given. `timeout_s`
    replaces the default read timeout for calls known to take long (a model turn, a tool call)."""
    import httpx

    headers: dict[str, str] = {}
    if tenant_id is not None:
        headers["authorization"] = f"Bearer {_token(tenant_id)}"
    if correlation_id:
        headers["x-correlation-id"] = correlation_id
    try:
        timeout = httpx.Timeout(timeout_s, connect=2.0) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        return await _http().request(method, path, headers=headers, json=json, params=params, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DependencyUnavailableError(f"{method} {path} failed: {type(exc).__name__}: {exc}") from exc
