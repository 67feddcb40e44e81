"""Policy resources of L08 supervision."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from strata.pagination import add_list_route

router = APIRouter(tags=["policies"])


class Policy(BaseModel):
    policy_id: UUID
    name: str
    version: int
    cedar: str
    created_at: datetime


add_list_route(
    router,
    "/v1/policies",
    Policy,
    table="policies",
    id_column="policy_id",
    scope="policies:read",
    summary="List the tenant's policies, newest first.",
)
