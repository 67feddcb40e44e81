"""The local cloud for end-to-end tests: every function, Postgres, Redis and the event bus, started once."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from strata_cli.localcloud.cloud import LocalCloud, LocalCloudConfig
from tests.conftest import make_state_dir
from tests.support.mcp_server import McpTestServer
from tests.support.oidc import TestIssuer
from tests.support.provider_servers import FakeOllama, FakeOpenAI
from tests.support.tool_target import ToolTarget
from tests.support.webhook_receiver import shared_receiver


@dataclass
class Platform:
    cloud: LocalCloud
    api: httpx.AsyncClient
    admin_key: str
    tenant_id: str
    mcp_url: str = ""  # the loopback MCP test server's endpoint

    def aws(self, service: str) -> Any:
        return self.cloud.clients(service)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {key or self.admin_key}"}

    async def new_tenant(self, name: str, scopes: list[str] | None = None) -> dict[str, Any]:
        return await self.cloud.bootstrap_key(name, scopes)

    async def invoke(self, function: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Invoke a function through the local cloud's Lambda Invoke API, as `aws lambda invoke` would:
        returns Lambda's answer (`FunctionError` is set when the function failed) with `Payload` decoded."""
        client = boto3.client(
            "lambda",
            endpoint_url=self.cloud.lambda_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        result = await asyncio.to_thread(client.invoke, FunctionName=function, Payload=json.dumps(payload))
        answer: dict[str, Any] = {**result, "Payload": json.loads(result["Payload"].read() or b"null")}
        return answer


@pytest.fixture(scope="session")
def oidc_issuer() -> Iterator[TestIssuer]:
    issuer = TestIssuer().start()
    yield issuer
    issuer.stop()


@dataclass
class Providers:
    """Loopback model servers speaking OpenAI's and Ollama's wire formats; `flaky` is for breaker tests."""

    openai: FakeOpenAI
    ollama: FakeOllama
    flaky: FakeOpenAI

    def config(self) -> list[dict[str, str]]:
        return [
            {"name": "openai", "kind": "openai", "base_url": self.openai.url, "api_key": "sk-test"},
            {"name": "ollama", "kind": "ollama", "base_url": self.ollama.url},
            {"name": "flaky", "kind": "openai", "base_url": self.flaky.url, "api_key": "sk-test"},
        ]

    def reset(self) -> None:
        for server in (self.openai, self.ollama, self.flaky):
            server.reset()


@pytest.fixture(scope="session")
def providers() -> Iterator[Providers]:
    servers = Providers(
        FakeOpenAI(api_key="sk-test").start(), FakeOllama().start(), FakeOpenAI(api_key="sk-test").start()
    )
    yield servers
    for server in (servers.openai, servers.ollama, servers.flaky):
        server.stop()


@pytest.fixture(scope="session")
def tool_target() -> Iterator[ToolTarget]:
    server = ToolTarget().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mcp_server() -> Iterator[McpTestServer]:
    server = McpTestServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def platform(
    project_root: Path,
    oidc_issuer: TestIssuer,
    providers: Providers,
    tool_target: ToolTarget,
    mcp_server: McpTestServer,
) -> AsyncIterator[Platform]:
    state = make_state_dir("e2e")
    # fast retries and a 1 s tick for the template's schedules, so tests see them without long waits
    # a tier that barely refills, so a rate-limit test can count exactly
    slow_tier = {"e2e-slow": {"key_rps": 0.01, "key_burst": 10, "tenant_rps": 0.01, "tenant_burst": 100}}
    config = LocalCloudConfig(
        root=project_root,
        state_dir=state,
        port=0,
        retry_base_delay_s=0.05,
        schedule_period_s=1.0,
        extra_env={
            "STRATA_RATE_LIMIT_TIERS": json.dumps(slow_tier),
            "STRATA_OIDC_ISSUERS": json.dumps([oidc_issuer.config()]),
            "STRATA_MODEL_PROVIDERS": json.dumps(providers.config()),
            "STRATA_MODEL_RETRY_BASE_S": "0.01",
            "STRATA_BREAKER_OPEN_S": "1",
            "STRATA_BREAKER_FAILURES": "3",
            # a layer that fails (tests kill workers, stop functions) is skipped by its peers for 2 s, not 30
            "STRATA_PEER_BREAKER_OPEN_S": "2",
            # tenants with a catalogue entry of this name get the semantic cache (a low bar: the fakes' vectors)
            "STRATA_SEMANTIC_CACHE_MODEL": "semantic-embedder",
            "STRATA_SEMANTIC_CACHE_THRESHOLD": "0.5",
            "STRATA_MODEL_LIMITS": json.dumps({"e2e-slow": {"rpm": 3, "tpm": 1_000_000}}),
            # the http_request tool may reach the loopback test server (never private addresses otherwise)
            "STRATA_TOOLS_PRIVATE_HOSTS": f"{tool_target.host},{mcp_server.host}",
            # short leases (renewed every 5/3 s, enough on a loaded 2-CPU machine) and a quick reaper, so a killed
            # worker's task is resumed within seconds; a task hands itself on (TaskContinued) once it has worked
            # ~4 s of the runtime's 300 s invocation
            "STRATA_RUNTIME_LEASE_S": "5",
            "STRATA_RUNTIME_REDISPATCH_AFTER_S": "3",
            # a task parked for an approval asks again after 2 s (and parks again while it is pending)
            "STRATA_RUNTIME_APPROVAL_RECHECK_S": "2",
            "STRATA_RUNTIME_CONTINUE_MARGIN_S": "296",
            # webhooks: sub-second retries, 3 tries of 2 s, a 2 s sweeper, off after 3 dead letters, the test receiver
            "STRATA_WEBHOOK_BACKOFF_S": "0.2,0.4",
            "STRATA_WEBHOOK_BACKOFF_JITTER": "0",
            "STRATA_WEBHOOK_MAX_ATTEMPTS": "3",
            "STRATA_WEBHOOK_TIMEOUT_S": "2",
            "STRATA_WEBHOOK_SWEEP_AFTER_S": "2",
            "STRATA_WEBHOOK_DISABLE_AFTER_DEAD_LETTERS": "3",
            "STRATA_WEBHOOK_ALLOW_HTTP": "true",
            "STRATA_WEBHOOK_PRIVATE_HOSTS": shared_receiver().host,
        },
    )
    cloud = LocalCloud(config)
    try:
        await cloud.start()
        key = await cloud.bootstrap_key("e2e-admin")
        async with httpx.AsyncClient(base_url=cloud.front_url, timeout=30) as api:
            yield Platform(cloud, api, key["api_key"], key["tenant_id"], mcp_server.url)
    finally:
        await cloud.stop()
        if not os.environ.get("STRATA_KEEP_STATE"):  # set it to read the functions' logs after a run
            shutil.rmtree(state, ignore_errors=True)
