"""Evaluation resources of L06 evaluation."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from strata.pagination import add_list_route

router = APIRouter(tags=["evaluations"])


class Evaluation(BaseModel):
    evaluation_id: UUID
    subject_type: str
    subject_id: UUID
    score: float
    created_at: datetime


add_list_route(
    router,
    "/v1/evaluations",
    Evaluation,
    table="evaluations",
    id_column="evaluation_id",
    scope="evaluations:read",
    summary="List the tenant's evaluations, newest first.",
)
