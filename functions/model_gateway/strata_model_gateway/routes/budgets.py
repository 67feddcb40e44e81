"""Budgets per tenant, run or task; what each has spent in its current window."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from strata.auth import Principal
from strata.errors import InvalidInputError
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_model_gateway import budgets
from strata_model_gateway.budgets import Period, Scope

router = APIRouter(tags=["budgets"])
LimitMicroUsd = Annotated[int, Field(ge=1, le=10**15, description="Millionths of a US dollar")]


class Budget(BaseModel):
    budget_id: UUID
    scope: Scope
    scope_id: str
    period: Period
    limit_micro_usd: int
    spent_micro_usd: int = Field(description="Spent in the current window (from the metered usage)")
    window: str
    window_start: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class BudgetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Scope
    scope_id: str | None = Field(
        default=None, max_length=200, description="run: the run id; task: <run id>/<task id>; tenant: omitted"
    )
    period: Period
    limit_micro_usd: LimitMicroUsd

    @model_validator(mode="after")
    def _scope_id_fits(self) -> BudgetCreate:
        if self.scope == "tenant" and self.scope_id is not None:
            raise ValueError("a tenant budget takes no scope_id")
        if self.scope != "tenant" and not self.scope_id:
            raise ValueError(f"a {self.scope} budget needs a scope_id")
        return self


class BudgetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit_micro_usd: LimitMicroUsd


def _check_scope_id(body: BudgetCreate, tenant_id: UUID) -> str:
    if body.scope == "tenant":
        return str(tenant_id)
    assert body.scope_id is not None
    run, _, task = body.scope_id.partition("/")
    try:
        UUID(run)
    except ValueError as exc:
        raise InvalidInputError("scope_id must start with a run id (a UUID)") from exc
    if (body.scope == "task") != bool(task):
        raise InvalidInputError("a task budget's scope_id is <run id>/<task id>; a run budget's is the run id")
    return body.scope_id


@router.get("/v1/budgets", response_model=Page[Budget], summary="List the tenant's budgets and their spend.")
async def list_budgets(
    principal: Annotated[Principal, Depends(require_scope("budgets:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """List the tenant's budgets and their spend."""
    items, next_cursor = await budgets.list_page(principal.tenant_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/budgets", response_model=Budget, status_code=201, summary="Create a budget.")
async def create_budget(
    body: BudgetCreate, principal: Annotated[Principal, Depends(require_scope("budgets:write"))], response: Response
) -> dict[str, Any]:
    """Create a budget."""
    scope_id = _check_scope_id(body, principal.tenant_id)
    budget = await budgets.create(principal.tenant_id, body.scope, scope_id, body.period, body.limit_micro_usd)
    response.headers["Location"] = f"/v1/budgets/{budget['budget_id']}"
    set_etag(response, budget["version"])
    return budget


@router.get("/v1/budgets/{budget_id}", response_model=Budget, summary="Read a budget and its spend.")
async def get_budget(
    budget_id: UUID, principal: Annotated[Principal, Depends(require_scope("budgets:read"))], response: Response
) -> dict[str, Any]:
    """Read a budget and its spend."""
    budget = await budgets.get(principal.tenant_id, budget_id)
    set_etag(response, budget["version"])
    return budget


@router.patch("/v1/budgets/{budget_id}", response_model=Budget, summary="Change a budget's limit (If-Match honoured).")
async def update_budget(
    budget_id: UUID,
    body: BudgetUpdate,
    principal: Annotated[Principal, Depends(require_scope("budgets:write"))],
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Change a budget's limit (If-Match honoured)."""
    budget = await budgets.change_limit(principal.tenant_id, budget_id, body.limit_micro_usd, expected_version(request))
    set_etag(response, budget["version"])
    return budget


@router.delete("/v1/budgets/{budget_id}", status_code=204, summary="Delete a budget (If-Match honoured).")
async def delete_budget(
    budget_id: UUID, principal: Annotated[Principal, Depends(require_scope("budgets:write"))], request: Request
) -> Response:
    """Delete a budget (If-Match honoured)."""
    await budgets.delete(principal.tenant_id, budget_id, expected_version(request))
    return Response(status_code=204)
