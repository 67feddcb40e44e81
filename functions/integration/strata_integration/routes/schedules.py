"""Scheduled goals: cron, rate or one-time schedules that submit a goal when they fire; pause, resume, and the
history of their firings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from strata import schedule_expressions as expressions
from strata.auth import Principal
from strata.etags import expected_version, set_etag
from strata.events.planning import GoalConstraints
from strata.pagination import Page, PageRequest, page_request
from strata.plans import PlanBody, problems
from strata.web import require_scope
from strata_integration.schedules import service

router = APIRouter(tags=["schedules"])
State = Literal["enabled", "paused"]
Strategy = Literal["template", "llm", "hybrid", "given"]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
ExpressionText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        description="cron(minutes hours day-of-month month day-of-week year), rate(value minute|minutes|hour|hours|"
        "day|days) or at(yyyy-mm-ddThh:mm:ss), as EventBridge Scheduler reads them",
        examples=["cron(0 8 ? * MON-FRI *)", "rate(15 minutes)", "at(2030-01-31T08:00:00)"],
    ),
]
TimeZone = Annotated[str, Field(min_length=1, max_length=64, description="IANA time zone the expression is read in")]
Start = Annotated[
    AwareDatetime | None,
    Field(description="No firing before it; a rate's times are start_at + n * period (not for at())"),
]
End = Annotated[AwareDatetime | None, Field(description="No firing after it (not for at())")]


class ScheduledGoal(BaseModel):
    """The goal a schedule submits: what POST /v1/goals takes (submitted on behalf of whoever last set it)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=20_000)  # L05's limit on a goal's text
    constraints: GoalConstraints = GoalConstraints()
    strategy: Strategy = Field(default="hybrid", description="How L05 plans it; given: the plan sent with it")
    plan: PlanBody | None = Field(default=None, description="The plan to run each time (strategy given)")

    @model_validator(mode="after")
    def _strategy_fits_the_plan(self) -> ScheduledGoal:
        if self.plan is not None:
            if "strategy" in self.model_fields_set and self.strategy != "given":
                raise ValueError(f"a goal with its own plan has strategy given, not {self.strategy}")
            self.strategy = "given"
            found = problems(self.plan)
            if found:
                raise ValueError(f"the plan cannot run: {'; '.join(found)}")
        elif self.strategy == "given":
            raise ValueError("strategy given needs the plan")
        return self


def _expression(value: str | None) -> str | None:
    """The canonical expression (EventBridge Scheduler's checks, with their reasons)."""
    return None if value is None else expressions.parse(value).text


def _zone(value: str | None) -> str | None:
    if value is not None:
        expressions.zone(value)
    return value


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    description: str = Field(default="", max_length=2000)
    expression: ExpressionText
    timezone: TimeZone = "UTC"
    start_at: Start = None
    end_at: End = None
    goal: ScheduledGoal
    state: State = Field(default="enabled", description="paused: created without firing until resumed")

    _check_expression = field_validator("expression")(_expression)
    _check_timezone = field_validator("timezone")(_zone)


class ScheduleUpdate(BaseModel):
    """The fields to change (start_at and end_at: null removes them); pause and resume change the state."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    expression: ExpressionText | None = None
    timezone: TimeZone | None = None
    start_at: Start = None
    end_at: End = None
    goal: ScheduledGoal | None = None

    _check_expression = field_validator("expression")(_expression)
    _check_timezone = field_validator("timezone")(_zone)


NULLABLE = {"start_at", "end_at"}


class Schedule(BaseModel):
    schedule_id: UUID
    name: str
    description: str
    expression: str
    timezone: str
    start_at: datetime | None
    end_at: datetime | None
    goal: ScheduledGoal
    state: State
    sync_status: Literal["pending", "synced"] = Field(
        description="synced: EventBridge Scheduler holds this version; pending: it is on its way there"
    )
    next_fire_times: list[datetime] = Field(description="When it fires next (none while paused or once finished)")
    submits_as: str = Field(description="Whom its goals are submitted for: who last set the goal")
    created_by: str
    version: int
    created_at: datetime
    updated_at: datetime


class ScheduleRun(BaseModel):
    scheduled_time: datetime = Field(description="The time the schedule fired for")
    fired_at: datetime = Field(description="When the firing arrived")
    last_attempt_at: datetime
    attempts: int = Field(description="Invocations that tried to submit the goal (retries and duplicates)")
    execution_id: str | None = Field(description="EventBridge Scheduler's execution id")
    outcome: Literal["submitting", "submitted", "failed"]
    goal_id: UUID | None = Field(description="The submitted goal (its status: GET /v1/goals/{goal_id})")
    reason: str | None = Field(description="Why the goal was not submitted (outcome failed)")


def _answer(response: Response, schedule: dict[str, Any]) -> dict[str, Any]:
    set_etag(response, schedule["version"])
    return service.present(schedule)


@router.get("/v1/schedules", response_model=Page[Schedule], summary="List the tenant's schedules, newest first.")
async def list_schedules(
    principal: Annotated[Principal, Depends(require_scope("schedules:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    state: State | None = None,
) -> dict[str, Any]:
    """List the tenant's schedules, newest first."""
    items, next_cursor = await service.list_page(principal.tenant_id, page, state)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/v1/schedules", status_code=201, response_model=Schedule, summary="Create a schedule that submits a goal."
)
async def create_schedule(
    body: ScheduleCreate,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("schedules:write"))],
) -> dict[str, Any]:
    """Create a schedule that submits a goal (the caller also needs goals:write: goals are submitted for them)."""
    principal.require("goals:write")
    fields = body.model_dump(exclude={"goal"})
    fields["goal"] = body.goal.model_dump(mode="json", exclude_none=True)
    schedule = await service.create(principal.tenant_id, principal.principal_id, fields)
    response.headers["Location"] = f"/v1/schedules/{schedule['schedule_id']}"
    return _answer(response, schedule)


@router.get("/v1/schedules/{schedule_id}", response_model=Schedule, summary="Read a schedule and its next times.")
async def get_schedule(
    schedule_id: UUID, response: Response, principal: Annotated[Principal, Depends(require_scope("schedules:read"))]
) -> dict[str, Any]:
    """Read a schedule and its next times."""
    return _answer(response, await service.get(principal.tenant_id, schedule_id))


@router.patch("/v1/schedules/{schedule_id}", response_model=Schedule, summary="Change a schedule (If-Match honoured).")
async def update_schedule(
    schedule_id: UUID,
    body: ScheduleUpdate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("schedules:write"))],
) -> dict[str, Any]:
    """Change a schedule (If-Match honoured; a new goal also needs goals:write)."""
    changes = {
        k: v for k, v in body.model_dump(exclude_unset=True, exclude={"goal"}).items() if v is not None or k in NULLABLE
    }
    if body.goal is not None:
        principal.require("goals:write")
        changes["goal"] = body.goal.model_dump(mode="json", exclude_none=True)
    schedule = await service.update(
        principal.tenant_id, principal.principal_id, schedule_id, changes, expected_version(request)
    )
    return _answer(response, schedule)


@router.delete("/v1/schedules/{schedule_id}", status_code=204, summary="Delete a schedule and its history.")
async def delete_schedule(
    schedule_id: UUID, request: Request, principal: Annotated[Principal, Depends(require_scope("schedules:write"))]
) -> None:
    """Delete a schedule and its history (If-Match honoured)."""
    await service.delete(principal.tenant_id, schedule_id, expected_version(request))


@router.post("/v1/schedules/{schedule_id}/pause", response_model=Schedule, summary="Pause a schedule.")
async def pause_schedule(
    schedule_id: UUID,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("schedules:write"))],
) -> dict[str, Any]:
    """Pause a schedule: it does not fire until resumed (a no-op when paused already)."""
    schedule = await service.set_state(principal.tenant_id, schedule_id, "paused", expected_version(request))
    return _answer(response, schedule)


@router.post("/v1/schedules/{schedule_id}/resume", response_model=Schedule, summary="Resume a paused schedule.")
async def resume_schedule(
    schedule_id: UUID,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("schedules:write"))],
) -> dict[str, Any]:
    """Resume a paused schedule from its next time (times missed while paused are not made up)."""
    schedule = await service.set_state(principal.tenant_id, schedule_id, "enabled", expected_version(request))
    return _answer(response, schedule)


@router.get(
    "/v1/schedules/{schedule_id}/runs",
    response_model=Page[ScheduleRun],
    summary="A schedule's firings, the latest first.",
)
async def schedule_runs(
    schedule_id: UUID,
    principal: Annotated[Principal, Depends(require_scope("schedules:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """A schedule's firings, the latest first: when each fired, and the goal it submitted or why it did not."""
    items, next_cursor = await service.runs(principal.tenant_id, schedule_id, page)
    return {"items": items, "next_cursor": next_cursor}
