"""Outbound webhooks registered by the tenant."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from strata.pagination import add_list_route

router = APIRouter(tags=["webhooks"])


class Webhook(BaseModel):
    webhook_id: UUID
    url: str
    event_types: list[str]
    status: str
    created_at: datetime


add_list_route(
    router,
    "/v1/webhooks",
    Webhook,
    table="webhooks",
    id_column="webhook_id",
    scope="webhooks:read",
    summary="List the tenant's webhooks, newest first.",
)
