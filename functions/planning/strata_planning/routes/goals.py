"""Goal resources of L05 planning."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from strata.pagination import add_list_route

router = APIRouter(tags=["goals"])


class Goal(BaseModel):
    goal_id: UUID
    text: str
    status: str
    created_at: datetime


add_list_route(
    router,
    "/v1/goals",
    Goal,
    table="goals",
    id_column="goal_id",
    scope="goals:read",
    summary="List the tenant's goals, newest first.",
)
