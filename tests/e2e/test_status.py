"""GET /v1/status through the local cloud: every layer with its version and the latency of its last checks, every
dependency once for the platform (Postgres, Redis, the bus, each dead-letter queue's depth, each model provider),
a layer taken away degrading the platform without failing the answer, and `strata status` saying all of it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from strata import __version__
from tests.e2e.conftest import Platform
from tests.e2e.test_cli import strata
from tests.e2e.test_platform import eventually

pytestmark = pytest.mark.e2e


async def status_checked_after(platform: Platform, after: str | None = None) -> dict[str, Any]:
    """The platform's status from a check made after `after` (an answer serves for a moment: poll past it)."""

    async def probe() -> dict[str, Any] | None:
        response = await platform.api.get("/v1/status", headers=platform.auth())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if after is None or body["checked_at"] > after else None

    return await eventually(probe, what="a new status check")


def by_name(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


async def every_layer_ready(platform: Platform, after: str | None = None) -> dict[str, Any]:
    """A check (made after `after`) that found every layer ready: a cloud just started answers its first probes
    slowly (each function's first Postgres, Redis and AWS clients), past the probes' deadline on a loaded machine."""

    async def probe() -> dict[str, Any] | None:
        body = await status_checked_after(platform, after)
        return body if all(layer["status"] == "ok" for layer in body["layers"]) else None

    return await eventually(probe, timeout_s=90, what="a check with every layer ready")


async def test_every_layer_answers_with_its_version_and_the_latency_of_its_last_checks(platform: Platform) -> None:
    # GIVEN one check of the platform
    first = await every_layer_ready(platform)

    # WHEN it is checked again (not the answer cached a moment ago)
    second = await every_layer_ready(platform, after=first["checked_at"])

    # THEN every layer answered through the API with its version, and its history has this check too
    assert second["cached"] is False
    assert second["latency_history"]["kept"] is True
    size = second["latency_history"]["size"]
    assert [layer["number"] for layer in second["layers"]] == [f"L{n:02d}" for n in range(1, 12)]
    before = by_name(first["layers"], "layer")
    for layer in second["layers"]:
        assert (layer["reachable"], layer["status"], layer["http_status"]) == (True, "ok", 200), layer
        assert layer["version"] == __version__
        assert layer["failing_dependencies"] == []
        assert layer["error"] is None
        assert layer["latency_ms"] > 0
        assert min(before[layer["layer"]]["latency_samples"] + 1, size) <= layer["latency_samples"] <= size, layer
        assert 0 < layer["latency_p50_ms"] <= layer["latency_max_ms"]
        assert layer["latency_max_ms"] >= layer["latency_ms"]
        assert layer["last_ok_at"] > first["checked_at"]
        assert layer["peer_breaker"] in ("closed", "open", "half_open")
    # AND an answer asked for at once is that check's, not a new one
    again = await platform.api.get("/v1/status", headers=platform.auth())
    if again.json()["checked_at"] == second["checked_at"]:
        assert again.json()["cached"] is True


async def test_each_dependency_is_reported_once_for_the_platform(platform: Platform) -> None:
    async def answered() -> dict[str, Any] | None:  # (L11's first checks open its first connections and clients)
        body = await status_checked_after(platform)
        platform_wide = [d for d in body["dependencies"] if d["kind"] != "model_provider"]
        return body if all(d["status"] == "ok" for d in platform_wide) else None

    body = await eventually(answered, timeout_s=60, what="every platform-wide dependency checked")

    dependencies = by_name(body["dependencies"], "name")
    assert len(dependencies) == len(body["dependencies"])
    postgres = dependencies["postgres"]
    assert (postgres["kind"], postgres["status"], postgres["critical"]) == ("postgres", "ok", True)
    assert postgres["version"][:2].isdigit()
    assert 0 < postgres["connections"] <= postgres["max_connections"]
    redis = dependencies["redis"]
    assert (redis["kind"], redis["status"], redis["critical"]) == ("redis", "ok", False)
    assert redis["version"]
    assert redis["used_memory_bytes"] > 0
    assert (dependencies["event_bus"]["status"], dependencies["event_bus"]["latency_ms"] > 0) == ("ok", True)
    queue = dependencies["events-dlq"]
    assert (queue["kind"], queue["status"]) == ("dead_letter_queue", "ok")
    assert queue["depth"] == queue["visible"] + queue["in_flight"] + queue["delayed"]
    providers = {d["name"]: d for d in body["dependencies"] if d["kind"] == "model_provider"}
    assert {"openai", "ollama", "flaky"} <= set(providers), providers
    assert (providers["openai"]["provider_kind"], providers["ollama"]["provider_kind"]) == ("openai", "ollama")
    for provider in providers.values():
        assert provider["breaker"] in ("closed", "open", "half_open")
        assert provider["status"] == {"closed": "ok", "half_open": "degraded", "open": "error"}[provider["breaker"]]
    # the layers no longer repeat what every one of them depends on
    assert all("dependencies" not in layer for layer in body["layers"])


def events_dlq(body: dict[str, Any]) -> dict[str, Any]:
    return by_name(body["dependencies"], "name")["events-dlq"]


async def test_a_message_in_a_dead_letter_queue_shows_in_its_depth(platform: Platform) -> None:
    # GIVEN a message in the events DLQ, delayed so that L01 (which drains the queue into its dead letters at once)
    # cannot take it while the test looks
    sqs, queue_url = platform.aws("sqs"), platform.cloud.resource("EventsDeadLetterQueue")
    body = json.dumps({"detail-type": "StatusDepthProbe", "detail": {"marker": uuid.uuid4().hex}})
    sqs.send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=900)
    try:
        # WHEN the status is checked, THEN the queue's depth counts it
        async def counted() -> dict[str, Any] | None:
            queue = events_dlq(await status_checked_after(platform))
            return queue if queue["delayed"] >= 1 else None

        queue = await eventually(counted, what="the delayed message in the DLQ's depth")
        assert queue["depth"] >= 1
        assert queue["depth"] == queue["visible"] + queue["in_flight"] + queue["delayed"]
    finally:
        # the local cloud's DLQ holds nothing else for more than a moment (L01 drains it), so purging it removes
        # only this test's message
        sqs.purge_queue(QueueUrl=queue_url)

    async def gone() -> dict[str, Any] | None:
        queue = events_dlq(await status_checked_after(platform))
        return queue if queue["delayed"] == 0 else None

    await eventually(gone, what="the DLQ's depth without the message")


async def test_a_layer_that_is_down_shows_unreachable_and_degrades_the_platform(platform: Platform) -> None:
    # GIVEN a healthy platform, and then L10's function taken out of service (reserved concurrency 0)
    healthy = await every_layer_ready(platform)
    was = by_name(healthy["layers"], "layer")["human_interface"]
    assert was["status"] == "ok", was
    pool = platform.cloud.pools["HumanInterfaceFunction"]
    pool.throttled = True
    try:
        # WHEN the status is checked
        body = await status_checked_after(platform, after=healthy["checked_at"])

        # THEN the answer still comes (200), with L10 unreachable and the platform degraded, saying why
        layers = by_name(body["layers"], "layer")
        down = layers["human_interface"]
        assert (down["reachable"], down["status"], down["http_status"]) == (False, "unreachable", 503), down
        assert (down["version"], down["latency_ms"]) == (None, None)
        assert down["error"].startswith("HTTP 503")
        assert "not from the layer" in down["error"]
        # its history keeps the checks it answered; it was last ready before
        assert down["latency_samples"] == was["latency_samples"]
        assert down["latency_p50_ms"] is not None
        assert down["last_ok_at"] == was["last_ok_at"]
        assert body["status"] == "degraded"
        assert any(r.startswith("L10 human_interface: unreachable") for r in body["reasons"]), body["reasons"]
        assert all(layer["reachable"] for name, layer in layers.items() if name != "human_interface")

        # AND `strata status` shows it and exits 1
        shown = await strata(platform, platform.admin_key, "status")
        assert shown.exit_code == 1, shown.output
        assert "degraded" in shown.output
        assert "L10 human_interface" in shown.output
        assert "unreachable" in shown.output
    finally:
        pool.throttled = False

    async def back() -> dict[str, Any] | None:
        body = await status_checked_after(platform)
        return body if by_name(body["layers"], "layer")["human_interface"]["status"] == "ok" else None

    await eventually(back, what="L10 ready again")


async def test_strata_status_shows_layers_and_dependencies_and_exits_0_only_when_ok(platform: Platform) -> None:
    as_json = await strata(platform, platform.admin_key, "status", "--json")
    body = json.loads(as_json.output)
    assert as_json.exit_code == (0 if body["status"] == "ok" else 1), as_json.output

    shown = await strata(platform, platform.admin_key, "status")

    first_line = shown.output.splitlines()[0]
    assert first_line.startswith(f"Strata at {platform.cloud.front_url}: ")
    assert shown.exit_code == (0 if ": ok " in first_line else 1), shown.output
    for text in ("L01 data", "L11 integration", __version__, "Dependencies", "postgres (critical)", "events-dlq"):
        assert text in shown.output, text
    assert "depth " in shown.output
    for provider in ("openai", "ollama", "flaky"):
        assert provider in shown.output
