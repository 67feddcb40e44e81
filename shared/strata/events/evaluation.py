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
    score: float | None = Field(default=None, ge=0, le=1, description="The mean of the scored dimensions")
    scores: dict[str, float] = Field(max_length=20, description="Per dimension, each in [0, 1]")
    passed: bool
    reasons: dict[str, Reason] = Field(default_factory=dict, max_length=20)


class RunEvaluated(Event):
    """Every task of a finished run is scored: the run's score and whether it passed (every task passed and the run
    completed). What learning (L07) gates training examples and learned templates on."""

    DETAIL_TYPE = "RunEvaluated"
    SOURCE = "strata.evaluation"
    AGGREGATE: ClassVar[str] = "run_id"
    evaluation_id: UUID
    run_id: UUID
    goal_id: UUID | None = None
    plan_id: UUID | None = None
    outcome: Literal["completed", "failed"]
    score: float = Field(ge=0, le=1)
    scores: dict[str, float] = Field(max_length=20, description="Per dimension, the mean over the run's tasks")
    passed: bool
    task_count: int = Field(ge=0)
    failed_checks: int = Field(ge=0, description="Task evaluations that did not pass")
    policy_violations: int = Field(ge=0, description="Tool calls supervision denied during the run")


class EvalRunRequested(Event):
    """A regression run was asked for; evaluation submits one goal per case (a consumer, so a crash part-way is
    retried and cases already submitted are not submitted again)."""

    DETAIL_TYPE = "EvalRunRequested"
    SOURCE = "strata.evaluation"
    AGGREGATE: ClassVar[str] = "eval_run_id"
    eval_run_id: UUID
    dataset_id: UUID
    agent_id: UUID
    cases: int = Field(ge=1, le=10_000)
    requested_by: str = Field(max_length=200)


class EvalRunCompleted(Event):
    """A regression run finished: its score, and the gate's verdict against its baseline."""

    DETAIL_TYPE = "EvalRunCompleted"
    SOURCE = "strata.evaluation"
    AGGREGATE: ClassVar[str] = "eval_run_id"
    eval_run_id: UUID
    dataset_id: UUID
    agent_id: UUID
    agent_version: int = Field(ge=1)
    score: float = Field(ge=0, le=1)
    pass_rate: float = Field(ge=0, le=1)
    baseline_id: UUID | None = None
    delta: float | None = Field(default=None, description="score minus the baseline's score")
    gate: Literal["passed", "failed"]
    reasons: list[Reason] = Field(default_factory=list, max_length=20)


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
