"""The tenant sagas: provisioning (tenant and first key in L09, budgets in L04, default policies in L08) and deletion
(the tenant suspended, its work stopped, then everything it holds erased layer by layer and the erasure verified).

Each step calls the owning layer over its API: as the operator's tenant with `platform:admin` for L09's tenant
routes, as the subject tenant for its own resources, and with `platform:tenant-purge` for the erasures."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from strata import peers
from strata.config import Settings
from strata.errors import DependencyUnavailableError
from strata.peers import PeerResponse
from strata.scopes import PLATFORM_ADMIN, TENANT_PURGE
from strata.tenant_data import tenant_data_path
from strata_integration.sagas.engine import SagaContext, SagaDefinition, Step, StepFailedError, register

OPERATOR = frozenset({PLATFORM_ADMIN})
PURGE = frozenset({TENANT_PURGE})
# Erased in this order: the layers whose work makes events and rows elsewhere first, the event archive (L01) after
# them, the tenant's record and keys (L09) last.
ERASE_ORDER = (
    "runtime",
    "tool_execution",
    "model_gateway",
    "planning",
    "evaluation",
    "learning",
    "supervision",
    "integration",
    "data",
    "api_gateway",
)

DEFAULT_POLICIES = [
    {
        "name": "code-needs-approval",
        "description": "Running code in the sandbox waits for a human (a default of new tenants; change or delete it)",
        "cedar": '@approval("running code needs a human\'s approval") '
        'permit (principal, action == Strata::Action::"tool.invoke", resource == Strata::Tool::"python");',
    }
]


class BudgetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(pattern="^(day|month|total)$")
    limit_micro_usd: int = Field(ge=1, le=10**15, description="Millionths of a US dollar")


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    cedar: str = Field(min_length=1, max_length=100_000)


class TenantDefaults(Settings):
    """What a new tenant gets when the provisioning request does not say."""

    tenant_default_budgets: list[BudgetSpec] = Field(
        default_factory=lambda: [
            BudgetSpec(period="day", limit_micro_usd=10_000_000),
            BudgetSpec(period="month", limit_micro_usd=200_000_000),
        ]
    )
    tenant_default_policies: list[PolicySpec] = Field(
        default_factory=lambda: [PolicySpec(**policy) for policy in DEFAULT_POLICIES]
    )


def tenant_defaults() -> TenantDefaults:
    return TenantDefaults()


async def _call(
    context: SagaContext,
    method: str,
    path: str,
    *,
    as_tenant: UUID,
    scopes: frozenset[str] = frozenset(),
    body: Any = None,
    key: str | None = None,
    gone_is_done: bool = False,
) -> PeerResponse:
    """One call of a step; a 4xx is final (StepFailedError, not retried), a 5xx, 429 or no answer is retried.
    With `gone_is_done` a 404 counts as done (a compensation finding its work already undone)."""
    try:
        response = await peers.call(
            method,
            path,
            tenant_id=as_tenant,
            correlation_id=context.correlation_id,
            json=body,
            scopes=scopes,
            headers={"Idempotency-Key": key} if key else None,
        )
    except DependencyUnavailableError as exc:
        raise StepFailedError(exc.detail, retryable=True) from exc
    if response.status_code < 300 or (gone_is_done and response.status_code == 404):
        return response
    try:
        detail = str(response.json().get("detail", ""))
    except (ValueError, AttributeError):
        detail = response.text[:300]
    # 409 here is an Idempotency-Key whose first request is still being answered
    retryable = response.status_code >= 500 or response.status_code in (409, 429)
    raise StepFailedError(f"{method} {path} answered {response.status_code}: {detail}", retryable=retryable)


def _subject(context: SagaContext) -> UUID:
    found = context.subject_tenant_id or context.output("create_tenant").get("tenant_id")
    if found is None:
        raise StepFailedError("the saga has no subject tenant yet", retryable=False)
    return UUID(str(found))


async def erase_layer(context: SagaContext, layer: str, tenant_id: UUID) -> dict[str, Any]:
    response = await _call(context, "DELETE", tenant_data_path(layer), as_tenant=tenant_id, scopes=PURGE)
    answer: dict[str, Any] = response.json()
    if answer["remaining"]:
        raise StepFailedError(f"{layer} still holds {answer['rows']} after erasing", retryable=True)
    return {"erased": answer["erased"]}


async def verify_erased(context: SagaContext, tenant_id: UUID, rounds: int = 5) -> dict[str, Any]:
    """Count the tenant's rows in every layer; a layer where something arrived after its erasure (an event still on
    its way) is erased again, a few rounds apart, until every count is 0."""
    checked: dict[str, int] = {}
    for round_ in range(rounds):
        responses = await asyncio.gather(
            *(
                _call(context, "GET", tenant_data_path(layer), as_tenant=tenant_id, scopes=PURGE)
                for layer in ERASE_ORDER
            )
        )
        checked = {layer: int(r.json()["remaining"]) for layer, r in zip(ERASE_ORDER, responses, strict=True)}
        left = [layer for layer, count in checked.items() if count]
        if not left:
            return {"remaining": checked, "rounds": round_ + 1}
        for layer in left:
            await erase_layer(context, layer, tenant_id)
        await asyncio.sleep(1.0)
    raise StepFailedError(f"rows keep arriving after erasure: {checked}", retryable=True)


async def erase_everywhere(context: SagaContext, tenant_id: UUID) -> None:
    for layer in ERASE_ORDER:
        await erase_layer(context, layer, tenant_id)
    await verify_erased(context, tenant_id)


# Provisioning


async def create_tenant(context: SagaContext) -> dict[str, Any]:
    body = {k: context.input[k] for k in ("name", "tier", "admin_key_name")}
    response = await _call(
        context,
        "POST",
        "/v1/tenants",
        as_tenant=context.tenant_id,
        scopes=OPERATOR,
        body=body,
        key=context.idempotency_key("create_tenant"),
    )
    tenant = response.json()
    context.secrets["admin_key"] = tenant["admin_key"]
    return {"tenant_id": tenant["tenant_id"], "name": tenant["name"], "admin_key_id": tenant["admin_key"]["key_id"]}


async def undo_create_tenant(context: SagaContext) -> None:
    """Erase the new tenant everywhere (its creation left events and rows beyond L09)."""
    await erase_everywhere(context, _subject(context))


async def create_budgets(context: SagaContext) -> dict[str, Any]:
    tenant_id, ids = _subject(context), []
    for n, budget in enumerate(context.input["budgets"]):
        response = await _call(
            context,
            "POST",
            "/v1/budgets",
            as_tenant=tenant_id,
            body={"scope": "tenant", **budget},
            key=context.idempotency_key("create_budgets", str(n)),
        )
        ids.append(response.json()["budget_id"])
    return {"budget_ids": ids}


async def delete_budgets(context: SagaContext) -> None:
    tenant_id = _subject(context)
    for budget_id in context.output("create_budgets").get("budget_ids", []):
        await _call(context, "DELETE", f"/v1/budgets/{budget_id}", as_tenant=tenant_id, scopes=PURGE, gone_is_done=True)


async def create_policies(context: SagaContext) -> dict[str, Any]:
    """The default policies; one refused (a 4xx) removes the ones this step made before failing, so a failed step
    leaves nothing of its own behind."""
    tenant_id, ids = _subject(context), []
    try:
        for n, policy in enumerate(context.input["policies"]):
            response = await _call(
                context,
                "POST",
                "/v1/policies",
                as_tenant=tenant_id,
                body=policy,
                key=context.idempotency_key("create_policies", str(n)),
            )
            ids.append(response.json()["policy_id"])
    except StepFailedError as exc:
        if not exc.retryable:
            for policy_id in ids:
                await _call(
                    context, "DELETE", f"/v1/policies/{policy_id}", as_tenant=tenant_id, scopes=PURGE, gone_is_done=True
                )
        raise
    return {"policy_ids": ids}


async def delete_policies(context: SagaContext) -> None:
    tenant_id = _subject(context)
    for policy_id in context.output("create_policies").get("policy_ids", []):
        await _call(
            context, "DELETE", f"/v1/policies/{policy_id}", as_tenant=tenant_id, scopes=PURGE, gone_is_done=True
        )


def _provisioned(_input: dict[str, Any], outputs: dict[str, dict[str, Any]]) -> UUID | None:
    found = outputs.get("create_tenant", {}).get("tenant_id")
    return UUID(str(found)) if found else None


PROVISION_TENANT = register(
    SagaDefinition(
        "tenant_provisioning",
        (
            Step("create_tenant", create_tenant, undo_create_tenant, timeout_s=30, retries=3),
            Step("create_budgets", create_budgets, delete_budgets, timeout_s=30, retries=3),
            Step("create_policies", create_policies, delete_policies, timeout_s=30, retries=3),
        ),
        subject=_provisioned,
    )
)


# Deletion


async def suspend_tenant(context: SagaContext) -> dict[str, Any]:
    """L09 refuses the tenant's keys from now on (its status before is kept, to restore if the saga is undone)."""
    tenant_id = _subject(context)
    read = await _call(context, "GET", f"/v1/tenants/{tenant_id}", as_tenant=context.tenant_id, scopes=OPERATOR)
    before = read.json()["status"]
    await _call(
        context,
        "PATCH",
        f"/v1/tenants/{tenant_id}",
        as_tenant=context.tenant_id,
        scopes=OPERATOR,
        body={"status": "suspended"},
    )
    return {"status_before": before, "name": read.json()["name"]}


async def restore_tenant(context: SagaContext) -> None:
    before = context.output("suspend_tenant").get("status_before", "active")
    await _call(
        context,
        "PATCH",
        f"/v1/tenants/{_subject(context)}",
        as_tenant=context.tenant_id,
        scopes=OPERATOR,
        body={"status": before},
        gone_is_done=True,
    )


async def stop_work(context: SagaContext) -> dict[str, Any]:
    """L08's kill switch for the whole tenant: running tasks stop at their next step, nothing new starts."""
    response = await _call(
        context,
        "POST",
        "/v1/suspensions",
        as_tenant=_subject(context),
        scopes=PURGE,  # (and below) calls that leave no request record of the tenant being erased
        body={"scope": "tenant", "reason": f"tenant deletion (saga {context.saga_id})"},
        key=context.idempotency_key("stop_work"),
    )
    return {"suspension_id": response.json()["suspension_id"]}


async def resume_work(context: SagaContext) -> None:
    suspension_id = context.output("stop_work").get("suspension_id")
    if suspension_id:
        await _call(
            context,
            "DELETE",
            f"/v1/suspensions/{suspension_id}",
            as_tenant=_subject(context),
            scopes=PURGE,
            gone_is_done=True,
        )


def _eraser(layer: str) -> Step:
    async def erase(context: SagaContext) -> dict[str, Any]:
        return await erase_layer(context, layer, _subject(context))

    # the first erasure is the point of no return: from there the saga only goes forward
    return Step(f"erase_{layer}", erase, None, timeout_s=60, retries=5, pivot=layer == ERASE_ORDER[0])


async def verify(context: SagaContext) -> dict[str, Any]:
    return await verify_erased(context, _subject(context))


def _deleted(input_: dict[str, Any], _outputs: dict[str, dict[str, Any]]) -> UUID | None:
    return UUID(str(input_["tenant_id"]))


DELETE_TENANT = register(
    SagaDefinition(
        "tenant_deletion",
        (
            Step("suspend_tenant", suspend_tenant, restore_tenant, timeout_s=30, retries=3),
            Step("stop_work", stop_work, resume_work, timeout_s=30, retries=3),
            *(_eraser(layer) for layer in ERASE_ORDER),
            Step("verify_erased", verify, None, timeout_s=60, retries=5),
        ),
        subject=_deleted,
    )
)
