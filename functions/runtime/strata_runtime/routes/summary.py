"""How many runs are in each state: what an operator's overview shows first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from strata import db
from strata.auth import Principal
from strata.errors import BadRequestError
from strata.web import require_scope

router = APIRouter(tags=["runs"])


class RunCounts(BaseModel):
    running: int
    paused: int
    completed: int
    failed: int
    cancelled: int


class TaskCounts(BaseModel):
    running: int = Field(description="Held by an invocation now")
    waiting: int = Field(description="Ready or queued, waiting for an invocation or a parallelism slot")
    awaiting_approval: int


class RunSummary(BaseModel):
    since: datetime = Field(description="Ended runs are counted from then; open runs whenever they started")
    runs: RunCounts
    tasks: TaskCounts = Field(description="The open runs' tasks")
    cost_micro_usd: int = Field(description="What the runs that ended since then cost")


@router.get("/v1/run-summary", response_model=RunSummary, summary="How many runs are in each state.")
async def run_summary(
    principal: Annotated[Principal, Depends(require_scope("runs:read"))],
    since: Annotated[datetime | None, Query(description="Count ended runs from then; default 24 hours ago")] = None,
) -> dict[str, Any]:
    """Open runs (running, paused) whenever they started, ended ones since `since`, and the open runs' tasks by
    state."""
    now = datetime.now(UTC)
    since = since or now - timedelta(hours=24)
    if since.tzinfo is None:
        raise BadRequestError("`since` needs a time zone (e.g. 2026-01-01T00:00:00Z)")
    if since > now:
        raise BadRequestError("`since` is in the future")
    async with db.transaction(principal.tenant_id) as conn:
        runs = await conn.fetch(
            """SELECT status, count(*) AS n, coalesce(sum(cost_micro_usd), 0) AS cost FROM runs
               WHERE status IN ('running', 'paused') OR finished_at >= $1 GROUP BY status""",
            since,
        )
        tasks = await conn.fetch(
            """SELECT t.status, count(*) AS n FROM task_executions t JOIN runs r ON r.run_id = t.run_id
               WHERE r.status IN ('running', 'paused')
                 AND t.status IN ('running', 'ready', 'queued', 'awaiting_approval')
               GROUP BY t.status"""
        )
    by_run = {r["status"]: int(r["n"]) for r in runs}
    by_task = {r["status"]: int(r["n"]) for r in tasks}
    return {
        "since": since,
        "runs": {s: by_run.get(s, 0) for s in RunCounts.model_fields},
        "tasks": {
            "running": by_task.get("running", 0),
            "waiting": by_task.get("ready", 0) + by_task.get("queued", 0),
            "awaiting_approval": by_task.get("awaiting_approval", 0),
        },
        "cost_micro_usd": sum(int(r["cost"]) for r in runs if r["status"] not in ("running", "paused")),
    }
