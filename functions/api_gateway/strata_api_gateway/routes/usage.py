"""The tenant's request log and usage summaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from strata.auth import Principal
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_api_gateway import usage

router = APIRouter(tags=["usage"])


class LoggedRequest(BaseModel):
    request_id: str
    principal_id: str = Field(description="The key (key:<id>), token subject (jwt:<issuer>#<sub>) or service")
    route: str = Field(description="The route as the HTTP API matched it, e.g. GET /v1/agents/{agent_id}")
    method: str
    path: str
    status: int
    latency_ms: float
    bytes_in: int
    bytes_out: int
    at: datetime


class UsageFigures(BaseModel):
    key: str | None = Field(description="The group: a day, a principal id or a route; null in totals")
    requests: int
    client_errors: int = Field(description="Answers with a 4xx status")
    server_errors: int = Field(description="Answers with a 5xx status")
    bytes_in: int
    bytes_out: int
    mean_latency_ms: float
    max_latency_ms: float


class UsageSummary(BaseModel):
    from_: date = Field(alias="from")
    to: date
    group_by: Literal["day", "key", "route"]
    groups: list[UsageFigures]
    totals: UsageFigures


@router.get(
    "/v1/usage",
    response_model=UsageSummary,
    response_model_by_alias=True,
    summary="Usage by day, key or route over a date range (UTC days, inclusive; the log lags by up to a minute).",
)
async def get_usage(
    principal: Annotated[Principal, Depends(require_scope("usage:read"))],
    from_: Annotated[date | None, Query(alias="from", description="First day; default 30 days ago")] = None,
    to: Annotated[date | None, Query(description="Last day; default today")] = None,
    group_by: Literal["day", "key", "route"] = "day",
    principal_id: Annotated[str | None, Query(max_length=300, description="Only this key or subject")] = None,
) -> dict[str, Any]:
    """Usage by day, key or route over a date range (UTC days, inclusive; the log lags by up to a minute)."""
    end = to or datetime.now(UTC).date()
    start = from_ or end - timedelta(days=30)
    return await usage.summary(principal.tenant_id, start, end, group_by, principal_id)


@router.get("/v1/requests", response_model=Page[LoggedRequest], summary="The tenant's request log, newest first.")
async def list_requests(
    principal: Annotated[Principal, Depends(require_scope("usage:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    principal_id: Annotated[str | None, Query(max_length=300)] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    route: Annotated[str | None, Query(max_length=300, description="e.g. GET /v1/agents")] = None,
) -> dict[str, Any]:
    """The tenant's request log, newest first."""
    items, next_cursor = await usage.requests(principal.tenant_id, page.limit, page.cursor, principal_id, status, route)
    return {"items": items, "next_cursor": next_cursor}
