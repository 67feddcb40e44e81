"""One delivery attempt on the wire: the signed request, the SSRF guard on the way out, the receiver's answer, and the
backoff before the next attempt. No database here."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from strata import __version__
from strata.signatures import strata_signature

USER_AGENT = f"Strata-Webhooks/{__version__}"
SIGNATURE_HEADER = "Strata-Signature"
DELIVERY_HEADER = "Strata-Delivery-Id"
EVENT_ID_HEADER = "Strata-Event-Id"
EVENT_TYPE_HEADER = "Strata-Event-Type"
WEBHOOK_HEADER = "Strata-Webhook-Id"
ATTEMPT_HEADER = "Strata-Attempt"
MAX_ERROR_CHARS = 500


def backoff_s(
    failed_attempts: int,
    schedule: tuple[float, ...],
    jitter: float = 0.0,
    unit_random: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after a round's `failed_attempts`-th failed attempt: that entry of `schedule` (its last entry
    once the schedule runs out), spread by up to ±`jitter` of itself."""
    if failed_attempts < 1:
        raise ValueError("backoff follows a failed attempt (1 or more)")
    base = schedule[min(failed_attempts, len(schedule)) - 1]
    return max(0.0, base * (1 + jitter * (2 * unit_random() - 1)))


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed (compact JSON)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def delivery_headers(
    *,
    secrets: Iterable[str],
    body: bytes,
    delivery_id: UUID,
    event_id: UUID,
    event_type: str,
    webhook_id: UUID,
    attempt: int,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The request's headers; `Strata-Signature` carries one `v1` per secret (the current one first)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: strata_signature(list(secrets), body, timestamp),
        DELIVERY_HEADER: str(delivery_id),
        EVENT_ID_HEADER: str(event_id),
        EVENT_TYPE_HEADER: event_type,
        WEBHOOK_HEADER: str(webhook_id),
        ATTEMPT_HEADER: str(attempt),
    }


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to: the receiver's status (None: no answer) or why there was none."""

    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_excerpt: str | None

    @property
    def succeeded(self) -> bool:
        """A 2xx answer received whole (a 2xx whose body never finished is a failure: the receiver hung)."""
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


class UrlRefusedError(ValueError):
    """A webhook URL the platform will not deliver to; the message says why."""


def check_url_form(url: str, private_hosts: tuple[str, ...], allow_http: bool) -> None:
    """The checks that need no DNS: http(s) only (https unless the operator allows http), a well-formed host, no
    credentials, and no literal private address (unless the operator's private hosts name it)."""
    from strata.egress import EgressError, vet_public_url

    try:
        target = vet_public_url(url, private_hosts, what="the webhook URL")
    except EgressError as exc:
        raise UrlRefusedError(exc.message) from exc
    if target.url.scheme != "https" and not allow_http:
        raise UrlRefusedError("the webhook URL must be https://")
    if "#" in url:
        raise UrlRefusedError("the webhook URL must not have a #fragment")


async def check_url(url: str, private_hosts: tuple[str, ...], allow_http: bool) -> None:
    """Refuse a URL to subscribe: `check_url_form`, then its host must resolve to public addresses only (unless
    the operator's private hosts name it). Delivery checks again, at connection time: DNS answers change."""
    from strata.egress import EgressError, vet_endpoint

    check_url_form(url, private_hosts, allow_http)
    try:
        await vet_endpoint(url, private_hosts, what="the webhook URL")
    except EgressError as exc:
        raise UrlRefusedError(exc.message) from exc


async def send(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float,
    private_hosts: tuple[str, ...],
    allow_http: bool,
    excerpt_bytes: int,
) -> AttemptResult:
    """POST `body` to `url` once: no redirects followed, every address the connection uses vetted as it is resolved,
    the whole exchange within `timeout_s`, at most `excerpt_bytes` of the answer read. Never raises for the
    receiver's or the network's failures: they are the result."""
    import aiohttp

    from strata.egress import EgressError, VettingResolver, guarded_connector, vet_public_url

    started_at, started = datetime.now(UTC), time.perf_counter()
    status: int | None = None
    error: str | None = None
    excerpt: str | None = None
    try:
        target = vet_public_url(url, private_hosts, what="the webhook URL", kind="denied")
        if target.url.scheme != "https" and not allow_http:
            raise EgressError("denied", "the webhook URL must be https://")
        resolver = VettingResolver(exempt=(target.host, target.port) if target.exempt else None)
        session = aiohttp.ClientSession(
            connector=guarded_connector(resolver),
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        )
        posting = session.post(target.url, data=body, headers=headers, allow_redirects=False)
        async with asyncio.timeout(timeout_s), session, posting as response:
            status = response.status
            excerpt = await _excerpt(response, excerpt_bytes)
        if not 200 <= status < 300:
            error = f"the receiver answered {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    except EgressError as exc:
        error = f"refused: {exc.message}"
    except TimeoutError:
        error = f"no complete answer within {timeout_s:g} s"
    except aiohttp.ClientConnectorCertificateError as exc:
        error = f"TLS certificate of {exc.host} rejected: {exc.certificate_error}"
    except aiohttp.ClientConnectorError as exc:
        error = f"cannot connect to {exc.host}:{exc.port}: {exc.os_error}"
    except aiohttp.ClientError as exc:
        error = f"the exchange failed: {type(exc).__name__}: {exc}"
    except OSError as exc:  # the resolver found no address
        error = f"cannot resolve the webhook's host: {exc}"
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    return AttemptResult(started_at, duration_ms, status, error[:MAX_ERROR_CHARS] if error else None, excerpt)


async def _excerpt(response: Any, limit: int) -> str:
    """The answer's first `limit` bytes as text (the rest is never read)."""
    if limit <= 0:
        return ""
    raw = bytearray()
    while len(raw) < limit:
        chunk = await response.content.read(limit - len(raw))
        if not chunk:
            break
        raw += chunk
    return bytes(raw).decode("utf-8", errors="replace")
