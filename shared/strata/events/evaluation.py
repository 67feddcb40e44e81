"""Events of L06 evaluation: scores and alerts."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from strata.events.common import Reason, TaskKey
from strata.events.envelope import Event


class TaskEvaluated(Event):
    DETAIL_TYPE = "TaskEvaluated"
    SOURCE = "strata.evaluation"
    AGGREGATE: ClassVar[str] = "run_id"
    evaluation_id: UUID
    run_id: UUID
    task_id: TaskKey
    agent_id: UUID | None = None
    scores: dict[str, float] = Field(max_length=20, description="Per dimension, each in [0, 1]")
    passed: bool
    reasons: dict[str, Reason] = Field(default_factory=dict, max_length=20)


class AlertRaised(Event):
    DETAIL_TYPE = "AlertRaised"
    SOURCE = "strata.evaluation"
    AGGREGATE: ClassVar[str] = "alert_id"
    alert_id: UUID
    kind: str = Field(max_length=100, description="e.g. anomaly, regression, budget")
    severity: Literal["info", "warning", "critical"]
    subject_type: str = Field(max_length=50)
    subject_id: str = Field(max_length=200)
    metric: str = Field(max_length=100)
    value: float
    baseline: float | None = None
    message: Reason
