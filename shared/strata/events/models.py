"""Events of L04 model gateway: metered usage and budgets."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from strata.events.common import MicroUsd, TaskKey
from strata.events.envelope import Event


class ModelUsageRecorded(Event):
    DETAIL_TYPE = "ModelUsageRecorded"
    SOURCE = "strata.model_gateway"
    AGGREGATE: ClassVar[str] = "usage_id"
    usage_id: UUID
    provider: str = Field(max_length=50)
    model: str = Field(max_length=200)
    purpose: str = Field(default="", max_length=50, description="e.g. planning, agent_turn, judge")
    run_id: UUID | None = None
    task_id: TaskKey | None = None
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    cost_micro_usd: MicroUsd
    latency_ms: int = Field(ge=0)


class BudgetExceeded(Event):
    DETAIL_TYPE = "BudgetExceeded"
    SOURCE = "strata.model_gateway"
    AGGREGATE: ClassVar[str] = "budget_id"
    budget_id: UUID
    scope: Literal["tenant", "run", "task"]
    scope_id: str = Field(max_length=200, description="The tenant id, the run id, or <run id>/<task id>")
    period: Literal["day", "month", "total"]
    limit_micro_usd: MicroUsd
    spent_micro_usd: MicroUsd
