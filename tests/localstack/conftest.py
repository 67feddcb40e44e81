"""LocalStack on the host (localstack/host.py), its init hook's stack derived from template.yaml, and the local cloud
using it as its AWS (no moto): every function real, in its own worker, publishing to LocalStack's EventBridge."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from localstack import host
from strata_cli.localcloud.cloud import LocalCloud, LocalCloudConfig
from tests.conftest import make_state_dir
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.localstack


def start_localstack(state_dir: Path | None = None, with_stack: bool = True) -> host.LocalStack:
    """LocalStack on a free loopback port; the test is skipped only when LocalStack cannot start here (no Python
    3.12+, no package index, it did not come up), and never on CI, where that is a failure."""
    try:
        return host.start(state_dir=state_dir, with_stack=with_stack)
    except host.LocalStackUnavailableError as exc:
        reason = f"LocalStack cannot start here: {str(exc).splitlines()[0][:300]}"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="package")
def localstack() -> Iterator[host.LocalStack]:
    """LocalStack with the template's stack, started once for these tests (stopped after them)."""
    instance = start_localstack()
    yield instance
    instance.stop()
    if not os.environ.get("STRATA_KEEP_STATE"):  # set it to read LocalStack's log after a run
        shutil.rmtree(instance.state_dir, ignore_errors=True)


@pytest.fixture(scope="package")
async def platform(project_root: Path, localstack: host.LocalStack) -> AsyncIterator[Platform]:
    """The local cloud with LocalStack as its AWS endpoint and the init hook's stack as its resources."""
    state = make_state_dir("localstack")
    config = LocalCloudConfig(
        root=project_root,
        state_dir=state,
        port=0,
        retry_base_delay_s=0.05,  # the rules' retries in well under a second, then the DLQ
        aws_endpoint_url=localstack.endpoint,
        aws_stack=localstack.stack_name,
    )
    cloud = LocalCloud(config)
    try:
        await cloud.start()
        key = await cloud.bootstrap_key("localstack-admin")
        async with httpx.AsyncClient(base_url=cloud.front_url, timeout=30) as api:
            yield Platform(cloud, api, key["api_key"], key["tenant_id"])
    finally:
        await cloud.stop()
        if not os.environ.get("STRATA_KEEP_STATE"):
            shutil.rmtree(state, ignore_errors=True)
