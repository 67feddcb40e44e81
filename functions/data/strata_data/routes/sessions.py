"""Sessions: start (optionally for an agent), read, list, update state or extend with If-Match, close."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_data import sessions
from strata_data.configurations import dump_json

router = APIRouter(tags=["sessions"])
Status = Literal["active", "closed", "expired"]
TtlS = Annotated[int, Field(ge=sessions.MIN_TTL_S, le=sessions.MAX_TTL_S, description="Seconds from now")]


def _state_fits(state: dict[str, Any]) -> dict[str, Any]:
    dump_json(state, sessions.MAX_STATE_BYTES)  # ValueError (so 422) when it is too big or not storable
    return state


State = Annotated[dict[str, Any], AfterValidator(_state_fits)]


class Session(BaseModel):
    session_id: UUID
    agent_id: UUID | None
    state: dict[str, Any]
    status: Status
    version: int
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: UUID | None = None
    ttl_s: TtlS = sessions.DEFAULT_TTL_S
    state: State = Field(default_factory=dict)


class SessionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: State | None = None
    ttl_s: TtlS | None = None


@router.get("/v1/sessions", response_model=Page[Session], summary="List the tenant's sessions.")
async def list_sessions(
    principal: Annotated[Principal, Depends(require_scope("sessions:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: Status | None = None,
    agent_id: UUID | None = None,
) -> dict[str, Any]:
    """List the tenant's sessions."""
    items, next_cursor = await sessions.list_page(principal.tenant_id, page, status, agent_id)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/sessions", status_code=201, response_model=Session, summary="Start a session.")
async def create_session(
    body: SessionCreate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("sessions:write"))],
) -> dict[str, Any]:
    """Start a session."""
    session = await sessions.create(
        principal.tenant_id, body.agent_id, body.ttl_s, body.state, request.state.correlation_id
    )
    set_etag(response, session["version"])
    response.headers["Location"] = f"/v1/sessions/{session['session_id']}"
    return session


@router.get("/v1/sessions/{session_id}", response_model=Session, summary="Read a session.")
async def get_session(
    session_id: UUID, response: Response, principal: Annotated[Principal, Depends(require_scope("sessions:read"))]
) -> dict[str, Any]:
    """Read a session."""
    session = await sessions.get(principal.tenant_id, session_id)
    set_etag(response, session["version"])
    return session


@router.patch(
    "/v1/sessions/{session_id}", response_model=Session, summary="Update an active session (If-Match honoured)."
)
async def update_session(
    session_id: UUID,
    body: SessionUpdate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("sessions:write"))],
) -> dict[str, Any]:
    """Update an active session (If-Match honoured)."""
    session = await sessions.update(principal.tenant_id, session_id, body.state, body.ttl_s, expected_version(request))
    set_etag(response, session["version"])
    return session


@router.post(
    "/v1/sessions/{session_id}/close", response_model=Session, summary="Close an active session (If-Match honoured)."
)
async def close_session(
    session_id: UUID,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("sessions:write"))],
) -> dict[str, Any]:
    """Close an active session (If-Match honoured)."""
    session = await sessions.close(
        principal.tenant_id, session_id, expected_version(request), request.state.correlation_id
    )
    set_etag(response, session["version"])
    return session
