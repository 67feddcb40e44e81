"""A goal follows what becomes of its plan: supervision's rejection, then its run's start and end. Each update only
moves a goal forward (planned -> running -> completed | failed | cancelled), so events arriving twice or out of
order change nothing; the one way back is an operator's retry of the failed run (RunReopened: failed -> running).
A run that completed or was cancelled cannot be reopened, so those ends also settle a goal that a failure from
before a reopen (delivered late) left failed, and clear its reasons. A goal whose constraints say `on_failure:
replan` is planned again when its run fails (a new, signed plan version told what failed and what completed), up
to `max_replans` times."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger

from strata import db, peers
from strata.events.envelope import Event
from strata.events.planning import GoalConstraints
from strata.events.runtime import RunCancelled, RunCompleted, RunFailed, RunReopened, RunStarted
from strata.events.supervision import PlanRejected
from strata_planning import goals, planner

logger = Logger(child=True)

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
    elif isinstance(event, RunReopened):
        # the run's failure is no longer the goal's outcome: its reasons go with it
        await db.fetch(
            "UPDATE goals SET status = 'running', run_id = $2, reasons = '[]', updated_at = now() "
            "WHERE goal_id = $1 AND plan_id = $3 AND status = 'failed' RETURNING true",
            event.goal_id,
            event.run_id,
            event.plan_id,
            tenant_id=event.tenant_id,
        )
    elif isinstance(event, RunFailed) and await _replanned(event):
        return
    elif isinstance(event, RunCompleted | RunFailed | RunCancelled):
        reasons = [event.error] if isinstance(event, RunFailed) else []
        await db.fetch(
            "UPDATE goals SET status = $2, run_id = $3, updated_at = now(),"
            " reasons = CASE WHEN $4::jsonb = '[]' AND status <> 'failed' THEN reasons ELSE $4 END"
            " WHERE goal_id = $1 AND plan_id = $5"
            " AND (status IN ('planned', 'running') OR (status = 'failed' AND $2 <> 'failed')) RETURNING true",
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


async def _replanned(event: RunFailed) -> bool:
    """Plan the goal again after its run failed, if its constraints ask for that and allow another version; True
    when the goal has a new plan (or already had one from another delivery of this event)."""
    rows = await db.fetch(
        "SELECT g.text, g.constraints, g.strategy, g.plan_id, p.version FROM goals g "
        "JOIN plans p ON p.plan_id = $2 WHERE g.goal_id = $1",
        event.goal_id,
        event.plan_id,
        tenant_id=event.tenant_id,
    )
    if not rows:
        return False
    goal = rows[0]
    constraints = GoalConstraints.model_validate(goal["constraints"])
    if constraints.on_failure != "replan":
        return False
    if goal["plan_id"] != event.plan_id:
        return True  # replanned already: this is a late or repeated delivery
    if goal["version"] > constraints.max_replans:
        return False
    failure = await _what_failed(event)
    outcome = await planner.make_plan(
        event.tenant_id, event.correlation_id, goal["text"], constraints, goal["strategy"], failure=failure
    )
    if isinstance(outcome, planner.Refused):
        logger.info(
            "the goal could not be replanned", extra={"goal_id": str(event.goal_id), "reasons": outcome.reasons}
        )
        return False
    failed_plan = {"plan_id": event.plan_id, "version": goal["version"]}
    causation = str(event.event_id)
    await goals.record_replan(
        event.tenant_id, event.correlation_id, causation, event.goal_id, failed_plan, outcome.body, outcome.strategy
    )
    return True


async def _what_failed(event: RunFailed) -> str:
    """The failed run as the planner is told it: each task's outcome, with completed outputs and errors."""
    response = await peers.call(
        "GET", f"/v1/runs/{event.run_id}", tenant_id=event.tenant_id, correlation_id=event.correlation_id
    )
    lines = [f"The run failed: {event.error}"]
    if response.status_code == 200:
        for task in response.json()["tasks"]:
            line = f"- task {task['task_id']} ({task['title']}): {task['status']}"
            if task["status"] == "completed":
                line += f"; output {json.dumps(task['output'], default=str)[:2000]}"
            elif task.get("error"):
                line += f"; error {str(task['error'].get('message', ''))[:1000]}"
            lines.append(line)
    return "\n".join(lines)[:20_000]
