"""Feedback resources of L07 learning."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from strata.pagination import add_list_route

router = APIRouter(tags=["feedback"])


class Feedback(BaseModel):
    feedback_id: UUID
    subject_type: str
    subject_id: UUID
    rating: int | None
    comment: str
    created_at: datetime


add_list_route(
    router,
    "/v1/feedback",
    Feedback,
    table="feedback",
    id_column="feedback_id",
    scope="feedback:read",
    summary="List the tenant's feedback, newest first.",
)
