"""Events of L02 runtime: runs and the tasks within them."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from pydantic import Field

from strata.events.common import MicroUsd, Reason, TaskKey
from strata.events.envelope import Event


class RunStarted(Event):
    DETAIL_TYPE = "RunStarted"
    SOURCE = "strata.runtime"
    AGGREGATE: ClassVar[str] = "run_id"
    run_id: UUID
    plan_id: UUID
    goal_id: UUID
    plan_version: int = Field(ge=1)
    task_count: int = Field(ge=1, le=10_000)


class TaskReady(Event):
    DETAIL_TYPE = "TaskReady"
    SOURCE = "strata.runtime"
    AGGREGATE: ClassVar[str] = "run_id"
    run_id: UUID
    task_id: TaskKey
    attempt: int = Field(ge=1, le=100)


class TaskContinued(Event):
    """A task handing itself on before the function's deadline; the next invocation resumes at `next_step`."""

    DETAIL_TYPE = "TaskContinued"
    SOURCE = "strata.runtime"
    AGGREGATE: ClassVar[str] = "run_id"
    run_id: UUID
    task_id: TaskKey
    attempt: int = Field(ge=1, le=100)
    next_step: int = Field(ge=0)


class TaskCompleted(Event):
    OBSERVATION = True
    DETAIL_TYPE = "TaskCompleted"
    SOURCE = "strata.runtime"
    AGGREGATE: ClassVar[str] = "run_id"
    run_id: UUID
    task_id: TaskKey
    attempt: int = Field(ge=1, le=100)
    agent_id: UUID | None = None
    tool: str | None = Field(default=None, max_length=200, description="For a tool task: the tool")
    checked: bool = Field(
        default=False, description="The plan gives the task an output schema, success criteria or a rubric"
    )
    output: dict[str, Any]
    duration_ms: int = Field(ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_micro_usd: MicroUsd = 0


class TaskFailed(Event):
    DETAIL_TYPE = "TaskFailed"
    SOURCE = "strata.runtime"
    AGGREGATE: ClassVar[str] = "run_id"
    run_id: UUID
    task_id: TaskKey
    attempt: int = Field(ge=1, le=100)
    agent_id: UUID | None = None
    tool: str | None = Field(default=None, max_length=200, description="For a tool task: the tool")
    error_type: str = Field(max_length=200)
    error: Reason
    retryable: bool


class RunCompleted(Event):
    DETAIL_TYPE = "RunCompleted"
    SOURCE = "strata.runtime"
    AGGREGATE: ClassVar[str] = "run_id"
    run_id: UUID
    plan_id: UUID
    goal_id: UUID
    task_count: int = Field(ge=1)
    duration_ms: int = Field(ge=0)
    cost_micro_usd: MicroUsd = 0


class RunFailed(Event):
    DETAIL_TYPE = "RunFailed"
    SOURCE = "strata.runtime"
    AGGREGATE: ClassVar[str] = "run_id"
    run_id: UUID
    plan_id: UUID
    goal_id: UUID
    failed_task_ids: list[TaskKey] = Field(min_length=1, max_length=10_000)
    error: Reason


class RunCancelled(Event):
    DETAIL_TYPE = "RunCancelled"
    SOURCE = "strata.runtime"
    AGGREGATE: ClassVar[str] = "run_id"
    run_id: UUID
    plan_id: UUID
    goal_id: UUID
    cancelled_by: str = Field(max_length=200)
    reason: Reason = ""


class RunReopened(Event):
    """An operator retried a failed task of a failed run: the task is attempted again (with the plan's whole attempt
    budget), the tasks its failure blocked or cancelled wait again, and the run is running until it ends anew."""

    DETAIL_TYPE = "RunReopened"
    SOURCE = "strata.runtime"
    AGGREGATE: ClassVar[str] = "run_id"
    run_id: UUID
    plan_id: UUID
    goal_id: UUID
    task_id: TaskKey = Field(description="The failed task retried")
    reopened_by: str = Field(max_length=200)
    reason: Reason = ""
