"""The Lambda handler: classifying invocations, and HTTP (through Mangum), event, schedule and command dispatch."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from uuid import uuid4

import pytest
from fastapi import APIRouter, Depends, Query

from strata import __version__
from strata.auth import ADMIN_SCOPE, Principal
from strata.errors import PROBLEM_MEDIA_TYPE, ConflictError
from strata.events import Event, parse_eventbridge
from strata.handler import ALL_EVENTS, Consumer, LambdaHandler, NoConsumerError, event_kind, make_handler
from strata.web import create_service_app, require_scope

SetEnv = Callable[..., None]  # the `settings_env` fixture (tests/unit/conftest.py)

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "events" / "eventbridge"
SCOPE = "agents:read"


# Factories for real-shaped invocation payloads


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Mangum and Powertools read."""

    function_name: str = "strata-unit"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid4()))
    log_group_name: str = "/aws/lambda/strata-unit"
    log_stream_name: str = "2025/01/15/[$LATEST]0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def http_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    authorizer_context: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as the Lambda integration receives it."""
    request_id = f"req-{uuid4()}"
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "a1b2c3d4e5",
        "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "a1b2c3d4e5",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7",
            "userAgent": "pytest",
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": "15/Jan/2025:10:30:00 +0000",
        "timeEpoch": 1736937000000,
    }
    if authorizer_context is not None:
        request_context["authorizer"] = {"lambda": dict(authorizer_context)}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "user-agent": "pytest",
            **(headers or {}),
        },
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(pair.split("=", 1) for pair in query.split("&"))
    if body is not None:
        event["body"] = body
    return event


def authorizer_event() -> dict[str, Any]:
    """A Lambda authorizer REQUEST event (payload format 2.0) of an HTTP API."""
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/$default/GET/agents",
        "identitySource": ["Bearer sk_0a1b2c3d_secret"],
        "routeKey": "GET /agents",
        "rawPath": "/agents",
        "rawQueryString": "",
        "headers": {"authorization": "Bearer sk_0a1b2c3d_secret"},
        "requestContext": {"http": {"method": "GET", "path": "/agents"}, "requestId": f"req-{uuid4()}"},
    }


def eventbridge_event(detail_type: str) -> dict[str, Any]:
    """The committed sample of `detail_type` with fresh ids."""
    sample: dict[str, Any] = json.loads((SAMPLES_DIR / f"{detail_type}.json").read_text(encoding="utf-8"))
    sample = copy.deepcopy(sample)
    sample["id"] = str(uuid4())
    sample["detail"]["event_id"] = str(uuid4())
    return sample


def principal_context(*scopes: str) -> dict[str, str]:
    return Principal(uuid4(), f"key:{uuid4()}", "api_key", frozenset(scopes)).to_context()


def response_json(response: Mapping[str, Any]) -> Any:
    """The JSON body of a Lambda proxy response (Mangum base64-encodes media types it does not know as text)."""
    body = response["body"]
    return json.loads(base64.b64decode(body) if response["isBase64Encoded"] else body)


# The app under test


def unit_router() -> APIRouter:
    router = APIRouter(prefix="/unit")

    @router.get("/conflict")
    async def conflict() -> None:
        raise ConflictError("the thing already exists", thing="widget")

    @router.get("/items")
    async def items(limit: Annotated[int, Query(ge=1)]) -> dict[str, int]:
        return {"limit": limit}

    @router.get("/secret")
    async def secret(principal: Annotated[Principal, Depends(require_scope(SCOPE))]) -> dict[str, str]:
        return {"tenant_id": str(principal.tenant_id)}

    @router.post("/echo")
    async def echo(payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    return router


def build_handler(**dispatch: Any) -> LambdaHandler:
    app = create_service_app(layer="unit", title="t", routers=[unit_router()], readiness={})
    return make_handler(app, **dispatch)


@pytest.fixture
def handler(settings_env: SetEnv) -> LambdaHandler:
    settings_env(STRATA_MAX_BODY_BYTES=None)
    return build_handler()


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()


# Classifying invocations


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        pytest.param(http_event("GET", "/health/unit/live"), "http", id="api-gateway-http-v2"),
        pytest.param(eventbridge_event("TenantCreated"), "eventbridge", id="eventbridge"),
        pytest.param(authorizer_event(), "authorizer", id="authorizer-request-v2"),
        pytest.param({"schedule": "x"}, "schedule", id="schedule"),
        pytest.param({"command": "migrate"}, "command", id="command"),
        pytest.param({"command": "migrate", "args": {"dry_run": True}}, "command", id="command-with-args"),
    ],
)
def test_event_kind_classifies_real_payloads(payload: dict[str, Any], kind: str) -> None:
    assert event_kind(payload) == kind


# HTTP through Mangum


def test_liveness_answers_200_with_its_json_body(handler: LambdaHandler, context: LambdaContext) -> None:
    event = http_event("GET", "/health/unit/live")

    response = handler(event, context)

    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "application/json"
    assert response_json(response) == {"status": "ok", "layer": "unit", "version": __version__}
    assert response["headers"]["x-request-id"] == event["requestContext"]["requestId"]


def test_an_unknown_route_is_a_404_problem(handler: LambdaHandler, context: LambdaContext) -> None:
    response = handler(http_event("GET", "/unit/nowhere"), context)

    assert response["statusCode"] == 404
    assert response["headers"]["content-type"] == PROBLEM_MEDIA_TYPE
    assert response_json(response)["type"].endswith("/not-found")


def test_a_domain_error_becomes_its_problem(handler: LambdaHandler, context: LambdaContext) -> None:
    event = http_event("GET", "/unit/conflict")

    response = handler(event, context)

    body = response_json(response)
    assert response["statusCode"] == 409
    assert response["headers"]["content-type"] == PROBLEM_MEDIA_TYPE
    assert body["type"].endswith("conflict")
    assert body["status"] == 409
    assert body["detail"] == "the thing already exists"
    assert body["thing"] == "widget"
    assert body["instance"] == "/unit/conflict"
    assert body["request_id"] == event["requestContext"]["requestId"]


def test_a_caller_supplied_request_id_is_used(handler: LambdaHandler, context: LambdaContext) -> None:
    request_id = f"client-{uuid4()}"

    response = handler(http_event("GET", "/unit/conflict", headers={"x-request-id": request_id}), context)

    assert response_json(response)["request_id"] == request_id
    assert response["headers"]["x-request-id"] == request_id


def test_an_invalid_query_parameter_is_a_422_with_field_errors(handler: LambdaHandler, context: LambdaContext) -> None:
    response = handler(http_event("GET", "/unit/items", query="limit=0"), context)

    body = response_json(response)
    assert response["statusCode"] == 422
    assert response["headers"]["content-type"] == PROBLEM_MEDIA_TYPE
    assert body["type"].endswith("/validation")
    assert [error["loc"] for error in body["errors"]] == [["query", "limit"]]
    assert body["errors"][0]["type"] == "greater_than_equal"


def test_a_valid_query_parameter_reaches_the_route(handler: LambdaHandler, context: LambdaContext) -> None:
    response = handler(http_event("GET", "/unit/items", query="limit=7"), context)

    assert response["statusCode"] == 200
    assert response_json(response) == {"limit": 7}


def test_a_scoped_route_without_an_authorizer_context_is_401(handler: LambdaHandler, context: LambdaContext) -> None:
    response = handler(http_event("GET", "/unit/secret"), context)

    assert response["statusCode"] == 401
    assert response["headers"]["content-type"] == PROBLEM_MEDIA_TYPE
    assert response_json(response)["type"].endswith("/unauthorized")


def test_a_scoped_route_with_a_malformed_authorizer_context_is_401(
    handler: LambdaHandler, context: LambdaContext
) -> None:
    response = handler(http_event("GET", "/unit/secret", authorizer_context={"kind": "api_key"}), context)

    assert response["statusCode"] == 401


def test_a_scoped_route_without_the_scope_is_403(handler: LambdaHandler, context: LambdaContext) -> None:
    event = http_event("GET", "/unit/secret", authorizer_context=principal_context("x:write"))

    response = handler(event, context)

    body = response_json(response)
    assert response["statusCode"] == 403
    assert response["headers"]["content-type"] == PROBLEM_MEDIA_TYPE
    assert body["type"].endswith("/forbidden")
    assert body["required_scope"] == SCOPE


@pytest.mark.parametrize("scopes", [(SCOPE,), (ADMIN_SCOPE,)], ids=["the-scope", "admin"])
def test_a_scoped_route_with_the_scope_is_200(
    handler: LambdaHandler, context: LambdaContext, scopes: tuple[str, ...]
) -> None:
    authorizer_context = principal_context(*scopes)

    response = handler(http_event("GET", "/unit/secret", authorizer_context=authorizer_context), context)

    assert response["statusCode"] == 200
    assert response_json(response) == {"tenant_id": authorizer_context["tenant_id"]}


def test_a_body_over_the_limit_is_413(settings_env: SetEnv, context: LambdaContext) -> None:
    # GIVEN a function configured for small bodies
    settings_env(STRATA_MAX_BODY_BYTES="1024")
    handler = build_handler()
    body = json.dumps({"blob": "x" * 2048})

    # WHEN a larger body arrives
    event = http_event(
        "POST", "/unit/echo", body=body, headers={"content-type": "application/json", "content-length": str(len(body))}
    )
    response = handler(event, context)

    # THEN it is refused before the route runs
    assert response["statusCode"] == 413
    assert response["headers"]["content-type"] == PROBLEM_MEDIA_TYPE
    assert response_json(response)["type"].endswith("/payload-too-large")


def test_a_body_within_the_limit_is_accepted(settings_env: SetEnv, context: LambdaContext) -> None:
    settings_env(STRATA_MAX_BODY_BYTES="1024")
    handler = build_handler()
    body = json.dumps({"blob": "x" * 100})

    event = http_event(
        "POST", "/unit/echo", body=body, headers={"content-type": "application/json", "content-length": str(len(body))}
    )
    response = handler(event, context)

    assert response["statusCode"] == 200
    assert response_json(response) == json.loads(body)


def test_a_body_over_the_limit_without_content_length_is_413(settings_env: SetEnv, context: LambdaContext) -> None:
    settings_env(STRATA_MAX_BODY_BYTES="1024")
    handler = build_handler()
    body = json.dumps({"blob": "x" * 2048})

    response = handler(
        http_event("POST", "/unit/echo", body=body, headers={"content-type": "application/json"}), context
    )

    assert response["statusCode"] == 413


# EventBridge, schedules, commands and the authorizer


def recording_consumer(received: list[Event]) -> Consumer:
    async def consume(event: Event) -> None:
        received.append(event)

    return consume


def test_an_event_without_a_consumer_raises(context: LambdaContext) -> None:
    handler = build_handler(consumers={"AgentCreated": recording_consumer([])})

    with pytest.raises(NoConsumerError, match=r"TenantCreated"):
        handler(eventbridge_event("TenantCreated"), context)


def test_a_registered_consumer_receives_the_typed_event(context: LambdaContext) -> None:
    received: list[Event] = []
    handler = build_handler(consumers={"TenantCreated": recording_consumer(received)})
    event = eventbridge_event("TenantCreated")

    result = handler(event, context)

    assert received == [parse_eventbridge(event)]
    assert type(received[0]).__name__ == "TenantCreated"
    assert result == {"consumed": "TenantCreated", "event_id": event["detail"]["event_id"]}


def test_the_all_events_consumer_receives_every_type_alongside_specific_ones(context: LambdaContext) -> None:
    # GIVEN an archive of everything and a consumer of one type
    archived: list[Event] = []
    specific: list[Event] = []
    handler = build_handler(
        consumers={ALL_EVENTS: recording_consumer(archived), "AgentCreated": recording_consumer(specific)}
    )
    tenant_created, agent_created = eventbridge_event("TenantCreated"), eventbridge_event("AgentCreated")

    # WHEN both types arrive
    handler(tenant_created, context)
    handler(agent_created, context)

    # THEN the archive got both and the specific consumer only its own
    assert [str(e.event_id) for e in archived] == [
        tenant_created["detail"]["event_id"],
        agent_created["detail"]["event_id"],
    ]
    assert [str(e.event_id) for e in specific] == [agent_created["detail"]["event_id"]]


def test_an_event_whose_detail_is_a_json_string_is_consumed(context: LambdaContext) -> None:
    received: list[Event] = []
    handler = build_handler(consumers={"TenantCreated": recording_consumer(received)})
    event = eventbridge_event("TenantCreated")

    handler({**event, "detail": json.dumps(event["detail"])}, context)

    assert received == [parse_eventbridge(event)]


def test_a_schedule_runs_its_job_and_returns_its_value(context: LambdaContext) -> None:
    runs: list[str] = []

    async def nightly() -> dict[str, int]:
        runs.append("nightly")
        return {"published": 3}

    handler = build_handler(schedules={"nightly": nightly})

    assert handler({"schedule": "nightly"}, context) == {"published": 3}
    assert runs == ["nightly"]


def test_an_unknown_schedule_raises(context: LambdaContext) -> None:
    handler = build_handler(schedules={})

    with pytest.raises(NoConsumerError, match=r"nightly"):
        handler({"schedule": "nightly"}, context)


def test_a_command_runs_with_its_args_and_returns_its_value(context: LambdaContext) -> None:
    calls: list[dict[str, Any]] = []

    async def migrate(args: dict[str, Any]) -> dict[str, list[str]]:
        calls.append(args)
        return {"applied": ["0001_foundation"]}

    handler = build_handler(commands={"migrate": migrate})

    assert handler({"command": "migrate", "args": {"dry_run": True}}, context) == {"applied": ["0001_foundation"]}
    assert handler({"command": "migrate"}, context) == {"applied": ["0001_foundation"]}
    assert calls == [{"dry_run": True}, {}]


def test_an_unknown_command_raises(context: LambdaContext) -> None:
    handler = build_handler(commands={})

    with pytest.raises(NoConsumerError, match=r"migrate"):
        handler({"command": "migrate"}, context)


def test_an_authorizer_event_goes_to_the_authorizer(context: LambdaContext) -> None:
    seen: list[str] = []

    async def authorize(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event["routeArn"])
        return {"isAuthorized": False}

    handler = build_handler(authorizer=authorize)
    event = authorizer_event()

    assert handler(event, context) == {"isAuthorized": False}
    assert seen == [event["routeArn"]]


def test_a_function_without_an_authorizer_refuses_authorizer_events(context: LambdaContext) -> None:
    handler = build_handler()

    with pytest.raises(NoConsumerError, match=r"not an authorizer"):
        handler(authorizer_event(), context)


def _sqs_batch(queue_arn: str, bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "receiptHandle": f"r{n}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for n, body in enumerate(bodies)
        ]
    }


def test_a_queue_batch_goes_to_its_queues_consumer_and_reports_only_failed_records(
    monkeypatch: pytest.MonkeyPatch, context: LambdaContext
) -> None:
    archive_arn, dlq_arn = "arn:aws:sqs:us-east-1:1:archive", "arn:aws:sqs:us-east-1:1:dlq"
    monkeypatch.setenv("UNIT_ARCHIVE_ARN", archive_arn)
    monkeypatch.setenv("UNIT_DLQ_ARN", dlq_arn)
    seen: list[tuple[str, str]] = []

    def consumer(name: str) -> Any:
        async def consume(record: Any) -> None:
            if record.body == "bad":
                raise ValueError("cannot")
            seen.append((name, record.body))

        return consume

    handler = make_handler(
        create_service_app(layer="unit", title="unit", routers=[]),
        queue_consumers={"UNIT_ARCHIVE_ARN": consumer("archive"), "UNIT_DLQ_ARN": consumer("dlq")},
    )
    answer = handler(_sqs_batch(archive_arn, ["a", "bad", "b"]), context)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    handler(_sqs_batch(dlq_arn, ["c"]), context)
    assert seen == [("archive", "a"), ("archive", "b"), ("dlq", "c")]
    with pytest.raises(NoConsumerError):
        handler(_sqs_batch("arn:aws:sqs:us-east-1:1:other", ["x"]), context)
