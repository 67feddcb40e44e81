"""Alerts evaluation raised (anomalies on metrics, failed regression gates): list, read, acknowledge or resolve."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from strata import db
from strata.auth import Principal
from strata.errors import ConflictError, NotFoundError
from strata.pagination import Page, PageRequest, Where, fetch_page, page_request
from strata.web import require_scope

router = APIRouter(tags=["alerts"])
AlertStatus = Literal["open", "acknowledged", "resolved"]
COLUMNS = (
    "alert_id, kind, severity, subject, metric, value, baseline, message, detail, occurrences, status, changed_by,"
    " created_at, last_seen_at, resolved_at"
)


class Alert(BaseModel):
    alert_id: UUID
    kind: Literal["anomaly", "regression"]
    severity: Literal["info", "warning", "critical"]
    subject: str
    metric: str
    value: float
    baseline: float | None
    message: str
    detail: dict[str, Any] = Field(description="The statistics behind it (baseline mean, stdev, z, fences, samples)")
    occurrences: int = Field(description="Anomalous samples seen while it was open")
    status: AlertStatus
    changed_by: str
    created_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None


class AlertChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["acknowledged", "resolved"]


@router.get("/v1/alerts", response_model=Page[Alert], summary="List alerts, newest first.")
async def list_alerts(
    principal: Annotated[Principal, Depends(require_scope("evaluations:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: AlertStatus | None = None,
    kind: Literal["anomaly", "regression"] | None = None,
) -> dict[str, Any]:
    """List alerts, newest first (filter by status and kind)."""
    where = Where(principal.tenant_id).add_if(status, "status = {}").add_if(kind, "kind = {}")
    items, next_cursor = await fetch_page("alerts", COLUMNS, "alert_id", where, page)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/alerts/{alert_id}", response_model=Alert, summary="Read an alert.")
async def get_alert(
    alert_id: UUID, principal: Annotated[Principal, Depends(require_scope("evaluations:read"))]
) -> dict[str, Any]:
    """Read an alert with the statistics behind it."""
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM alerts WHERE alert_id = $1",  # noqa: S608 - constant columns
        alert_id,
        tenant_id=principal.tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no alert {alert_id}")
    return dict(rows[0])


@router.patch("/v1/alerts/{alert_id}", response_model=Alert, summary="Acknowledge or resolve an alert.")
async def change_alert(
    alert_id: UUID,
    body: AlertChange,
    principal: Annotated[Principal, Depends(require_scope("evaluations:write"))],
) -> dict[str, Any]:
    """Acknowledge an alert (it stays the open one for its series) or resolve it (the next anomaly raises anew)."""
    async with db.transaction(principal.tenant_id) as conn:
        row = await conn.fetchrow(
            f"""UPDATE alerts SET status = $2, changed_by = $3,
                       resolved_at = CASE WHEN $2 = 'resolved' THEN now() END
                WHERE alert_id = $1 AND status <> 'resolved' RETURNING {COLUMNS}""",  # noqa: S608
            alert_id,
            body.status,
            principal.principal_id,
        )
        if row is None:
            if await conn.fetchval("SELECT true FROM alerts WHERE alert_id = $1", alert_id):
                raise ConflictError("the alert is resolved already")
            raise NotFoundError(f"no alert {alert_id}")
    return dict(row)
