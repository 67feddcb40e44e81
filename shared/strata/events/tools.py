"""Events of L03 tool execution."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from strata.events.common import TaskKey
from strata.events.envelope import Event


class ToolCalled(Event):
    OBSERVATION = True
    DETAIL_TYPE = "ToolCalled"
    SOURCE = "strata.tool_execution"
    AGGREGATE: ClassVar[str] = "run_id"
    call_id: str = Field(max_length=200, description="run/task/step/call: the ledger's idempotency key")
    run_id: UUID
    task_id: TaskKey
    step: int = Field(ge=0)
    tool_name: str = Field(max_length=200)
    tool_version: int = Field(ge=1)
    outcome: Literal["succeeded", "failed", "denied", "awaiting_approval"]
    duration_ms: int = Field(ge=0)
    replayed: bool = Field(default=False, description="True when the ledger answered with a recorded result")
