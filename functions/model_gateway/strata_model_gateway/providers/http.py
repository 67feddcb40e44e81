"""HTTP plumbing the HTTP adapters (OpenAI-compatible, Ollama) share: error classification, JSON posts, streamed
lines and tool-call argument parsing, so that every provider's failures are classified the same way."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from .base import ProviderError, Tool

_MAX_ERROR_TEXT = 500


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Seconds the provider asks us to wait: `retry-after-ms` (OpenAI) or `Retry-After` (seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        with contextlib.suppress(ValueError):
            return max(float(millis) / 1000, 0.0)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def error_text(response: httpx.Response) -> str:
    """The provider's own error message: OpenAI's `{"error": {"message"}}`, Ollama's `{"error": "..."}`, or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:_MAX_ERROR_TEXT] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])[:_MAX_ERROR_TEXT]
            if isinstance(value, str) and value:
                return value[:_MAX_ERROR_TEXT]
    return json.dumps(body)[:_MAX_ERROR_TEXT]


def status_error(provider: str, response: httpx.Response) -> ProviderError:
    """Classify an HTTP error answer."""
    status = response.status_code
    message = f"{provider}: HTTP {status}: {error_text(response)}"
    retry_after = retry_after_seconds(response.headers)
    if status == 429:
        return ProviderError("rate_limited", message, status=status, retry_after_s=retry_after)
    if status == 408:
        return ProviderError("timeout", message, status=status)
    if status in (401, 403):
        return ProviderError("auth", message, status=status)
    if status >= 500:
        return ProviderError("unavailable", message, status=status, retry_after_s=retry_after)
    if status >= 400:
        return ProviderError("bad_request", message, status=status)
    return ProviderError("other", message, status=status)


def transport_error(provider: str, exc: httpx.HTTPError, *, answering: bool = False) -> ProviderError:
    """Classify a failure below HTTP; `answering`: the answer had begun, so a broken connection is a cut."""
    detail = f"{provider}: {type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError("timeout", detail)
    if isinstance(exc, httpx.ConnectError):
        return ProviderError("unavailable", detail)
    if isinstance(exc, httpx.TransportError):
        return ProviderError("cut" if answering else "unavailable", detail)
    return ProviderError("other", detail)


async def post_json(
    client: httpx.AsyncClient, provider: str, url: str, body: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """POST `body`, return the JSON object answered; `timeout_s` bounds the whole exchange."""
    try:
        async with asyncio.timeout(timeout_s):
            response = await client.post(url, json=body, timeout=timeout_s)
    except TimeoutError as exc:
        raise ProviderError("timeout", f"{provider}: no answer within {timeout_s}s") from exc
    except httpx.HTTPError as exc:
        raise transport_error(provider, exc) from exc
    if not response.is_success:
        raise status_error(provider, response)
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderError("malformed", f"{provider}: answer is not JSON", status=response.status_code) from exc
    if not isinstance(data, dict):
        raise ProviderError("malformed", f"{provider}: answer is not a JSON object", status=response.status_code)
    return data


async def stream_lines(
    client: httpx.AsyncClient, provider: str, url: str, body: dict[str, Any], timeout_s: float
) -> AsyncGenerator[str, None]:
    """POST `body` and yield the answer's lines; `timeout_s` bounds connecting and each wait for more data."""
    answering = False
    try:
        async with client.stream("POST", url, json=body, timeout=timeout_s) as response:
            if not response.is_success:
                await response.aread()
                raise status_error(provider, response)
            answering = True
            async for line in response.aiter_lines():
                yield line
    except httpx.HTTPError as exc:
        raise transport_error(provider, exc, answering=answering) from exc


def parse_arguments(provider: str, tool: str, raw: Any) -> dict[str, Any]:
    """A tool call's arguments as a dict: objects pass, JSON text is parsed, anything else is `malformed`."""
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}  # a call of a tool without parameters; some servers send "" rather than "{}"
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise ProviderError("malformed", f"{provider}: arguments of {tool} are not JSON: {raw[:200]!r}") from exc
        if isinstance(parsed, dict):
            return parsed
    raise ProviderError("malformed", f"{provider}: arguments of {tool} are not a JSON object: {str(raw)[:200]!r}")


def malformed(provider: str, what: str) -> ProviderError:
    return ProviderError("malformed", f"{provider}: {what}")


# --- the OpenAI-compatible adapter ----------------------------------------------------------------------------------


def function_tools(tools: tuple[Tool, ...]) -> list[dict[str, Any]]:
    """Tools in the `{"type": "function", "function": {...}}` shape OpenAI defined and Ollama adopted."""
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


class HttpProvider:
    """What the HTTP adapters share: one httpx client per provider instance, created on first use with the
    provider's headers and closed by `aclose()` (a later call creates a new one)."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = {"accept": "application/json", **headers}
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(headers=self._headers)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
