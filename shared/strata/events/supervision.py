"""Events of L08 supervision: policy decisions on plans and human approvals."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from strata.events.common import Reason
from strata.events.envelope import Event

Decider = Literal["policy", "human"]
Subject = Literal["plan", "tool_call"]


class PlanApproved(Event):
    DETAIL_TYPE = "PlanApproved"
    SOURCE = "strata.supervision"
    AGGREGATE: ClassVar[str] = "plan_id"
    plan_id: UUID
    goal_id: UUID
    plan_version: int = Field(ge=1)
    decided_by: Decider
    decision_id: UUID


class PlanRejected(Event):
    DETAIL_TYPE = "PlanRejected"
    SOURCE = "strata.supervision"
    AGGREGATE: ClassVar[str] = "plan_id"
    plan_id: UUID
    goal_id: UUID
    plan_version: int = Field(ge=1)
    decided_by: Decider
    decision_id: UUID
    reasons: list[Reason] = Field(min_length=1, max_length=50)


class ApprovalRequested(Event):
    DETAIL_TYPE = "ApprovalRequested"
    SOURCE = "strata.supervision"
    AGGREGATE: ClassVar[str] = "approval_id"
    approval_id: UUID
    subject_type: Subject
    subject_id: str = Field(max_length=200)
    what: Reason = ""
    reason: Reason
    deadline: datetime
    required_approvals: int = Field(ge=1, le=20)
    approvers: list[str] = Field(min_length=1, max_length=100, description='["*"]: anyone holding approvals:decide')
    level: int = Field(default=0, ge=0, le=20, description="0: first asked; each escalation asks the next level")


class ApprovalDecided(Event):
    DETAIL_TYPE = "ApprovalDecided"
    SOURCE = "strata.supervision"
    AGGREGATE: ClassVar[str] = "approval_id"
    approval_id: UUID
    subject_type: Subject
    subject_id: str = Field(max_length=200)
    outcome: Literal["approved", "rejected", "expired"]
    decided_by: list[str] = Field(max_length=100)
    comment: Reason = ""


class SuspensionChanged(Event):
    """The kill switch: a tenant or one agent suspended (running tasks stop at their next step and nothing new
    starts) or the suspension lifted."""

    DETAIL_TYPE = "SuspensionChanged"
    SOURCE = "strata.supervision"
    AGGREGATE: ClassVar[str] = "suspension_id"
    suspension_id: UUID
    scope: Literal["tenant", "agent"]
    agent_id: UUID | None = None
    suspended: bool
    reason: Reason = ""
    changed_by: str = Field(max_length=200)
