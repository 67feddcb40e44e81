"""Real Lambda event payloads for every function, for `sam local invoke -e` and the tests that run the handlers on them.

It writes, under `events/`:
- `apigw/<layer>/<case>.json`: API Gateway HTTP API requests in payload format 2.0, exactly as the HTTP API hands
  them to the function (authorized routes carry the context the L09 authorizer returns), and the L09 authorizer's
  own REQUEST event;
- `sqs/<layer>/<queue>.json`: the batches Lambda's SQS event sources deliver (EventBridge events as the rules put
  them on the archive and webhook queues, a dead letter as EventBridge writes it, a webhook delivery message);
- `schedule/<layer>/<job>.json`: each `Schedule` event's Input, which is all the function receives;
- `command/<layer>/<command>.json`: the commands an operator, the deploy or EventBridge Scheduler sends.

Regenerate them with `.venv/bin/python -m tests.support.apigw`; tests/unit/test_template_routes.py holds the committed
files to what this module builds. The samples are generic (one sample tenant, ids that exist nowhere): the tests
substitute what they create.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"

# The account, region, stage and API the samples come from (a stage "dev" deploy, as samconfig.toml's default).
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STAGE = "dev"
API_ID = "k3x9p2m7qa"
DOMAIN = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
SOURCE_IP = "203.0.113.24"
USER_AGENT = "strata-cli/0.1.0 python-httpx/0.28.1"
REQUEST_TIME = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)  # the EventBridge samples' day

# The tenant of every sample (the EventBridge samples' too) and the API key the sample requests are signed with: a
# well-formed key that no store holds (`sk_<prefix>_<secret>`), so the authorizer denies it until a test substitutes
# a real one.
SAMPLE_TENANT_ID = "3f6c2a9e-8d41-4c6b-9a57-1e2d3c4b5a69"
SAMPLE_KEY_ID = "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
SAMPLE_API_KEY = "sk_5a3f9c21_sampleKeyForSamLocalInvokeNotReal0000000"
SAMPLE_RUN_ID = "7b1e5d2c-4a3f-4e8b-9c6d-0f1a2b3c4d5e"
SAMPLE_ENDPOINT_ID = "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"
# The secret the GitHub webhook of the samples is configured with: the create-inbound-webhook sample sets it, and the
# github-ping sample is signed with it, so the one works with the endpoint the other creates.
SAMPLE_GITHUB_SECRET = "sample-github-webhook-secret-0001"
SAMPLE_ORIGIN = "https://console.example.com"

# What the L09 authorizer returns for the sample key (strata.auth.Principal.to_context): an admin of the tenant.
AUTHORIZER_CONTEXT: dict[str, str] = {
    "tenant_id": SAMPLE_TENANT_ID,
    "principal_id": f"key:{SAMPLE_KEY_ID}",
    "kind": "api_key",
    "scopes": "admin",
    "tier": "standard",
    "cors_origins": "",
}


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("/".join(parts).encode()).digest()


def _request_id(*parts: str) -> str:
    """An id of the form API Gateway gives each request (e.g. `Bq0SGjt_oAMEbaQ=`), stable per sample."""
    return base64.urlsafe_b64encode(_digest("request", *parts)[:11]).decode()


def _trace_id(*parts: str) -> str:
    return f"Root=1-{int(REQUEST_TIME.timestamp()):08x}-{_digest('trace', *parts)[:12].hex()}"


def json_body(value: Any) -> str:
    """A JSON body as an HTTP client sends it (compact)."""
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class ApiCase:
    """One request to one function: its route (as template.yaml names it), what it sends, and the status the function
    answers it with (to a fresh tenant, once the test has made what the path names)."""

    layer: str
    name: str
    method: str
    route: str
    status: int
    summary: str
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    public: bool = False

    @property
    def file(self) -> Path:
        return Path("apigw") / self.layer / f"{self.name}.json"

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.route}"

    @property
    def path(self) -> str:
        path = self.route
        for name, value in self.path_params.items():
            greedy = "{" + name + "+}"
            path = path.replace(greedy, value) if greedy in path else path.replace("{" + name + "}", quote(value))
        return path

    def request_headers(self) -> dict[str, str]:
        """The headers as the HTTP API passes them on: lower-case names, its own x-amzn-trace-id and x-forwarded-*."""
        headers = {"accept": "application/json"}
        if not self.public:
            headers["authorization"] = f"Bearer {SAMPLE_API_KEY}"
        if self.body is not None:
            headers["content-length"] = str(len(self.body.encode()))
            headers["content-type"] = "application/json"
        headers.update({k.lower(): v for k, v in self.headers.items()})
        headers.update(
            {
                "host": DOMAIN,
                "x-amzn-trace-id": _trace_id(self.layer, self.name),
                "x-forwarded-for": SOURCE_IP,
                "x-forwarded-port": "443",
                "x-forwarded-proto": "https",
            }
        )
        headers.setdefault("user-agent", USER_AGENT)
        return dict(sorted(headers.items()))

    def request_context(self) -> dict[str, Any]:
        return {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": DOMAIN,
            "domainPrefix": API_ID,
            "http": {
                "method": self.method,
                "path": self.path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": self.request_headers()["user-agent"],
            },
            "requestId": _request_id(self.layer, self.name),
            "routeKey": self.route_key,
            "stage": "$default",
            "time": REQUEST_TIME.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(REQUEST_TIME.timestamp() * 1000),
        }

    def event(self) -> dict[str, Any]:
        """The payload 2.0 event the function receives."""
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": self.route_key,
            "rawPath": self.path,
            "rawQueryString": urlencode(self.query),
            "headers": self.request_headers(),
        }
        if self.query:
            params: dict[str, str] = {}
            for name, value in self.query:  # repeated parameters arrive comma-joined
                params[name] = f"{params[name]},{value}" if name in params else value
            event["queryStringParameters"] = params
        context = self.request_context()
        if not self.public:
            context["authorizer"] = {"lambda": dict(AUTHORIZER_CONTEXT)}
        event["requestContext"] = context
        if self.path_params:
            event["pathParameters"] = dict(self.path_params)
        if self.body is not None:
            event["body"] = self.body
        event["isBase64Encoded"] = False
        return event

    def authorizer_event(self) -> dict[str, Any]:
        """The REQUEST event (payload 2.0) the HTTP API sends the L09 authorizer before routing this request: the
        request without its body, the identity source's values, and the route's ARN."""
        event = {k: v for k, v in self.event().items() if k not in ("body", "isBase64Encoded")}
        event["requestContext"] = self.request_context()
        arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/$default/{self.method}{self.path}"
        return {
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": arn,
            "identitySource": [event["headers"]["authorization"]],
            **{k: v for k, v in event.items() if k != "version"},
        }


def _health(layer: str) -> ApiCase:
    return ApiCase(
        layer,
        "health-ready",
        "GET",
        f"/health/{layer}/ready",
        200,
        "Readiness: a round trip to every dependency (public route)",
        public=True,
    )


def _github_ping() -> str:
    return json_body(
        {
            "zen": "Design for failure.",
            "hook_id": 504127,
            "hook": {
                "type": "Repository",
                "id": 504127,
                "name": "web",
                "active": True,
                "events": ["pull_request"],
                "config": {"content_type": "json", "insecure_ssl": "0", "url": f"https://{DOMAIN}/v1/hooks/..."},
            },
            "repository": {"id": 1296269, "full_name": "acme/app", "private": True},
            "sender": {"login": "octocat", "id": 1, "type": "User"},
        }
    )


GITHUB_PING = _github_ping()
PR_MAPPING = {
    "text": "Review pull request {{ pull_request.title }} ({{ pull_request.html_url }})",
    "strategy": "template",
}

API_CASES: tuple[ApiCase, ...] = (
    # L01 data
    _health("data"),
    ApiCase(
        "data",
        "list-agents",
        "GET",
        "/v1/agents",
        200,
        "The tenant's active agents",
        query=(("status", "active"), ("limit", "20")),
    ),
    ApiCase(
        "data",
        "create-agent",
        "POST",
        "/v1/agents",
        201,
        "Register an agent",
        body=json_body(
            {
                "name": "support-triage",
                "description": "Sorts incoming support tickets by area and urgency.",
                "capabilities": ["triage", "search"],
                "system_prompt": "You triage support tickets: name the area and the urgency of each.",
                "model": {"capabilities": ["tools"], "strategy": "cheapest"},
                "tools": ["json_query", "text"],
                "max_steps": 10,
            }
        ),
    ),
    ApiCase(
        "data",
        "create-agent-invalid",
        "POST",
        "/v1/agents",
        422,
        "An agent without a name, with no steps",
        body=json_body({"name": "", "max_steps": 0}),
    ),
    # L02 runtime
    _health("runtime"),
    ApiCase(
        "runtime",
        "list-runs",
        "GET",
        "/v1/runs",
        200,
        "The tenant's running runs",
        query=(("status", "running"), ("limit", "20")),
    ),
    ApiCase(
        "runtime",
        "cancel-run",
        "POST",
        "/v1/runs/{run_id}/cancel",
        200,
        "Cancel a running run (the test starts one and names it)",
        path_params={"run_id": SAMPLE_RUN_ID},
        body=json_body({"reason": "superseded by a newer goal"}),
    ),
    ApiCase(
        "runtime",
        "pause-run-invalid",
        "POST",
        "/v1/runs/{run_id}/pause",
        422,
        "A pause with a field the route does not take",
        path_params={"run_id": SAMPLE_RUN_ID},
        body=json_body({"reason": "look", "until": "tomorrow"}),
    ),
    # L03 tool execution
    _health("tool_execution"),
    ApiCase("tool_execution", "list-tools", "GET", "/v1/tools", 200, "The tools the tenant can call"),
    ApiCase(
        "tool_execution",
        "invoke-tool",
        "POST",
        "/v1/tools/{name}/invoke",
        200,
        "Call the json_query tool once (recorded in the ledger)",
        path_params={"name": "json_query"},
        body=json_body(
            {
                "run_id": SAMPLE_RUN_ID,
                "task_id": "search-tickets",
                "step": 0,
                "call_id": "call-1",
                "input": {
                    "data": {"tickets": [{"id": 1, "area": "billing"}, {"id": 2, "area": "search"}]},
                    "query": "tickets[?area=='billing'].id",
                },
            }
        ),
    ),
    ApiCase(
        "tool_execution",
        "invoke-tool-invalid",
        "POST",
        "/v1/tools/{name}/invoke",
        422,
        "A call without a call id, with a run id that is not a UUID",
        path_params={"name": "json_query"},
        body=json_body({"run_id": "run-1", "task_id": "search-tickets", "step": -1, "input": {}}),
    ),
    # L04 model gateway
    _health("model_gateway"),
    ApiCase("model_gateway", "list-models", "GET", "/v1/models", 200, "The models the tenant can call"),
    ApiCase(
        "model_gateway",
        "create-budget",
        "POST",
        "/v1/budgets",
        201,
        "A monthly budget for the whole tenant",
        body=json_body({"scope": "tenant", "period": "month", "limit_micro_usd": 25_000_000}),
    ),
    ApiCase(
        "model_gateway",
        "create-budget-invalid",
        "POST",
        "/v1/budgets",
        422,
        "A run budget without its run, of nothing",
        body=json_body({"scope": "run", "period": "day", "limit_micro_usd": 0}),
    ),
    # L05 planning
    _health("planning"),
    ApiCase("planning", "list-goals", "GET", "/v1/goals", 200, "The tenant's goals", query=(("limit", "20"),)),
    ApiCase(
        "planning",
        "create-plan-template",
        "POST",
        "/v1/plan-templates",
        201,
        "A plan template goals like 'count the words of ...' match",
        body=json_body(
            {
                "name": "count-words",
                "description": "Counts the words of a text, then picks the count out.",
                "patterns": ["count the words of {text}"],
                "parameters": {"type": "object", "properties": {"text": {"type": "string", "maxLength": 1000}}},
                "body": {
                    "tasks": [
                        {
                            "task_id": "count",
                            "title": "Count",
                            "kind": "tool",
                            "tool": "text",
                            "input": {"operation": "count", "text": "{{text}}"},
                        },
                        {
                            "task_id": "words",
                            "title": "Words",
                            "kind": "tool",
                            "tool": "json_query",
                            "depends_on": ["count"],
                            "input": {"data": {"$from": "count", "path": "result"}, "query": "words"},
                        },
                    ]
                },
            }
        ),
    ),
    ApiCase(
        "planning",
        "submit-goal-invalid",
        "POST",
        "/v1/goals",
        422,
        "A goal without text, with a strategy there is not",
        body=json_body({"text": "", "strategy": "guess"}),
    ),
    # L06 evaluation
    _health("evaluation"),
    ApiCase(
        "evaluation",
        "list-evaluations",
        "GET",
        "/v1/evaluations",
        200,
        "The tenant's evaluations",
        query=(("limit", "20"),),
    ),
    ApiCase(
        "evaluation",
        "create-eval-dataset",
        "POST",
        "/v1/eval-datasets",
        201,
        "A regression dataset of two cases",
        body=json_body(
            {
                "name": "triage-regression",
                "description": "Tickets whose area is known.",
                "cases": [
                    {"case_id": "billing", "input": "I was charged twice this month.", "expected": "billing"},
                    {"case_id": "search", "input": "Search finds nothing since Monday.", "expected": "search"},
                ],
            }
        ),
    ),
    ApiCase(
        "evaluation",
        "create-eval-dataset-invalid",
        "POST",
        "/v1/eval-datasets",
        422,
        "A dataset without cases",
        body=json_body({"name": "triage-regression", "cases": []}),
    ),
    # L07 learning
    _health("learning"),
    ApiCase(
        "learning",
        "list-feedback",
        "GET",
        "/v1/feedback",
        200,
        "Feedback on the tenant's runs",
        query=(("limit", "20"),),
    ),
    ApiCase(
        "learning",
        "create-dataset",
        "POST",
        "/v1/datasets",
        201,
        "A training dataset split 80/10/10",
        body=json_body(
            {
                "name": "triage-sft",
                "description": "Scored triage runs for fine-tuning.",
                "splits": {"train": 0.8, "validation": 0.1, "test": 0.1},
                "seed": 7,
                "stratify_by": "none",
            }
        ),
    ),
    ApiCase(
        "learning",
        "create-dataset-invalid",
        "POST",
        "/v1/datasets",
        422,
        "Splits that do not add up to one",
        body=json_body({"name": "triage-sft", "splits": {"train": 0.9}}),
    ),
    # L08 supervision
    _health("supervision"),
    ApiCase("supervision", "list-policies", "GET", "/v1/policies", 200, "The tenant's policies"),
    ApiCase(
        "supervision",
        "create-policy",
        "POST",
        "/v1/policies",
        201,
        "A Cedar policy: no HTTP requests from agents of this tenant",
        body=json_body(
            {
                "name": "no-http-requests",
                "description": "Agents of this tenant work on data they are given.",
                "cedar": '@reason("HTTP requests are off for this tenant") forbid (principal, '
                'action == Strata::Action::"tool.invoke", resource == Strata::Tool::"http_request");',
            }
        ),
    ),
    ApiCase(
        "supervision",
        "create-policy-invalid",
        "POST",
        "/v1/policies",
        422,
        "A policy that is not Cedar",
        body=json_body({"name": "broken", "cedar": "permit (principal,"}),
    ),
    # L09 API gateway
    _health("api_gateway"),
    ApiCase("api_gateway", "list-api-keys", "GET", "/v1/api-keys", 200, "The tenant's API keys (never their secrets)"),
    ApiCase(
        "api_gateway",
        "create-api-key",
        "POST",
        "/v1/api-keys",
        201,
        "A read-only key for CI",
        body=json_body({"name": "ci-reader", "scopes": ["agents:read", "runs:read"], "expires_in_days": 90}),
    ),
    ApiCase(
        "api_gateway",
        "create-api-key-invalid",
        "POST",
        "/v1/api-keys",
        422,
        "A key with a scope there is not",
        body=json_body({"name": "ci-reader", "scopes": ["root"]}),
    ),
    ApiCase(
        "api_gateway",
        "cors-preflight",
        "OPTIONS",
        "/{proxy+}",
        204,
        "A browser's CORS preflight (public; allowed once a tenant allows the origin)",
        path_params={"proxy": "v1/agents"},
        headers={
            "accept": "*/*",
            "origin": SAMPLE_ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
            "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
        },
        public=True,
    ),
    # L10 human interface (no write routes: the console writes through the other layers' APIs)
    _health("human_interface"),
    ApiCase(
        "human_interface",
        "console-costs",
        "GET",
        "/v1/console/costs",
        200,
        "The cost and quality charts' series for a week",
        query=(("days", "7"),),
    ),
    ApiCase(
        "human_interface",
        "console-costs-invalid",
        "GET",
        "/v1/console/costs",
        422,
        "Charts over zero days",
        query=(("days", "0"),),
    ),
    ApiCase(
        "human_interface",
        "console-page",
        "GET",
        "/console/",
        200,
        "The console's page (public)",
        headers={"accept": "text/html,application/xhtml+xml"},
        public=True,
    ),
    ApiCase(
        "human_interface",
        "console-asset",
        "GET",
        "/console/assets/{name}",
        200,
        "A console asset (public)",
        path_params={"name": "app.js"},
        headers={"accept": "*/*"},
        public=True,
    ),
    # L11 integration
    _health("integration"),
    ApiCase("integration", "list-webhooks", "GET", "/v1/webhooks", 200, "The tenant's outbound webhooks"),
    ApiCase(
        "integration",
        "create-inbound-webhook",
        "POST",
        "/v1/inbound-webhooks",
        201,
        "A GitHub webhook endpoint whose opened pull requests become goals",
        body=json_body(
            {
                "name": "github-pull-requests",
                "description": "acme/app's pull requests, reviewed.",
                "scheme": "github",
                "secret": SAMPLE_GITHUB_SECRET,
                "mapping": PR_MAPPING,
                "filter": [{"field": "$event", "equals": "pull_request"}, {"field": "action", "equals": "opened"}],
            }
        ),
    ),
    ApiCase(
        "integration",
        "create-inbound-webhook-invalid",
        "POST",
        "/v1/inbound-webhooks",
        422,
        "An endpoint of a scheme there is not, mapping to no text",
        body=json_body({"name": "gitlab", "scheme": "gitlab", "mapping": {"text": ""}}),
    ),
    ApiCase(
        "integration",
        "github-ping",
        "POST",
        "/v1/hooks/{endpoint_id}",
        200,
        "GitHub's ping to a new webhook (public: the signature is the credential; the test names its endpoint)",
        path_params={"endpoint_id": SAMPLE_ENDPOINT_ID},
        body=GITHUB_PING,
        headers={
            "accept": "*/*",
            "user-agent": "GitHub-Hookshot/8a3f1c2",
            "x-github-delivery": "1c6b7e40-ac6d-11ef-8e4b-2f1a3c5d7e90",
            "x-github-event": "ping",
            "x-github-hook-id": "504127",
            "x-github-hook-installation-target-id": "1296269",
            "x-github-hook-installation-target-type": "repository",
            "x-hub-signature-256": "sha256="
            + hmac.new(SAMPLE_GITHUB_SECRET.encode(), GITHUB_PING.encode(), hashlib.sha256).hexdigest(),
        },
        public=True,
    ),
)

# The request the authorizer sample authorizes: the list of agents.
AUTHORIZED_CASE = next(c for c in API_CASES if (c.layer, c.name) == ("data", "list-agents"))
AUTHORIZER_SAMPLE = Path("apigw") / "api_gateway" / "authorizer-request.json"


def api_case(layer: str, name: str) -> ApiCase:
    return next(c for c in API_CASES if (c.layer, c.name) == (layer, name))


# SQS: the queues functions consume (their logical ids in template.yaml), named as the template names them.
QUEUE_NAMES = {
    "EventArchiveQueue": f"strata-{STAGE}-event-archive",
    "EventsDeadLetterQueue": f"strata-{STAGE}-events-dlq",
    "WebhookEventQueue": f"strata-{STAGE}-webhook-events",
    "WebhookDeliveryQueue": f"strata-{STAGE}-webhook-deliveries",
}


def queue_arn(queue: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{QUEUE_NAMES[queue]}"


def queue_of_arn(arn: str) -> str:
    """The logical id of the queue a sample's records come from."""
    return next(queue for queue in QUEUE_NAMES if queue_arn(queue) == arn)


def eventbridge_sample(detail_type: str) -> dict[str, Any]:
    sample: dict[str, Any] = json.loads((EVENTS / "eventbridge" / f"{detail_type}.json").read_text(encoding="utf-8"))
    return sample


def sqs_record(
    queue: str, body: str, index: int, sender: str, attributes: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One record as Lambda's SQS event source delivers it."""
    sent = int(REQUEST_TIME.timestamp() * 1000) + index
    message_id = _uuid("sqs", queue, str(index))
    record: dict[str, Any] = {
        "messageId": message_id,
        "receiptHandle": base64.b64encode(_digest("receipt", queue, str(index)) * 3).decode(),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(sent),
            "SenderId": sender,
            "ApproximateFirstReceiveTimestamp": str(sent + 12),
        },
        "messageAttributes": {
            name: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
            for name, value in (attributes or {}).items()
        },
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn(queue),
        "awsRegion": REGION,
    }
    if attributes:
        record["md5OfMessageAttributes"] = _md5_of_attributes(attributes)
    return record


def _uuid(*parts: str) -> str:
    return str(uuid.UUID(bytes=_digest(*parts)[:16], version=4))


def _md5_of_attributes(attributes: Mapping[str, str]) -> str:
    """SQS's MD5 of string message attributes: per attribute, sorted by name, the length-prefixed name, data type and
    value, with transport type 1 (string) before the value."""

    def framed(text: str) -> bytes:
        data = text.encode()
        return struct.pack(">I", len(data)) + data

    encoded = b"".join(
        framed(name) + framed("String") + b"\x01" + framed(value) for name, value in sorted(attributes.items())
    )
    return hashlib.md5(encoded).hexdigest()


EVENTBRIDGE_SENDER = "AIDAIE6VAXUQU2DKHA7DK"  # EventBridge's principal as SQS reports it
INTEGRATION_SENDER = f"AROA2EXAMPLE7HJ4KQ3ZC:strata-{STAGE}-IntegrationFunction"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/strata-{STAGE}/strata-{STAGE}-RuntimeFunctionStartApprovedPlans"
TARGET_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:strata-{STAGE}-RuntimeFunction"


def _batch(queue: str, bodies: list[str], sender: str, attributes: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"Records": [sqs_record(queue, body, i, sender, attributes) for i, body in enumerate(bodies)]}


def sqs_samples() -> dict[Path, dict[str, Any]]:
    def events(*detail_types: str) -> list[str]:
        return [json_body(eventbridge_sample(t)) for t in detail_types]

    dead_letter = {
        "ERROR_CODE": "SDK_CLIENT_ERROR",
        "ERROR_MESSAGE": "Rate Exceeded. (Service: AWSLambda; Status Code: 429; Error Code: TooManyRequestsException)",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttemptsExhausted",
        "RETRY_ATTEMPTS": "8",
        "RULE_ARN": RULE_ARN,
        "TARGET_ARN": TARGET_ARN,
    }
    delivery = json_body(
        {"tenant_id": SAMPLE_TENANT_ID, "delivery_id": "4d3c2b1a-0f9e-4d8c-b7a6-958473625140", "attempt": 1}
    )
    return {
        Path("sqs/data/event-archive-batch.json"): _batch(
            "EventArchiveQueue", events("TaskCompleted", "RunCompleted"), EVENTBRIDGE_SENDER
        ),
        Path("sqs/data/events-dlq-batch.json"): _batch(
            "EventsDeadLetterQueue", events("PlanApproved"), EVENTBRIDGE_SENDER, dead_letter
        ),
        Path("sqs/integration/webhook-event-batch.json"): _batch(
            "WebhookEventQueue", events("RunCompleted", "TaskFailed"), EVENTBRIDGE_SENDER
        ),
        Path("sqs/integration/webhook-delivery-batch.json"): _batch(
            "WebhookDeliveryQueue", [delivery], INTEGRATION_SENDER
        ),
    }


def sam_env_vars() -> dict[str, dict[str, str]]:
    """`sam local invoke --env-vars events/sqs/env.json`: the queue ARNs the consuming functions' environment holds,
    as the SQS samples name them (the template sets them with !GetAtt, which `sam local` does not resolve to the
    queues; a batch from a queue whose ARN is not there is refused)."""
    from strata_cli.localcloud.template import load_template

    template = load_template(ROOT / "template.yaml")
    found: dict[str, dict[str, str]] = {}
    for function, spec in template.functions.items():
        for variable, value in spec.environment.items():
            target = value.get("Fn::GetAtt") if isinstance(value, dict) else None
            if target and target[0] in QUEUE_NAMES and target[1] == "Arn":
                found.setdefault(function, {})[variable] = queue_arn(target[0])
    return found


def schedule_samples() -> dict[Path, dict[str, Any]]:
    """Each `Schedule` event's Input, under the layer of the function it invokes."""
    from strata_cli.localcloud.template import load_template

    template = load_template(ROOT / "template.yaml")
    samples: dict[Path, dict[str, Any]] = {}
    for schedule in template.schedules:
        assert schedule.input is not None, f"{schedule.name} has no Input"
        payload: dict[str, Any] = json.loads(schedule.input)
        layer = template.functions[schedule.function].code_uri.name
        samples[Path("schedule") / layer / f"{payload['schedule']}.json"] = payload
    return samples


def command_samples() -> dict[Path, dict[str, Any]]:
    """The commands: migrate (the deploy), bootstrap (an operator), fire_schedule (EventBridge Scheduler, with its
    context attributes filled in as Scheduler does)."""
    return {
        Path("command/data/migrate.json"): {"command": "migrate"},
        Path("command/api_gateway/bootstrap.json"): {
            "command": "bootstrap",
            "args": {"tenant_name": "acme", "key_name": "operator", "scopes": ["admin"]},
        },
        Path("command/integration/fire_schedule.json"): {
            "command": "fire_schedule",
            "args": {
                "tenant_id": SAMPLE_TENANT_ID,
                "schedule_id": "5b4a3928-1706-4f5e-8d4c-3b2a19081726",
                "scheduled_time": "2026-11-27T12:30:00Z",
                "execution_id": "0f4c1b2e-7d6a-4b3c-9e8f-a1b2c3d4e5f6",
                "attempt": "1",
            },
        },
    }


def samples() -> dict[Path, dict[str, Any]]:
    """Every sample this module builds, by its path under events/."""
    built: dict[Path, dict[str, Any]] = {case.file: case.event() for case in API_CASES}
    built[AUTHORIZER_SAMPLE] = AUTHORIZED_CASE.authorizer_event()
    built.update(sqs_samples())
    built[Path("sqs/env.json")] = sam_env_vars()
    built.update(schedule_samples())
    built.update(command_samples())
    return built


def render(sample: Mapping[str, Any]) -> str:
    return json.dumps(sample, indent=2) + "\n"


def write(root: Path = EVENTS) -> list[Path]:
    """Write every sample (and remove none: a stale file is the unit test's to find)."""
    written = []
    for relative, sample in samples().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(sample), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        sys.stdout.write(f"{path.relative_to(ROOT)}\n")
