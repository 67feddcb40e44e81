"""A schedule fires: EventBridge Scheduler invokes L11 with the fire_schedule command, which submits the schedule's
goal to L05 once per scheduled time, however often the firing arrives.

Scheduler invokes Lambda asynchronously, so Lambda's own retries apply: a failure that a retry may cure (L05
unreachable or failing, a duplicate still submitting) is recorded on the firing and raised; a refusal (the goal no
longer valid, the tenant suspended, its budget spent) is recorded and not retried. The goal keeps its own status
(GET /v1/goals/{goal_id}); the history holds its id.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger

from strata import db, peers
from strata import schedule_expressions as expressions
from strata.errors import DependencyUnavailableError
from strata_integration.schedules import store
from strata_integration.schedules.settings import schedule_settings

logger = Logger(child=True)

RETRYABLE = {409, 429}  # and every 5xx


class ScheduleFireError(RuntimeError):
    """A firing's goal could not be submitted yet: raised so that Lambda retries the invocation."""


def idempotency_key(schedule_id: UUID, scheduled_time: str) -> str:
    """One goal per schedule and scheduled time, whichever invocation submits it."""
    return f"schedule:{schedule_id}:{scheduled_time}"


async def fire(args: dict[str, Any]) -> dict[str, Any]:
    """The fire_schedule command: {tenant_id, schedule_id, scheduled_time, execution_id?, attempt?}."""
    try:
        tenant_id, schedule_id = UUID(str(args["tenant_id"])), UUID(str(args["schedule_id"]))
        scheduled_time = expressions.parse_scheduled_time(str(args["scheduled_time"]))
    except (KeyError, ValueError) as exc:  # not an input this function's schedules send: retrying cannot help
        logger.error("a fire_schedule command without a valid schedule", extra={"args": str(args)[:500]})
        return {"outcome": "refused", "reason": f"invalid fire_schedule arguments: {exc}"}
    when = expressions.format_scheduled_time(scheduled_time)
    answer: dict[str, Any] = {"schedule_id": str(schedule_id), "scheduled_time": when}
    async with db.transaction(tenant_id) as conn:
        schedule = await conn.fetchrow(
            "SELECT state, sync_status, goal, submits_as FROM schedules WHERE schedule_id = $1 FOR SHARE",
            schedule_id,
        )
        # a firing that crossed the schedule's deletion or pause (Scheduler already had it on its way) is dropped
        if schedule is None or schedule["sync_status"] == "deleting":
            return {**answer, "outcome": "skipped", "reason": "the schedule was deleted"}
        if schedule["state"] != "enabled":
            return {**answer, "outcome": "skipped", "reason": "the schedule is paused"}
        request = {**schedule["goal"], "on_behalf_of": schedule["submits_as"]}
        execution_id = str(args.get("execution_id") or "")[:200] or None
        run = await store.claim_run(conn, tenant_id, schedule_id, scheduled_time, execution_id, request)
    if run["duplicate"]:
        logger.info(
            "a duplicate firing: the goal was submitted already", extra={**answer, "goal_id": str(run["goal_id"])}
        )
        return {**answer, "outcome": "submitted", "goal_id": str(run["goal_id"]), "duplicate": True}
    return {**answer, **await _submit(tenant_id, schedule_id, scheduled_time, when, run["request"])}


async def _submit(
    tenant_id: UUID, schedule_id: UUID, scheduled_time: datetime, when: str, request: dict[str, Any]
) -> dict[str, Any]:
    key = idempotency_key(schedule_id, when)
    waited_until = time.monotonic() + schedule_settings().schedules_submit_wait_s
    while True:
        try:
            response = await peers.call(
                "POST",
                "/v1/goals",
                tenant_id=tenant_id,
                correlation_id=key,
                json=request,
                headers={"Idempotency-Key": key},
            )
        except DependencyUnavailableError as exc:
            await store.finish_run(tenant_id, schedule_id, scheduled_time, "failed", None, exc.detail[:2000])
            raise ScheduleFireError(f"L05 is unreachable: {exc.detail}") from exc
        if response.status_code == 409 and time.monotonic() < waited_until:
            await asyncio.sleep(0.5)  # a duplicate of this firing is submitting the same goal: wait for its answer
            continue
        break
    if response.status_code in (200, 201, 202):
        goal_id = UUID(str(response.json()["goal_id"]))
        await store.finish_run(tenant_id, schedule_id, scheduled_time, "submitted", goal_id, None)
        logger.info(
            "scheduled goal submitted",
            extra={"schedule_id": str(schedule_id), "scheduled_time": when, "goal_id": str(goal_id)},
        )
        return {"outcome": "submitted", "goal_id": str(goal_id)}
    reason = f"POST /v1/goals answered {response.status_code}: {_detail(response)}"[:2000]
    await store.finish_run(tenant_id, schedule_id, scheduled_time, "failed", None, reason)
    if response.status_code >= 500 or response.status_code in RETRYABLE:
        raise ScheduleFireError(reason)
    logger.warning(
        "scheduled goal refused", extra={"schedule_id": str(schedule_id), "scheduled_time": when, "reason": reason}
    )
    return {"outcome": "failed", "reason": reason}


def _detail(response: peers.PeerResponse) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return str(body.get("detail") or body)[:1500] if isinstance(body, dict) else str(body)[:1500]
