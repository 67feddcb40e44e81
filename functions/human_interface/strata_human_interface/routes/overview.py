"""The console's overview: who is signed in and the health of every layer (from L11's status)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from strata import peers
from strata.auth import Principal
from strata.errors import DependencyUnavailableError
from strata.web import require_scope

router = APIRouter(tags=["console"])


@router.get("/v1/console/overview", summary="The console's overview.")
async def overview(
    request: Request, principal: Annotated[Principal, Depends(require_scope("console:read"))]
) -> dict[str, Any]:
    """The console's overview."""
    response = await peers.call(
        "GET", "/v1/status", tenant_id=principal.tenant_id, correlation_id=request.state.correlation_id
    )
    if response.status_code != 200:
        raise DependencyUnavailableError(f"L11 status answered {response.status_code}")
    return {
        "principal": {
            "tenant_id": str(principal.tenant_id),
            "principal_id": principal.principal_id,
            "kind": principal.kind,
            "scopes": sorted(principal.scopes),
        },
        "status": response.json(),
    }
