"""The tenant sagas through the local cloud: provisioning (tenant, key, budgets, policies), its undoing when the third
step fails, and deletion leaving no row of the tenant anywhere."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from tests.e2e.conftest import Platform
from tests.e2e.test_runs import finished_run, run_template

VALID_POLICY = {
    "name": "no-python",
    "cedar": 'forbid (principal, action == Strata::Action::"tool.invoke", resource == Strata::Tool::"python");',
}
QUERY_TASK = {
    "task_id": "q",
    "title": "Query",
    "kind": "tool",
    "tool": "json_query",
    "input": {"data": {"a": [1, 2]}, "query": "length(a)"},
}


async def _operator(platform: Platform) -> dict[str, str]:
    key = await platform.new_tenant(f"operator-{uuid.uuid4().hex[:8]}", ["admin", "platform:admin"])
    return platform.auth(key["api_key"])


async def tenant_rows(platform: Platform, tenant_id: str) -> dict[str, int]:
    """Rows of the tenant in every table that has a tenant_id column (read straight from Postgres)."""
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        tables = await conn.fetch(
            "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t "
            "ON t.table_name = c.table_name AND t.table_schema = c.table_schema "
            "WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE'"
        )
        counts = {}
        for row in tables:
            table = row["table_name"]
            counts[table] = await conn.fetchval(
                f'SELECT count(*) FROM "{table}" WHERE tenant_id = $1', uuid.UUID(tenant_id)
            )
        return counts
    finally:
        await conn.close()


async def _provision(platform: Platform, operator: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = await platform.api.post(
        "/v1/sagas/tenant-provisioning", json={"name": f"acme-{uuid.uuid4().hex[:8]}", **body}, headers=operator
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == f"/v1/sagas/{answer.json()['saga_id']}"
    saga: dict[str, Any] = answer.json()
    return saga


async def test_provisioning_makes_the_tenant_its_key_budgets_and_policies(platform: Platform) -> None:
    operator = await _operator(platform)

    saga = await _provision(
        platform, operator, budgets=[{"period": "day", "limit_micro_usd": 5_000_000}], policies=[VALID_POLICY]
    )

    assert saga["status"] == "completed", saga
    assert [s["status"] for s in saga["steps"]] == ["succeeded"] * 3
    tenant_id = saga["subject_tenant_id"]
    key = platform.auth(saga["admin_key"]["api_key"])
    assert (await platform.api.get("/v1/tenant", headers=key)).json()["tenant_id"] == tenant_id
    budgets = (await platform.api.get("/v1/budgets", headers=key)).json()["items"]
    assert [(b["scope"], b["period"], b["limit_micro_usd"]) for b in budgets] == [("tenant", "day", 5_000_000)]
    policies = (await platform.api.get("/v1/policies", headers=key)).json()["items"]
    assert [p["name"] for p in policies] == ["no-python"]
    # the secret is in the starting answer only
    read = (await platform.api.get(f"/v1/sagas/{saga['saga_id']}", headers=operator)).json()
    assert "admin_key" not in read
    assert saga["admin_key"]["api_key"] not in str(read)
    assert read["transitions"][-1]["to_status"] == "completed"
    listed = (await platform.api.get("/v1/sagas?kind=tenant_provisioning", headers=operator)).json()["items"]
    assert [s["saga_id"] for s in listed] == [saga["saga_id"]]

    # without the platform's defaults named, the tenant gets them
    defaulted = await _provision(platform, operator)
    key = platform.auth(defaulted["admin_key"]["api_key"])
    assert len((await platform.api.get("/v1/budgets", headers=key)).json()["items"]) == 2
    assert [p["name"] for p in (await platform.api.get("/v1/policies", headers=key)).json()["items"]] == [
        "code-needs-approval"
    ]


async def test_a_third_step_that_fails_undoes_the_first_two(platform: Platform) -> None:
    operator = await _operator(platform)
    bad_policy = {"name": "broken", "cedar": "permit (principal, action, resource"}

    # GIVEN policies of which the second is not Cedar: L08 refuses it in step three
    saga = await _provision(
        platform,
        operator,
        budgets=[{"period": "month", "limit_micro_usd": 1_000_000}],
        policies=[VALID_POLICY, bad_policy],
    )

    # THEN the budgets and the tenant are undone, in that order, and nothing of the tenant is left
    assert saga["status"] == "compensated", (saga["error"], saga["steps"])
    assert [s["status"] for s in saga["steps"]] == ["compensated", "compensated", "failed"]
    assert "422" in saga["steps"][2]["error"]
    undone = [
        t["step_index"] for t in saga["transitions"] if t["to_status"] == "compensated" and t["step_index"] is not None
    ]
    assert undone == [1, 0]
    tenant_id = saga["outputs"]["0"]["tenant_id"]
    assert (await platform.api.get(f"/v1/tenants/{tenant_id}", headers=operator)).status_code == 404
    gone = await platform.api.get("/v1/tenant", headers=platform.auth(saga["admin_key"]["api_key"]))
    assert gone.status_code == 403, gone.text  # the authorizer no longer accepts its key (API Gateway answers 403)
    left = {table: n for table, n in (await tenant_rows(platform, tenant_id)).items() if n}
    assert left == {}


async def test_deleting_a_tenant_leaves_no_row_of_it(platform: Platform) -> None:
    operator = await _operator(platform)
    saga = await _provision(platform, operator)
    tenant_id, key = saga["subject_tenant_id"], platform.auth(saga["admin_key"]["api_key"])

    # GIVEN a tenant that has used the platform: a run, a document, feedback, another key
    run = await finished_run(platform, key, await run_template(platform, key, [QUERY_TASK]))
    assert run["status"] == "completed", run
    document = await platform.api.post("/v1/documents", json={"title": "notes", "content": "hello"}, headers=key)
    assert document.status_code == 201, document.text
    feedback = await platform.api.post("/v1/feedback", json={"run_id": run["run_id"], "rating": 5}, headers=key)
    assert feedback.status_code == 201, feedback.text
    assert (
        await platform.api.post("/v1/api-keys", json={"name": "ci", "scopes": ["runs:read"]}, headers=key)
    ).status_code == 201
    before = {table: n for table, n in (await tenant_rows(platform, tenant_id)).items() if n}
    assert {"tenants", "api_keys", "runs", "goals", "documents", "feedback", "budgets", "policies", "event_log"} <= set(
        before
    )

    # a wrong name or the operator's own tenant is refused before anything happens
    wrong = await platform.api.post(
        "/v1/sagas/tenant-deletion", json={"tenant_id": tenant_id, "confirm_name": "nope"}, headers=operator
    )
    assert wrong.status_code == 422, wrong.text
    unknown = await platform.api.post(
        "/v1/sagas/tenant-deletion", json={"tenant_id": str(uuid.uuid4()), "confirm_name": "x"}, headers=operator
    )
    assert unknown.status_code == 404, unknown.text

    # WHEN the operator deletes it
    deleted = await platform.api.post(
        "/v1/sagas/tenant-deletion",
        json={"tenant_id": tenant_id, "confirm_name": saga["input"]["name"], "reason": "customer left"},
        headers=operator,
    )

    # THEN every step succeeded and no table holds a row of the tenant
    assert deleted.status_code == 201, deleted.text
    result = deleted.json()
    assert result["status"] == "completed", result
    assert [s["name"] for s in result["steps"]][:2] == ["suspend_tenant", "stop_work"]
    assert all(s["status"] == "succeeded" for s in result["steps"]), result["steps"]
    assert result["steps"][-1]["output"]["remaining"] == dict.fromkeys(result["steps"][-1]["output"]["remaining"], 0)
    left = {table: n for table, n in (await tenant_rows(platform, tenant_id)).items() if n}
    assert left == {}
    # its key, used before, stays in the authorizer's cache for the cache's TTL (as on AWS): it finds nothing, and the
    # request leaves no record of the tenant when the request log is flushed
    assert (await platform.api.get("/v1/tenant", headers=key)).status_code in (403, 404)
    flushed = await platform.invoke("ApiGatewayFunction", {"schedule": "flush_request_log"})
    assert "FunctionError" not in flushed, flushed
    left = {table: n for table, n in (await tenant_rows(platform, tenant_id)).items() if n}
    assert left == {}
    assert (await platform.api.get(f"/v1/tenants/{tenant_id}", headers=operator)).status_code == 404


async def test_sagas_are_the_operators_and_bad_input_is_refused(platform: Platform) -> None:
    tenant = platform.auth((await platform.new_tenant(f"plain-{uuid.uuid4().hex[:8]}"))["api_key"])
    operator = await _operator(platform)

    assert (
        await platform.api.post("/v1/sagas/tenant-provisioning", json={"name": "x"}, headers=tenant)
    ).status_code == 403
    assert (await platform.api.get("/v1/sagas", headers=tenant)).status_code == 403
    for body in (
        {},
        {"name": ""},
        {"name": "x", "budgets": [{"period": "week", "limit_micro_usd": 1}]},
        {"name": "x", "extra": 1},
    ):
        refused = await platform.api.post("/v1/sagas/tenant-provisioning", json=body, headers=operator)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await platform.api.get(f"/v1/sagas/{uuid.uuid4()}", headers=operator)).status_code == 404
    assert (await platform.api.get("/v1/sagas/not-a-uuid", headers=operator)).status_code == 422
    own = (await platform.api.get("/v1/tenant", headers=operator)).json()
    refused = await platform.api.post(
        "/v1/sagas/tenant-deletion", json={"tenant_id": own["tenant_id"], "confirm_name": own["name"]}, headers=operator
    )
    assert refused.status_code == 422, refused.text
    # the erasure routes are the saga's alone: not even an admin key reaches them
    for method in ("GET", "DELETE"):
        answer = await platform.api.request(method, "/v1/tenant-data/runtime", headers=operator)
        assert answer.status_code == 403, answer.text


async def test_the_cli_creates_and_deletes_a_tenant(platform: Platform) -> None:
    from tests.e2e.test_cli import strata

    operator = (await platform.new_tenant(f"operator-{uuid.uuid4().hex[:8]}", ["admin", "platform:admin"]))["api_key"]
    name = f"cli-{uuid.uuid4().hex[:8]}"

    created = await strata(platform, operator, "tenants", "create", name, "--json")
    assert created.exit_code == 0, created.output
    saga = json.loads(created.output)
    assert saga["status"] == "completed"
    tenant_id = saga["subject_tenant_id"]

    refused = await strata(platform, operator, "tenants", "delete", tenant_id, "--confirm", "not-it")
    assert refused.exit_code == 2, refused.output
    assert "confirm_name" in refused.output

    deleted = await strata(platform, operator, "tenants", "delete", tenant_id, "--confirm", name)
    assert deleted.exit_code == 0, deleted.output
    assert "verify_erased" in deleted.output
    assert "completed" in deleted.output
    listed = await strata(platform, operator, "tenants", "sagas")
    assert listed.exit_code == 0, listed.output
    assert tenant_id[:8] in listed.output
    assert {table: n for table, n in (await tenant_rows(platform, tenant_id)).items() if n} == {}
