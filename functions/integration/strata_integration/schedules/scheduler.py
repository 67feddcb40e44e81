"""A schedule's copy in EventBridge Scheduler: what makes it fire (expression, time zone, window, state), named by
its id in the stage's group, targeting L11's fire_schedule command. Only a schedule with times left to fire is
there; every call is an upsert or an idempotent removal, so repeating one (a retry, the sync job) is harmless."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger

from strata import aws
from strata import schedule_expressions as expressions
from strata.errors import DependencyUnavailableError, InvalidInputError
from strata_integration.schedules.settings import schedule_settings

logger = Logger(child=True)

# Scheduler fills these in at each invocation (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html)
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
EXECUTION_ID = "<aws.scheduler.execution-id>"
ATTEMPT = "<aws.scheduler.attempt-number>"
FIRE_COMMAND = "fire_schedule"
# A rate schedule's StartDate may be this much in the past (Scheduler takes up to 5 minutes): the time between a
# create computing the schedule's first time and this call must not cost the schedule that first time.
START_GRACE = timedelta(seconds=1)


def schedule_name(schedule_id: UUID) -> str:
    return str(schedule_id)


def target_input(tenant_id: UUID, schedule_id: UUID) -> str:
    """The event L11 receives at each firing: its fire_schedule command (strata.handler dispatches on "command" and
    passes "args")."""
    args = {
        "tenant_id": str(tenant_id),
        "schedule_id": str(schedule_id),
        "scheduled_time": SCHEDULED_TIME,
        "execution_id": EXECUTION_ID,
        "attempt": ATTEMPT,
    }
    return json.dumps({"command": FIRE_COMMAND, "args": args})


def next_time(schedule: dict[str, Any], now: datetime) -> datetime | None:
    """The schedule's next time at or after `now` (None: it has fired its last), whatever its state."""
    expression = expressions.parse(schedule["expression"])
    found = expressions.next_fire_times(
        expression,
        expressions.zone(schedule["timezone"]),
        after=now - timedelta(microseconds=1),
        count=1,
        start=schedule["start_at"],
        end=schedule["end_at"],
        anchor=schedule["rate_anchor"],
    )
    return found[0] if found else None


def request(tenant_id: UUID, schedule: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The CreateSchedule/UpdateSchedule request for `schedule`, or None when it has no time left to fire (then
    Scheduler should not hold it)."""
    first = next_time(schedule, now)
    if first is None:
        return None
    settings = schedule_settings()
    expression = expressions.parse(schedule["expression"])
    call: dict[str, Any] = {
        "Name": schedule_name(schedule["schedule_id"]),
        "GroupName": settings.schedules_group,
        "Description": f"{tenant_id} {schedule['name']}"[:512],
        "ScheduleExpression": expression.text,
        "ScheduleExpressionTimezone": schedule["timezone"],
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED" if schedule["state"] == "enabled" else "DISABLED",
        # a one-time schedule (or one past its end) leaves nothing behind in Scheduler
        "ActionAfterCompletion": "DELETE",
        "Target": {
            "Arn": settings.schedules_target_arn,
            "RoleArn": settings.schedules_role_arn,
            "Input": target_input(tenant_id, schedule["schedule_id"]),
        },
    }
    if isinstance(expression, expressions.RateExpression):
        # a rate's times are StartDate + n * period: its next time keeps the phase (an older StartDate, which
        # Scheduler refuses past 5 minutes, is never sent)
        call["StartDate"] = next_time(schedule, now - START_GRACE)
    elif isinstance(expression, expressions.CronExpression) and schedule["start_at"] and schedule["start_at"] > now:
        call["StartDate"] = schedule["start_at"]
    if not isinstance(expression, expressions.AtExpression) and schedule["end_at"] is not None:
        call["EndDate"] = schedule["end_at"]
    return call


async def apply(tenant_id: UUID, schedule: dict[str, Any]) -> None:
    """Make Scheduler hold `schedule` as it is (or not at all, when it has no time left to fire)."""
    call = request(tenant_id, schedule, datetime.now(UTC))
    if call is None:
        await remove(schedule["schedule_id"])
        return
    await asyncio.to_thread(_upsert, call)


async def remove(schedule_id: UUID) -> bool:
    """Delete the schedule from Scheduler; False when it was not there."""
    return await asyncio.to_thread(_delete, schedule_name(schedule_id))


def require_configured() -> None:
    """503 unless the deployment names the schedule group, the target and the role."""
    if not schedule_settings().configured():
        raise DependencyUnavailableError(
            "scheduled goals are not configured: STRATA_SCHEDULES_GROUP, STRATA_SCHEDULES_TARGET_ARN and "
            "STRATA_SCHEDULES_ROLE_ARN name the schedule group, the target and the role"
        )


def _client() -> Any:
    require_configured()
    return aws.client("scheduler")


def _upsert(call: dict[str, Any]) -> None:
    client = _client()
    try:
        try:
            client.update_schedule(**call)
        except client.exceptions.ResourceNotFoundException:
            try:
                client.create_schedule(**call)
            except client.exceptions.ConflictException:  # created meanwhile (another writer's retry)
                client.update_schedule(**call)
    except Exception as exc:
        raise _problem(exc, f"saving schedule {call['Name']}") from exc


def _delete(name: str) -> bool:
    client = _client()
    try:
        client.delete_schedule(Name=name, GroupName=schedule_settings().schedules_group)
    except client.exceptions.ResourceNotFoundException:
        return False
    except Exception as exc:
        raise _problem(exc, f"deleting schedule {name}") from exc
    return True


def _problem(exc: Exception, doing: str) -> Exception:
    """Scheduler's refusal of the schedule itself is the caller's to fix (422); anything else is an outage (503)."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "ValidationException":
        message = str(exc.response["Error"].get("Message", ""))[:500]
        return InvalidInputError(f"EventBridge Scheduler refused the schedule: {message}")
    logger.warning("EventBridge Scheduler call failed", extra={"doing": doing, "error": str(exc)[:500]})
    return DependencyUnavailableError(f"EventBridge Scheduler is unavailable ({type(exc).__name__}); retry shortly")
