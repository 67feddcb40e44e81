"""API keys: create (the secret is shown once), list, read, rotate with a grace period, revoke."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.errors import InvalidInputError
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_api_gateway import keys, store

router = APIRouter(tags=["api-keys"])
Scope = Annotated[str, Field(min_length=1, max_length=50)]


class ApiKey(BaseModel):
    key_id: UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewApiKey(ApiKey):
    api_key: str = Field(description="The secret: shown in this answer only, stored as a salted hash")


class RotatedApiKey(NewApiKey):
    previous_key_expires_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1, max_length=50)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="None: the key does not expire")


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: int = Field(default=3600, ge=0, le=7 * 86400, description="How long the old key keeps working")


@router.get("/v1/api-keys", response_model=Page[ApiKey], summary="List the tenant's API keys.")
async def list_keys(
    principal: Annotated[Principal, Depends(require_scope("keys:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    include_ended: bool = False,
) -> dict[str, Any]:
    """List the tenant's API keys."""
    items, next_cursor = await store.list_keys(principal.tenant_id, page, include_ended)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/api-keys", status_code=201, response_model=NewApiKey, summary="Create an API key.")
async def create_key(
    body: ApiKeyCreate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("keys:write"))],
) -> dict[str, Any]:
    """Create an API key."""
    if len(set(body.scopes)) != len(body.scopes):
        raise InvalidInputError("scopes are listed twice")
    expires_at = datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    key = await keys.create_key(principal, body.name, body.scopes, expires_at, request.state.correlation_id)
    response.headers["Location"] = f"/v1/api-keys/{key['key_id']}"
    response.headers["Cache-Control"] = "no-store"
    return key


@router.get("/v1/api-keys/{key_id}", response_model=ApiKey, summary="Read an API key (never its secret).")
async def get_key(key_id: UUID, principal: Annotated[Principal, Depends(require_scope("keys:read"))]) -> dict[str, Any]:
    """Read an API key (never its secret)."""
    return await keys.get_key(principal.tenant_id, key_id)


@router.post(
    "/v1/api-keys/{key_id}/rotate", status_code=201, response_model=RotatedApiKey, summary="Rotate an API key."
)
async def rotate_key(
    key_id: UUID,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("keys:write"))],
    body: Rotation | None = None,
) -> dict[str, Any]:
    """Rotate an API key."""
    rotation = body or Rotation()
    key = await keys.rotate_key(principal, key_id, rotation.grace_seconds, request.state.correlation_id)
    response.headers["Cache-Control"] = "no-store"
    return key


@router.post("/v1/api-keys/{key_id}/revoke", response_model=ApiKey, summary="Revoke an API key.")
async def revoke_key(
    key_id: UUID, request: Request, principal: Annotated[Principal, Depends(require_scope("keys:write"))]
) -> dict[str, Any]:
    """Revoke an API key."""
    return await keys.revoke_key(principal, key_id, request.state.correlation_id)
