"""Feedback on runs and tasks: give it (a rating, a label, a comment, a correction), list it, read it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from strata.auth import Principal
from strata.events.common import TaskKey
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_learning import feedback

router = APIRouter(tags=["feedback"])
Label = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_.:-]*$")]


class Feedback(BaseModel):
    feedback_id: UUID
    subject_type: Literal["run", "task"]
    run_id: UUID | None
    task_id: str | None
    rating: int | None
    label: str | None
    comment: str
    correction: Any = Field(description="The output the task should have given")
    given_by: str
    created_at: datetime


class FeedbackGive(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: UUID
    task_id: TaskKey | None = Field(default=None, description="One task of the run; else the whole run")
    rating: int | None = Field(default=None, ge=1, le=5, description="1 (bad) to 5 (good); 2 or less keeps it out")
    label: Label | None = None
    comment: str = Field(default="", max_length=5000)
    correction: dict[str, Any] | str | None = Field(
        default=None, description="The output the task should have given (becomes a training example)"
    )

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackGive:
        if self.rating is None and self.label is None and not self.comment and self.correction is None:
            raise ValueError("give a rating, a label, a comment or a correction")
        return self


@router.post("/v1/feedback", status_code=201, response_model=Feedback, summary="Give feedback on a run or task.")
async def give_feedback(
    body: FeedbackGive,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("feedback:write"))],
) -> dict[str, Any]:
    """Give feedback on a run or one of its tasks (a low rating keeps it out of training; a correction joins it)."""
    given = await feedback.give(
        principal.tenant_id,
        request.state.correlation_id,
        principal.principal_id,
        body.run_id,
        body.task_id,
        body.rating,
        body.label,
        body.comment,
        body.correction,
    )
    response.headers["Location"] = f"/v1/feedback/{given['feedback_id']}"
    return given


@router.get("/v1/feedback", response_model=Page[Feedback], summary="List feedback, newest first.")
async def list_feedback(
    principal: Annotated[Principal, Depends(require_scope("feedback:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    run_id: UUID | None = None,
) -> dict[str, Any]:
    """List feedback, newest first (filter by run)."""
    items, next_cursor = await feedback.list_page(principal.tenant_id, page, run_id)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/feedback/{feedback_id}", response_model=Feedback, summary="Read feedback.")
async def get_feedback(
    feedback_id: UUID, principal: Annotated[Principal, Depends(require_scope("feedback:read"))]
) -> dict[str, Any]:
    """Read one piece of feedback."""
    return await feedback.get(principal.tenant_id, feedback_id)
