"""How the runtime paces itself: leases, hand-over before the deadline, the reaper, the agent loop's bounds."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from strata.config import Settings


class RuntimeSettings(Settings):
    runtime_lease_s: float = Field(
        default=30.0, gt=0, description="A task's lease; renewed while it runs, so a dead invocation frees it soon"
    )
    runtime_continue_margin_s: float = Field(
        default=20.0, ge=0, description="Hand a task on (TaskContinued) when less than this is left of the invocation"
    )
    runtime_redispatch_after_s: float = Field(
        default=60.0, gt=0, description="The reaper re-sends a ready task's event when nobody took it this long"
    )
    runtime_approval_recheck_s: float = Field(
        default=300.0, gt=0, description="A task waiting for an approval this long asks again (a lost outcome event)"
    )
    runtime_reap_batch: int = Field(default=500, ge=1, le=10_000)
    runtime_max_steps: int = Field(default=10, ge=1, le=200, description="Model turns of an agent without its own")
    runtime_max_tokens: int = Field(default=1024, ge=16, le=65_536, description="Per model turn")
    runtime_task_tokens: int = Field(default=200_000, ge=100, description="Input + output tokens of one attempt")
    runtime_model_timeout_s: float = Field(default=300.0, gt=0, description="One model turn through L04")
    runtime_peer_retries: int = Field(default=3, ge=0, le=10, description="A peer's transient failures, per call")


@lru_cache
def runtime_settings() -> RuntimeSettings:
    return RuntimeSettings()
