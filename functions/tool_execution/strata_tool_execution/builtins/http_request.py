"""The `http_request` built-in tool: an agent's HTTP call, fenced by the tenant's allowlist and an SSRF guard.

An agent chooses the URL, so the URL is hostile until proven otherwise. Three checks stand between it and the network:

1. The host (IDNA-normalised, case and trailing dot ignored, legacy IPv4 forms such as `2130706433` or `0x7f.1`
   rewritten to dotted quads) and port must match the tenant's allowlist.
2. A literal IP is vetted before anything happens; a name is vetted when it is resolved, by the resolver the
   connection uses, so the addresses checked are the very ones connected to (no DNS-rebinding window). Any
   private, loopback, link-local, multicast, reserved, CGNAT or cloud-metadata address (including IPv4-mapped,
   6to4, Teredo and NAT64 spellings of one) refuses the call, unless the operator listed the host in
   `private_hosts`.
3. Redirects are followed here, not by aiohttp, so each hop goes through checks 1 and 2 again.

Checks 1 and 2 are the platform's egress guard (`strata.egress`), which webhook deliveries and MCP servers share.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl

from strata.egress import (
    EgressError,
    HostRule,
    Target,
    VettingResolver,
    compile_rules,
    guarded_connector,
    vet_endpoint,
    vet_url,
)

__all__ = ["HttpPolicy", "HttpToolError", "http_request", "vet_endpoint"]

# The guard (strata.egress) raises the tool's error: one exception type, whichever check refused the call.
HttpToolError = EgressError

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
_ARGUMENTS = frozenset({"url", "method", "headers", "json", "body", "timeout_s"})
# Headers the tool owns: hop-by-hop ones (RFC 9110 7.6.1) and the ones whose override smuggles or misroutes a request.
_FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
# Credentials that must not follow a redirect to another origin.
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_URL_CHARS = 8192
_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class HttpPolicy:
    """Where a tenant's agents may send HTTP requests, and how much an exchange may cost.

    `allowed_hosts` is the tenant's allowlist: exact names or IPs, `*.example.com` (subdomains only, not the apex),
    or `*` (any public host); each optionally with `:port`. An entry without a port allows the scheme's default port
    only. `private_hosts` is the operator's (never the tenant's) list of exact hosts, same port rule, that may resolve
    to private addresses, for local development and tests; `*` in the allowlist does not reach them.
    """

    allowed_hosts: tuple[str, ...]
    private_hosts: tuple[str, ...] = ()
    timeout_s: float = 10.0
    max_response_bytes: int = 1_000_000
    max_request_bytes: int = 1_000_000
    max_redirects: int = 5

    def __post_init__(self) -> None:
        """Refuse a malformed policy when it is built, not on an agent's first call."""
        for name in ("allowed_hosts", "private_hosts"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"HttpPolicy.{name} is a tuple of host entries, not a string")
        compile_rules(tuple(self.allowed_hosts), wildcards=True)
        compile_rules(tuple(self.private_hosts), wildcards=False)
        if not self.timeout_s > 0:
            raise ValueError("HttpPolicy.timeout_s must be positive")
        if self.max_response_bytes < 0 or self.max_request_bytes < 0 or self.max_redirects < 0:
            raise ValueError("HttpPolicy's limits cannot be negative")


async def http_request(arguments: dict[str, Any], policy: HttpPolicy) -> dict[str, Any]:
    """Make one HTTP exchange (following allowed redirects) and return the final answer, 4xx/5xx included."""
    request = _parse_arguments(arguments, policy)
    allowed = compile_rules(tuple(policy.allowed_hosts), wildcards=True)
    private = compile_rules(tuple(policy.private_hosts), wildcards=False)
    target = vet_url(request.url, allowed, private, kind="bad_input", what="url")
    started = time.perf_counter()
    try:
        async with asyncio.timeout(request.timeout_s):
            resolver = VettingResolver()
            connector = guarded_connector(resolver)
            async with aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=request.timeout_s),
            ) as session:
                return await _exchange(session, resolver, request, target, allowed, private, policy, started)
    except HttpToolError:
        raise
    except TimeoutError as exc:
        raise HttpToolError("timeout", f"no complete answer within {request.timeout_s:g} s") from exc
    except aiohttp.ClientConnectorDNSError as exc:
        raise HttpToolError("unreachable", f"cannot resolve {exc.host}: {exc.os_error}") from exc
    except aiohttp.ClientConnectorCertificateError as exc:
        raise HttpToolError("unreachable", f"TLS certificate of {exc.host} rejected: {exc.certificate_error}") from exc
    except aiohttp.ClientConnectorError as exc:
        raise HttpToolError("unreachable", f"cannot connect to {exc.host}:{exc.port}: {exc.os_error}") from exc
    except aiohttp.ClientError as exc:
        raise HttpToolError("unreachable", f"the exchange failed: {type(exc).__name__}: {exc}") from exc


# --- arguments ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    url: str
    method: str
    headers: dict[str, str]
    body: bytes | None
    timeout_s: float


def _parse_arguments(arguments: dict[str, Any], policy: HttpPolicy) -> _Request:
    """Check the agent's arguments; a null optional argument counts as absent (models often send them)."""
    if not isinstance(arguments, dict):
        raise HttpToolError("bad_input", "arguments must be an object")
    unknown = sorted(set(arguments) - _ARGUMENTS)
    if unknown:
        raise HttpToolError("bad_input", f"unknown argument(s): {', '.join(map(str, unknown))}")

    url = arguments.get("url")
    if not isinstance(url, str) or not url.strip():
        raise HttpToolError("bad_input", "url is required: an http:// or https:// URL")
    if len(url) > _MAX_URL_CHARS:
        raise HttpToolError("bad_input", f"url is longer than {_MAX_URL_CHARS} characters")

    method = arguments.get("method")
    if method is None:
        method = "GET"
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise HttpToolError("bad_input", f"method must be one of {', '.join(sorted(_METHODS))}")
    method = method.upper()

    headers = _parse_headers(arguments.get("headers"))

    json_value = arguments.get("json")
    text = arguments.get("body")
    if json_value is not None and text is not None:
        raise HttpToolError("bad_input", "give json or body, not both")
    body: bytes | None = None
    content_type: str | None = None
    if json_value is not None:
        try:
            body = json.dumps(json_value, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise HttpToolError("bad_input", f"json is not a JSON value: {exc}") from exc
        content_type = "application/json"
    elif text is not None:
        if not isinstance(text, str):
            raise HttpToolError("bad_input", "body must be a string (use json for structured data)")
        body = text.encode()
        content_type = "text/plain; charset=utf-8"
    if body is not None and len(body) > policy.max_request_bytes:
        raise HttpToolError(
            "too_large", f"the request body is {len(body)} bytes, over the limit of {policy.max_request_bytes}"
        )
    if content_type is not None and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = content_type

    timeout_s = arguments.get("timeout_s")
    if timeout_s is None:
        timeout_s = policy.timeout_s
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not 0 < timeout_s < float("inf"):
        raise HttpToolError("bad_input", "timeout_s must be a positive number of seconds")
    return _Request(
        url=url.strip(), method=method, headers=headers, body=body, timeout_s=min(timeout_s, policy.timeout_s)
    )


def _parse_headers(value: Any) -> dict[str, str]:
    """Header names must be tokens, values single-line; the tool owns Host, framing and hop-by-hop headers."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HttpToolError("bad_input", "headers must be an object of header name to string value")
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for name, header_value in value.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise HttpToolError("bad_input", f"invalid header name {name!r}")
        if not isinstance(header_value, str) or any(c in header_value for c in "\r\n\0"):
            raise HttpToolError("bad_input", f"header {name} must have a single-line string value")
        lowered = name.lower()
        if lowered in _FORBIDDEN_HEADERS:
            raise HttpToolError("bad_input", f"header {name} cannot be set: the tool manages it")
        if lowered in seen:
            raise HttpToolError("bad_input", f"header {name} is given twice")
        seen.add(lowered)
        headers[name] = header_value
    return headers


# --- the exchange ------------------------------------------------------------------------------------------------


async def _exchange(
    session: aiohttp.ClientSession,
    resolver: VettingResolver,
    request: _Request,
    target: Target,
    allowed: tuple[HostRule, ...],
    private: tuple[HostRule, ...],
    policy: HttpPolicy,
    started: float,
) -> dict[str, Any]:
    """Send the request and follow redirects by hand, vetting every hop and stripping credentials across origins."""
    method, headers, body = request.method, dict(request.headers), request.body
    for hop in range(policy.max_redirects + 1):
        resolver.exempt = (target.host, target.port) if target.exempt else None
        async with session.request(method, target.url, headers=headers, data=body, allow_redirects=False) as response:
            location = response.headers.get("Location") if response.status in _REDIRECT_STATUSES else None
            if location is None:
                raw = b"" if method == "HEAD" else await _read_capped(response, policy.max_response_bytes)
                return _answer(response, raw, target, started)
            status = response.status
        if hop == policy.max_redirects:
            break
        try:
            next_url = target.url.join(yarl.URL(location))
        except ValueError as exc:
            raise HttpToolError("denied", f"redirect to an invalid URL {location!r}: {exc}") from exc
        following = vet_url(next_url, allowed, private, kind="denied", what="redirect target")
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
            headers = {name: value for name, value in headers.items() if name.lower() != "content-type"}
        if following.origin != target.origin:
            headers = {name: value for name, value in headers.items() if name.lower() not in _CREDENTIAL_HEADERS}
        target = following
    raise HttpToolError("denied", f"more than {policy.max_redirects} redirects")


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Read the (decompressed) body in chunks and give up as soon as it passes the limit, never truncating.

    The limit is on decompressed bytes, so a small gzip bomb is cut off too; Content-Length is trusted for an early
    refusal only when the body is not encoded (then it is the size that will be read).
    """
    declared = response.content_length
    if declared is not None and declared > limit and "Content-Encoding" not in response.headers:
        raise HttpToolError("too_large", f"the response declares {declared} bytes, over the limit of {limit}")
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            raise HttpToolError("too_large", f"the response body is over the limit of {limit} bytes")
    return bytes(body)


def _answer(response: aiohttp.ClientResponse, raw: bytes, target: Target, started: float) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    text = raw.decode("utf-8", errors="replace")
    parsed: Any = None
    mimetype = response.content_type.lower()
    if raw and (mimetype == "application/json" or mimetype.endswith("+json")):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    return {
        "status": response.status,
        "headers": headers,
        "body": text,
        "json": parsed,
        "url": str(target.url),
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
    }
