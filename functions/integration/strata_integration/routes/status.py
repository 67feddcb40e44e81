"""Platform status: every layer and its dependencies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from strata.auth import Principal
from strata.web import require_scope
from strata_integration import service

router = APIRouter(tags=["status"])


@router.get("/v1/status", summary="Status of every layer and its dependencies.")
async def get_status(
    request: Request, principal: Annotated[Principal, Depends(require_scope("status:read"))]
) -> dict[str, Any]:
    """Status of every layer and its dependencies."""
    return await service.platform_status(request.state.correlation_id)
