"""The access matrix over every operation of the public OpenAPI document, through the local cloud:

- every non-public route refuses a missing, malformed, unknown, revoked, expired or wrong-scope credential;
- tenant B's admin cannot read, list, change or delete tenant A's resources: a named resource of A is 404 to B
  (never 403, which would leak that it exists), lists and singletons show B none of A's identifiers, and after
  all of it A's resources are exactly as they were.

The document is the inventory: a new route fails `test_every_operation_is_in_the_matrix` until it is placed here.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem
from tests.support.webhook_receiver import shared_receiver

pytestmark = pytest.mark.e2e

DOCUMENT = json.loads((ROOT / "functions/api_gateway/strata_api_gateway/openapi.json").read_text())
OPERATIONS = sorted(
    (method.upper(), path, bool(op.get("security")))
    for path, ops in DOCUMENT["paths"].items()
    for method, op in ops.items()
)
PROTECTED = [(m, p) for m, p, secured in OPERATIONS if secured]

# Routes that name one of the tenant's resources: B sends them with A's identifiers and must get 404.
NAMED: dict[tuple[str, str], dict[str, Any] | None] = {
    ("GET", "/v1/agents/{agent_id}"): None,
    ("PATCH", "/v1/agents/{agent_id}"): {"description": "B was here"},
    ("DELETE", "/v1/agents/{agent_id}"): None,
    ("GET", "/v1/api-keys/{key_id}"): None,
    ("POST", "/v1/api-keys/{key_id}/revoke"): {},
    ("POST", "/v1/api-keys/{key_id}/rotate"): {"grace_seconds": 0},
    ("GET", "/v1/configurations/{namespace}/{key}"): None,
    ("DELETE", "/v1/configurations/{namespace}/{key}"): None,
    ("GET", "/v1/configurations/{namespace}/{key}/versions"): None,
    ("GET", "/v1/dead-letters/{dead_letter_id}"): None,
    ("POST", "/v1/dead-letters/{dead_letter_id}/replay"): {},
    ("GET", "/v1/documents/{document_id}"): None,
    ("PATCH", "/v1/documents/{document_id}"): {"title": "B was here"},
    ("DELETE", "/v1/documents/{document_id}"): None,
    ("GET", "/v1/documents/{document_id}/versions"): None,
    ("GET", "/v1/documents/{document_id}/versions/{version}"): None,
    ("GET", "/v1/sessions/{session_id}"): None,
    ("PATCH", "/v1/sessions/{session_id}"): {"state": {"b": True}},
    ("POST", "/v1/sessions/{session_id}/close"): {},
    ("GET", "/v1/models/{model_id}"): None,
    ("PATCH", "/v1/models/{model_id}"): {"enabled": False},
    ("DELETE", "/v1/models/{model_id}"): None,
    ("GET", "/v1/budgets/{budget_id}"): None,
    ("PATCH", "/v1/budgets/{budget_id}"): {"limit_micro_usd": 1},
    ("DELETE", "/v1/budgets/{budget_id}"): None,
    ("GET", "/v1/plan-templates/{template_id}"): None,
    ("GET", "/v1/goals/{goal_id}"): None,
    ("GET", "/v1/goals/{goal_id}/plans"): None,
    ("GET", "/v1/plans/{plan_id}"): None,
    ("PATCH", "/v1/plan-templates/{template_id}"): {"description": "B was here"},
    ("DELETE", "/v1/plan-templates/{template_id}"): None,
    ("GET", "/v1/runs/{run_id}"): None,
    ("GET", "/v1/runs/{run_id}/tasks/{task_id}/steps"): None,
    ("POST", "/v1/runs/{run_id}/pause"): {},
    ("POST", "/v1/runs/{run_id}/resume"): {},
    ("POST", "/v1/runs/{run_id}/cancel"): {},
    ("GET", "/v1/mcp-servers/{server_id}"): None,
    ("POST", "/v1/mcp-servers/{server_id}/refresh"): {},
    ("DELETE", "/v1/mcp-servers/{server_id}"): None,
    ("GET", "/v1/policies/{policy_id}"): None,
    ("PATCH", "/v1/policies/{policy_id}"): {"enabled": False},
    ("DELETE", "/v1/policies/{policy_id}"): None,
    ("GET", "/v1/policies/{policy_id}/versions"): None,
    ("POST", "/v1/policies/{policy_id}/rollback"): {"version": 1},
    ("GET", "/v1/decisions/{decision_id}"): None,
    ("GET", "/v1/approvals/{approval_id}"): None,
    ("POST", "/v1/approvals/{approval_id}"): {"decision": "approve"},
    ("GET", "/v1/suspensions/{suspension_id}"): None,
    ("DELETE", "/v1/suspensions/{suspension_id}"): None,
    ("GET", "/v1/runs/{run_id}/tasks/{task_id}"): None,
    ("POST", "/v1/runs/{run_id}/tasks/{task_id}/retry"): {},
    ("GET", "/v1/evaluations/{evaluation_id}"): None,
    ("GET", "/v1/alerts/{alert_id}"): None,
    ("PATCH", "/v1/alerts/{alert_id}"): {"status": "acknowledged"},
    ("GET", "/v1/eval-datasets/{eval_dataset_id}"): None,
    ("PATCH", "/v1/eval-datasets/{eval_dataset_id}"): {"description": "B was here"},
    ("DELETE", "/v1/eval-datasets/{eval_dataset_id}"): None,
    ("GET", "/v1/eval-runs/{eval_run_id}"): None,
    ("GET", "/v1/feedback/{feedback_id}"): None,
    ("GET", "/v1/training-examples/{example_id}"): None,
    ("GET", "/v1/datasets/{dataset_id}"): None,
    ("DELETE", "/v1/datasets/{dataset_id}"): None,
    ("POST", "/v1/datasets/{dataset_id}/versions"): {},
    ("GET", "/v1/datasets/{dataset_id}/versions"): None,
    ("GET", "/v1/datasets/{dataset_id}/versions/{version}/examples"): None,
    ("POST", "/v1/datasets/{dataset_id}/versions/{version}/exports"): {"format": "openai_chat"},
    ("GET", "/v1/datasets/{dataset_id}/exports"): None,
    ("POST", "/v1/datasets/{dataset_id}/versions/{version}/fine-tunes"): {
        "base_model": "m",
        "custom_model": "b-model",
        "role_arn": "arn:aws:iam::123456789012:role/b",
    },
    ("GET", "/v1/fine-tunes/{job_id}"): None,
    ("GET", "/v1/webhooks/{webhook_id}"): None,
    ("PATCH", "/v1/webhooks/{webhook_id}"): {"status": "disabled"},
    ("DELETE", "/v1/webhooks/{webhook_id}"): None,
    ("POST", "/v1/webhooks/{webhook_id}/rotate-secret"): {"overlap_s": 0},
    ("POST", "/v1/webhooks/{webhook_id}/ping"): {},
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): None,
    ("POST", "/v1/webhooks/{webhook_id}/redeliver-failed"): {},
    ("GET", "/v1/webhook-deliveries/{delivery_id}"): None,
    ("POST", "/v1/webhook-deliveries/{delivery_id}/redeliver"): {},
    ("GET", "/v1/schedules/{schedule_id}"): None,
    ("PATCH", "/v1/schedules/{schedule_id}"): {"description": "B was here"},
    ("DELETE", "/v1/schedules/{schedule_id}"): None,
    ("POST", "/v1/schedules/{schedule_id}/pause"): {},
    ("POST", "/v1/schedules/{schedule_id}/resume"): {},
    ("GET", "/v1/schedules/{schedule_id}/runs"): None,
    ("GET", "/v1/inbound-webhooks/{endpoint_id}"): None,
    ("PATCH", "/v1/inbound-webhooks/{endpoint_id}"): {"enabled": False},
    ("DELETE", "/v1/inbound-webhooks/{endpoint_id}"): None,
    ("POST", "/v1/inbound-webhooks/{endpoint_id}/rotate-secret"): {"overlap_s": 0},
    ("GET", "/v1/inbound-webhooks/{endpoint_id}/deliveries"): None,
    ("POST", "/v1/inbound-webhooks/{endpoint_id}/preview"): {"payload": {}},
}
# Reads that are the caller's own (lists, singletons, summaries): B's answer must hold none of A's identifiers.
OWN_READS = {
    ("GET", path)
    for path in (
        "/v1/agents",
        "/v1/api-keys",
        "/v1/configurations",
        "/v1/console/overview",
        "/v1/console/costs",
        "/v1/run-summary",
        "/v1/quality/series",
        "/v1/dead-letters",
        "/v1/documents",
        "/v1/evaluations",
        "/v1/events",
        "/v1/feedback",
        "/v1/goals",
        "/v1/models",
        "/v1/policies",
        "/v1/requests",
        "/v1/retention",
        "/v1/runs",
        "/v1/sessions",
        "/v1/status",
        "/v1/tenant",
        "/v1/tools",
        "/v1/tools/{name}",
        "/v1/tool-calls",
        "/v1/usage",
        "/v1/webhooks",
        "/v1/models/usage",
        "/v1/budgets",
        "/v1/plan-templates",
        "/v1/mcp-servers",
        "/v1/policies/schema",
        "/v1/decisions",
        "/v1/approvals",
        "/v1/audit",
        "/v1/suspensions",
        "/v1/alerts",
        "/v1/eval-datasets",
        "/v1/eval-runs",
        "/v1/evaluation-settings",
        "/v1/quality/agents/{agent_id}",
        "/v1/quality/scores",
        "/v1/training-examples",
        "/v1/datasets",
        "/v1/fine-tunes",
        "/v1/inbound-webhooks",
        "/v1/models/providers",
        "/v1/schedules",
    )
}
# the query a read needs to answer 200 (its required parameters)
READ_QUERIES = {"/v1/quality/series": {"metric": "task.score"}}
# Writes that act on the caller's own tenant only (creates, upserts, settings): after B sends them, A's resources
# are unchanged (checked at the end) and B's creations are not visible to A.
OWN_WRITES = {
    ("POST", "/v1/agents"): {"name": "b-agent"},
    ("POST", "/v1/api-keys"): {"name": "b-key", "scopes": ["agents:read"]},
    ("PUT", "/v1/configurations/{namespace}/{key}"): {"value": "b-value"},
    ("POST", "/v1/dead-letters/replay"): {},
    ("POST", "/v1/documents"): {"title": "b-doc", "content": "b"},
    ("PUT", "/v1/retention"): {"event_log_days": 30, "archive": False},
    ("POST", "/v1/sessions"): {},
    ("PATCH", "/v1/tenant"): {"cors_origins": ["https://b.example.com"]},
    ("POST", "/v1/models"): {"name": "b-model", "provider": "openai", "provider_model": "b", "context_window": 10},
    ("POST", "/v1/budgets"): {"scope": "tenant", "period": "day", "limit_micro_usd": 5},
    ("POST", "/v1/models/chat"): {"model": "b-model", "messages": [{"role": "user", "content": "hi"}]},
    ("POST", "/v1/chat/completions"): {"model": "b-model", "messages": [{"role": "user", "content": "hi"}]},
    ("POST", "/v1/models/embeddings"): {"model": "b-model", "input": "hi"},
    ("PATCH", "/v1/tools/{name}"): {"requires_approval": False},
    ("POST", "/v1/plan-templates"): {
        "name": "b-template",
        "patterns": ["b {x}"],
        "parameters": {"type": "object", "properties": {"x": {"type": "string"}}},
        "body": {"tasks": [{"task_id": "b", "title": "{{x}}", "kind": "agent"}]},
    },
    ("POST", "/v1/plan-templates/match"): {"text": "a goal"},
    ("POST", "/v1/goals"): {"text": "b's goal", "strategy": "template"},
    ("POST", "/v1/mcp-servers"): {"name": "bmcp", "url": "http://10.9.9.9/mcp"},
    ("POST", "/v1/policies"): {"name": "b-policy", "cedar": "permit (principal, action, resource);"},
    ("POST", "/v1/policies/validate"): {"cedar": "permit (principal, action, resource);"},
    ("POST", "/v1/policies/dry-run"): {"changes": [{"cedar": "forbid (principal, action, resource);"}]},
    ("POST", "/v1/decisions"): {
        "action": "tool.invoke",
        "principal": {"type": "Principal", "id": "key:b"},
        "resource": {"type": "Tool", "id": "text"},
    },
    ("POST", "/v1/audit/verify"): {},
    ("POST", "/v1/suspensions"): {"scope": "agent", "agent_id": str(uuid.UUID(int=15)), "reason": "b's own"},
    ("PATCH", "/v1/evaluation-settings"): {"pass_score": 0.5},
    ("POST", "/v1/eval-datasets"): {"name": "b-dataset", "cases": [{"case_id": "b", "input": "b", "expected": 1}]},
    ("POST", "/v1/eval-runs"): {"dataset_id": str(uuid.UUID(int=20)), "agent_id": str(uuid.UUID(int=21))},
    ("POST", "/v1/feedback"): {"run_id": str(uuid.UUID(int=31)), "rating": 3},
    ("POST", "/v1/datasets"): {"name": "b-training"},
    ("POST", "/v1/webhooks"): {"url": shared_receiver().endpoint().url, "event_types": ["RunCompleted"]},
    ("POST", "/v1/schedules"): {
        "name": "b-schedule",
        "expression": "cron(0 0 1 1 ? 2090)",
        "goal": {"text": "b's goal"},
    },
    ("POST", "/v1/inbound-webhooks"): {"name": "b-hook", "scheme": "github", "mapping": {"text": "b {{ action }}"}},
    ("POST", "/v1/tools/{name}/invoke"): {
        "run_id": str(uuid.UUID(int=9)),
        "task_id": "b-task",
        "step": 0,
        "call_id": "b-call",
        "input": {"data": {"b": 1}, "query": "b"},
    },
}
# Path parameters of the caller's own resources that are not the tenant's to name (a tool is a built-in).
OWN_PARAMS = {"name": "json_query", "namespace": "matrix", "key": "b-own", "agent_id": str(uuid.UUID(int=22))}
# The operator's routes: across tenants by design, refused to a tenant's admin (tested in test_tenants.py and
# test_sagas.py), and the tenant-deletion saga's erasure routes (its service tokens only).
OPERATOR = {
    ("GET", "/v1/tenants"),
    ("POST", "/v1/tenants"),
    ("GET", "/v1/tenants/{tenant_id}"),
    ("PATCH", "/v1/tenants/{tenant_id}"),
    ("POST", "/v1/sagas/tenant-provisioning"),
    ("POST", "/v1/sagas/tenant-deletion"),
    ("GET", "/v1/sagas"),
    ("GET", "/v1/sagas/{saga_id}"),
    ("POST", "/v1/sagas/{saga_id}/retry"),
    *(
        (method, f"/v1/tenant-data/{layer}")
        for method in ("GET", "DELETE")
        for layer in (
            "data",
            "runtime",
            "tool-execution",
            "model-gateway",
            "planning",
            "evaluation",
            "learning",
            "supervision",
            "api-gateway",
            "integration",
        )
    ),
}


def test_every_operation_is_in_the_matrix() -> None:
    placed = set(NAMED) | OWN_READS | set(OWN_WRITES) | OPERATOR
    missing = sorted(set(PROTECTED) - placed)
    stale = sorted(placed - set(PROTECTED))
    assert not missing, f"place these routes in the access matrix: {missing}"
    assert not stale, f"these matrix entries name no documented route: {stale}"


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


DUMMY = {
    "agent_id": str(uuid.UUID(int=1)),
    "key_id": str(uuid.UUID(int=2)),
    "namespace": "matrix",
    "key": "dummy",
    "dead_letter_id": str(uuid.UUID(int=3)),
    "document_id": str(uuid.UUID(int=4)),
    "version": "1",
    "session_id": str(uuid.UUID(int=5)),
    "tenant_id": str(uuid.UUID(int=6)),
    "model_id": str(uuid.UUID(int=7)),
    "budget_id": str(uuid.UUID(int=8)),
    "template_id": str(uuid.UUID(int=10)),
    "goal_id": str(uuid.UUID(int=11)),
    "plan_id": str(uuid.UUID(int=12)),
    "run_id": str(uuid.UUID(int=13)),
    "server_id": str(uuid.UUID(int=14)),
    "task_id": "a",
    "policy_id": str(uuid.UUID(int=16)),
    "decision_id": str(uuid.UUID(int=17)),
    "approval_id": str(uuid.UUID(int=18)),
    "suspension_id": str(uuid.UUID(int=19)),
    "evaluation_id": str(uuid.UUID(int=23)),
    "alert_id": str(uuid.UUID(int=24)),
    "eval_dataset_id": str(uuid.UUID(int=25)),
    "dataset_id": str(uuid.UUID(int=27)),
    "feedback_id": str(uuid.UUID(int=28)),
    "example_id": str(uuid.UUID(int=29)),
    "job_id": str(uuid.UUID(int=30)),
    "eval_run_id": str(uuid.UUID(int=26)),
    "endpoint_id": str(uuid.UUID(int=32)),
    "webhook_id": str(uuid.UUID(int=34)),
    "delivery_id": str(uuid.UUID(int=35)),
    "saga_id": str(uuid.UUID(int=33)),
    "schedule_id": str(uuid.UUID(int=36)),
}


@dataclass
class TenantA:
    headers: dict[str, str]
    params: dict[str, str]
    identifiers: set[str]


async def _created(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201, 202), response.text
    body: dict[str, Any] = response.json()
    return body


async def _tenant_a(platform: Platform) -> TenantA:
    """The platform's own tenant (it owns the dead letters of the bus) with one of every resource."""
    headers = platform.auth()
    api = platform.api
    tag = uuid.uuid4().hex[:8]
    agent = await _created(await api.post("/v1/agents", json={"name": f"a-agent-{tag}"}, headers=headers))
    key = await _created(
        await api.post("/v1/api-keys", json={"name": f"a-key-{tag}", "scopes": ["agents:read"]}, headers=headers)
    )
    document = await _created(
        await api.post("/v1/documents", json={"title": f"a-doc-{tag}", "content": "secret"}, headers=headers)
    )
    await _created(await api.put(f"/v1/configurations/matrix/a-{tag}", json={"value": "a"}, headers=headers))
    session = await _created(
        await api.post("/v1/sessions", json={"agent_id": agent["agent_id"], "state": {"a": 1}}, headers=headers)
    )
    model = await _created(
        await api.post(
            "/v1/models",
            json={"name": f"a-model-{tag}", "provider": "openai", "provider_model": "m", "context_window": 100},
            headers=headers,
        )
    )
    budget = await _created(
        await api.post(
            "/v1/budgets",
            json={"scope": "run", "scope_id": str(uuid.uuid4()), "period": "total", "limit_micro_usd": 1000},
            headers=headers,
        )
    )
    call_run_id = str(uuid.uuid4())  # a tool call of A's, in the ledger under a run id of A's
    await _created(
        await api.post(
            "/v1/tools/json_query/invoke",
            json={
                "run_id": call_run_id,
                "task_id": f"a-{tag}",
                "step": 0,
                "call_id": "c",
                "input": {"data": 1, "query": "@"},
            },
            headers=headers,
        )
    )
    plan_template = await _created(
        await api.post(
            "/v1/plan-templates",
            json={
                "name": f"a-template-{tag}",
                "patterns": [f"a-{tag} {{x}}"],
                "parameters": {"type": "object", "properties": {"x": {"type": "string"}}},
                "body": {
                    "tasks": [
                        {
                            "task_id": "a",
                            "title": "{{x}}",
                            "kind": "tool",
                            "tool": "json_query",
                            "input": {"data": {"x": "{{x}}"}, "query": "x"},
                        }
                    ]
                },
            },
            headers=headers,
        )
    )
    mcp = await _created(
        await api.post("/v1/mcp-servers", json={"name": f"a{tag}", "url": platform.mcp_url}, headers=headers)
    )
    goal = await _created(
        await api.post("/v1/goals", json={"text": f"a-{tag} hello", "strategy": "template"}, headers=headers)
    )
    for _ in range(300):  # planned from A's template, and run
        planned = (await api.get(f"/v1/goals/{goal['goal_id']}", headers=headers)).json()
        if planned["status"] in ("completed", "failed", "rejected", "cancelled"):
            break
        await asyncio.sleep(0.1)
    assert planned["status"] == "completed", planned
    dead_letter = await _dead_letter(platform, tag)
    policy = await _created(
        await api.post(
            "/v1/policies",
            json={"name": f"a-policy-{tag}", "cedar": 'forbid (principal, action == Strata::Action::"model.call", '
                  'resource == Strata::Model::"a-none");'},
            headers=headers,
        )
    )  # fmt: skip
    asked = await _created(
        await api.post(
            "/v1/decisions",
            json={
                "action": "tool.invoke",
                "principal": {"type": "Principal", "id": f"key:{uuid.uuid4()}"},
                "resource": {"type": "Tool", "id": "text"},
                "resource_attributes": {"requires_approval": True},
                "subject": {"type": "tool_call", "id": f"a-{tag}"},
            },
            headers=headers,
        )
    )
    suspension = await _created(
        await api.post(
            "/v1/suspensions",
            json={"scope": "agent", "agent_id": agent["agent_id"], "reason": f"a-{tag}"},
            headers=headers,
        )
    )
    regression = await _failed_regression_run(platform, headers, agent["agent_id"], tag)
    feedback = await _created(
        await api.post(
            "/v1/feedback", json={"run_id": planned["run_id"], "rating": 5, "comment": f"a-{tag}"}, headers=headers
        )
    )
    dataset = await _created(await api.post("/v1/datasets", json={"name": f"a-training-{tag}"}, headers=headers))
    webhook = await _created(
        await api.post(
            "/v1/webhooks", json={"url": shared_receiver().endpoint().url, "event_types": ["*"]}, headers=headers
        )
    )
    pinged = await _created(await api.post(f"/v1/webhooks/{webhook['webhook_id']}/ping", json={}, headers=headers))
    schedule = await _created(
        await api.post(
            "/v1/schedules",
            json={"name": f"a-schedule-{tag}", "expression": "cron(0 9 * * ? *)", "goal": {"text": f"a-{tag}"}},
            headers=headers,
        )
    )
    endpoint = await _created(
        await api.post(
            "/v1/inbound-webhooks",
            json={"name": f"a-hook-{tag}", "scheme": "github", "mapping": {"text": "a {{ action }}"}},
            headers=headers,
        )
    )
    evaluation = (
        await api.get("/v1/evaluations", params={"run_id": planned["run_id"], "subject_type": "task"}, headers=headers)
    ).json()["items"][0]
    params = {
        "agent_id": agent["agent_id"],
        "key_id": key["key_id"],
        "namespace": "matrix",
        "key": f"a-{tag}",
        "dead_letter_id": dead_letter,
        "document_id": document["document_id"],
        "version": "1",
        "session_id": session["session_id"],
        "model_id": model["model_id"],
        "budget_id": budget["budget_id"],
        "template_id": plan_template["template_id"],
        "goal_id": goal["goal_id"],
        "plan_id": planned["plan_id"],
        "run_id": planned["run_id"],
        "task_id": "a",
        "server_id": mcp["server_id"],
        "policy_id": policy["policy_id"],
        "decision_id": asked["decision_id"],
        "approval_id": asked["approval_id"],
        "suspension_id": suspension["suspension_id"],
        "evaluation_id": evaluation["evaluation_id"],
        "alert_id": regression["alert_id"],
        "eval_dataset_id": regression["dataset_id"],
        "feedback_id": feedback["feedback_id"],
        "dataset_id": dataset["dataset_id"],
        # A's runs are tool tasks, which yield no training example and so no fine-tuning job: made-up ids
        "example_id": str(uuid.uuid4()),
        "job_id": str(uuid.uuid4()),
        "eval_run_id": regression["eval_run_id"],
        "endpoint_id": endpoint["endpoint_id"],
        "schedule_id": schedule["schedule_id"],
        "webhook_id": webhook["webhook_id"],
        "delivery_id": pinged["delivery_id"],
    }
    identifiers = {
        platform.tenant_id,
        f"a-{tag}",
        f"a-agent-{tag}",
        f"a-model-{tag}",
        f"a-template-{tag}",
        f"a-policy-{tag}",
        f"a-dataset-{tag}",
        f"a-training-{tag}",
        f"a-hook-{tag}",
        f"a-schedule-{tag}",
        f"a{tag}",
        call_run_id,
        *params.values(),
    } - {
        "matrix",
        "1",
        "a",
    }
    return TenantA(headers, params, identifiers)


async def _failed_regression_run(
    platform: Platform, headers: dict[str, str], agent_id: str, tag: str
) -> dict[str, str]:
    """A regression run of A's (its agent is suspended, so every case's plan is refused and the gate fails on its
    floor) with the regression alert it raised."""
    api = platform.api
    dataset = await _created(
        await api.post(
            "/v1/eval-datasets",
            json={"name": f"a-dataset-{tag}", "cases": [{"case_id": "a", "input": "say a", "expected": {"a": 1}}]},
            headers=headers,
        )
    )
    started = await _created(
        await api.post(
            "/v1/eval-runs",
            json={"dataset_id": dataset["dataset_id"], "agent_id": agent_id, "baseline": "none", "min_score": 0.5},
            headers=headers,
        )
    )
    for _ in range(600):
        run = (await api.get(f"/v1/eval-runs/{started['eval_run_id']}", headers=headers)).json()
        if run["status"] == "completed":
            break
        await asyncio.sleep(0.1)
    assert run["gate"] == "failed", (run["status"], run["cases"])
    alerts = (await api.get("/v1/alerts", params={"kind": "regression"}, headers=headers)).json()["items"]
    [alert] = [a for a in alerts if started["eval_run_id"] in a["message"]]
    return {"dataset_id": dataset["dataset_id"], "eval_run_id": started["eval_run_id"], "alert_id": alert["alert_id"]}


async def _dead_letter(platform: Platform, tag: str) -> str:
    """A dead letter of tenant A: an event no consumer understands, published on the bus."""
    bus = platform.cloud.resource("EventBus")
    detail = {"marker": tag, "tenant_id": platform.tenant_id}
    platform.aws("events").put_events(
        Entries=[
            {"EventBusName": bus, "Source": "strata.test", "DetailType": "NoSuchEvent", "Detail": json.dumps(detail)}
        ]
    )
    for _ in range(300):
        page = await platform.api.get("/v1/dead-letters", params={"limit": 200}, headers=platform.auth())
        found = [d for d in page.json()["items"] if d["event"].get("detail", {}).get("marker") == tag]
        if found:
            return str(found[0]["dead_letter_id"])
        await asyncio.sleep(0.1)
    raise AssertionError("the dead letter never arrived")


async def _snapshot(platform: Platform, a: TenantA) -> dict[str, Any]:
    """What A sees of its resources (compared before and after B's attempts)."""
    p = a.params
    reads = {
        "agent": f"/v1/agents/{p['agent_id']}",
        "key": f"/v1/api-keys/{p['key_id']}",
        "document": f"/v1/documents/{p['document_id']}",
        "configuration": f"/v1/configurations/{p['namespace']}/{p['key']}",
        "session": f"/v1/sessions/{p['session_id']}",
        "dead_letter": f"/v1/dead-letters/{p['dead_letter_id']}",
        "model": f"/v1/models/{p['model_id']}",
        "budget": f"/v1/budgets/{p['budget_id']}",
        "plan_template": f"/v1/plan-templates/{p['template_id']}",
        "goal": f"/v1/goals/{p['goal_id']}",
        "plan": f"/v1/plans/{p['plan_id']}",
        "run": f"/v1/runs/{p['run_id']}",
        "mcp_server": f"/v1/mcp-servers/{p['server_id']}",
        "policy": f"/v1/policies/{p['policy_id']}",
        "decision": f"/v1/decisions/{p['decision_id']}",
        "approval": f"/v1/approvals/{p['approval_id']}",
        "suspension": f"/v1/suspensions/{p['suspension_id']}",
        "evaluation": f"/v1/evaluations/{p['evaluation_id']}",
        "alert": f"/v1/alerts/{p['alert_id']}",
        "eval_dataset": f"/v1/eval-datasets/{p['eval_dataset_id']}",
        "feedback": f"/v1/feedback/{p['feedback_id']}",
        "dataset": f"/v1/datasets/{p['dataset_id']}",
        "eval_run": f"/v1/eval-runs/{p['eval_run_id']}",
        "evaluation_settings": "/v1/evaluation-settings",
        "retention": "/v1/retention",
        "tenant": "/v1/tenant",
    }
    snapshot = {}
    for name, path in reads.items():
        response = await platform.api.get(path, headers=a.headers)
        assert response.status_code == 200, f"{name}: {response.text}"
        body = response.json()
        body.pop("last_used_at", None)
        snapshot[name] = body
    return snapshot


async def _roomy_tenant(platform: Platform, name: str) -> dict[str, Any]:
    """A new tenant on a tier whose burst holds a request per operation in quick succession (rates are not the
    subject here)."""
    made = await platform.new_tenant(f"{name}-{uuid.uuid4().hex[:8]}")
    operator = platform.auth(
        (await platform.new_tenant(f"matrix-op-{uuid.uuid4().hex[:8]}", ["admin", "platform:admin"]))["api_key"]
    )
    retiered = await platform.api.patch(
        f"/v1/tenants/{made['tenant_id']}", json={"tier": "enterprise"}, headers=operator
    )
    assert retiered.status_code == 200, retiered.text
    return made


async def test_no_tenant_reaches_another_tenants_resources(platform: Platform) -> None:
    a = await _tenant_a(platform)
    before = await _snapshot(platform, a)
    b = platform.auth((await _roomy_tenant(platform, "matrix-b"))["api_key"])
    api = platform.api

    # reads first, so that B's own request log does not yet hold the paths of its attempts on A below
    for method, path in sorted(OWN_READS):
        response = await api.request(method, fill(path, OWN_PARAMS), params=READ_QUERIES.get(path), headers=b)
        assert response.status_code == 200, f"B {method} {path}: {response.text}"
        leaked = sorted(i for i in a.identifiers if i in response.text)
        assert not leaked, f"B {method} {path} shows A's {leaked}"

    for method, path in sorted(NAMED):
        body = NAMED[(method, path)]
        response = await api.request(method, fill(path, a.params), json=body, headers=b)
        assert response.status_code == 404, f"B {method} {path} on A's resource: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("application/problem+json")

    for method, path in sorted(OWN_WRITES):
        own = fill(path, OWN_PARAMS)
        response = await api.request(method, own, json=OWN_WRITES[(method, path)], headers=b)
        assert response.status_code < 500, f"B {method} {path}: {response.text}"
        # B's own write must not have reached A (a leak here would show in the ids check below, too)

    # a reference to A's resource inside B's write is as unknown as the resource itself
    crossed = await api.post("/v1/sessions", json={"agent_id": a.params["agent_id"]}, headers=b)
    assert crossed.status_code in (404, 422), crossed.text

    for method, path in sorted(OPERATOR):
        response = await api.request(method, fill(path, {"tenant_id": platform.tenant_id}), json={}, headers=b)
        assert_problem(response, 403)

    after = await _snapshot(platform, a)
    assert after == before


@dataclass
class Credentials:
    none: dict[str, str]
    malformed: list[dict[str, str]]
    unknown: dict[str, str]
    revoked: dict[str, str]
    expired: dict[str, str]
    narrow: list[dict[str, str]]


async def _credentials(platform: Platform) -> Credentials:
    admin = platform.auth((await _roomy_tenant(platform, "matrix-creds"))["api_key"])

    async def key(*scopes: str) -> dict[str, Any]:
        made = await platform.api.post("/v1/api-keys", json={"name": "m", "scopes": list(scopes)}, headers=admin)
        return await _created(made)

    revoked = await key("agents:read")
    await _created(await platform.api.post(f"/v1/api-keys/{revoked['key_id']}/revoke", json={}, headers=admin))
    expired = await key("agents:read")
    await _created(
        await platform.api.post(f"/v1/api-keys/{expired['key_id']}/rotate", json={"grace_seconds": 0}, headers=admin)
    )
    return Credentials(
        none={},
        malformed=[
            {"authorization": "Bearer"},
            {"authorization": "Basic dXNlcjpwYXNz"},
            {"authorization": "Bearer sk_short_x"},
            {"authorization": "Bearer svc.forged.signature"},
            {"authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
        ],
        unknown={"authorization": f"Bearer sk_{uuid.uuid4().hex[:8]}_{'x' * 43}"},
        revoked=platform.auth(revoked["api_key"]),
        expired=platform.auth(expired["api_key"]),
        # two keys with one unrelated scope each: no route is open to both
        narrow=[
            platform.auth((await key("console:read"))["api_key"]),
            platform.auth((await key("feedback:read"))["api_key"]),
        ],
    )


async def test_every_protected_route_refuses_bad_credentials(platform: Platform) -> None:
    creds = await _credentials(platform)
    api = platform.api
    for method, path in PROTECTED:
        url = fill(path, DUMMY)
        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
        missing = await api.request(method, url, json=body)
        assert_problem(missing, 401)
        for headers in creds.malformed:
            bad = await api.request(method, url, json=body, headers=headers)
            assert bad.status_code in (401, 403), f"{method} {path} {headers}: {bad.status_code}"
        for name, headers in (("unknown", creds.unknown), ("revoked", creds.revoked), ("expired", creds.expired)):
            refused = await api.request(method, url, json=body, headers=headers)
            assert refused.status_code == 403, f"{method} {path} with a {name} key: {refused.status_code}"
        answers = [await api.request(method, url, json=body, headers=h) for h in creds.narrow]
        scoped_out = [r for r in answers if r.status_code == 403]
        assert scoped_out, f"{method} {path} admitted keys holding only console:read and only feedback:read"
        for response in scoped_out:
            assert "scope" in assert_problem(response, 403)["detail"]
