"""The egress guard: where the platform may connect on a tenant's behalf (an agent's HTTP call, a webhook delivery, an
MCP server). The URL is hostile until proven otherwise.

- Hosts are normalised once (IDNA, case and trailing dot ignored, legacy IPv4 forms such as `2130706433` or `0x7f.1`
  rewritten to dotted quads), so a rule and a URL compare as strings.
- A literal IP is vetted before anything happens; a name is vetted when it is resolved, by the resolver the
  connection uses (`VettingResolver`), so the addresses checked are the very ones connected to (no DNS-rebinding
  window). Any private, loopback, link-local, multicast, reserved, CGNAT or cloud-metadata address (including
  IPv4-mapped, 6to4, Teredo and NAT64 spellings of one) is refused, unless the operator listed the host among its
  private hosts (exact hosts, for local development and tests; tenants never set them).
"""

from __future__ import annotations

import functools
import re
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Literal

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "DEFAULT_PORTS",
    "EgressError",
    "HostRule",
    "Target",
    "VettingResolver",
    "address_problem",
    "canonical_host",
    "compile_rules",
    "guarded_connector",
    "parse_host_list",
    "vet_endpoint",
    "vet_public_url",
    "vet_url",
]

IPAddress = IPv4Address | IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_CGNAT = IPv4Network("100.64.0.0/10")
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_METADATA: dict[IPAddress, str] = {
    IPv4Address("169.254.169.254"): "the EC2/GCP/Azure instance metadata service",
    IPv4Address("169.254.170.2"): "the ECS task metadata service",
    IPv4Address("100.100.100.200"): "the Alibaba Cloud metadata service",
    IPv6Address("fd00:ec2::254"): "the EC2 IPv6 instance metadata service",
}


class EgressError(Exception):
    """Why a connection was refused or an exchange produced no answer.

    kind: "denied" (policy/SSRF), "timeout", "too_large", "unreachable", "bad_input"; message says why.
    """

    kind: str

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def parse_host_list(text: str) -> tuple[str, ...]:
    """An operator setting's comma-separated host entries (`host` or `host:port`), blanks dropped."""
    return tuple(entry.strip() for entry in text.split(",") if entry.strip())


def guarded_connector(resolver: VettingResolver) -> aiohttp.TCPConnector:
    """A connector that resolves only through `resolver` and keeps nothing between exchanges (no DNS cache, no
    pooled connection another tenant's request could reuse)."""
    return aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, force_close=True)


# --- hosts and rules ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostRule:
    """One host entry: an exact host, `*.domain` (subdomains only) or `*` (any public host), on a port or (None) the
    scheme's default port."""

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
def compile_rules(entries: tuple[str, ...], *, wildcards: bool) -> tuple[HostRule, ...]:
    """Parse host entries once; a bad entry is a ValueError that names it."""
    return tuple(_parse_rule(entry, wildcards=wildcards) for entry in entries)


def _parse_rule(entry: str, *, wildcards: bool) -> HostRule:
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
            return HostRule("any", "*", port)
        if not host.startswith("*.") or "*" in host[2:]:
            raise ValueError(f"host entry {entry!r}: a wildcard must be '*' or '*.domain'")
        name, ip = _entry_host(host[2:], entry)
        if ip is not None:
            raise ValueError(f"host entry {entry!r}: '*.' needs a domain name, not an IP")
        return HostRule("suffix", name, port)
    name, _ = _entry_host(host, entry)
    return HostRule("exact", name, port)


def _entry_host(host: str, entry: str) -> tuple[str, IPAddress | None]:
    """Normalise an entry's host exactly like a URL's, so the two compare as strings."""
    try:
        raw = yarl.URL.build(scheme="http", host=host).raw_host
        if raw is None:
            raise ValueError("no host")
        return canonical_host(raw)
    except ValueError as exc:
        raise ValueError(f"host entry {entry!r}: {exc}") from exc


def canonical_host(raw_host: str) -> tuple[str, IPAddress | None]:
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


def address_problem(ip: IPAddress) -> str | None:
    """Why an address must not be reached on a tenant's behalf, or None if it is a public unicast address."""
    if ip in _METADATA:
        return f"a cloud metadata address ({_METADATA[ip]})"
    if isinstance(ip, IPv6Address):
        embedded, form = _embedded_ipv4(ip)
        if embedded is not None:
            problem = address_problem(embedded)
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


class VettingResolver(AbstractResolver):
    """Resolves names for the connector and refuses the lot if any answer is not public.

    aiohttp connects to exactly the addresses returned here, so there is no second lookup a rebinding DNS server
    could answer differently. `exempt` is the (host, port) of the current hop when the operator's `private_hosts`
    covers it; literal IPs never reach a resolver (aiohttp skips it) and are vetted before the request instead.
    """

    def __init__(self, exempt: tuple[str, int] | None = None) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self.exempt = exempt

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
                problem = address_problem(ip_address(result["host"]))
            except ValueError:
                problem = "not an IP address"
            if problem is not None:
                raise EgressError("denied", f"{name} resolves to {result['host']}, {problem}")
        return results

    async def close(self) -> None:
        await self._inner.close()


# --- URLs --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A vetted URL (normalised host, no fragment), its host and port, and whether the operator exempted it."""

    url: yarl.URL
    host: str
    port: int
    exempt: bool

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.url.scheme, self.host, self.port)


def vet_url(
    url: str | yarl.URL, allowed: tuple[HostRule, ...], private: tuple[HostRule, ...], *, kind: str, what: str
) -> Target:
    """Parse with yarl (aiohttp's own parser, so there is no parser disagreement), normalise and check one URL."""
    try:
        parsed = url if isinstance(url, yarl.URL) else yarl.URL(url)
        scheme = parsed.scheme
        raw_host = parsed.raw_host
        port = parsed.port
    except ValueError as exc:
        raise EgressError(kind, f"{what} is not a valid URL: {exc}") from exc
    if scheme not in DEFAULT_PORTS:
        raise EgressError(kind, f"{what} must be http:// or https://, not {scheme or 'a relative URL'}")
    if not raw_host or port is None:
        raise EgressError(kind, f"{what} has no host")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise EgressError(kind, f"{what} must not carry credentials; send an Authorization header instead")
    if not 0 < port < 65536:
        raise EgressError(kind, f"{what} has an invalid port {port}")
    try:
        host, ip = canonical_host(raw_host)
    except ValueError as exc:
        raise EgressError(kind, f"{what} has an invalid host: {exc}") from exc
    default_port = DEFAULT_PORTS[scheme]
    is_ip = ip is not None
    exempt = any(rule.matches(host, port, default_port, is_ip) for rule in private)
    # `*` means any public host: reaching an operator's private host takes an entry that names it.
    if not any(rule.matches(host, port, default_port, is_ip) for rule in allowed if not exempt or rule.kind != "any"):
        shown = f"[{host}]" if ":" in host else host
        raise EgressError("denied", f"{shown}:{port} is not in the tenant's allowed hosts")
    if ip is not None and not exempt:
        problem = address_problem(ip)
        if problem is not None:
            raise EgressError("denied", f"{ip} is {problem}")
    final = parsed.with_host(host).with_fragment(None)
    if final.raw_host != host:  # the URL aiohttp sees must name the host that was checked
        raise EgressError(kind, f"{what} has a host that cannot be normalised")
    return Target(url=final, host=host, port=port, exempt=exempt)


def vet_public_url(
    url: str, private_hosts: tuple[str, ...], *, what: str = "the URL", kind: str = "bad_input"
) -> Target:
    """Check a URL that may name any public host (on any port) or one of the operator's `private_hosts`, without
    resolving it: the scheme, the host's form, credentials, and a literal IP's address. A name is vetted when it is
    resolved (`VettingResolver`, or `vet_endpoint`)."""
    private = compile_rules(tuple(private_hosts), wildcards=False)
    try:
        port = yarl.URL(url).port
    except ValueError as exc:
        raise EgressError(kind, f"{what} is not a valid URL: {exc}") from exc
    anywhere = compile_rules((f"*:{port}" if port else "*",), wildcards=True)  # any public host, on its port
    return vet_url(url, anywhere + private, private, kind=kind, what=what)


async def vet_endpoint(url: str, private_hosts: tuple[str, ...], what: str = "the URL") -> Target:
    """Refuse a URL the platform must not connect to on a tenant's behalf (an MCP server's, a webhook's): not
    http(s), or a host that is, or resolves to, a private, loopback, link-local or metadata address (unless the
    operator's `private_hosts` names it). The answer holds for this lookup only: a client that resolves again later
    is exposed to a rebinding DNS server in between, so a connection made later goes through a `VettingResolver`
    (or, where the client cannot take one, such as the MCP SDK's httpx, accepts that window)."""
    target = vet_public_url(url, private_hosts, what=what)
    if target.exempt:
        return target
    resolver = VettingResolver()
    try:
        await resolver.resolve(target.host, target.port)
    except OSError as exc:
        raise EgressError("unreachable", f"{target.host} cannot be resolved: {exc}") from exc
    finally:
        await resolver.close()
    return target
