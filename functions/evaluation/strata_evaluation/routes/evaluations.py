"""Evaluations: every scored task and run, filtered by run, agent, kind or verdict; one with every check, the
judge's verdict and its cost."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from strata import db
from strata.auth import Principal
from strata.errors import NotFoundError
from strata.pagination import Page, PageRequest, Where, fetch_page, page_request
from strata.web import require_scope
from strata_evaluation.scoring import EVALUATION_COLUMNS

router = APIRouter(tags=["evaluations"])


class Evaluation(BaseModel):
    evaluation_id: UUID
    subject_type: Literal["task", "run"]
    run_id: UUID | None
    task_id: str | None
    attempt: int | None
    agent_id: UUID | None
    goal_id: UUID | None
    status: Literal["pending", "done"] = Field(description="A run's is pending until all its tasks are evaluated")
    score: float = Field(description="In [0, 1]: the mean of the scored dimensions")
    passed: bool
    scores: dict[str, float] = Field(description="Per dimension (schema, criteria, judge, compliance, completion)")
    reasons: dict[str, str]
    checks: list[dict[str, Any]] = Field(description="Every success criterion with its outcome")
    judge: dict[str, Any] | None = Field(description="The judge's model, verdict, tokens and cost")
    output: Any
    task_count: int | None
    denied_calls: int = Field(description="Tool calls supervision denied")
    duration_ms: int
    cost_micro_usd: int = Field(description="The work's cost plus the judge's")
    evaluated_at: datetime | None
    created_at: datetime


@router.get("/v1/evaluations", response_model=Page[Evaluation], summary="List evaluations, newest first.")
async def list_evaluations(
    principal: Annotated[Principal, Depends(require_scope("evaluations:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    run_id: UUID | None = None,
    agent_id: UUID | None = None,
    subject_type: Literal["task", "run"] | None = None,
    passed: bool | None = None,
) -> dict[str, Any]:
    """List evaluations, newest first (filter by run, agent, task or run, verdict)."""
    where = (
        Where(principal.tenant_id)
        .add_if(run_id, "run_id = {}")
        .add_if(agent_id, "agent_id = {}")
        .add_if(subject_type, "subject_type = {}")
        .add_if(passed, "passed = {}")
    )
    items, next_cursor = await fetch_page("evaluations", EVALUATION_COLUMNS, "evaluation_id", where, page)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/evaluations/{evaluation_id}", response_model=Evaluation, summary="Read an evaluation.")
async def get_evaluation(
    evaluation_id: UUID, principal: Annotated[Principal, Depends(require_scope("evaluations:read"))]
) -> dict[str, Any]:
    """Read an evaluation: its scores, every check, the judge's verdict and cost."""
    rows = await db.fetch(
        f"SELECT {EVALUATION_COLUMNS} FROM evaluations WHERE evaluation_id = $1",  # noqa: S608 - constant columns
        evaluation_id,
        tenant_id=principal.tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no evaluation {evaluation_id}")
    return dict(rows[0])
