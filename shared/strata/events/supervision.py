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
    reason: Reason
    deadline: datetime
    required_approvals: int = Field(ge=1, le=20)
    approvers: list[str] = Field(min_length=1, max_length=100)


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
