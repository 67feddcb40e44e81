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
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import socket
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any, Literal

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["HttpPolicy", "HttpToolError", "http_request"]

IPAddress = IPv4Address | IPv6Address

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
_ARGUMENTS = frozenset({"url", "method", "headers", "json", "body", "timeout_s"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
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
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_MAX_URL_CHARS = 8192
_CHUNK_BYTES = 64 * 1024

_CGNAT = IPv4Network("100.64.0.0/10")
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_METADATA: dict[IPAddress, str] = {
    IPv4Address("169.254.169.254"): "the EC2/GCP/Azure instance metadata service",
    IPv4Address("169.254.170.2"): "the ECS task metadata service",
    IPv4Address("100.100.100.200"): "the Alibaba Cloud metadata service",
    IPv6Address("fd00:ec2::254"): "the EC2 IPv6 instance metadata service",
}


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
        _compile_rules(tuple(self.allowed_hosts), wildcards=True)
        _compile_rules(tuple(self.private_hosts), wildcards=False)
        if not self.timeout_s > 0:
            raise ValueError("HttpPolicy.timeout_s must be positive")
        if self.max_response_bytes < 0 or self.max_request_bytes < 0 or self.max_redirects < 0:
            raise ValueError("HttpPolicy's limits cannot be negative")


class HttpToolError(Exception):
    """Why a call produced no answer.

    kind: "denied" (policy/SSRF), "timeout", "too_large", "unreachable", "bad_input"; message says why.
    """

    kind: str

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


async def http_request(arguments: dict[str, Any], policy: HttpPolicy) -> dict[str, Any]:
    """Make one HTTP exchange (following allowed redirects) and return the final answer, 4xx/5xx included."""
    request = _parse_arguments(arguments, policy)
    allowed = _compile_rules(tuple(policy.allowed_hosts), wildcards=True)
    private = _compile_rules(tuple(policy.private_hosts), wildcards=False)
    target = _vet_url(request.url, allowed, private, kind="bad_input", what="url")
    started = time.perf_counter()
    try:
        async with asyncio.timeout(request.timeout_s):
            resolver = _VettingResolver()
            connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, force_close=True)
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


# --- hosts and the allowlist -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    kind: Literal["exact", "suffix", "any"]
    host: str
    port: int | None

    def matches(self, host: str, port: int, default_port: int, is_ip: bool) -> bool:
        if port != (self.port if self.port is not None else default_port):
            return False
        if self.kind == "any":
            return True
        if self.kind == "suffix":
            return not is_ip and host.endswith("." + self.host)
        return host == self.host


@functools.lru_cache(maxsize=256)
def _compile_rules(entries: tuple[str, ...], *, wildcards: bool) -> tuple[_Rule, ...]:
    """Parse host entries once; a bad entry is a ValueError that names it."""
    return tuple(_parse_rule(entry, wildcards=wildcards) for entry in entries)


def _parse_rule(entry: str, *, wildcards: bool) -> _Rule:
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"empty or non-string host entry {entry!r}")
    text = entry.strip()
    port_text: str | None = None
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise ValueError(f"host entry {entry!r} is not [IPv6] or [IPv6]:port")
        host, port_text = text[1:end], (rest[1:] if rest else None)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text
    port: int | None = None
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"host entry {entry!r} has an invalid port")
        port = int(port_text)
    if "*" in host:
        if not wildcards:
            raise ValueError(f"host entry {entry!r}: wildcards are not allowed here")
        if host == "*":
            return _Rule("any", "*", port)
        if not host.startswith("*.") or "*" in host[2:]:
            raise ValueError(f"host entry {entry!r}: a wildcard must be '*' or '*.domain'")
        name, ip = _entry_host(host[2:], entry)
        if ip is not None:
            raise ValueError(f"host entry {entry!r}: '*.' needs a domain name, not an IP")
        return _Rule("suffix", name, port)
    name, _ = _entry_host(host, entry)
    return _Rule("exact", name, port)


def _entry_host(host: str, entry: str) -> tuple[str, IPAddress | None]:
    """Normalise an entry's host exactly like a URL's, so the two compare as strings."""
    try:
        raw = yarl.URL.build(scheme="http", host=host).raw_host
        if raw is None:
            raise ValueError("no host")
        return _canonical_host(raw)
    except ValueError as exc:
        raise ValueError(f"host entry {entry!r}: {exc}") from exc


def _canonical_host(raw_host: str) -> tuple[str, IPAddress | None]:
    """One spelling per host: lowercase IDNA (yarl did that), no trailing dot, IPs in their canonical form.

    Legacy IPv4 spellings are parsed the way the WHATWG URL standard (and inet_aton) does, so `http://2130706433/`,
    `http://0x7f.1/` and `http://0177.0.0.1/` are all 127.0.0.1 here, as they would be to a resolver.
    """
    host = raw_host.lower()
    if ":" in host:
        if "%" in host:
            raise ValueError("IPv6 zone identifiers are not allowed")
        ip6 = IPv6Address(host)
        return ip6.compressed, ip6
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise ValueError("the host is empty")
    if _ends_in_number(host):
        ip4 = _parse_legacy_ipv4(host)
        return str(ip4), ip4
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError(f"{host!r} is not a valid host name")
    return host, None


def _ends_in_number(host: str) -> bool:
    """WHATWG's test: a host whose last label is numeric is an IPv4 address (or invalid), never a name."""
    last = host.split(".")[-1]
    return (last.isascii() and last.isdigit()) or _ipv4_number(last) is not None


def _ipv4_number(part: str) -> int | None:
    """One part of a legacy IPv4 address: decimal, 0x-hex or 0-octal; None if it is not a number."""
    digits, radix = part, 10
    if part[:2] in ("0x", "0X"):
        digits, radix = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        digits, radix = part[1:], 8
    if digits == "":
        return 0 if radix != 10 else None
    allowed = {16: "0123456789abcdefABCDEF", 8: "01234567", 10: "0123456789"}[radix]
    if not all(c in allowed for c in digits):
        return None
    return int(digits, radix)


def _parse_legacy_ipv4(host: str) -> IPv4Address:
    parts = host.split(".")
    numbers = [_ipv4_number(part) for part in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    address = values[-1]
    for index, n in enumerate(values[:-1]):
        address += n * 256 ** (3 - index)
    return IPv4Address(address)


# --- addresses ---------------------------------------------------------------------------------------------------


def _address_problem(ip: IPAddress) -> str | None:
    """Why an address must not be reached from a tenant's tool call, or None if it is a public unicast address."""
    if ip in _METADATA:
        return f"a cloud metadata address ({_METADATA[ip]})"
    if isinstance(ip, IPv6Address):
        embedded, form = _embedded_ipv4(ip)
        if embedded is not None:
            problem = _address_problem(embedded)
            if problem is not None:
                return f"the {form} form of {embedded}, {problem}"
            if form in ("IPv4-mapped", "NAT64"):
                return None  # the packets go to the embedded address, which is public
        if ip in _NAT64_LOCAL:
            return "a local-use NAT64 address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _CGNAT:
        return "a carrier-grade NAT address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(ip: IPv6Address) -> tuple[IPv4Address | None, str]:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip.teredo is not None:
        return ip.teredo[1], "Teredo"
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    return None, ""


class _VettingResolver(AbstractResolver):
    """Resolves names for the connector and refuses the lot if any answer is not public.

    aiohttp connects to exactly the addresses returned here, so there is no second lookup a rebinding DNS server
    could answer differently. `exempt` is the (host, port) of the current hop when the operator's `private_hosts`
    covers it; literal IPs never reach a resolver (aiohttp skips it) and are vetted before the request instead.
    """

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self.exempt: tuple[str, int] | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        name = host.rstrip(".").lower()
        if self.exempt == (name, port):
            return results
        if not results:
            raise OSError(f"no addresses for {name}")
        for result in results:
            try:
                problem = _address_problem(ip_address(result["host"]))
            except ValueError:
                problem = "not an IP address"
            if problem is not None:
                raise HttpToolError("denied", f"{name} resolves to {result['host']}, {problem}")
        return results

    async def close(self) -> None:
        await self._inner.close()


# --- the exchange ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: yarl.URL
    host: str
    port: int
    exempt: bool

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.url.scheme, self.host, self.port)


def _vet_url(
    url: str | yarl.URL, allowed: tuple[_Rule, ...], private: tuple[_Rule, ...], *, kind: str, what: str
) -> _Target:
    """Parse with yarl (aiohttp's own parser, so there is no parser disagreement), normalise and check one URL."""
    try:
        parsed = url if isinstance(url, yarl.URL) else yarl.URL(url)
        scheme = parsed.scheme
        raw_host = parsed.raw_host
        port = parsed.port
    except ValueError as exc:
        raise HttpToolError(kind, f"{what} is not a valid URL: {exc}") from exc
    if scheme not in _DEFAULT_PORTS:
        raise HttpToolError(kind, f"{what} must be http:// or https://, not {scheme or 'a relative URL'}")
    if not raw_host or port is None:
        raise HttpToolError(kind, f"{what} has no host")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise HttpToolError(kind, f"{what} must not carry credentials; send an Authorization header instead")
    if not 0 < port < 65536:
        raise HttpToolError(kind, f"{what} has an invalid port {port}")
    try:
        host, ip = _canonical_host(raw_host)
    except ValueError as exc:
        raise HttpToolError(kind, f"{what} has an invalid host: {exc}") from exc
    default_port = _DEFAULT_PORTS[scheme]
    is_ip = ip is not None
    exempt = any(rule.matches(host, port, default_port, is_ip) for rule in private)
    # `*` means any public host: reaching an operator's private host takes an entry that names it.
    if not any(rule.matches(host, port, default_port, is_ip) for rule in allowed if not exempt or rule.kind != "any"):
        shown = f"[{host}]" if ":" in host else host
        raise HttpToolError("denied", f"{shown}:{port} is not in the tenant's allowed hosts")
    if ip is not None and not exempt:
        problem = _address_problem(ip)
        if problem is not None:
            raise HttpToolError("denied", f"{ip} is {problem}")
    final = parsed.with_host(host).with_fragment(None)
    if final.raw_host != host:  # the URL aiohttp sees must name the host that was checked
        raise HttpToolError(kind, f"{what} has a host that cannot be normalised")
    return _Target(url=final, host=host, port=port, exempt=exempt)


async def _exchange(
    session: aiohttp.ClientSession,
    resolver: _VettingResolver,
    request: _Request,
    target: _Target,
    allowed: tuple[_Rule, ...],
    private: tuple[_Rule, ...],
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
        following = _vet_url(next_url, allowed, private, kind="denied", what="redirect target")
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


def _answer(response: aiohttp.ClientResponse, raw: bytes, target: _Target, started: float) -> dict[str, Any]:
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


async def vet_endpoint(url: str, private_hosts: tuple[str, ...], what: str = "the URL") -> None:
    """Refuse a URL the platform must not connect to on a tenant's behalf (an MCP server's): not http(s), or a host
    that is, or resolves to, a private, loopback, link-local or metadata address (unless the operator's
    `private_hosts` names it). The answer holds for this lookup; a client that resolves again later (httpx) is
    exposed to a rebinding DNS server in between, which is why only tenants' MCP servers take this path."""
    private = _compile_rules(tuple(private_hosts), wildcards=False)
    try:
        port = yarl.URL(url).port
    except ValueError as exc:
        raise HttpToolError("bad_input", f"{what} is not a valid URL: {exc}") from exc
    anywhere = _compile_rules((f"*:{port}" if port else "*",), wildcards=True)  # any public host, on its port
    target = _vet_url(url, anywhere + private, private, kind="bad_input", what=what)
    if target.exempt:
        return
    resolver = _VettingResolver()
    try:
        await resolver.resolve(target.host, target.port)
    except OSError as exc:
        raise HttpToolError("unreachable", f"{target.host} cannot be resolved: {exc}") from exc
    finally:
        await resolver.close()
