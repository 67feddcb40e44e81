"""Runs: list them, read one with the live state of every task (cached by ETag), page through a task's steps, pause,
resume or cancel a run at any point, and retry a failed run's failed task."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.assertions import Assertion
from strata.auth import Principal
from strata.errors import BadRequestError
from strata.events.common import TaskKey
from strata.http_cache import NOT_MODIFIED, conditional_json
from strata.pagination import Page, PageRequest, decode_values, encode_values, page_request
from strata.web import require_scope
from strata_runtime import runs

router = APIRouter(tags=["runs"])
RunStatus = Literal["running", "paused", "completed", "failed", "cancelled"]
TaskStatus = Literal[
    "pending", "queued", "ready", "running", "awaiting_approval", "completed", "failed", "blocked", "cancelled"
]


class Run(BaseModel):
    run_id: UUID
    plan_id: UUID
    goal_id: UUID | None
    plan_version: int
    status: RunStatus
    task_count: int
    tasks_done: int
    error: str | None
    requested_by: str = Field(description="Who paused, resumed or cancelled it last")
    created_at: datetime
    updated_at: datetime


@router.get("/v1/runs", response_model=Page[Run], summary="List the tenant's runs, newest first.")
async def list_runs(
    principal: Annotated[Principal, Depends(require_scope("runs:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: RunStatus | None = None,
    goal_id: UUID | None = None,
) -> dict[str, Any]:
    """List the tenant's runs, newest first; only those in one state, or of one goal, when asked."""
    items, next_cursor = await runs.list_page(principal.tenant_id, page, status, goal_id)
    return {"items": items, "next_cursor": next_cursor}


class TaskState(BaseModel):
    task_id: str
    title: str
    kind: Literal["tool", "agent"]
    tool: str | None
    agent_id: UUID | None
    status: TaskStatus
    depends_on: list[str]
    waiting_on: int = Field(description="Dependencies not completed yet")
    attempt: int
    attempt_base: int = Field(
        description="Attempts made before an operator's last retry of it: max_attempts counts only those since"
    )
    max_attempts: int
    next_step: int = Field(description="Steps recorded in the current attempt")
    steps: int = Field(description="Steps recorded over all attempts")
    invocations: int = Field(description="Invocations that worked on it (continuations and resumes included)")
    input: dict[str, Any] | None = Field(description="Bound when the task became ready")
    output: dict[str, Any] | None
    error: dict[str, Any] | None = Field(
        description="Why it failed or is blocked (a retry keeps it until it completes)"
    )
    not_before: datetime | None = Field(description="A retry's backoff ends then")
    approval_id: UUID | None = Field(description="The approval the task waits for (status awaiting_approval)")
    lease_until: datetime | None
    input_tokens: int
    output_tokens: int
    cost_micro_usd: int
    model_ms: float
    tool_ms: float
    first_started_at: datetime | None = Field(description="When the current attempt first started: its timeout runs")
    started_at: datetime | None = Field(description="When the invocation working on it (the last one) took it")
    finished_at: datetime | None


class TaskDetail(TaskState):
    instructions: str = Field(description="For an agent task: what to do")
    output_schema: dict[str, Any] | None
    success_criteria: list[Assertion] = Field(description="Assertions on the output that evaluation checks")
    rubric: str | None = Field(description="What a good output is, for evaluation's LLM judge")


class RunDetail(Run):
    max_parallelism: int | None
    deadline: datetime | None
    allowed_tools: list[str] | None
    requested_by: str = Field(description="Who paused, resumed or cancelled it last")
    input_tokens: int
    output_tokens: int
    cost_micro_usd: int
    started_at: datetime
    finished_at: datetime | None
    tasks: list[TaskState]


class Step(BaseModel):
    attempt: int
    step: int
    kind: Literal["model", "tools", "tool", "output"]
    detail: dict[str, Any]
    input_tokens: int
    output_tokens: int
    cost_micro_usd: int
    duration_ms: float
    created_at: datetime


class Control(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)


@router.get(
    "/v1/runs/{run_id}",
    response_model=RunDetail,
    responses=NOT_MODIFIED,
    summary="A run with the live state of every task.",
)
async def get_run(
    run_id: UUID, request: Request, principal: Annotated[Principal, Depends(require_scope("runs:read"))]
) -> Response:
    """A run with the live state of every task (ETag: If-None-Match answers 304 while nothing changed)."""
    return conditional_json(request, RunDetail, await runs.get(principal.tenant_id, run_id))


@router.get("/v1/runs/{run_id}/tasks/{task_id}", response_model=TaskDetail, summary="One task of a run.")
async def get_task(
    run_id: UUID, task_id: TaskKey, principal: Annotated[Principal, Depends(require_scope("runs:read"))]
) -> dict[str, Any]:
    """One task of a run: its live state and what the plan asked of it (instructions, schema, criteria, rubric)."""
    return await runs.get_task(principal.tenant_id, run_id, task_id)


@router.get(
    "/v1/runs/{run_id}/tasks/{task_id}/steps",
    response_model=Page[Step],
    summary="A task's steps in order (every attempt): model turns, tool calls and their results.",
)
async def task_steps(
    run_id: UUID,
    task_id: TaskKey,
    principal: Annotated[Principal, Depends(require_scope("runs:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """A task's steps in order (every attempt): model turns, tool calls and their results."""
    after: tuple[int, int] | None = None
    if page.cursor:
        attempt, step = decode_values(page.cursor, 2)
        if not isinstance(attempt, int) or not isinstance(step, int):
            raise BadRequestError("the cursor is not one this API issued")
        after = (attempt, step)
    found = await runs.steps(principal.tenant_id, run_id, task_id, after, page.limit + 1)
    items = found[: page.limit]
    more = len(found) > page.limit
    return {"items": items, "next_cursor": encode_values([items[-1]["attempt"], items[-1]["step"]]) if more else None}


def _control_route(action: Literal["pause", "resume", "cancel"], summary: str) -> None:
    async def control(
        run_id: UUID,
        request: Request,
        principal: Annotated[Principal, Depends(require_scope("runs:write"))],
        body: Control | None = None,
    ) -> dict[str, Any]:
        reason = body.reason if body is not None else ""
        await runs.control(
            principal.tenant_id, run_id, action, principal.principal_id, reason, request.state.correlation_id
        )
        return await runs.get(principal.tenant_id, run_id)

    control.__doc__ = summary
    router.add_api_route(
        f"/v1/runs/{{run_id}}/{action}",
        control,
        methods=["POST"],
        response_model=RunDetail,
        summary=summary,
        name=f"{action}_run",
    )


_control_route("pause", "Pause a run: running tasks stop at their next step, nothing new starts until resumed.")
_control_route("resume", "Resume a paused run from every task's last checkpoint.")
_control_route("cancel", "Cancel a run: running tasks stop at their next step; the run ends as cancelled.")


@router.post(
    "/v1/runs/{run_id}/tasks/{task_id}/retry",
    response_model=RunDetail,
    summary="Retry a failed run's failed task: the run is reopened and goes on from there.",
)
async def retry_task(
    run_id: UUID,
    task_id: TaskKey,
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("runs:write"))],
    body: Control | None = None,
) -> dict[str, Any]:
    """Retry a failed run's failed task: the run is reopened and goes on from there."""
    reason = body.reason if body is not None else ""
    await runs.retry_task(
        principal.tenant_id, run_id, task_id, principal.principal_id, reason, request.state.correlation_id
    )
    return await runs.get(principal.tenant_id, run_id)
