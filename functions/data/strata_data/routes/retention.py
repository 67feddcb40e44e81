"""Retention: how long the tenant's event log is kept, and whether old events are archived first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.web import require_scope
from strata_data import retention

router = APIRouter(tags=["retention"])


class Retention(BaseModel):
    event_log_days: int
    archive: bool
    version: int
    updated_at: datetime | None
    default: bool = Field(description="True while the tenant uses the platform's default")


class RetentionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_log_days: int = Field(ge=7, le=3650)
    archive: bool = True


@router.get("/v1/retention", response_model=Retention, summary="The tenant's retention settings.")
async def get_retention(principal: Annotated[Principal, Depends(require_scope("retention:read"))]) -> dict[str, Any]:
    """The tenant's retention settings."""
    return await retention.get_settings_for(principal.tenant_id)


@router.put("/v1/retention", response_model=Retention, summary="Set the tenant's retention.")
async def put_retention(
    body: RetentionUpdate, principal: Annotated[Principal, Depends(require_scope("retention:write"))]
) -> dict[str, Any]:
    """Set the tenant's retention."""
    return await retention.put_settings(principal.tenant_id, body.event_log_days, body.archive)
