"""The http_request tool against real loopback servers: answers, limits, and the SSRF guard refusing what it must.

The servers listen on 127.0.0.1, which the guard refuses by default; each test that must reach them lists their
`127.0.0.1:<port>` in the operator's `private_hosts`. Names are resolved through a patched `socket.getaddrinfo` where
a test needs a name to point somewhere (rebinding, mixed answers, IDNA), so no test depends on outside DNS.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from strata.egress import address_problem as _address_problem
from strata_tool_execution.builtins.http_request import HttpPolicy, HttpToolError, http_request

HUGE_BYTES = 2_000_000


@dataclass
class Server:
    """A loopback test server and the requests it received (method and path), to prove what was never sent."""

    runner: web.AppRunner
    port: int
    hits: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"


def make_app(hits: list[str]) -> web.Application:
    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        hits.append(f"{request.method} {request.path_qs}")
        response: web.StreamResponse = await handler(request)
        return response

    async def json_route(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world", "items": [1, 2, 3]})

    async def text_route(request: web.Request) -> web.Response:
        return web.Response(text="plain text ✓")

    async def bad_utf8(request: web.Request) -> web.Response:
        return web.Response(body=b"caf\xc3\xa9 \xff!", content_type="text/plain")

    async def bad_json(request: web.Request) -> web.Response:
        return web.Response(text="{not json", content_type="application/json")

    async def echo(request: web.Request) -> web.Response:
        body = await request.text()
        headers = {name.lower(): value for name, value in request.headers.items()}
        return web.json_response({"method": request.method, "headers": headers, "body": body})

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="no such thing")

    async def redirect(request: web.Request) -> web.Response:
        code = int(request.query.get("status", "302"))
        return web.Response(status=code, headers={"Location": request.query["location"]})

    async def loop(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/loop"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="finally")

    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * HUGE_BYTES, content_type="application/octet-stream")

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(HUGE_BYTES // 65536 + 1):
            await response.write(b"y" * 65536)
        await response.write_eof()
        return response

    async def bomb(request: web.Request) -> web.Response:
        response = web.Response(body=b"\0" * HUGE_BYTES, content_type="application/octet-stream")
        response.enable_compression(web.ContentCoding.gzip)
        return response

    app = web.Application(middlewares=[record])
    app.router.add_get("/json", json_route)
    app.router.add_get("/text", text_route)
    app.router.add_get("/bad-utf8", bad_utf8)
    app.router.add_get("/bad-json", bad_json)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/status/{code}", status)
    app.router.add_route("*", "/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/slow", slow)
    app.router.add_get("/huge", huge)
    app.router.add_get("/stream", stream)
    app.router.add_get("/bomb", bomb)
    return app


async def start_server() -> Server:
    hits: list[str] = []
    # handler_cancellation: the slow handler stops when the tool gives up, so cleanup does not wait for it.
    runner = web.AppRunner(make_app(hits), handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    return Server(runner=runner, port=port, hits=hits)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    running = await start_server()
    yield running
    await running.runner.cleanup()


@pytest.fixture
async def other_server() -> AsyncIterator[Server]:
    """A second origin (another port on loopback) for cross-origin redirects."""
    running = await start_server()
    yield running
    await running.runner.cleanup()


def reach(*servers: Server, **limits: Any) -> HttpPolicy:
    """A policy that allows, and exempts from the private-address guard, exactly the given test servers."""
    hosts = tuple(s.hostport for s in servers)
    return HttpPolicy(allowed_hosts=hosts, private_hosts=hosts, **limits)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the tool so much as builds an HTTP session or looks a name up."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the tool attempted a connection or a DNS lookup")

    monkeypatch.setattr(aiohttp, "ClientSession", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names the test controls: name -> addresses (an empty list answers 'no such name'); others resolve as usual."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in table:
            return real(host, port, family, type, proto, flags)
        if not table[name]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers: list[Any] = []
        for address in table[name]:
            if ":" in address:
                answers.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0)))
            else:
                answers.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port)))
        return answers

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


async def refused(arguments: dict[str, Any], policy: HttpPolicy) -> HttpToolError:
    with pytest.raises(HttpToolError) as caught:
        await http_request(arguments, policy)
    return caught.value


# --- answers -----------------------------------------------------------------------------------------------------


async def test_get_json_is_parsed(server: Server) -> None:
    answer = await http_request({"url": f"{server.base}/json"}, reach(server))

    assert answer["status"] == 200
    assert answer["json"] == {"hello": "world", "items": [1, 2, 3]}
    assert json.loads(answer["body"]) == answer["json"]
    assert answer["headers"]["content-type"].startswith("application/json")
    assert answer["url"] == f"{server.base}/json"
    assert isinstance(answer["elapsed_ms"], float)
    assert answer["elapsed_ms"] > 0
    assert set(answer) == {"status", "headers", "body", "json", "url", "elapsed_ms"}


async def test_text_is_returned_and_invalid_utf8_replaced(server: Server) -> None:
    text = await http_request({"url": f"{server.base}/text"}, reach(server))
    broken = await http_request({"url": f"{server.base}/bad-utf8"}, reach(server))
    bad_json = await http_request({"url": f"{server.base}/bad-json"}, reach(server))

    assert (text["body"], text["json"]) == ("plain text ✓", None)
    assert broken["body"] == "café \ufffd!"
    assert (bad_json["body"], bad_json["json"]) == ("{not json", None)


async def test_post_json_is_echoed(server: Server) -> None:
    payload = {"query": "weather", "days": [1, 2], "exact": True, "nothing": None}
    answer = await http_request({"url": f"{server.base}/echo", "method": "post", "json": payload}, reach(server))

    echoed = answer["json"]
    assert echoed["method"] == "POST"
    assert json.loads(echoed["body"]) == payload
    assert echoed["headers"]["content-type"] == "application/json"


async def test_headers_and_text_body_are_sent(server: Server) -> None:
    arguments = {
        "url": f"{server.base}/echo?x=1",
        "method": "PUT",
        "headers": {"X-Trace-Id": "abc-123", "Accept": "application/json"},
        "body": "hello ✓",
    }
    echoed = (await http_request(arguments, reach(server)))["json"]

    assert echoed["method"] == "PUT"
    assert echoed["body"] == "hello ✓"
    assert echoed["headers"]["x-trace-id"] == "abc-123"
    assert echoed["headers"]["accept"] == "application/json"
    assert echoed["headers"]["content-type"] == "text/plain; charset=utf-8"
    assert "cookie" not in echoed["headers"]


async def test_head_has_an_empty_body(server: Server) -> None:
    answer = await http_request({"url": f"{server.base}/echo", "method": "HEAD"}, reach(server))

    assert (answer["status"], answer["body"], answer["json"]) == (200, "", None)


async def test_an_error_status_is_an_answer(server: Server) -> None:
    answer = await http_request({"url": f"{server.base}/status/404"}, reach(server))
    failing = await http_request({"url": f"{server.base}/status/503"}, reach(server))

    assert (answer["status"], answer["body"]) == (404, "no such thing")
    assert failing["status"] == 503


async def test_a_body_exactly_at_the_limit_is_read(server: Server) -> None:
    size = len("plain text ✓".encode())
    answer = await http_request({"url": f"{server.base}/text"}, reach(server, max_response_bytes=size))

    assert answer["body"] == "plain text ✓"


# --- the allowlist -----------------------------------------------------------------------------------------------


async def test_a_host_not_in_the_allowlist_is_denied(no_network: None) -> None:
    policy = HttpPolicy(allowed_hosts=("api.example.com", "*.example.org"))

    for url in ("http://other.example.com/", "https://example.org/", "https://api.example.com.evil.net/"):
        error = await refused({"url": url}, policy)
        assert error.kind == "denied", url
        assert "not in the tenant's allowed hosts" in str(error)
    assert (await refused({"url": "https://x.example.com/"}, HttpPolicy(allowed_hosts=()))).kind == "denied"


async def test_an_entry_without_a_port_allows_only_the_default_port(no_network: None) -> None:
    policy = HttpPolicy(allowed_hosts=("api.example.com", "data.example.com:8443"))

    for url in ("http://api.example.com:8080/", "https://api.example.com:80/", "https://data.example.com/"):
        assert (await refused({"url": url}, policy)).kind == "denied", url


async def test_a_private_host_needs_more_than_a_star(server: Server) -> None:
    """`*` is any public host; the operator's loopback exemption does not widen a tenant's `*` to it."""
    policy = HttpPolicy(allowed_hosts=("*", f"*:{server.port}"), private_hosts=(server.hostport,))

    error = await refused({"url": f"{server.base}/json"}, policy)

    assert error.kind == "denied"
    assert server.hits == []


async def test_names_match_case_trailing_dot_and_wildcards(server: Server, fake_dns: dict[str, list[str]]) -> None:
    fake_dns.update({"api.example.test": ["127.0.0.1"], "example.test": ["127.0.0.1"]})
    policy = HttpPolicy(
        allowed_hosts=(f"*.Example.TEST:{server.port}",),
        private_hosts=(f"api.example.test:{server.port}", f"example.test:{server.port}"),
    )

    answer = await http_request({"url": f"http://API.Example.Test.:{server.port}/json"}, policy)
    apex = await refused({"url": f"http://example.test:{server.port}/json"}, policy)

    assert answer["status"] == 200
    assert answer["url"] == f"http://api.example.test:{server.port}/json"
    assert apex.kind == "denied"
    assert server.hits == ["GET /json"]


async def test_internationalised_names_are_idna_normalised(server: Server, fake_dns: dict[str, list[str]]) -> None:
    fake_dns["xn--bcher-kva.test"] = ["127.0.0.1"]
    policy = HttpPolicy(allowed_hosts=(f"bücher.test:{server.port}",), private_hosts=(f"BÜCHER.test:{server.port}",))

    answer = await http_request({"url": f"http://BÜCHER.test:{server.port}/json"}, policy)

    assert answer["status"] == 200
    assert answer["url"] == f"http://xn--bcher-kva.test:{server.port}/json"


# --- the SSRF guard ----------------------------------------------------------------------------------------------

ANY_HOST = HttpPolicy(allowed_hosts=("*", "*:8080", "localhost", "[::1]"))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.1:8080/admin", "private"),
        ("http://172.16.0.5/", "private"),
        ("http://169.254.169.254/latest/meta-data/iam/", "metadata"),
        ("http://169.254.170.2/v2/credentials", "metadata"),
        ("http://100.100.100.200/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/", "metadata"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1, a loopback"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://[2002:7f00:1::]/", "6to4 form of 127.0.0.1"),
        ("http://[64:ff9b::a00:1]/", "NAT64 form of 10.0.0.1"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fc00::1]/", "private"),
        ("http://2130706433/", "127.0.0.1 is a loopback"),
        ("http://0x7f000001/", "127.0.0.1 is a loopback"),
        ("http://0x7f.1/", "127.0.0.1 is a loopback"),
        ("http://0177.0.0.1/", "127.0.0.1 is a loopback"),
        ("http://127.1/", "127.0.0.1 is a loopback"),
        ("http://017700000001./", "127.0.0.1 is a loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "private"),
        ("https://169.254.169.254/", "metadata"),
    ],
)
async def test_private_targets_are_refused_before_connecting(url: str, why: str, no_network: None) -> None:
    error = await refused({"url": url}, ANY_HOST)

    assert error.kind == "denied"
    assert why in str(error)


async def test_a_name_resolving_to_loopback_is_refused_by_the_resolver(server: Server) -> None:
    """`localhost` is allowed and its port is the server's, but only the IP is exempt: the resolver must say no."""
    policy = HttpPolicy(allowed_hosts=(f"localhost:{server.port}",), private_hosts=(server.hostport,))

    error = await refused({"url": f"http://localhost:{server.port}/json"}, policy)

    assert error.kind == "denied"
    assert "localhost resolves to" in str(error)
    assert "loopback" in str(error)
    assert server.hits == []


@pytest.mark.parametrize(
    "answers",
    [
        ["93.184.216.34", "127.0.0.1"],  # a rebinding name: one public answer does not excuse a private one
        ["2606:2800:220:1::1", "10.1.2.3"],
        ["169.254.169.254"],
        ["100.100.100.200"],
        ["::1"],
        ["::ffff:10.0.0.1"],
        ["fd00:ec2::254"],
        ["2002:a9fe:a9fe::1"],
    ],
)
async def test_every_resolved_address_is_vetted(answers: list[str], fake_dns: dict[str, list[str]]) -> None:
    fake_dns["svc.example.test"] = answers

    error = await refused({"url": "https://svc.example.test/"}, HttpPolicy(allowed_hosts=("svc.example.test",)))

    assert error.kind == "denied"
    assert "svc.example.test resolves to" in str(error)


async def test_a_private_name_connects_to_the_vetted_address(server: Server, fake_dns: dict[str, list[str]]) -> None:
    fake_dns["svc.internal.test"] = ["127.0.0.1"]
    entry = f"svc.internal.test:{server.port}"

    answer = await http_request(
        {"url": f"http://svc.internal.test:{server.port}/json"},
        HttpPolicy(allowed_hosts=(entry,), private_hosts=(entry,)),
    )

    assert answer["json"] == {"hello": "world", "items": [1, 2, 3]}
    assert server.hits == ["GET /json"]


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"])
def test_public_addresses_pass_the_guard(address: str) -> None:
    assert _address_problem(ip_address(address)) is None


# --- redirects ---------------------------------------------------------------------------------------------------


async def test_a_redirect_to_an_allowed_path_is_followed(server: Server) -> None:
    answer = await http_request({"url": f"{server.base}/redirect?location=/json"}, reach(server))

    assert answer["status"] == 200
    assert answer["json"] == {"hello": "world", "items": [1, 2, 3]}
    assert answer["url"] == f"{server.base}/json"


async def test_a_303_turns_a_post_into_a_get_and_a_307_keeps_it(server: Server) -> None:
    see_other = await http_request(
        {"url": f"{server.base}/redirect?status=303&location=/echo", "method": "POST", "json": {"a": 1}},
        reach(server),
    )
    temporary = await http_request(
        {"url": f"{server.base}/redirect?status=307&location=/echo", "method": "POST", "json": {"a": 1}},
        reach(server),
    )

    assert (see_other["json"]["method"], see_other["json"]["body"]) == ("GET", "")
    assert "content-type" not in see_other["json"]["headers"]
    assert (temporary["json"]["method"], temporary["json"]["body"]) == ("POST", '{"a":1}')


async def test_a_redirect_to_a_host_not_allowed_is_denied(server: Server) -> None:
    error = await refused({"url": f"{server.base}/redirect?location=http://evil.example.com/steal"}, reach(server))

    assert error.kind == "denied"
    assert "evil.example.com:80 is not in the tenant's allowed hosts" in str(error)


async def test_a_redirect_to_the_metadata_service_is_denied(server: Server) -> None:
    policy = HttpPolicy(allowed_hosts=("*", server.hostport), private_hosts=(server.hostport,))

    error = await refused({"url": f"{server.base}/redirect?location=http://169.254.169.254/latest/meta-data/"}, policy)

    assert error.kind == "denied"
    assert "metadata" in str(error)
    assert server.hits == ["GET /redirect?location=http://169.254.169.254/latest/meta-data/"]


async def test_a_redirect_to_another_scheme_is_denied(server: Server) -> None:
    error = await refused({"url": f"{server.base}/redirect?location=file:///etc/passwd"}, reach(server))

    assert error.kind == "denied"
    assert "http:// or https://" in str(error)


async def test_too_many_redirects_are_denied(server: Server) -> None:
    error = await refused({"url": f"{server.base}/loop"}, reach(server, max_redirects=3))
    none_allowed = await refused({"url": f"{server.base}/redirect?location=/json"}, reach(server, max_redirects=0))

    assert (error.kind, str(error)) == ("denied", "more than 3 redirects")
    assert none_allowed.kind == "denied"
    assert server.hits.count("GET /loop") == 4


async def test_credentials_are_dropped_on_a_cross_origin_redirect(server: Server, other_server: Server) -> None:
    secrets = {"Authorization": "Bearer s3cret", "Cookie": "session=1", "X-Request-Id": "r-1"}
    hop = f"{server.base}/redirect?status=307&location={other_server.base}/echo"

    answer = await http_request({"url": hop, "headers": secrets}, reach(server, other_server))

    echoed = answer["json"]["headers"]
    assert answer["url"] == f"{other_server.base}/echo"
    assert "authorization" not in echoed
    assert "cookie" not in echoed
    assert echoed["x-request-id"] == "r-1"


async def test_credentials_stay_on_a_same_origin_redirect(server: Server) -> None:
    headers = {"Authorization": "Bearer s3cret"}

    answer = await http_request({"url": f"{server.base}/redirect?location=/echo", "headers": headers}, reach(server))

    assert answer["json"]["headers"]["authorization"] == "Bearer s3cret"


# --- limits and failures -----------------------------------------------------------------------------------------


async def test_a_slow_server_times_out(server: Server) -> None:
    started = time.monotonic()
    by_argument = await refused({"url": f"{server.base}/slow", "timeout_s": 0.3}, reach(server))
    by_policy = await refused({"url": f"{server.base}/slow", "timeout_s": 60}, reach(server, timeout_s=0.3))

    assert (by_argument.kind, by_policy.kind) == ("timeout", "timeout")
    assert time.monotonic() - started < 2


async def test_a_declared_large_body_is_too_large(server: Server) -> None:
    error = await refused({"url": f"{server.base}/huge"}, reach(server, max_response_bytes=1000))

    assert error.kind == "too_large"


async def test_a_streamed_large_body_is_too_large(server: Server) -> None:
    error = await refused({"url": f"{server.base}/stream"}, reach(server, max_response_bytes=100_000))

    assert error.kind == "too_large"
    assert "100000" in str(error)


async def test_the_limit_counts_decompressed_bytes(server: Server) -> None:
    error = await refused({"url": f"{server.base}/bomb"}, reach(server, max_response_bytes=100_000))
    small = await http_request({"url": f"{server.base}/bomb"}, reach(server, max_response_bytes=HUGE_BYTES))

    assert error.kind == "too_large"
    assert small["headers"]["content-encoding"] == "gzip"
    assert len(small["body"]) == HUGE_BYTES


async def test_a_large_request_body_is_refused(no_network: None) -> None:
    policy = HttpPolicy(allowed_hosts=("api.example.com",), max_request_bytes=10)

    error = await refused({"url": "https://api.example.com/", "method": "POST", "body": "x" * 11}, policy)

    assert error.kind == "too_large"


async def test_a_closed_port_is_unreachable(fake_dns: dict[str, list[str]]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    entry = f"127.0.0.1:{port}"

    closed = await refused({"url": f"http://{entry}/"}, HttpPolicy(allowed_hosts=(entry,), private_hosts=(entry,)))
    fake_dns["nowhere.example.test"] = []
    unknown = await refused({"url": "https://nowhere.example.test/"}, HttpPolicy(allowed_hosts=("*",)))

    assert closed.kind == "unreachable"
    assert unknown.kind == "unreachable"
    assert "nowhere.example.test" in str(unknown)


@pytest.mark.parametrize(
    ("arguments", "why"),
    [
        ({"url": "ftp://example.com/file"}, "http:// or https://"),
        ({"url": "file:///etc/passwd"}, "http:// or https://"),
        ({"url": "/relative/path"}, "http:// or https://"),
        ({}, "url is required"),
        ({"url": "   "}, "url is required"),
        ({"url": 42}, "url is required"),
        ({"url": "https://example.com/", "json": {"a": 1}, "body": "a=1"}, "not both"),
        ({"url": "https://example.com/", "headers": {"Host": "169.254.169.254"}}, "Host cannot be set"),
        ({"url": "https://example.com/", "headers": {"transfer-encoding": "chunked"}}, "cannot be set"),
        ({"url": "https://example.com/", "headers": {"Connection": "close"}}, "cannot be set"),
        ({"url": "https://example.com/", "headers": {"X-A": "b\r\nX-Injected: 1"}}, "single-line"),
        ({"url": "https://example.com/", "headers": {"Bad Name": "x"}}, "invalid header name"),
        ({"url": "https://example.com/", "headers": {"X-A": "1", "x-a": "2"}}, "given twice"),
        ({"url": "https://example.com/", "headers": ["X-A: 1"]}, "headers must be an object"),
        ({"url": "https://example.com/", "headers": {"X-A": 1}}, "single-line string"),
        ({"url": "https://example.com/", "method": "TRACE"}, "method must be one of"),
        ({"url": "https://example.com/", "body": {"a": 1}}, "body must be a string"),
        ({"url": "https://example.com/", "json": {"x": float("nan")}}, "not a JSON value"),
        ({"url": "https://example.com/", "timeout_s": -1}, "timeout_s"),
        ({"url": "https://example.com/", "timeout_s": "5"}, "timeout_s"),
        ({"url": "https://example.com/", "timeout_s": True}, "timeout_s"),
        ({"url": "https://example.com/", "verb": "GET"}, "unknown argument(s): verb"),
        ({"url": "https://user:pw@example.com/"}, "credentials"),
        ({"url": "http://foo.0x10/"}, "not a valid IPv4 address"),
        ({"url": "http://1.2.3.4.5/"}, "not a valid IPv4 address"),
        ({"url": "http://a b.example.com/"}, "not a valid host name"),
        ({"url": "http://[::1/"}, "not a valid URL"),
    ],
)
async def test_bad_input_is_refused(arguments: dict[str, Any], why: str, no_network: None) -> None:
    error = await refused(arguments, ANY_HOST)

    assert error.kind == "bad_input"
    assert why in str(error)


def test_a_malformed_policy_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        HttpPolicy(allowed_hosts=("api.*.example.com",))
    with pytest.raises(ValueError, match="wildcards are not allowed"):
        HttpPolicy(allowed_hosts=(), private_hosts=("*.internal",))
    with pytest.raises(ValueError, match="invalid port"):
        HttpPolicy(allowed_hosts=("example.com:99999",))
    with pytest.raises(TypeError, match="not a string"):
        HttpPolicy(allowed_hosts="example.com")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_s"):
        HttpPolicy(allowed_hosts=(), timeout_s=0)
