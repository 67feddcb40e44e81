"""Model resources of L04 model gateway."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from strata.pagination import add_list_route

router = APIRouter(tags=["models"])


class Model(BaseModel):
    model_id: UUID
    provider: str
    provider_model: str
    context_window: int
    capabilities: list[str]
    created_at: datetime


add_list_route(
    router,
    "/v1/models",
    Model,
    table="models",
    id_column="model_id",
    scope="models:read",
    summary="List the tenant's models, newest first.",
)
