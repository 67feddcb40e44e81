"""Peer calls behind each layer's circuit breaker (state in a real Redis), against a loopback stand-in for the API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from strata import peers
from strata.config import get_settings
from strata.errors import DependencyUnavailableError
from strata.layers import layer_of_path


@dataclass
class FakeApi:
    """Answers every path with the status set for its first /v1 segment; counts what reached it."""

    statuses: dict[str, tuple[int, str]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        resource = request.path.split("/")[2]
        self.hits[resource] = self.hits.get(resource, 0) + 1
        status, kind = self.statuses.get(resource, (200, "application/json"))
        body = {"type": "x", "status": status, "detail": "d"} if kind == "application/problem+json" else {"ok": True}
        return web.Response(status=status, text=json.dumps(body), content_type=kind)


@pytest.fixture
async def api(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeApi]:
    fake = FakeApi()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    for name, value in {
        "STRATA_API_BASE_URL": f"http://127.0.0.1:{port}",
        "STRATA_PEER_BREAKER_FAILURES": "3",
        "STRATA_PEER_BREAKER_OPEN_S": "0.3",
        "STRATA_PEER_BREAKER_TRUST_S": "0",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    peers._trusted_until.clear()
    yield fake
    await peers.reset_peers()
    await runner.cleanup()
    get_settings.cache_clear()


async def test_a_failing_layer_is_not_called_while_its_breaker_is_open(api: FakeApi) -> None:
    # GIVEN L02 answering as a dead function does (API Gateway's own 502, not the layer's problem+json)
    api.statuses["runs"] = (502, "application/json")
    for _ in range(3):
        assert (await peers.call("GET", "/v1/runs/x")).status_code == 502

    # THEN the next call fails at once, without reaching it, and names the layer
    with pytest.raises(DependencyUnavailableError, match="L02 runtime is failing"):
        await peers.call("GET", "/v1/run-summary")
    assert api.hits["runs"] == 3
    assert "run-summary" not in api.hits
    # another layer is unaffected; a status probe may still measure the truth
    assert (await peers.call("GET", "/v1/goals")).status_code == 200
    assert (await peers.call("GET", "/health/runtime/ready", breaker=False)).status_code == 200

    # WHEN it recovers: after open_s one probe goes through and its success closes the breaker
    api.statuses["runs"] = (200, "application/json")
    await asyncio.sleep(0.35)
    assert (await peers.call("GET", "/v1/runs/x")).status_code == 200
    assert all(r.status_code == 200 for r in await asyncio.gather(*(peers.call("GET", "/v1/runs") for _ in range(5))))


async def test_a_layer_reporting_its_own_dependency_down_does_not_open_its_breaker(api: FakeApi) -> None:
    # L04 answering its own problem+json 503 (a provider's breaker is open) is not L04 failing
    api.statuses["chat"] = (503, "application/problem+json")
    for _ in range(5):
        assert (await peers.call("POST", "/v1/chat/completions", json={})).status_code == 503
    assert api.hits["chat"] == 5
    # but a crash (500) is the layer failing
    api.statuses["chat"] = (500, "application/problem+json")
    for _ in range(3):
        await peers.call("POST", "/v1/chat/completions", json={})
    with pytest.raises(DependencyUnavailableError, match="circuit open"):
        await peers.call("GET", "/v1/models")


async def test_an_unreachable_layer_counts_as_failing(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATA_API_BASE_URL", "http://127.0.0.1:1")
    get_settings.cache_clear()
    for _ in range(3):
        with pytest.raises(DependencyUnavailableError, match="failed"):
            await peers.call("GET", "/v1/tools")
    with pytest.raises(DependencyUnavailableError, match="L03 tool_execution is failing"):
        await peers.call("GET", "/v1/tools")


def test_every_layer_path_names_its_layer() -> None:
    assert layer_of_path("/v1/runs/abc?x=1") == "runtime"
    assert layer_of_path("/health/model_gateway/ready") == "model_gateway"
    assert layer_of_path("/v1/tenant-data/tool-execution") == "tool_execution"
    assert layer_of_path("/v1/tenant-data/nope") is None
    assert layer_of_path("/v1/unknown") is None
    assert layer_of_path("/console/") is None
