"""API keys: metadata of the tenant's keys (never the secrets)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from strata.pagination import add_list_route

router = APIRouter(tags=["api-keys"])


class ApiKey(BaseModel):
    key_id: UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


add_list_route(
    router,
    "/v1/api-keys",
    ApiKey,
    table="api_keys",
    id_column="key_id",
    scope="keys:read",
    summary="List the tenant's API keys, newest first.",
)
