"""Inbound webhooks without a network: the goal-text template language, filters, reading JSON and form bodies, each
scheme's event name and delivery id, signature checks per scheme, and how planning's answers become the sender's."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from strata import peers
from strata.errors import (
    BadGatewayError,
    BadRequestError,
    DependencyUnavailableError,
    ProblemError,
    UnsupportedMediaTypeError,
)
from strata.signatures import SignatureError, strata_signature
from strata_integration.inbound import deliveries, receiver
from strata_integration.inbound.deliveries import Claim
from strata_integration.inbound.endpoints import Endpoint
from strata_integration.inbound.mapping import (
    MAX_PLACEHOLDERS,
    MAX_VALUE_CHARS,
    Delivery,
    FilterCondition,
    GoalMapping,
    RenderError,
    TemplateError,
    compile_template,
    render,
    why_ignored,
)

PR = {
    "action": "opened",
    "pull_request": {"title": "Fix it", "html_url": "https://github.com/a/b/pull/1", "draft": False, "body": None},
    "labels": [{"name": "bug"}, {"name": "urgent"}],
    "commits": 3,
}


def delivery(payload: Any = None, event: str = "pull_request", **headers: str) -> Delivery:
    return Delivery(
        payload=PR if payload is None else payload,
        event=event,
        delivery="d-1",
        endpoint="reviews",
        scheme="github",
        headers=headers,
    )


def fill(template: str, payload: Any = None, **headers: str) -> str:
    return render(compile_template(template), delivery(payload, **headers))


# The template language


def test_the_issue_example_renders_from_the_payload() -> None:
    text = fill("Review pull request {{ pull_request.title }} ({{ pull_request.html_url }})")

    assert text == "Review pull request Fix it (https://github.com/a/b/pull/1)"


def test_delivery_fields_headers_list_indexes_and_non_strings_render() -> None:
    text = fill(
        "{{ $event }}/{{ $delivery }}/{{ $endpoint }}/{{ $scheme }}/{{$header.x-github-hook-id}} "
        "{{ labels.1.name }} {{ commits }} {{ pull_request.draft }} {{ labels.0 }}",
        **{"x-github-hook-id": "42"},
    )

    assert text == 'pull_request/d-1/reviews/github/42 urgent 3 false {"name":"bug"}'


def test_a_missing_or_null_field_fails_naming_it_unless_a_fallback_is_given() -> None:
    with pytest.raises(RenderError, match=r"pull_request\.merged_by is missing"):
        fill("By {{ pull_request.merged_by }}")
    with pytest.raises(RenderError, match=r"pull_request\.body is null"):
        fill("{{ pull_request.body }}")
    with pytest.raises(RenderError, match=r"labels\.5\.name is missing"):
        fill("{{ labels.5.name }}")
    with pytest.raises(RenderError, match=r"\$header\.x-nope is missing"):
        fill("{{ $header.x-nope }}")

    assert fill('{{ pull_request.body ?? "(no description)" }}') == "(no description)"
    assert fill('[{{ pull_request.merged_by.login ?? "" }}] {{ action }}') == "[] opened"


def test_fallbacks_may_hold_quotes_backslashes_and_braces() -> None:
    assert fill(r'{{ nope ?? "say \"hi\" }} \\ {{" }}!') == 'say "hi" }} \\ {{!'


def test_values_are_capped_and_cleaned_of_control_characters() -> None:
    long = fill("{{ text }}", {"text": "x" * (MAX_VALUE_CHARS + 50)})
    assert len(long) == MAX_VALUE_CHARS
    assert long.endswith("…")

    assert fill("{{ text }}", {"text": "a\x00b\x1bc\nd\te\ud800"}) == "abc\nd\te?"


def test_a_template_rendering_to_nothing_but_space_fails() -> None:
    with pytest.raises(RenderError, match="empty"):
        fill('  {{ nope ?? "" }} ')


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("Review {{ pull_request.title", "not closed"),
        ("{{ }}", "is not {{ path }}"),
        ("{{ a b }}", "is not {{ path }}"),
        ("{{ a..b }}", "field path"),
        ("{{ a.b! }}", "field path"),
        ("{{ $payload }}", "the names starting with \\$"),
        ("{{ $event.x }}", "the names starting with \\$"),
        ("{{ $header }}", "name the header"),
        ("{{ $header.Authorization }}", "not available"),
        ("{{ $header.cookie }}", "not available"),
        ('{{ a ?? "x" ?? "y" }}', "is not {{ path }}"),
        ("{{ a ?? x }}", "is not {{ path }}"),
        ('{{ a ?? "\\n" }}', "may escape only"),
        ('{{ a ?? "unclosed }}', "not closed"),
        ("{{ {{ a }} }}", "is not {{ path }}"),
        ("bell \x07", "control characters"),
        ("{{ __class__.__init__ }}x{{ a | upper }}", "is not {{ path }}"),
    ],
)
def test_templates_that_cannot_be_used_are_refused_with_the_reason(template: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        compile_template(template)


def test_a_template_has_a_bounded_number_of_placeholders() -> None:
    compile_template("{{ a }}" * MAX_PLACEHOLDERS)
    with pytest.raises(TemplateError, match="at most"):
        compile_template("{{ a }}" * (MAX_PLACEHOLDERS + 1))


def test_text_without_placeholders_and_lone_closing_braces_are_literal() -> None:
    assert fill("Nightly check }} done") == "Nightly check }} done"


def test_the_mapping_model_refuses_a_bad_template_at_its_field() -> None:
    with pytest.raises(ValidationError) as refused:
        GoalMapping.model_validate({"text": "{{ a..b }}"})

    [error] = refused.value.errors()
    assert error["loc"] == ("text",)
    assert "field path" in error["msg"]


def test_the_mapping_builds_the_goal_body_with_its_constraints() -> None:
    mapping = GoalMapping.model_validate(
        {"text": "x", "strategy": "template", "constraints": {"require_approval": True, "max_parallelism": 2}}
    )

    assert mapping.goal_body("Do it", "service:inbound-webhook/e") == {
        "text": "Do it",
        "constraints": {"require_approval": True, "max_parallelism": 2},
        "strategy": "template",
        "on_behalf_of": "service:inbound-webhook/e",
    }


# Filters


def condition(**spec: Any) -> FilterCondition:
    return FilterCondition.model_validate(spec)


def test_a_github_filter_admits_opened_and_updated_pull_requests_only() -> None:
    conditions = [
        condition(field="$event", equals="pull_request"),
        condition(field="action", **{"in": ["opened", "synchronize"]}),
    ]

    assert why_ignored(conditions, delivery()) is None
    assert why_ignored(conditions, delivery({**PR, "action": "synchronize"})) is None
    assert why_ignored(conditions, delivery({**PR, "action": "closed"})) == (
        'filtered out: action is "closed", not one of ["opened","synchronize"]'
    )
    assert why_ignored(conditions, delivery(event="push")) == 'filtered out: $event is "push", not "pull_request"'


@pytest.mark.parametrize(
    ("spec", "admitted"),
    [
        ({"field": "commits", "equals": 3}, True),
        ({"field": "commits", "equals": 3.0}, True),
        ({"field": "commits", "equals": "3"}, False),
        ({"field": "pull_request.draft", "equals": False}, True),
        ({"field": "pull_request.draft", "equals": 0}, False),
        ({"field": "pull_request.body", "equals": None}, True),
        ({"field": "nope", "equals": None}, False),
        ({"field": "pull_request.body", "exists": False}, True),
        ({"field": "pull_request.title", "exists": True}, True),
        ({"field": "nope", "exists": True}, False),
        ({"field": "action", "not_in": ["closed"]}, True),
        ({"field": "nope", "not_in": ["closed"]}, True),
        ({"field": "action", "not_in": ["opened"]}, False),
        ({"field": "pull_request.title", "contains": "Fix"}, True),
        ({"field": "pull_request.title", "contains": "fix"}, False),
        ({"field": "labels.0", "contains": "bug"}, False),
        ({"field": "$header.x-github-event", "equals": "pull_request"}, True),
    ],
)
def test_each_operator_compares_as_json_does(spec: dict[str, Any], admitted: bool) -> None:
    assert (condition(**spec).why_not(delivery(**{"x-github-event": "pull_request"})) is None) is admitted


def test_contains_finds_a_value_in_a_list() -> None:
    payload = {"labels": ["bug", "urgent"], "ids": [1, 2]}
    assert condition(field="labels", contains="urgent").why_not(delivery(payload)) is None
    assert condition(field="ids", contains=2).why_not(delivery(payload)) is None
    assert condition(field="ids", contains="2").why_not(delivery(payload)) is not None


@pytest.mark.parametrize(
    "spec",
    [
        {"field": "action"},
        {"field": "action", "equals": "a", "in": ["b"]},
        {"field": "action", "in": []},
        {"field": "action", "exists": None},
        {"field": "a..b", "equals": 1},
        {"field": "action", "equals": {"an": "object"}},
        {"field": "action", "matches": ".*"},
    ],
)
def test_a_condition_has_a_valid_field_and_exactly_one_operator(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FilterCondition.model_validate(spec)


def test_a_condition_round_trips_through_storage_with_in_and_an_explicit_null() -> None:
    for spec in ({"field": "action", "in": ["opened"]}, {"field": "body", "equals": None}):
        stored = condition(**spec).model_dump(mode="json", by_alias=True, exclude_unset=True)
        assert stored == spec
        assert FilterCondition.model_validate(stored) == condition(**spec)


# Reading deliveries


def test_json_and_form_bodies_are_read_and_anything_else_refused() -> None:
    assert receiver.read_payload("application/json", b'{"a": [1]}') == {"a": [1]}
    assert receiver.read_payload("application/vnd.github+json", b"[1]") == [1]
    assert receiver.read_payload("", b"  ") == {}
    fields = urlencode({"command": "/strata", "text": "hi there", "tag": "x"}).encode() + b"&tag=y"
    assert receiver.read_payload(receiver.FORM, fields) == {"command": "/strata", "text": "hi there", "tag": ["x", "y"]}
    embedded = urlencode({"payload": json.dumps({"type": "block_actions", "trigger_id": "t"})}).encode()
    assert receiver.read_payload(receiver.FORM, embedded) == {"type": "block_actions", "trigger_id": "t"}

    with pytest.raises(UnsupportedMediaTypeError):
        receiver.read_payload("text/plain", b"hello")
    with pytest.raises(BadRequestError, match="not valid JSON"):
        receiver.read_payload("application/json", b'{"a":')
    with pytest.raises(BadRequestError, match="deeper"):
        receiver.read_payload("application/json", b"[" * 100 + b"]" * 100)
    with pytest.raises(BadRequestError, match="deeper"):
        receiver.read_payload(receiver.FORM, urlencode({"payload": "[" * 100 + "]" * 100}).encode())
    with pytest.raises(BadRequestError, match="UTF-8"):
        receiver.read_payload(receiver.FORM, b"a=\xff\xfe")


@pytest.mark.parametrize(
    ("scheme", "headers", "payload", "event", "sender"),
    [
        ("github", {"x-github-event": "push", "x-github-delivery": "g-1"}, {}, "push", "g-1"),
        (
            "slack",
            {},
            {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}},
            "app_mention",
            "Ev1",
        ),
        ("slack", {}, {"command": "/strata", "trigger_id": "t-1"}, "slash_command", "t-1"),
        ("slack", {}, {"type": "block_actions", "trigger_id": "t-2"}, "block_actions", "t-2"),
        ("slack", {}, {"type": "url_verification", "challenge": "c"}, "url_verification", None),
        ("strata", {"strata-event-type": "stock.low", "strata-delivery-id": "s-1"}, {}, "stock.low", "s-1"),
        ("strata", {"idempotency-key": "k-1"}, {}, "", "k-1"),
        ("strata", {}, [1, 2], "", None),
    ],
)
def test_each_scheme_names_its_event_and_delivery(
    scheme: str, headers: dict[str, str], payload: Any, event: str, sender: str | None
) -> None:
    assert receiver.event_name(scheme, headers, payload) == event
    assert receiver.sender_delivery_id(scheme, headers, payload) == sender


def test_a_delivery_without_an_id_is_recorded_by_its_bodys_hash() -> None:
    digest = hashlib.sha256(b"{}").hexdigest()
    assert receiver.dedupe_key(None, digest) == f"sha256:{digest}"
    assert receiver.dedupe_key("g-1", digest) == "id:g-1"
    parsed = receiver.parse("github", {"content-type": "application/json"}, b"{}", digest)
    assert (parsed.payload, parsed.problem, parsed.dedupe_key) == ({}, None, f"sha256:{digest}")


def test_the_idempotency_key_is_one_per_delivery_and_goal() -> None:
    endpoint_id = uuid4()
    goal = {"text": "a", "strategy": "hybrid"}
    key = receiver.idempotency_key(endpoint_id, "id:g-1", goal)

    assert key == receiver.idempotency_key(endpoint_id, "id:g-1", dict(reversed(goal.items())))
    assert key.startswith(f"inbound-webhook:{endpoint_id}:")
    assert len(key) <= 255
    assert key != receiver.idempotency_key(endpoint_id, "id:g-2", goal)
    assert key != receiver.idempotency_key(endpoint_id, "id:g-1", {**goal, "text": "b"})
    assert key != receiver.idempotency_key(uuid4(), "id:g-1", goal)


# Signatures, per scheme


def endpoint(scheme: str, *secrets: str, enabled: bool = True) -> Endpoint:
    return Endpoint(
        endpoint_id=uuid4(),
        tenant_id=uuid4(),
        name="hook",
        scheme=scheme,
        secrets=secrets,
        mapping=GoalMapping.model_validate({"text": "{{ a }}"}),
        filter=(),
        enabled=enabled,
    )


def test_each_scheme_checks_its_own_signature_against_every_live_secret() -> None:
    body = b'{"a": 1}'
    github = "sha256=" + hmac.new(b"old-secret", body, hashlib.sha256).hexdigest()
    receiver.verify(endpoint("github", "new-secret", "old-secret"), {"x-hub-signature-256": github}, body)
    with pytest.raises(SignatureError):
        receiver.verify(endpoint("github", "new-secret"), {"x-hub-signature-256": github}, body)

    stamp = str(int(time.time()))
    slack = "v0=" + hmac.new(b"signing", f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    slack_headers = {"x-slack-signature": slack, "x-slack-request-timestamp": stamp}
    receiver.verify(endpoint("slack", "signing"), slack_headers, body)
    with pytest.raises(SignatureError):
        receiver.verify(endpoint("slack", "signing"), slack_headers, body + b" ")

    receiver.verify(endpoint("strata", "s1"), {"strata-signature": strata_signature(["s1"], body)}, body)
    with pytest.raises(SignatureError):  # GitHub's header does not satisfy a strata endpoint
        receiver.verify(endpoint("strata", "s1"), {"x-hub-signature-256": github}, body)


# Planning's answers


class FakePlanning:
    """Stands in for L05's POST /v1/goals (the HTTP call is the only thing replaced) and records settlements."""

    def __init__(self, status: int | None, body: dict[str, Any] | None = None) -> None:
        self.status, self.body = status, body or {}
        self.calls: list[dict[str, Any]] = []
        self.settled: list[tuple[str, str | None]] = []

    async def call(self, method: str, path: str, **kwargs: Any) -> peers.PeerResponse:
        self.calls.append({"method": method, "path": path, **kwargs})
        if self.status is None:
            raise DependencyUnavailableError("POST /v1/goals failed: ClientConnectorError")
        return peers.PeerResponse(self.status, {"content-type": "application/json"}, json.dumps(self.body).encode())

    async def settle(self, tenant_id: UUID, delivery_id: UUID, outcome: str, reason: str | None = None) -> None:
        self.settled.append((outcome, reason))


async def submit(monkeypatch: pytest.MonkeyPatch, planning: FakePlanning, scheme: str = "github") -> UUID:
    monkeypatch.setattr(peers, "call", planning.call)
    monkeypatch.setattr(deliveries, "settle", planning.settle)
    hook = endpoint(scheme, "s")
    parsed = receiver.parse(scheme, {"content-type": "application/json"}, b"{}", "0" * 64)
    claim = Claim(uuid4(), "new", None, 1)
    no_retry = receiver.SLACK_NO_RETRY if scheme == "slack" else {}
    return await receiver._submit(hook, claim, parsed, {"text": "t"}, "corr-1", no_retry)


async def test_an_accepted_goal_is_submitted_as_the_tenant_with_an_idempotency_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    goal_id = uuid4()
    planning = FakePlanning(202, {"goal_id": str(goal_id)})

    assert await submit(monkeypatch, planning) == goal_id
    [call] = planning.calls
    assert (call["method"], call["path"], call["json"]) == ("POST", "/v1/goals", {"text": "t"})
    assert call["headers"]["Idempotency-Key"].startswith("inbound-webhook:")
    assert call["correlation_id"] == "corr-1"
    assert planning.settled == []  # the caller settles an accepted delivery with its goal


@pytest.mark.parametrize("status", [None, 500, 503, 429, 409])
async def test_planning_unavailable_asks_the_sender_to_retry(
    monkeypatch: pytest.MonkeyPatch, status: int | None
) -> None:
    planning = FakePlanning(status, {"detail": "down"})

    with pytest.raises(DependencyUnavailableError) as refused:
        await submit(monkeypatch, planning)

    assert refused.value.status == 503
    [(outcome, reason)] = planning.settled
    assert outcome == "failed"
    assert reason is not None


async def test_a_goal_planning_refuses_is_a_422_slack_will_not_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    planning = FakePlanning(423, {"detail": "the tenant is suspended"})

    with pytest.raises(ProblemError) as refused:
        await submit(monkeypatch, planning, scheme="slack")

    assert (refused.value.status, refused.value.slug) == (422, "goal-refused")
    assert "the tenant is suspended" in refused.value.detail
    assert refused.value.headers == {"X-Slack-No-Retry": "1"}
    assert planning.settled == [("failed", "planning answered 423: the tenant is suspended")]


async def test_a_refused_platform_credential_is_the_platforms_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadGatewayError):
        await submit(monkeypatch, FakePlanning(401, {"detail": "no"}))


# Slack's form deliveries


def test_slack_form_deliveries_are_answered_as_slack_expects() -> None:
    hook = endpoint("slack", "s")
    accepted = receiver.HookAnswer(202, {"delivery_id": "d", "outcome": "accepted", "goal_id": "g", "duplicate": False})
    command = receiver.parse("slack", {"content-type": receiver.FORM}, b"command=%2Fstrata&trigger_id=t", "0" * 64)
    interaction = receiver.parse(
        "slack", {"content-type": receiver.FORM}, urlencode({"payload": '{"type": "block_actions"}'}).encode(), "0" * 64
    )
    event = receiver.parse("slack", {"content-type": "application/json"}, b'{"type": "event_callback"}', "0" * 64)

    shaped = receiver._shaped(hook, command, accepted)
    assert (shaped.status, shaped.body) == (
        200,
        {"response_type": "ephemeral", "text": "Submitted as goal g", **(accepted.body or {})},
    )
    assert receiver._shaped(hook, interaction, accepted) == receiver.HookAnswer(200, None)
    assert receiver._shaped(hook, event, accepted) == accepted
    assert receiver._shaped(endpoint("github", "s"), command, accepted) == accepted
