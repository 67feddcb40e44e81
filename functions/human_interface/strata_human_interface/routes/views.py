"""The console's data views: each page's data in one request, put together by L10 from the layers that own it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from strata.auth import Principal
from strata.web import require_scope
from strata_human_interface import service

router = APIRouter(tags=["console"])


class Section(BaseModel):
    """One part of a view, from one source: its data, or why it is missing (the page shows the rest)."""

    ok: bool
    data: Any = None
    error: str | None = Field(default=None, description="Why the data is missing")
    reason: Literal["forbidden", "unavailable"] | None = Field(
        default=None, description="forbidden: the caller lacks a scope; unavailable: a layer did not answer"
    )


class Signed(BaseModel):
    tenant_id: str
    principal_id: str
    kind: str
    scopes: list[str]


class Overview(BaseModel):
    principal: Signed
    runs: Section = Field(description="L02: runs by state (ended ones in the last 24 hours), open tasks by state")
    spend: Section = Field(description="L04: spend today, by model, and the tenant's budgets")
    alerts: Section = Field(description="L06: open alerts (counted up to 100, the newest 5)")
    approvals: Section = Field(description="L08: pending approval requests (counted up to 100, the newest 5)")
    dead_letters: Section = Field(description="L01: pending dead letters (counted up to 100, the newest 5)")
    status: Section = Field(description="L11: every layer and its dependencies")


class Costs(BaseModel):
    days: list[str] = Field(description="The UTC days every series has one value for, oldest first")
    spend_by_model: Section = Field(description="{series: {model: [micro-USD per day]}, total_micro_usd}")
    spend_by_agent: Section = Field(description="{series: {agent_id: [micro-USD per day or null]}}")
    score_by_agent: Section = Field(description="{series: {agent_id: [mean task score per day or null]}}")
    agents: dict[str, str] = Field(description="Agent ids to names (empty without agents:read)")
    budgets: Section = Field(description="The tenant's budgets and what they spent in their window")


@router.get("/v1/console/overview", response_model=Overview, summary="The console's overview.")
async def overview(
    request: Request, principal: Annotated[Principal, Depends(require_scope("console:read"))]
) -> dict[str, Any]:
    """Runs by state, spend today against budget, open alerts, pending approvals and dead letters, and the health
    of all eleven layers: each section only if the caller's own scopes allow it."""
    return await service.overview(principal, request.state.correlation_id)


@router.get("/v1/console/costs", response_model=Costs, summary="The console's cost and quality charts.")
async def costs(
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("console:read"))],
    days: Annotated[int, Query(ge=1, le=90, description="How many UTC days, today included")] = 14,
) -> dict[str, Any]:
    """Spend per day per model and per agent, mean task score per day per agent, and the tenant's budgets."""
    return await service.costs(principal, request.state.correlation_id, days)
