"""Run resources of L02 runtime."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from strata.pagination import add_list_route

router = APIRouter(tags=["runs"])


class Run(BaseModel):
    run_id: UUID
    plan_id: UUID
    status: str
    created_at: datetime
    updated_at: datetime


add_list_route(
    router,
    "/v1/runs",
    Run,
    table="runs",
    id_column="run_id",
    scope="runs:read",
    summary="List the tenant's runs, newest first.",
)
