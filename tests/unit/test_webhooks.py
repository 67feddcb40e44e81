"""Outbound webhooks without a network: backoff, event types and filters (checked and matched), the signed request's
headers, the body of a delivery, the URL checks that need no DNS, and the template's rule agreeing with the code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from strata.events import event_model
from strata.events.runtime import RunCompleted, RunFailed
from strata.signatures import SignatureError, verify_strata
from strata_integration.webhooks.delivery import (
    AttemptResult,
    UrlRefusedError,
    backoff_s,
    body_bytes,
    check_url_form,
    delivery_headers,
)
from strata_integration.webhooks.matching import (
    INTERNAL_EVENT_TYPES,
    check_event_types,
    check_filters,
    event_payload,
    matches,
    subscribable_event_types,
)
from strata_integration.webhooks.service import Queued, new_secret
from strata_integration.webhooks.settings import WebhookSettings, parse_schedule

ROOT = Path(__file__).resolve().parents[2]


def run_completed(**fields: Any) -> RunCompleted:
    values: dict[str, Any] = {
        "tenant_id": uuid4(),
        "correlation_id": "c-1",
        "run_id": uuid4(),
        "plan_id": uuid4(),
        "goal_id": uuid4(),
        "task_count": 3,
        "duration_ms": 1200,
        **fields,
    }
    return RunCompleted(**values)


# --- backoff -------------------------------------------------------------------------------------------------------


def test_backoff_follows_the_schedule_and_repeats_its_last_entry() -> None:
    schedule = (30.0, 120.0, 600.0)

    waits = [backoff_s(n, schedule) for n in range(1, 6)]

    assert waits == [30.0, 120.0, 600.0, 600.0, 600.0]


def test_backoff_jitter_spreads_each_wait_within_its_fraction() -> None:
    schedule = (100.0,)

    lowest = backoff_s(1, schedule, jitter=0.1, unit_random=lambda: 0.0)
    middle = backoff_s(1, schedule, jitter=0.1, unit_random=lambda: 0.5)
    highest = backoff_s(1, schedule, jitter=0.1, unit_random=lambda: 1.0)

    assert (lowest, middle, highest) == pytest.approx((90.0, 100.0, 110.0))


def test_backoff_follows_a_failed_attempt() -> None:
    with pytest.raises(ValueError, match="failed attempt"):
        backoff_s(0, (1.0,))


def test_the_backoff_schedule_setting_is_comma_separated_seconds() -> None:
    assert parse_schedule("0.2, 0.4,1") == (0.2, 0.4, 1.0)
    assert WebhookSettings(webhook_backoff_s="5,10").backoff_schedule == (5.0, 10.0)
    for bad in ("", "a,b", "1,,2"):
        with pytest.raises(ValueError, match="comma-separated seconds"):
            parse_schedule(bad)
    for bad in ("1,-2", "100000"):
        with pytest.raises(ValueError, match="between 0 and 86400"):
            parse_schedule(bad)
    with pytest.raises(ValidationError):
        WebhookSettings(webhook_backoff_s="soon")
    with pytest.raises(ValidationError):
        WebhookSettings(webhook_private_hosts="*.example.com")  # exact hosts only


# --- event types -----------------------------------------------------------------------------------------------------


def test_event_types_are_checked_against_the_registry() -> None:
    assert check_event_types(["RunCompleted", "RunFailed", "RunCompleted"]) == ["RunCompleted", "RunFailed"]
    assert check_event_types(["*"]) == ["*"]
    with pytest.raises(ValueError, match=r"unknown event type.*RunExploded"):
        check_event_types(["RunCompleted", "RunExploded"])
    with pytest.raises(ValueError, match="not subscribable"):
        check_event_types(["TaskReady"])
    with pytest.raises(ValueError, match="alone"):
        check_event_types(["*", "RunCompleted"])
    with pytest.raises(ValueError, match="at least one"):
        check_event_types([])


def test_internal_steps_are_not_subscribable_and_everything_else_is() -> None:
    subscribable = set(subscribable_event_types())

    assert {"RunCompleted", "RunFailed", "TaskCompleted", "ApprovalRequested", "BudgetExceeded"} <= subscribable
    assert not subscribable & INTERNAL_EVENT_TYPES


def test_the_templates_event_rule_leaves_out_exactly_the_internal_types() -> None:
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))
    pattern = template["Resources"]["WebhookEventRule"]["Properties"]["EventPattern"]

    [excluded] = pattern["detail-type"]
    assert set(excluded["anything-but"]) == INTERNAL_EVENT_TYPES
    assert pattern["source"] == [{"prefix": "strata."}]


# --- filters ---------------------------------------------------------------------------------------------------------


def test_filters_must_name_fields_of_every_subscribed_type() -> None:
    assert check_filters({"task_count": 1, "goal_id": ["a", "b"]}, ["RunCompleted"]) == {
        "task_count": 1,
        "goal_id": ["a", "b"],
    }
    assert check_filters({"run_id": "r"}, ["RunCompleted", "RunFailed"]) == {"run_id": "r"}
    with pytest.raises(ValueError, match="RunFailed has no field 'task_count'"):
        check_filters({"task_count": 1}, ["RunCompleted", "RunFailed"])
    # with '*', a field some subscribable type has
    assert check_filters({"output.kind": "report"}, ["*"]) == {"output.kind": "report"}
    with pytest.raises(ValueError, match="no subscribable event has a field 'colour'"):
        check_filters({"colour": "red"}, ["*"])


@pytest.mark.parametrize(
    ("filters", "reason"),
    [
        ({"task_count": {"gt": 1}}, "strings, numbers, booleans or null"),
        ({"task_count": []}, "a list of 1 to"),
        ({"task_count": list(range(51))}, "a list of 1 to"),
        ({"task_count..x": 1}, "a path is field names joined by dots"),
        ({"a.b.c.d.e.f": 1}, "a path is field names joined by dots"),
        ({"goal_id": "x" * 501}, "at most 500 characters"),
        ({f"f{n}": 1 for n in range(21)}, "at most 20 filters"),
    ],
)
def test_malformed_filters_are_refused_with_a_reason(filters: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_filters(filters, ["*"])


def test_filters_match_by_equality_and_by_any_of_a_list() -> None:
    detail = run_completed(task_count=3).model_dump(mode="json")

    assert matches({}, detail)
    assert matches({"task_count": 3}, detail)
    assert matches({"task_count": [1, 3]}, detail)
    assert matches({"task_count": 3, "goal_id": detail["goal_id"]}, detail)
    assert not matches({"task_count": 2}, detail)
    assert not matches({"task_count": [1, 2]}, detail)
    assert not matches({"task_count": 3, "goal_id": str(uuid4())}, detail)


def test_filters_compare_json_types_strictly() -> None:
    detail = {"count": 1, "flag": True, "ratio": 2.0, "name": "1", "none": None}

    assert not matches({"count": "1"}, detail)
    assert not matches({"count": True}, detail)
    assert not matches({"flag": 1}, detail)
    assert matches({"flag": True}, detail)
    assert matches({"ratio": 2}, detail)
    assert not matches({"name": 1}, detail)
    assert matches({"none": None}, detail)


def test_filters_go_into_nested_objects_and_match_any_element_of_a_list() -> None:
    detail = {"output": {"kind": "report", "tags": ["a", "b"]}, "failed_task_ids": ["fetch", "send"]}

    assert matches({"output.kind": "report"}, detail)
    assert not matches({"output.kind": "summary"}, detail)
    assert matches({"output.tags": "b"}, detail)
    assert matches({"failed_task_ids": ["send", "other"]}, detail)
    assert not matches({"failed_task_ids": "fetch2"}, detail)
    assert not matches({"output.missing": None}, detail)  # an absent field is not null
    assert not matches({"output.kind.deeper": "x"}, detail)


# --- what is sent -------------------------------------------------------------------------------------------------


def test_a_delivery_carries_the_event_as_its_model_has_it() -> None:
    event = RunFailed(
        tenant_id=uuid4(),
        correlation_id="c",
        run_id=uuid4(),
        plan_id=uuid4(),
        goal_id=uuid4(),
        failed_task_ids=["a"],
        error="boom",
    )

    payload = event_payload(event)

    assert (payload["id"], payload["type"], payload["source"]) == (str(event.event_id), "RunFailed", "strata.runtime")
    assert payload["tenant_id"] == str(event.tenant_id)
    assert datetime.fromisoformat(payload["occurred_at"]) == event.occurred_at
    assert event_model(payload["type"]).from_detail(payload["detail"]) == event


def test_the_signature_verifies_with_each_signing_secret_and_no_other() -> None:
    current, previous = new_secret(), new_secret()
    body = body_bytes(event_payload(run_completed()))
    delivery_id, event_id, webhook_id = uuid4(), uuid4(), uuid4()

    headers = delivery_headers(
        secrets=[current, previous], body=body, delivery_id=delivery_id, event_id=event_id,
        event_type="RunCompleted", webhook_id=webhook_id, attempt=2,
    )  # fmt: skip

    assert current.startswith("whsec_")
    assert current != previous
    verify_strata(headers["Strata-Signature"], body, [current])
    verify_strata(headers["Strata-Signature"], body, [previous])
    with pytest.raises(SignatureError):
        verify_strata(headers["Strata-Signature"], body, [new_secret()])
    with pytest.raises(SignatureError):
        verify_strata(headers["Strata-Signature"], body + b" ", [current])
    assert headers["Strata-Signature"].count("v1=") == 2
    assert headers["Strata-Delivery-Id"] == str(delivery_id)
    assert headers["Strata-Event-Id"] == str(event_id)
    assert headers["Strata-Event-Type"] == "RunCompleted"
    assert headers["Strata-Webhook-Id"] == str(webhook_id)
    assert headers["Strata-Attempt"] == "2"
    assert headers["User-Agent"].startswith("Strata-Webhooks/")
    assert headers["Content-Type"] == "application/json"


def test_the_body_is_the_same_bytes_for_the_same_payload() -> None:
    payload = event_payload(run_completed())

    assert body_bytes(payload) == body_bytes(dict(reversed(list(payload.items()))))


def test_only_a_whole_2xx_answer_is_a_success() -> None:
    at = datetime.now(UTC)

    assert AttemptResult(at, 1.0, 204, None, "").succeeded
    assert not AttemptResult(at, 1.0, 500, "the receiver answered 500", "").succeeded
    assert not AttemptResult(at, 1.0, 302, "the receiver answered 302", "").succeeded
    assert not AttemptResult(at, 1.0, 200, "no complete answer within 2 s", None).succeeded
    assert not AttemptResult(at, 1.0, None, "refused: 10.0.0.1 is a private address", None).succeeded


def test_a_queue_message_round_trips_and_a_foreign_one_is_refused() -> None:
    sent = Queued(uuid4(), uuid4(), 3, 12.5)

    got = Queued.parse(sent.body())

    assert (got.tenant_id, got.delivery_id, got.attempt) == (sent.tenant_id, sent.delivery_id, 3)
    for bad in ("{}", "[]", '{"tenant_id": "x", "delivery_id": "y", "attempt": 1}', "not json"):
        with pytest.raises((ValueError, KeyError, TypeError)):
            Queued.parse(bad)
    with pytest.raises(ValueError, match="positive integer"):
        Queued.parse(Queued(uuid4(), uuid4(), 1, 0).body().replace('"attempt": 1', '"attempt": true'))


# --- URLs ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hook", "must be https://"),
        ("https://10.0.0.1/hook", "a private address"),
        ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("https://127.0.0.1:8443/hook", "a loopback address"),
        ("https://[::1]/hook", "a loopback address"),
        ("https://2130706433/hook", "a loopback address"),
        ("https://user:pw@example.com/hook", "must not carry credentials"),
        ("ftp://example.com/hook", "must be http:// or https://"),
        ("/relative", "must be http:// or https://"),
        ("https://example.com/hook#part", "must not have a #fragment"),
    ],
)
def test_a_webhook_url_is_refused_before_any_lookup(url: str, reason: str) -> None:
    with pytest.raises(UrlRefusedError, match=reason):
        check_url_form(url, private_hosts=(), allow_http=False)


def test_the_operators_private_hosts_and_http_setting_let_a_loopback_receiver_through() -> None:
    check_url_form("http://127.0.0.1:8080/hook", private_hosts=("127.0.0.1:8080",), allow_http=True)
    check_url_form("https://example.com/hook", private_hosts=(), allow_http=False)
    with pytest.raises(UrlRefusedError, match="loopback"):  # another port of the same host is not allowed
        check_url_form("http://127.0.0.1:8081/hook", private_hosts=("127.0.0.1:8080",), allow_http=True)
    with pytest.raises(UrlRefusedError, match="https"):
        check_url_form("http://127.0.0.1:8080/hook", private_hosts=("127.0.0.1:8080",), allow_http=False)
