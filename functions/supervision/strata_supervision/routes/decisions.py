"""Decisions: asked by every enforcement point (and by anyone holding decisions:ask), and read back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from strata import db
from strata.auth import Principal
from strata.decisions import DecidingPolicy, DecisionAnswer, DecisionRequest
from strata.errors import NotFoundError
from strata.events.outbox import unit_of_work
from strata.pagination import Page, PageRequest, Where, fetch_page, page_request
from strata.web import require_scope
from strata_supervision import decider

router = APIRouter(tags=["decisions"])
COLUMNS = (
    "decision_id, action, principal_type, principal_id, resource_type, resource_id, context, subject_type,"
    " subject_id, outcome, policies, reasons, approval_id, revision, correlation_id"
)


class Decision(BaseModel):
    decision_id: UUID
    action: str
    principal_type: str
    principal_id: str
    resource_type: str
    resource_id: str
    context: dict[str, Any]
    subject_type: str | None
    subject_id: str | None
    outcome: Literal["allow", "deny", "approval_required"]
    policies: list[DecidingPolicy]
    reasons: list[str]
    approval_id: UUID | None
    revision: int
    correlation_id: str
    created_at: datetime


@router.post("/v1/decisions", response_model=DecisionAnswer, summary="Decide a request under the tenant's policies.")
async def ask(
    body: DecisionRequest,
    principal: Annotated[Principal, Depends(require_scope("decisions:ask"))],
    request: Request,
) -> dict[str, Any]:
    """Decide whether the principal may take the action on the resource: allow, deny, or approval_required (with
    the approval opened for `subject` when one is given). Recorded with the deciding policies and audited."""
    correlation_id = request.state.correlation_id
    entity = await decider.resolve(principal.tenant_id, body.principal, correlation_id)
    async with unit_of_work(principal.tenant_id, publish_soon=True) as uow:
        return await decider.decide(uow, principal.tenant_id, correlation_id, body, entity, principal.principal_id)


@router.get("/v1/decisions", response_model=Page[Decision], summary="List decisions, newest first.")
async def list_decisions(
    principal: Annotated[Principal, Depends(require_scope("policies:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    action: Annotated[Literal["plan.approve", "run.start", "tool.invoke", "model.call"] | None, Query()] = None,
    outcome: Annotated[Literal["allow", "deny", "approval_required"] | None, Query()] = None,
) -> dict[str, Any]:
    """List decisions, newest first (filtered by action and outcome)."""
    where = Where(principal.tenant_id).add_if(action, "action = {}").add_if(outcome, "outcome = {}")
    items, next_cursor = await fetch_page("decisions", COLUMNS, "decision_id", where, page)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/decisions/{decision_id}", response_model=Decision, summary="Read a decision.")
async def get_decision(
    decision_id: UUID, principal: Annotated[Principal, Depends(require_scope("policies:read"))]
) -> dict[str, Any]:
    """Read a decision: the request, the outcome, the reasons and the policies that decided it."""
    rows = await db.fetch(
        f"SELECT {COLUMNS}, created_at FROM decisions WHERE decision_id = $1",  # noqa: S608 - constant columns
        decision_id,
        tenant_id=principal.tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no decision {decision_id}")
    return dict(rows[0])
