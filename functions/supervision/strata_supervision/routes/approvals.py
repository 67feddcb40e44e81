"""Approval requests: the inbox, one request with its votes, and the vote itself."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.etags import set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_supervision import approvals

router = APIRouter(tags=["approvals"])
Status = Literal["pending", "approved", "rejected", "expired"]


class Level(BaseModel):
    approvers: list[str]
    quorum: int
    timeout_s: int


class Vote(BaseModel):
    level: int
    principal_id: str
    vote: Literal["approve", "reject"]
    comment: str
    created_at: datetime


class Approval(BaseModel):
    approval_id: UUID
    subject_type: Literal["plan", "tool_call"]
    subject_id: str
    what: str = Field(description="What is asked")
    why: str = Field(description="Why a human is asked (the policy's reason)")
    requested_by: str = Field(description="Whom the work is for (they cannot approve it)")
    decision_id: UUID
    details: dict[str, Any]
    levels: list[Level] = Field(description="The first level, then the escalation levels in order")
    level: int = Field(description="The level asked now")
    approvers: list[str] = Field(description="The current level's approvers (* : anyone holding approvals:decide)")
    quorum: int = Field(description="How many of them must approve")
    deadline: datetime = Field(description="When the current level's time runs out")
    status: Status
    decided_by: list[str]
    comment: str
    approvals: int | None = Field(description="Approvals at the current level so far (read one request to see)")
    votes: list[Vote] | None = Field(description="Every vote (read one request to see)")
    version: int
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None


class Decide(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=2000)


@router.get("/v1/approvals", response_model=Page[Approval], summary="List approval requests, newest first.")
async def list_approvals(
    principal: Annotated[Principal, Depends(require_scope("approvals:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: Annotated[Status | None, Query()] = None,
    subject_type: Annotated[Literal["plan", "tool_call"] | None, Query()] = None,
) -> dict[str, Any]:
    """List approval requests, newest first (the inbox: `status=pending`)."""
    items, next_cursor = await approvals.list_page(principal.tenant_id, status, subject_type, page)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/approvals/{approval_id}", response_model=Approval, summary="Read an approval request and its votes.")
async def get_approval(
    approval_id: UUID, principal: Annotated[Principal, Depends(require_scope("approvals:read"))], response: Response
) -> dict[str, Any]:
    """Read an approval request with its votes."""
    approval = await approvals.get(principal.tenant_id, approval_id)
    set_etag(response, approval["version"])
    return approval


@router.post("/v1/approvals/{approval_id}", response_model=Approval, summary="Approve or reject.")
async def decide_approval(
    approval_id: UUID,
    body: Decide,
    principal: Annotated[Principal, Depends(require_scope("approvals:decide"))],
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Vote on an approval request. Its quorum of approvals approves it; one rejection rejects it. The requester
    cannot vote on their own work (403), nor anyone who is not an approver at the current level (403); a decided
    request or a second vote is 409."""
    approval = await approvals.vote(
        principal.tenant_id, approval_id, principal, body.decision, body.comment, request.state.correlation_id
    )
    set_etag(response, approval["version"])
    return approval
