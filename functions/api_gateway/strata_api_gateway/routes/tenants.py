"""The caller's tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from strata.auth import Principal
from strata.web import require_scope
from strata_api_gateway import service

router = APIRouter(tags=["tenants"])


class Tenant(BaseModel):
    tenant_id: UUID
    name: str
    status: str
    created_at: datetime


@router.get("/v1/tenant", response_model=Tenant, summary="The caller's tenant.")
async def current_tenant(principal: Annotated[Principal, Depends(require_scope("tenant:read"))]) -> dict[str, Any]:
    """The caller's tenant."""
    return await service.current_tenant(principal.tenant_id)
