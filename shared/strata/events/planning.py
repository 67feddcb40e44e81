"""Events of L05 planning: goals and their plans."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from strata.events.common import MicroUsd
from strata.events.envelope import Event


class GoalConstraints(BaseModel):
    """What the submitter allows: spend, time, parallelism, tools, and whether a human must approve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget_micro_usd: MicroUsd | None = None
    deadline: datetime | None = None
    max_parallelism: int | None = Field(default=None, ge=1, le=1000)
    allowed_tools: list[str] | None = Field(default=None, max_length=200)
    require_approval: bool = False
    on_failure: Literal["fail", "replan"] = Field(
        default="fail", description="When a task fails for good: fail the goal, or plan again around the failure"
    )
    max_replans: int = Field(default=2, ge=0, le=5, description="With on_failure replan: new plan versions at most")


class GoalSubmitted(Event):
    DETAIL_TYPE = "GoalSubmitted"
    SOURCE = "strata.planning"
    AGGREGATE: ClassVar[str] = "goal_id"
    goal_id: UUID
    text: str = Field(min_length=1, max_length=20_000)
    constraints: GoalConstraints = GoalConstraints()
    submitted_by: str = Field(max_length=200)


class PlanCreated(Event):
    DETAIL_TYPE = "PlanCreated"
    SOURCE = "strata.planning"
    AGGREGATE: ClassVar[str] = "plan_id"
    plan_id: UUID
    goal_id: UUID
    version: int = Field(ge=1)
    strategy: Literal["template", "llm", "hybrid", "given"] = Field(
        description="How the plan was made: from a template, by the LLM, hybrid (a template, else the LLM), or given "
        "(the goal's submitter wrote it)"
    )
    task_count: int = Field(ge=1, le=10_000)
    estimated_cost_micro_usd: MicroUsd
    signature: str = Field(max_length=512, description="Signature over the plan's canonical JSON")
    supersedes_version: int | None = Field(default=None, ge=1, description="Set when this is a replan")


class GoalRejected(Event):
    """Planning could not make a runnable plan for the goal (no template matched and the model's plans stayed
    invalid, or the plan would break the goal's constraints); `reasons` say why."""

    DETAIL_TYPE = "GoalRejected"
    SOURCE = "strata.planning"
    AGGREGATE: ClassVar[str] = "goal_id"
    goal_id: UUID
    reasons: list[str] = Field(min_length=1, max_length=50)
