"""Training examples: list them (by run, status, source) and read one with its conversation and lineage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from strata.auth import Principal
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_learning import examples

router = APIRouter(tags=["training examples"])


class TrainingExample(BaseModel):
    example_id: UUID
    source: Literal["run", "correction"]
    run_id: UUID
    task_id: str
    goal_id: UUID | None
    agent_id: UUID | None
    feedback_id: UUID | None = Field(description="The feedback a correction came from")
    messages: list[dict[str, Any]] = Field(description="The conversation: system, task, turns, tool results, answer")
    output: Any
    score: float | None
    labels: list[str]
    status: Literal["active", "excluded"]
    excluded_reason: str | None
    created_at: datetime


@router.get("/v1/training-examples", response_model=Page[TrainingExample], summary="List training examples.")
async def list_examples(
    principal: Annotated[Principal, Depends(require_scope("learning:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    run_id: UUID | None = None,
    status: Literal["active", "excluded"] | None = None,
    source: Literal["run", "correction"] | None = None,
) -> dict[str, Any]:
    """List training examples, newest first (filter by run, status, source)."""
    items, next_cursor = await examples.list_page(principal.tenant_id, page, run_id, status, source)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/training-examples/{example_id}", response_model=TrainingExample, summary="Read a training example.")
async def get_example(
    example_id: UUID, principal: Annotated[Principal, Depends(require_scope("learning:read"))]
) -> dict[str, Any]:
    """Read a training example with its conversation and lineage."""
    return await examples.get(principal.tenant_id, example_id)
