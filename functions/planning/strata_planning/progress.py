"""A goal follows what becomes of its plan: supervision's rejection, then its run's start and end. Each update only
moves a goal forward (planned -> running -> completed | failed | cancelled), so events arriving twice or out of
order change nothing."""

from __future__ import annotations

from strata import db
from strata.events.envelope import Event
from strata.events.runtime import RunCancelled, RunCompleted, RunFailed, RunStarted
from strata.events.supervision import PlanRejected

FINAL = {RunCompleted: "completed", RunFailed: "failed", RunCancelled: "cancelled"}


async def on_run_event(event: Event) -> None:
    if isinstance(event, RunStarted):
        await db.fetch(
            "UPDATE goals SET status = 'running', run_id = $2, updated_at = now() "
            "WHERE goal_id = $1 AND plan_id = $3 AND status = 'planned' RETURNING true",
            event.goal_id,
            event.run_id,
            event.plan_id,
            tenant_id=event.tenant_id,
        )
    elif isinstance(event, RunCompleted | RunFailed | RunCancelled):
        reasons = [event.error] if isinstance(event, RunFailed) else []
        await db.fetch(
            "UPDATE goals SET status = $2, run_id = $3, updated_at = now(),"
            " reasons = CASE WHEN $4::jsonb = '[]' THEN reasons ELSE $4 END"
            " WHERE goal_id = $1 AND plan_id = $5 AND status IN ('planned', 'running') RETURNING true",
            event.goal_id,
            FINAL[type(event)],
            event.run_id,
            reasons,
            event.plan_id,
            tenant_id=event.tenant_id,
        )


async def on_plan_rejected(event: PlanRejected) -> None:
    await db.fetch(
        "UPDATE goals SET status = 'rejected', reasons = $2, updated_at = now() "
        "WHERE goal_id = $1 AND plan_id = $3 AND status = 'planned' RETURNING true",
        event.goal_id,
        [f"supervision: {r}" for r in event.reasons],
        event.plan_id,
        tenant_id=event.tenant_id,
    )
