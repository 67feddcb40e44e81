"""Every sample in events/ run through the real handler of each function that receives it, in its worker of the local
cloud (through Lambda's Invoke API, as `aws lambda invoke` or `sam local invoke -e` would): API Gateway requests get
what their route answers, the authorizer decides, each EventBridge event is consumed by every function the template
routes it to (directly or through a queue), queue batches leave no failed item, schedules and commands finish.

The samples are generic (one sample tenant, ids that exist nowhere): each test makes a tenant of its own and puts its
id, and the ids of what it made, in the sample's place."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strata_cli.localcloud.template import load_template
from tests.conftest import ROOT
from tests.e2e.conftest import Platform
from tests.e2e.test_runs import run_of, run_template
from tests.support.apigw import (
    AUTHORIZER_SAMPLE,
    SAMPLE_API_KEY,
    SAMPLE_ORIGIN,
    ApiCase,
    api_case,
    queue_of_arn,
)

pytestmark = pytest.mark.e2e

EVENTS = ROOT / "events"
TEMPLATE = load_template(ROOT / "template.yaml")
FUNCTION_OF_LAYER = {spec.code_uri.name: logical_id for logical_id, spec in TEMPLATE.functions.items()}
EVENTBRIDGE = {path.stem: path for path in sorted((EVENTS / "eventbridge").glob("*.json"))}


def files(kind: str) -> list[Path]:
    """The samples of one kind (apigw, sqs, schedule, command), relative to events/."""
    return sorted(path.relative_to(EVENTS) for path in (EVENTS / kind).glob("*/*.json"))


def load(relative: Path) -> dict[str, Any]:
    sample: dict[str, Any] = json.loads((EVENTS / relative).read_text(encoding="utf-8"))
    return sample


def function_of(relative: Path) -> str:
    """The function a sample is for: the layer its folder names."""
    return FUNCTION_OF_LAYER[relative.parts[1]]


@dataclass
class Tenant:
    tenant_id: str
    api_key: str
    headers: dict[str, str]


@pytest.fixture
async def tenant(platform: Platform) -> Tenant:
    made = await platform.new_tenant(f"samples-{uuid.uuid4().hex[:8]}")
    return Tenant(made["tenant_id"], made["api_key"], platform.auth(made["api_key"]))


async def invoked(platform: Platform, function: str, payload: dict[str, Any]) -> Any:
    """The function's answer; the test fails on any error the function raised."""
    answer = await platform.invoke(function, payload)
    assert "FunctionError" not in answer, f"{function} failed: {answer['Payload']}"
    return answer["Payload"]


# API Gateway requests


def as_tenant(event: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """The request as the authorizer would have passed it on for a credential of `tenant_id`."""
    event = copy.deepcopy(event)
    authorizer = event["requestContext"].get("authorizer")
    if authorizer is not None:
        authorizer["lambda"]["tenant_id"] = tenant_id
    return event


def with_path(event: dict[str, Any], **params: str) -> dict[str, Any]:
    """The request with other values for its path parameters (the path, rawPath and pathParameters alike)."""
    event = copy.deepcopy(event)
    for name, value in params.items():
        old = event["pathParameters"][name]
        event["pathParameters"][name] = value
        event["rawPath"] = event["rawPath"].replace(old, value)
        event["requestContext"]["http"]["path"] = event["requestContext"]["http"]["path"].replace(old, value)
    return event


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def http_answer(payload: Any) -> HttpAnswer:
    """A payload 2.0 response as Mangum returns it (JSON and problem+json stay text, never base64)."""
    assert isinstance(payload, dict), payload
    assert "statusCode" in payload, payload
    headers = {str(k).lower(): str(v) for k, v in (payload.get("headers") or {}).items()}
    assert payload.get("isBase64Encoded") is False, payload
    return HttpAnswer(int(payload["statusCode"]), headers, str(payload.get("body") or ""))


async def running_run(platform: Platform, tenant: Tenant) -> str:
    """A run of the tenant that is still running (three slow tasks in a row)."""
    slow = {"code": "import time\ntime.sleep(2.0)\nresult = 1"}
    tasks = [
        {"task_id": "a", "title": "A", "kind": "tool", "tool": "python", "input": slow},
        {"task_id": "b", "title": "B", "kind": "tool", "tool": "python", "input": slow, "depends_on": ["a"]},
        {"task_id": "c", "title": "C", "kind": "tool", "tool": "python", "input": slow, "depends_on": ["b"]},
    ]
    run = await run_of(platform, tenant.headers, await run_template(platform, tenant.headers, tasks))
    return str(run["run_id"])


async def inbound_endpoint(platform: Platform, tenant: Tenant) -> str:
    """The endpoint the create-inbound-webhook sample makes (with the secret the github-ping sample is signed with)."""
    event = as_tenant(load(api_case("integration", "create-inbound-webhook").file), tenant.tenant_id)
    made = http_answer(await invoked(platform, "IntegrationFunction", event))
    assert made.status == 201, made.body
    return str(made.json()["endpoint_id"])


# What some samples need first: the path parameters that name what the test made for them.
Prepare = Callable[[Platform, Tenant], Awaitable[dict[str, str]]]


async def _run_to_cancel(platform: Platform, tenant: Tenant) -> dict[str, str]:
    return {"run_id": await running_run(platform, tenant)}


async def _endpoint_to_ping(platform: Platform, tenant: Tenant) -> dict[str, str]:
    return {"endpoint_id": await inbound_endpoint(platform, tenant)}


async def _allowed_origin(platform: Platform, tenant: Tenant) -> dict[str, str]:
    allowed = await platform.api.patch("/v1/tenant", json={"cors_origins": [SAMPLE_ORIGIN]}, headers=tenant.headers)
    assert allowed.status_code == 200, allowed.text
    return {}


PREPARE: dict[tuple[str, str], Prepare] = {
    ("runtime", "cancel-run"): _run_to_cancel,
    ("integration", "github-ping"): _endpoint_to_ping,
    ("api_gateway", "cors-preflight"): _allowed_origin,
}
# L09 keeps the origins it allows for a few seconds: a newly allowed one may be refused until it looks again.
RETRIED_UNTIL_ANSWERED = {("api_gateway", "cors-preflight"): 15.0}


def check_answer(case: ApiCase, request: dict[str, Any], answer: HttpAnswer) -> None:
    """The answer is the route's: its status, and a body of the kind the route gives."""
    assert answer.status == case.status, f"{case.route_key}: {answer.status} {answer.body}"
    content_type = answer.headers.get("content-type", "")
    if case.status >= 400:
        assert content_type.startswith("application/problem+json"), content_type
        problem = answer.json()
        assert problem["status"] == case.status
        assert problem["type"].startswith("https://strata.dev/problems/")
        assert problem["detail"]
        assert problem["request_id"] == request["requestContext"]["requestId"]
        for error in problem.get("errors", []):  # each field that failed validation, or each reason (Cedar's)
            assert error["loc"] if isinstance(error, dict) else error, problem
        return
    assert answer.headers["x-request-id"] == request["requestContext"]["requestId"]
    if case.status == 204:
        assert answer.body == ""
        return
    if case.name == "health-ready":
        body = answer.json()
        assert (body["status"], body["layer"]) == ("ok", case.layer), body
        assert all(d["status"] == "ok" for d in body["dependencies"].values()), body
    elif case.name == "console-page":
        assert content_type.startswith("text/html")
        assert "<html" in answer.body.lower()
    elif case.name == "console-asset":
        assert content_type.startswith("text/javascript")
        assert answer.body.strip()
    else:
        assert content_type.startswith("application/json"), content_type
        body = answer.json()
        if case.name.startswith("list-") or case.name == "console-costs":
            assert isinstance(body, dict), body
            lists = [value for value in body.values() if isinstance(value, list)]
            assert lists, f"{case.route_key} answered no list: {body}"
        if request.get("body"):  # a write: what it made or changed holds what was sent
            sent = json.loads(request["body"])
            scalars = {k: v for k, v in sent.items() if isinstance(v, str | int | float | bool) and k != "secret"}
            echoed = {k: v for k, v in scalars.items() if k in body}  # (a secret sent is never shown again)
            assert echoed == {k: body[k] for k in echoed}, body
            if case.method == "POST" and case.status == 201:
                assert echoed, f"{case.route_key} echoed nothing it was sent: {body}"


API_SAMPLES = [path for path in files("apigw") if path != AUTHORIZER_SAMPLE]


@pytest.mark.parametrize("relative", API_SAMPLES, ids=[f"{p.parts[1]}/{p.stem}" for p in API_SAMPLES])
async def test_each_api_gateway_request_gets_what_its_route_answers(
    platform: Platform, tenant: Tenant, relative: Path
) -> None:
    # GIVEN the request as the HTTP API hands it to the function, from the tenant of this test
    case = api_case(relative.parts[1], relative.stem)
    sample = load(relative)
    prepare = PREPARE.get((case.layer, case.name))
    event = as_tenant(sample, tenant.tenant_id)
    if prepare is not None:
        names = await prepare(platform, tenant)
        event = with_path(event, **names) if names else event

    # WHEN the function's handler runs it
    deadline = time.monotonic() + RETRIED_UNTIL_ANSWERED.get((case.layer, case.name), 0.0)
    answer = http_answer(await invoked(platform, function_of(relative), event))
    while answer.status != case.status and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        answer = http_answer(await invoked(platform, function_of(relative), event))

    # THEN it answers what the route answers
    check_answer(case, event, answer)
    if (case.layer, case.name) == ("runtime", "cancel-run"):
        assert answer.json()["status"] == "cancelled"
    elif (case.layer, case.name) == ("integration", "github-ping"):
        assert answer.json()["outcome"] == "ignored"  # a ping submits no goal
    elif (case.layer, case.name) == ("api_gateway", "cors-preflight"):
        assert answer.headers["access-control-allow-origin"] == SAMPLE_ORIGIN
    elif (case.layer, case.name) == ("tool_execution", "invoke-tool"):
        assert answer.json()["output"] == {"result": [1]}, answer.body


async def test_the_authorizer_denies_the_sample_key_and_allows_a_real_one(platform: Platform, tenant: Tenant) -> None:
    sample = load(AUTHORIZER_SAMPLE)
    assert sample["identitySource"] == [f"Bearer {SAMPLE_API_KEY}"]

    # the sample's key is well formed but no store holds it
    assert await invoked(platform, "ApiGatewayFunction", sample) == {"isAuthorized": False}

    real = copy.deepcopy(sample)
    real["headers"]["authorization"] = real["identitySource"][0] = f"Bearer {tenant.api_key}"
    allowed = await invoked(platform, "ApiGatewayFunction", real)
    assert allowed["isAuthorized"] is True, allowed
    context = allowed["context"]
    assert (context["tenant_id"], context["kind"], context["scopes"]) == (tenant.tenant_id, "api_key", "admin")
    assert context["principal_id"].startswith("key:")


# EventBridge events, straight to the functions the template's rules name and through the queues its rules fill


def pattern_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether an EventBridge event pattern matches `event` (the operators template.yaml uses; any other fails)."""
    for key, condition in pattern.items():
        value = event.get(key)
        if isinstance(condition, dict):
            if not isinstance(value, dict) or not pattern_matches(condition, value):
                return False
            continue
        if not any(_condition_matches(c, value) for c in condition):
            return False
    return True


def _condition_matches(condition: Any, value: Any) -> bool:
    if not isinstance(condition, dict):
        return bool(condition == value)
    if set(condition) == {"prefix"}:
        return isinstance(value, str) and value.startswith(condition["prefix"])
    if set(condition) == {"anything-but"}:
        excluded = condition["anything-but"]
        return value not in (excluded if isinstance(excluded, list) else [excluded])
    raise AssertionError(f"an event pattern operator this test does not know: {condition}")


def eventbridge_event(detail_type: str, tenant_id: str) -> dict[str, Any]:
    """The sample of `detail_type`, for `tenant_id`, as a new event (new ids: the consumers are idempotent)."""
    event: dict[str, Any] = json.loads(EVENTBRIDGE[detail_type].read_text(encoding="utf-8"))
    event["id"] = str(uuid.uuid4())
    event["detail"].update(event_id=str(uuid.uuid4()), tenant_id=tenant_id)
    return event


ROUTED = sorted(
    {
        (rule.function, detail_type)
        for rule in TEMPLATE.rules
        for detail_type, path in EVENTBRIDGE.items()
        if pattern_matches(rule.pattern, json.loads(path.read_text(encoding="utf-8")))
    }
)


def test_every_function_rule_of_the_template_routes_some_sample() -> None:
    routed = {function for function, _ in ROUTED}
    assert routed == {rule.function for rule in TEMPLATE.rules}
    for rule in TEMPLATE.rules:
        for detail_type in rule.pattern["detail-type"]:
            assert detail_type in EVENTBRIDGE, f"{rule.name}: no sample of {detail_type}"


# Consumers that first read what the event names from the layer that owns it, and so learn that the sample's run, plan
# or goal exists nowhere: strata.peers.get_for_event raises PeerStatusError for any answer but 200, by design ("so the
# event is retried and then dead-lettered"): after the rule's retries the event waits in the events DLQ, where
# GET /v1/dead-letters shows it and it can be replayed. Every other consumer ignores an event about nothing it knows.
REFUSED_AS_UNKNOWN = {
    ("EvaluationFunction", "TaskCompleted"): "/v1/runs/",  # a checked task: its criteria are read from L02
    ("RuntimeFunction", "PlanApproved"): "/v1/plans/",  # the plan to run is read from L05
    ("SupervisionFunction", "PlanCreated"): "/v1/goals/",  # the goal's constraints are read from L05
}


@pytest.mark.parametrize(("function", "detail_type"), ROUTED, ids=[f"{f}-{t}" for f, t in ROUTED])
async def test_each_eventbridge_sample_is_consumed_by_each_function_a_rule_routes_it_to(
    platform: Platform, tenant: Tenant, function: str, detail_type: str
) -> None:
    # GIVEN an event whose ids (run, plan, goal, task...) exist nowhere, for a tenant that exists
    event = eventbridge_event(detail_type, tenant.tenant_id)

    # WHEN the function the template's rule names receives it
    refused_reading = REFUSED_AS_UNKNOWN.get((function, detail_type))
    if refused_reading is not None:
        # THEN a consumer that must read what the event names refuses it with the owner's 404 (retried, then DLQ)
        answer = await platform.invoke(function, event)
        assert answer.get("FunctionError") == "Unhandled", answer["Payload"]
        error = answer["Payload"]
        assert error["errorType"] == "PeerStatusError", error
        assert error["errorMessage"].startswith(f"GET {refused_reading}"), error
        assert error["errorMessage"].endswith("answered 404"), error
        return
    consumed = await invoked(platform, function, event)

    # THEN any other consumes it without an error (an event about nothing the consumer knows changes nothing)
    assert consumed == {"consumed": detail_type, "event_id": event["detail"]["event_id"]}


def queue_rules() -> list[tuple[str, str, dict[str, Any]]]:
    """(rule, queue, pattern) of every rule of the template whose target is a queue a function consumes."""
    consumed = {source.queue for source in TEMPLATE.queue_sources}
    found = []
    for name, rule in TEMPLATE.resources_of_type("AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            arn = target["Arn"]
            queue = arn["Fn::GetAtt"][0] if isinstance(arn, dict) and "Fn::GetAtt" in arn else None
            if queue in consumed:
                found.append((name, queue, rule["Properties"]["EventPattern"]))
    return found


QUEUE_RULES = queue_rules()


def sqs_event(platform: Platform, queue: str, bodies: list[str]) -> dict[str, Any]:
    assert platform.cloud.resolver is not None
    arn = platform.cloud.resolver.arns[queue]
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "local",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def queue_function(queue: str) -> str:
    [function] = {source.function for source in TEMPLATE.queue_sources if source.queue == queue}
    return function


@pytest.mark.parametrize(("rule", "queue", "pattern"), QUEUE_RULES, ids=[r for r, _, _ in QUEUE_RULES])
async def test_every_eventbridge_sample_a_rule_puts_on_a_queue_is_consumed_from_it(
    platform: Platform, tenant: Tenant, rule: str, queue: str, pattern: dict[str, Any]
) -> None:
    # GIVEN every sample the rule matches, as EventBridge puts it on the queue, in batches of up to ten
    events = [eventbridge_event(t, tenant.tenant_id) for t in EVENTBRIDGE]
    matched = [json.dumps(e) for e in events if pattern_matches(pattern, e)]
    assert matched, f"{rule} matches no sample"

    for start in range(0, len(matched), 10):
        # WHEN the function consuming the queue receives each batch
        answer = await invoked(platform, queue_function(queue), sqs_event(platform, queue, matched[start : start + 10]))
        # THEN no item of it failed
        assert answer == {"batchItemFailures": []}


# Queue batches, schedules and commands


def fresh_batch(platform: Platform, sample: dict[str, Any], tenant_id: str) -> tuple[str, dict[str, Any]]:
    """The batch for the local cloud's queue and `tenant_id`, with new message and event ids; and its queue."""
    batch = copy.deepcopy(sample)
    queue = queue_of_arn(batch["Records"][0]["eventSourceARN"])
    assert platform.cloud.resolver is not None
    for record in batch["Records"]:
        assert queue_of_arn(record["eventSourceARN"]) == queue
        record["eventSourceARN"] = platform.cloud.resolver.arns[queue]
        record["messageId"] = str(uuid.uuid4())
        body = json.loads(record["body"])
        if "detail" in body:  # an EventBridge event
            body["id"] = str(uuid.uuid4())
            body["detail"].update(event_id=str(uuid.uuid4()), tenant_id=tenant_id)
        else:
            body["tenant_id"] = tenant_id
        record["body"] = json.dumps(body, separators=(",", ":"))
    return queue, batch


SQS_SAMPLES = files("sqs")


@pytest.mark.parametrize("relative", SQS_SAMPLES, ids=[f"{p.parts[1]}/{p.stem}" for p in SQS_SAMPLES])
async def test_each_queue_batch_is_consumed_without_a_failed_item(
    platform: Platform, tenant: Tenant, relative: Path
) -> None:
    queue, batch = fresh_batch(platform, load(relative), tenant.tenant_id)
    function = function_of(relative)
    assert queue_function(queue) == function, f"{relative}: {queue} is consumed by {queue_function(queue)}"

    answer = await invoked(platform, function, batch)

    assert answer == {"batchItemFailures": []}
    bodies = [json.loads(record["body"]) for record in batch["Records"]]
    if queue == "EventArchiveQueue":  # archived, each once
        for body in bodies:
            found = await platform.api.get(
                "/v1/events", params={"detail_type": body["detail-type"]}, headers=tenant.headers
            )
            assert [e["event_id"] for e in found.json()["items"]] == [body["detail"]["event_id"]], found.text
    elif queue == "EventsDeadLetterQueue":  # kept for inspection and replay, with what EventBridge said
        found = await platform.api.get("/v1/dead-letters", headers=tenant.headers)
        [letter] = found.json()["items"]
        assert (letter["detail_type"], letter["error_code"]) == (bodies[0]["detail-type"], "SDK_CLIENT_ERROR")


SCHEDULES = files("schedule")


@pytest.mark.parametrize("relative", SCHEDULES, ids=[f"{p.parts[1]}/{p.stem}" for p in SCHEDULES])
async def test_each_scheduled_job_runs_to_its_end(platform: Platform, relative: Path) -> None:
    sample = load(relative)
    function = function_of(relative)
    assert any(s.function == function and json.loads(s.input or "{}") == sample for s in TEMPLATE.schedules), (
        f"{relative} is no Schedule input of {function}"
    )

    await invoked(platform, function, sample)


COMMANDS = files("command")


@pytest.mark.parametrize("relative", COMMANDS, ids=[f"{p.parts[1]}/{p.stem}" for p in COMMANDS])
async def test_each_command_does_what_it_says(platform: Platform, tenant: Tenant, relative: Path) -> None:
    sample = copy.deepcopy(load(relative))
    command = sample["command"]
    if command == "bootstrap":
        sample["args"]["tenant_name"] = f"samples-bootstrap-{uuid.uuid4().hex[:8]}"
    elif "tenant_id" in sample.get("args", {}):
        sample["args"]["tenant_id"] = tenant.tenant_id

    answer = await invoked(platform, function_of(relative), sample)

    if command == "migrate":
        assert answer == {"applied": []}  # the local cloud migrated at its start
    elif command == "bootstrap":
        assert str(answer["api_key"]).startswith("sk_")
        assert answer["scopes"] == sample["args"]["scopes"]
        uuid.UUID(answer["tenant_id"])
    elif command == "fire_schedule":  # a firing that crossed its schedule's deletion is dropped
        assert (answer["outcome"], answer["reason"]) == ("skipped", "the schedule was deleted"), answer
    else:
        raise AssertionError(f"{relative}: a command this test does not know")
