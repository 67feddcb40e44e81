"""The kill switch: suspend the tenant or an agent, list suspensions, lift one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from strata.auth import Principal
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_supervision import suspensions

router = APIRouter(tags=["suspensions"])


class Suspension(BaseModel):
    suspension_id: UUID
    scope: Literal["tenant", "agent"]
    agent_id: UUID | None
    reason: str
    suspended_by: str
    created_at: datetime
    lifted_at: datetime | None
    lifted_by: str | None


class SuspensionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["tenant", "agent"]
    agent_id: UUID | None = Field(default=None, description="The agent, for scope agent")
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _agent_fits_scope(self) -> SuspensionCreate:
        if (self.scope == "agent") != (self.agent_id is not None):
            raise ValueError("an agent suspension names its agent_id; a tenant suspension names none")
        return self


@router.get("/v1/suspensions", response_model=Page[Suspension], summary="List suspensions, newest first.")
async def list_suspensions(
    principal: Annotated[Principal, Depends(require_scope("suspensions:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    active: Annotated[bool | None, Query(description="true: standing ones; false: lifted ones")] = None,
) -> dict[str, Any]:
    """List suspensions, newest first."""
    items, next_cursor = await suspensions.list_page(principal.tenant_id, active, page)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/suspensions", response_model=Suspension, status_code=201, summary="Suspend the tenant or an agent.")
async def suspend(
    body: SuspensionCreate,
    principal: Annotated[Principal, Depends(require_scope("suspensions:write"))],
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Suspend the whole tenant or one agent: running tasks stop at their next step, nothing new starts (plans are
    rejected, tool calls refused) until the suspension is lifted. 409 if it is suspended already."""
    suspension = await suspensions.suspend(
        principal.tenant_id,
        body.scope,
        body.agent_id,
        body.reason,
        principal.principal_id,
        request.state.correlation_id,
    )
    response.headers["Location"] = f"/v1/suspensions/{suspension['suspension_id']}"
    return suspension


@router.get("/v1/suspensions/{suspension_id}", response_model=Suspension, summary="Read a suspension.")
async def get_suspension(
    suspension_id: UUID, principal: Annotated[Principal, Depends(require_scope("suspensions:read"))]
) -> dict[str, Any]:
    """Read a suspension."""
    return await suspensions.get(principal.tenant_id, suspension_id)


@router.delete("/v1/suspensions/{suspension_id}", response_model=Suspension, summary="Lift a suspension.")
async def lift(
    suspension_id: UUID,
    principal: Annotated[Principal, Depends(require_scope("suspensions:write"))],
    request: Request,
) -> dict[str, Any]:
    """Lift a suspension: the runs it paused resume. 409 if it was lifted already."""
    return await suspensions.lift(
        principal.tenant_id, suspension_id, principal.principal_id, request.state.correlation_id
    )
