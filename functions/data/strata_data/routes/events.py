"""The event log: every event on the bus, archived and queryable."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from strata.auth import Principal
from strata.events import event_model
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
    aggregate_type: str
    aggregate_id: str
    detail: dict[str, Any]


@router.get("/v1/events", response_model=Page[ArchivedEvent], summary="Query the event log.")
async def list_events(
    principal: Annotated[Principal, Depends(require_scope("events:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    detail_type: Annotated[str | None, Query(max_length=100, description="e.g. TaskCompleted")] = None,
    correlation_id: Annotated[str | None, Query(max_length=128, description="The run or request")] = None,
    aggregate_type: Annotated[str | None, Query(max_length=50, pattern=r"^[a-z_]+$", description="e.g. run")] = None,
    aggregate_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[datetime | None, Query(description="Inclusive lower bound of occurred_at")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive upper bound of occurred_at")] = None,
) -> dict[str, Any]:
    """Query the event log."""
    if detail_type is not None:
        event_model(detail_type)  # an unknown type is a 400, not an empty page
    where = store.EventFilter(detail_type, correlation_id, aggregate_type, aggregate_id, since, until)
    items, next_cursor = await store.list_events(principal.tenant_id, page, where)
    return {"items": items, "next_cursor": next_cursor}
