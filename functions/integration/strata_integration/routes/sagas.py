"""Sagas (operator): provision a tenant, delete a tenant, follow and retry them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strata import peers
from strata.auth import Principal
from strata.errors import DependencyUnavailableError, InvalidInputError, NotFoundError
from strata.pagination import Page, PageRequest, page_request
from strata.scopes import PLATFORM_ADMIN
from strata.web import require_scope
from strata_integration.sagas import engine, store
from strata_integration.sagas.tenants import (
    DELETE_TENANT,
    OPERATOR,
    PROVISION_TENANT,
    BudgetSpec,
    PolicySpec,
    tenant_defaults,
)

router = APIRouter(tags=["sagas"])
Operator = Annotated[Principal, Depends(require_scope(PLATFORM_ADMIN))]
SagaKind = Literal["tenant_provisioning", "tenant_deletion"]
SagaStatus = Literal["running", "compensating", "completed", "compensated", "failed"]
StepStatus = Literal[
    "pending",
    "running",
    "succeeded",
    "failed",
    "compensating",
    "compensated",
    "compensation_failed",
    "not_compensable",
]


class SagaStep(BaseModel):
    step_index: int
    name: str
    status: StepStatus
    attempts: int = Field(description="Times the step's action was tried")
    compensation_attempts: int = Field(description="Times its compensation was tried")
    output: dict[str, Any] | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    compensated_at: datetime | None


class SagaTransition(BaseModel):
    seq: int
    step_index: int | None = Field(description="The step whose status changed; null for the saga's own")
    from_status: str | None
    to_status: str
    detail: str
    at: datetime


class SagaSummary(BaseModel):
    saga_id: UUID
    kind: SagaKind
    subject_tenant_id: UUID | None = Field(description="The tenant the saga provisions or deletes")
    status: SagaStatus
    current_step: int
    error: str | None
    requested_by: str
    correlation_id: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class Saga(SagaSummary):
    input: dict[str, Any]
    outputs: dict[str, Any] = Field(description="Each finished step's output, by step index")
    steps: list[SagaStep]
    transitions: list[SagaTransition] = Field(description="Every status change of the saga and its steps, in order")


class NewTenantKey(BaseModel):
    key_id: UUID
    api_key: str = Field(description="The secret, shown only in this answer")


class StartedSaga(Saga):
    admin_key: NewTenantKey | None = Field(
        default=None, description="Provisioning: the new tenant's first admin key (its secret is shown only here)"
    )


class TenantProvisioning(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    tier: str = Field(default="standard", min_length=1, max_length=50)
    admin_key_name: str = Field(default="admin", min_length=1, max_length=200)
    budgets: list[BudgetSpec] | None = Field(
        default=None, max_length=10, description="Tenant budgets to create; omitted: the platform's defaults"
    )
    policies: list[PolicySpec] | None = Field(
        default=None, max_length=50, description="Policies to create; omitted: the platform's default policies"
    )


class TenantDeletion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: UUID
    confirm_name: str = Field(min_length=1, max_length=200, description="The tenant's name, to confirm")
    reason: str = Field(default="", max_length=2000)


def _answer(response: Response, saga: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    response.status_code = 202 if saga["status"] in ("running", "compensating") else 201
    response.headers["Location"] = f"/v1/sagas/{saga['saga_id']}"
    key = secrets.get("admin_key")
    return {**saga, "admin_key": {"key_id": key["key_id"], "api_key": key["api_key"]} if key else None}


@router.post(
    "/v1/sagas/tenant-provisioning",
    response_model=StartedSaga,
    status_code=201,
    responses={202: {"model": StartedSaga, "description": "Still running: follow it at Location"}},
    summary="Provision a tenant: the tenant and its first key, budgets, default policies (undone on failure).",
)
async def provision_tenant(
    body: TenantProvisioning, principal: Operator, request: Request, response: Response
) -> dict[str, Any]:
    """Provision a tenant: the tenant and its first key, budgets, default policies (undone on failure)."""
    defaults = tenant_defaults()
    input_ = body.model_dump()
    budgets = body.budgets if body.budgets is not None else defaults.tenant_default_budgets
    input_["budgets"] = [b.model_dump() for b in budgets]
    input_["policies"] = [
        p.model_dump() for p in (body.policies if body.policies is not None else defaults.tenant_default_policies)
    ]
    saga, secrets = await engine.start(
        PROVISION_TENANT,
        principal.tenant_id,
        input_,
        requested_by=principal.principal_id,
        correlation_id=request.state.correlation_id,
    )
    return _answer(response, saga, secrets)


@router.post(
    "/v1/sagas/tenant-deletion",
    response_model=StartedSaga,
    status_code=201,
    responses={202: {"model": StartedSaga, "description": "Still running: follow it at Location"}},
    summary="Delete a tenant: suspended, its work stopped, everything it holds erased in every layer and verified.",
)
async def delete_tenant(
    body: TenantDeletion, principal: Operator, request: Request, response: Response
) -> dict[str, Any]:
    """Delete a tenant: suspended, its work stopped, everything it holds erased in every layer and verified."""
    if body.tenant_id == principal.tenant_id:
        raise InvalidInputError("an operator cannot delete its own tenant", field="tenant_id")
    found = await peers.call(
        "GET",
        f"/v1/tenants/{body.tenant_id}",
        tenant_id=principal.tenant_id,
        correlation_id=request.state.correlation_id,
        scopes=OPERATOR,
    )
    if found.status_code == 404:
        raise NotFoundError(f"no tenant {body.tenant_id}")
    if found.status_code != 200:
        raise DependencyUnavailableError(f"L09 answered {found.status_code} reading tenant {body.tenant_id}")
    if found.json()["name"] != body.confirm_name:
        raise InvalidInputError("confirm_name is not the tenant's name", field="confirm_name")
    saga, secrets = await engine.start(
        DELETE_TENANT,
        principal.tenant_id,
        body.model_dump(mode="json"),
        requested_by=principal.principal_id,
        correlation_id=request.state.correlation_id,
        subject_tenant_id=body.tenant_id,
    )
    return _answer(response, saga, secrets)


@router.get("/v1/sagas", response_model=Page[SagaSummary], summary="List sagas, newest first.")
async def list_sagas(
    principal: Operator,
    page: Annotated[PageRequest, Depends(page_request)],
    kind: SagaKind | None = None,
    status: SagaStatus | None = None,
) -> dict[str, Any]:
    """List sagas, newest first."""
    items, next_cursor = await store.list_page(principal.tenant_id, page, kind, status)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/sagas/{saga_id}", response_model=Saga, summary="Read a saga with its steps and transitions.")
async def get_saga(saga_id: UUID, principal: Operator) -> dict[str, Any]:
    """Read a saga with its steps and transitions."""
    return await store.get(principal.tenant_id, saga_id)


@router.post(
    "/v1/sagas/{saga_id}/retry",
    response_model=Saga,
    summary="Take a failed saga up again where it stopped (forward, or its compensation).",
)
async def retry_saga(saga_id: UUID, principal: Operator) -> dict[str, Any]:
    """Take a failed saga up again where it stopped (forward, or its compensation)."""
    return await engine.retry(principal.tenant_id, saga_id, principal.principal_id)
