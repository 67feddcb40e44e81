"""The platform status's rules (L11): latency figures, what a probe's answer means, the overall verdict, provider
breakers (L04); and that a Redis outage costs the history, never the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from strata.cache import reset_redis
from strata.layers import LAYERS
from strata_integration import status
from strata_integration.status import (
    latency_summary,
    layer_row,
    overall_status,
    provider_row,
    provider_status,
    unreachable_row,
)
from strata_model_gateway.provider_health import breaker_state
from tests.unit.conftest import SetEnv

READY = {"status": "ok", "layer": "data", "version": "0.1.0", "dependencies": {"postgres": {"status": "ok"}}}


def ok_layers() -> list[dict[str, Any]]:
    return [layer_row(name, 200, {**READY, "layer": name}, 5.0) for name in LAYERS]


def dependency(name: str, kind: str, state: str = "ok", error: str | None = None) -> dict[str, Any]:
    return {"name": name, "kind": kind, "status": state, "critical": name == "postgres", "error": error}


def ok_dependencies() -> list[dict[str, Any]]:
    return [
        dependency("postgres", "postgres"),
        dependency("redis", "redis"),
        dependency("event_bus", "event_bus"),
        dependency("events-dlq", "dead_letter_queue"),
        dependency("openai", "model_provider"),
    ]


def test_the_latency_figures_are_the_median_and_maximum_of_the_samples() -> None:
    assert latency_summary([]) == {"latency_p50_ms": None, "latency_max_ms": None, "latency_samples": 0}
    assert latency_summary([7.0]) == {"latency_p50_ms": 7.0, "latency_max_ms": 7.0, "latency_samples": 1}
    assert latency_summary([30.0, 10.0, 20.0]) == {"latency_p50_ms": 20.0, "latency_max_ms": 30.0, "latency_samples": 3}
    assert latency_summary(iter([4.0, 1.0, 2.0, 100.0]))["latency_p50_ms"] == 3.0  # an even count: the midpoint


def test_a_layer_that_answered_ready_is_ok_with_its_version_and_latency() -> None:
    row = layer_row("data", 200, READY, 12.5)

    assert row["number"] == "L01"
    assert (row["reachable"], row["status"], row["version"], row["latency_ms"]) == (True, "ok", "0.1.0", 12.5)
    assert row["failing_dependencies"] == []
    assert row["error"] is None


def test_a_layer_whose_own_dependency_failed_is_reachable_but_unavailable() -> None:
    body = {
        **READY,
        "status": "unavailable",
        "dependencies": {"postgres": {"status": "ok"}, "redis": {"status": "error"}},
    }

    row = layer_row("data", 503, body, 8.0)

    assert (row["reachable"], row["status"], row["latency_ms"]) == (True, "unavailable", 8.0)
    assert row["failing_dependencies"] == ["redis"]
    assert row["error"] == "not ready: redis"


@pytest.mark.parametrize(
    ("http_status", "body"),
    [
        (
            503,
            {"type": "https://strata.dev/problems/unavailable", "status": 503, "detail": "Rate Exceeded"},
        ),  # throttled
        (502, {"message": "Internal Server Error"}),  # the function crashed or timed out
        (200, {"status": "ok", "layer": "runtime"}),  # another layer's answer is not this one's
        (200, None),  # not JSON
    ],
)
def test_an_answer_not_from_the_layer_itself_means_it_was_not_reached(http_status: int, body: Any) -> None:
    row = layer_row("data", http_status, body, 3.0)

    assert (row["reachable"], row["status"], row["http_status"], row["latency_ms"]) == (
        False,
        "unreachable",
        http_status,
        None,
    )
    assert row["error"].startswith(f"HTTP {http_status}")


def test_all_ok_is_ok_with_no_reasons() -> None:
    assert overall_status(ok_layers(), ok_dependencies()) == ("ok", [])


def test_a_non_critical_layer_or_dependency_down_degrades_the_platform() -> None:
    layers = ok_layers()
    layers[9] = unreachable_row("human_interface", "no answer within 5 s")
    dependencies = ok_dependencies()
    dependencies[4] = dependency("openai", "model_provider", "error", "openai: HTTP 500: down")
    dependencies[1] = dependency("redis", "redis", "error", "ConnectionError")

    verdict, reasons = overall_status(layers, dependencies)

    assert verdict == "degraded"
    assert reasons == [
        "L10 human_interface: unreachable (no answer within 5 s)",
        "redis: error (ConnectionError)",
        "model provider openai: error (openai: HTTP 500: down)",
    ]


@pytest.mark.parametrize("what", ["postgres", "api_gateway", "every layer"])
def test_postgres_the_authorizer_or_the_whole_api_gone_is_down(what: str) -> None:
    layers, dependencies = ok_layers(), ok_dependencies()
    if what == "postgres":
        dependencies[0] = dependency("postgres", "postgres", "error", "no answer within 5 s")
    elif what == "api_gateway":
        layers[8] = unreachable_row("api_gateway", "HTTP 503 (not from the layer)")
    else:
        layers = [unreachable_row(name, "connection refused") for name in LAYERS]

    verdict, reasons = overall_status(layers, dependencies)

    assert verdict == "down"
    assert reasons[0].startswith({"postgres": "postgres", "api_gateway": "L09", "every layer": "the API"}[what])


def test_the_authorizer_answering_but_unready_only_degrades() -> None:
    layers = ok_layers()
    layers[8] = layer_row("api_gateway", 503, {**READY, "layer": "api_gateway", "status": "unavailable"}, 4.0)

    assert overall_status(layers, ok_dependencies())[0] == "degraded"


def test_a_provider_is_ok_while_its_breaker_is_closed() -> None:
    assert [provider_status(b) for b in ("closed", "half_open", "open", "unknown")] == [
        "ok",
        "degraded",
        "error",
        "unknown",
    ]


def test_a_provider_row_says_why_only_when_its_breaker_is_not_closed() -> None:
    failure = {
        "kind": "unavailable",
        "message": "flaky: HTTP 500: down",
        "status": 500,
        "at": "2026-11-28T01:00:00+00:00",
    }
    reported = {"name": "flaky", "kind": "openai", "consecutive_failures": 3, "last_failure": failure}

    opened = provider_row({**reported, "breaker": "open"})
    recovered = provider_row({**reported, "breaker": "closed", "consecutive_failures": 0})

    assert (opened["status"], opened["error"], opened["provider_kind"]) == ("error", "flaky: HTTP 500: down", "openai")
    assert opened["latency_ms"] is None  # nothing calls the provider to measure it
    assert (recovered["status"], recovered["error"], recovered["last_failure"]) == ("ok", None, failure)
    verdict, reasons = overall_status(ok_layers(), [*ok_dependencies(), opened])
    assert (verdict, reasons) == ("degraded", ["model provider flaky: error (flaky: HTTP 500: down)"])


def test_l04_unreachable_is_one_row_for_every_provider() -> None:
    row = dependency(status.ALL_PROVIDERS, "model_provider", "unknown", "L04 unreachable: connection refused")

    assert overall_status(ok_layers(), [*ok_dependencies(), row]) == (
        "degraded",
        ["model providers: unknown (L04 unreachable: connection refused)"],
    )


def test_an_open_breaker_whose_pause_is_over_reads_half_open() -> None:
    now = 1_000_000
    assert breaker_state(None, None, now, 30) == "closed"
    assert breaker_state("closed", "5", now, 30) == "closed"
    assert breaker_state("open", str(now - 10_000), now, 30) == "open"
    assert breaker_state("open", str(now - 30_000), now, 30) == "half_open"
    assert breaker_state("half_open", str(now), now, 30) == "half_open"


def test_the_dead_letter_queues_come_from_the_template_variable(settings_env: SetEnv) -> None:
    settings_env(STRATA_DEAD_LETTER_QUEUES='{"events-dlq": "http://sqs.local/000000000000/strata-dev-events-dlq"}')
    status.status_settings.cache_clear()
    status.dead_letter_queues.cache_clear()
    try:
        assert status.dead_letter_queues() == {"events-dlq": "http://sqs.local/000000000000/strata-dev-events-dlq"}
    finally:
        status.status_settings.cache_clear()
        status.dead_letter_queues.cache_clear()


@pytest.fixture
async def redis_down(settings_env: SetEnv) -> AsyncIterator[None]:
    """A Redis URL nothing listens on (a closed loopback port: refused at once)."""
    await reset_redis()
    settings_env(REDIS_URL="redis://127.0.0.1:1/0")
    yield
    await reset_redis()


@pytest.mark.usefixtures("redis_down")
async def test_with_redis_down_the_rows_summarise_this_check_only() -> None:
    layers = ok_layers()
    layers[1] = unreachable_row("runtime", "no answer within 5 s")

    kept = await status.record_history(layers, 20)

    assert kept is False
    assert (layers[0]["latency_p50_ms"], layers[0]["latency_samples"], layers[0]["peer_breaker"]) == (5.0, 1, "unknown")
    assert layers[0]["last_ok_at"] is not None
    assert (layers[1]["latency_p50_ms"], layers[1]["latency_samples"], layers[1]["last_ok_at"]) == (None, 0, None)


@pytest.mark.usefixtures("redis_down")
async def test_with_redis_down_its_check_fails_and_nothing_is_cached() -> None:
    checked = await status._bounded("redis", "redis", status._redis, 2.0)

    assert (checked["status"], checked["latency_ms"]) == ("error", None)
    assert checked["error"] == "ConnectionError"
    assert await status._cached_answer() is None
