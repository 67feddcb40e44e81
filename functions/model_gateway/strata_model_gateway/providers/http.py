"""HTTP plumbing the HTTP adapters (OpenAI-compatible, Ollama) share: the client, error classification, JSON
posts, streamed lines and tool-call argument parsing, so that every provider's failures are classified the same way.

The client is aiohttp: a chat call through it costs about a third of the CPU an httpx call does (measured by
bench/model_gateway.py), and every model call of the platform passes here."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from .base import ProviderError, Tool

_MAX_ERROR_TEXT = 500
_JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class ErrorAnswer:
    """An HTTP error answer, as the classification below needs it."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
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


def error_text(answer: ErrorAnswer) -> str:
    """The provider's own error message: OpenAI's `{"error": {"message"}}`, Ollama's `{"error": "..."}`, or text."""
    text = answer.body.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return text[:_MAX_ERROR_TEXT] or answer.reason
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])[:_MAX_ERROR_TEXT]
            if isinstance(value, str) and value:
                return value[:_MAX_ERROR_TEXT]
    return json.dumps(body)[:_MAX_ERROR_TEXT]


def status_error(provider: str, answer: ErrorAnswer) -> ProviderError:
    """Classify an HTTP error answer."""
    status = answer.status
    message = f"{provider}: HTTP {status}: {error_text(answer)}"
    retry_after = retry_after_seconds(answer.headers)
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


def transport_error(provider: str, exc: BaseException, *, answering: bool = False) -> ProviderError:
    """Classify a failure below HTTP; `answering`: the answer had begun, so a broken connection is a cut."""
    detail = f"{provider}: {type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return ProviderError("timeout", detail)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProviderError("unavailable", detail)
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        return ProviderError("cut" if answering else "unavailable", detail)
    return ProviderError("other", detail)


async def _error_answer(response: aiohttp.ClientResponse) -> ErrorAnswer:
    return ErrorAnswer(response.status, response.reason or "", response.headers, await response.read())


async def post_json(
    session: aiohttp.ClientSession, provider: str, url: str, body: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """POST `body`, return the JSON object answered; `timeout_s` bounds the whole exchange."""
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(url, data=json.dumps(body).encode(), headers=_JSON) as response:
                if response.status >= 400:
                    raise status_error(provider, await _error_answer(response))
                raw, status = await response.read(), response.status
    except TimeoutError as exc:
        raise ProviderError("timeout", f"{provider}: no answer within {timeout_s}s") from exc
    except aiohttp.ClientError as exc:
        raise transport_error(provider, exc) from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ProviderError("malformed", f"{provider}: answer is not JSON", status=status) from exc
    if not isinstance(data, dict):
        raise ProviderError("malformed", f"{provider}: answer is not a JSON object", status=status)
    return data


async def stream_lines(
    session: aiohttp.ClientSession, provider: str, url: str, body: dict[str, Any], timeout_s: float
) -> AsyncGenerator[str, None]:
    """POST `body` and yield the answer's lines; `timeout_s` bounds connecting and each wait for more data."""
    answering = False
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
    try:
        async with session.post(url, data=json.dumps(body).encode(), headers=_JSON, timeout=timeout) as response:
            if response.status >= 400:
                raise status_error(provider, await _error_answer(response))
            answering = True
            pending = b""
            async for chunk in response.content.iter_any():  # split here: no limit on a line's length
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.rstrip(b"\r").decode("utf-8", errors="replace")
            if pending:
                yield pending.rstrip(b"\r").decode("utf-8", errors="replace")
    except (TimeoutError, aiohttp.ClientError) as exc:
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
    """What the HTTP adapters share: one aiohttp session per provider instance and event loop, created on first use
    with the provider's headers (cookies never kept: a session serves every tenant) and closed by `aclose()`."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = {"accept": "application/json", **headers}
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> aiohttp.ClientSession:
        session, loop = self._session, asyncio.get_running_loop()
        if session is None or session.closed or self._loop is not loop:
            timeout = aiohttp.ClientTimeout(total=None)  # each call sets its own bound
            session = self._session = aiohttp.ClientSession(
                headers=self._headers, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
            )
            self._loop = loop
        return session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
