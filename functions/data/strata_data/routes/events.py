"""The event log: every event on the bus, archived and queryable."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from strata.auth import Principal
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_data import store

router = APIRouter(tags=["events"])


class ArchivedEvent(BaseModel):
    event_id: UUID
    source: str
    detail_type: str
    correlation_id: str
    causation_id: str | None
    occurred_at: datetime
    detail: dict[str, Any]


@router.get("/v1/events", response_model=Page[ArchivedEvent], summary="Query the event log.")
async def list_events(
    principal: Annotated[Principal, Depends(require_scope("events:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    detail_type: Annotated[str | None, Query(max_length=100)] = None,
    correlation_id: Annotated[str | None, Query(max_length=128)] = None,
    since: datetime | None = None,
) -> dict[str, Any]:
    """Query the event log."""
    items, next_cursor = await store.list_events(principal.tenant_id, page, detail_type, correlation_id, since)
    return {"items": items, "next_cursor": next_cursor}
