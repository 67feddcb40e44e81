"""The main job's demo (`strata dev`) against the local cloud: every step it shows succeeds, and it can run again
on the same platform (the template it made is reused)."""

from __future__ import annotations

import asyncio

import pytest

from strata_cli import main
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e


async def test_the_demo_carries_a_goal_from_submission_to_completion(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[str] = []
    monkeypatch.setattr(main.console, "print", lambda text, *_, **__: said.append(str(text)))
    key = (await platform.new_tenant("demo-tenant"))["api_key"]
    for _ in range(2):  # a second run reuses what the first made
        said.clear()
        await asyncio.to_thread(main.run_demo, platform.cloud.front_url, key)
        assert any("registered agent" in line for line in said), said
        assert any("event log" in line for line in said), said
        planned = [line for line in said if "L05 planned it from a template" in line]
        assert planned, said
        assert "count (text) -> words (json_query)" in planned[0]
        ran = [line for line in said if "L02 ran it" in line]
        assert ran, said
        assert "2/2 tasks completed" in ran[0], said
        assert "[bold]7[/bold] words" in ran[0], said
        assert not any(line.startswith("[red]") for line in said), said
