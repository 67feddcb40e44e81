"""Dead letters: list, inspect and replay the tenant's events that no consumer could handle."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.events import event_model
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_data import dead_letters

router = APIRouter(tags=["dead-letters"])
Status = Literal["pending", "replayed"]


class DeadLetter(BaseModel):
    dead_letter_id: UUID
    message_id: str
    event_id: str
    source: str
    detail_type: str
    rule_arn: str
    target_arn: str
    error_code: str
    error_message: str
    retry_attempts: int
    event: dict[str, Any]
    status: Status
    replay_count: int
    created_at: datetime
    replayed_at: datetime | None


class ReplayFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status = "pending"
    detail_type: str | None = Field(default=None, max_length=100)
    limit: int = Field(default=100, ge=1, le=500)


class ReplayResult(BaseModel):
    replayed: list[UUID]


@router.get("/v1/dead-letters", response_model=Page[DeadLetter], summary="List dead letters.")
async def list_dead_letters(
    principal: Annotated[Principal, Depends(require_scope("dead-letters:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: Status | None = None,
    detail_type: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """List dead letters."""
    items, next_cursor = await dead_letters.list_page(principal.tenant_id, page, status, detail_type)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/dead-letters/{dead_letter_id}", response_model=DeadLetter, summary="Inspect a dead letter.")
async def get_dead_letter(
    dead_letter_id: UUID, principal: Annotated[Principal, Depends(require_scope("dead-letters:read"))]
) -> dict[str, Any]:
    """Inspect a dead letter."""
    return await dead_letters.get(principal.tenant_id, dead_letter_id)


@router.post(
    "/v1/dead-letters/{dead_letter_id}/replay",
    status_code=202,
    response_model=ReplayResult,
    summary="Replay one dead letter.",
)
async def replay_one(
    dead_letter_id: UUID, principal: Annotated[Principal, Depends(require_scope("dead-letters:replay"))]
) -> dict[str, Any]:
    """Replay one dead letter."""
    await dead_letters.get(principal.tenant_id, dead_letter_id)  # 404 for an id the tenant does not have
    return {"replayed": await dead_letters.replay(principal.tenant_id, [dead_letter_id])}


@router.post(
    "/v1/dead-letters/replay",
    status_code=202,
    response_model=ReplayResult,
    summary="Replay every dead letter matching a filter.",
)
async def replay_matching(
    body: ReplayFilter, principal: Annotated[Principal, Depends(require_scope("dead-letters:replay"))]
) -> dict[str, Any]:
    """Replay every dead letter matching a filter."""
    if body.detail_type is not None:
        event_model(body.detail_type)
    ids = await dead_letters.matching_ids(principal.tenant_id, body.status, body.detail_type, body.limit)
    return {"replayed": await dead_letters.replay(principal.tenant_id, ids) if ids else []}
