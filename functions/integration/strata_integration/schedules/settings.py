"""Where scheduled goals live in EventBridge Scheduler, and their limits (STRATA_SCHEDULES_* variables)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from strata.config import Settings


class ScheduleSettings(Settings):
    schedules_group: str = Field(default="", description="The stage's EventBridge Scheduler schedule group")
    schedules_target_arn: str = Field(default="", description="The function Scheduler invokes: L11 itself")
    schedules_role_arn: str = Field(default="", description="The role Scheduler assumes to invoke it")
    schedules_per_tenant: int = Field(default=1000, ge=1, description="Schedules a tenant may have at most")
    schedules_next_times: int = Field(default=5, ge=0, le=50, description="Next fire times a schedule shows")
    schedules_sync_after_s: float = Field(
        default=60.0,
        ge=1,
        description="How long a write may leave its schedule unsynced with Scheduler before the sync job finishes it",
    )
    schedules_submit_wait_s: float = Field(
        default=10.0,
        ge=0,
        description="How long a firing waits for a duplicate of itself that is submitting the same goal",
    )

    def configured(self) -> bool:
        return bool(self.schedules_group and self.schedules_target_arn and self.schedules_role_arn)


@lru_cache
def schedule_settings() -> ScheduleSettings:
    return ScheduleSettings()
