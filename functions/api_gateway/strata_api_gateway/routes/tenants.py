"""Tenants: the caller's own (read, change settings) and, for the operator, all of them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.scopes import PLATFORM_ADMIN
from strata.web import require_scope
from strata_api_gateway import tenants
from strata_api_gateway.routes.api_keys import NewApiKey

router = APIRouter(tags=["tenants"])
Origin = Annotated[str, Field(min_length=1, max_length=300)]
TenantStatus = Literal["active", "suspended"]
TierName = Annotated[str, Field(min_length=1, max_length=50)]


class Tenant(BaseModel):
    tenant_id: UUID
    name: str
    status: TenantStatus
    tier: str
    cors_origins: list[str] = Field(description="Browser origins allowed to call the API with this tenant's keys")
    version: int
    created_at: datetime
    updated_at: datetime


class NewTenant(Tenant):
    admin_key: NewApiKey = Field(description="The tenant's first key (scope admin); its secret is shown only here")


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    tier: TierName = "standard"
    admin_key_name: str = Field(default="admin", min_length=1, max_length=200)


class TenantSettings(BaseModel):
    """What a tenant may change about itself."""

    model_config = ConfigDict(extra="forbid")
    cors_origins: list[Origin] | None = Field(default=None, max_length=tenants.MAX_ORIGINS)


class TenantAdministration(BaseModel):
    """What the operator may change about any tenant."""

    model_config = ConfigDict(extra="forbid")
    status: TenantStatus | None = None
    tier: TierName | None = None
    cors_origins: list[Origin] | None = Field(default=None, max_length=tenants.MAX_ORIGINS)


def _changes(body: BaseModel) -> dict[str, Any]:
    return {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}


@router.get("/v1/tenant", response_model=Tenant, summary="The caller's tenant.")
async def current_tenant(
    principal: Annotated[Principal, Depends(require_scope("tenant:read"))], response: Response
) -> dict[str, Any]:
    """The caller's tenant."""
    tenant = await tenants.get_tenant(principal.tenant_id, own=True)
    set_etag(response, tenant["version"])
    return tenant


@router.patch("/v1/tenant", response_model=Tenant, summary="Change the caller's tenant settings (If-Match honoured).")
async def update_current_tenant(
    body: TenantSettings,
    principal: Annotated[Principal, Depends(require_scope("tenant:write"))],
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Change the caller's tenant settings (If-Match honoured)."""
    tenant = await tenants.update_tenant(
        principal.tenant_id, _changes(body), expected_version(request), request.state.correlation_id, own=True
    )
    set_etag(response, tenant["version"])
    return tenant


@router.post(
    "/v1/tenants", response_model=NewTenant, status_code=201, summary="Create a tenant with its first admin key."
)
async def create_tenant(
    body: TenantCreate,
    _: Annotated[Principal, Depends(require_scope(PLATFORM_ADMIN))],
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Create a tenant with its first admin key."""
    tenant = await tenants.create_tenant(body.name, body.tier, body.admin_key_name, request.state.correlation_id)
    response.headers["Location"] = f"/v1/tenants/{tenant['tenant_id']}"
    set_etag(response, tenant["version"])
    return tenant


@router.get("/v1/tenants", response_model=Page[Tenant], summary="List every tenant (operator).")
async def list_tenants(
    _: Annotated[Principal, Depends(require_scope(PLATFORM_ADMIN))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: TenantStatus | None = None,
) -> dict[str, Any]:
    """List every tenant (operator)."""
    items, next_cursor = await tenants.list_tenants(page, status)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/tenants/{tenant_id}", response_model=Tenant, summary="Read any tenant (operator).")
async def get_tenant(
    tenant_id: UUID, _: Annotated[Principal, Depends(require_scope(PLATFORM_ADMIN))], response: Response
) -> dict[str, Any]:
    """Read any tenant (operator)."""
    tenant = await tenants.get_tenant(tenant_id, own=False)
    set_etag(response, tenant["version"])
    return tenant


@router.patch(
    "/v1/tenants/{tenant_id}",
    response_model=Tenant,
    summary="Suspend, reactivate or re-tier a tenant (operator; If-Match honoured).",
)
async def update_tenant(
    tenant_id: UUID,
    body: TenantAdministration,
    _: Annotated[Principal, Depends(require_scope(PLATFORM_ADMIN))],
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Suspend, reactivate or re-tier a tenant (operator; If-Match honoured)."""
    tenant = await tenants.update_tenant(
        tenant_id, _changes(body), expected_version(request), request.state.correlation_id, own=False
    )
    set_etag(response, tenant["version"])
    return tenant
