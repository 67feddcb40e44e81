"""L02 runtime: the Lambda entry point (HTTP routes; approved plans start runs; tasks execute on TaskReady and
TaskContinued; approvals and the kill switch from supervision; the reaper's schedule)."""

from strata.handler import make_handler
from strata_runtime.app import create_app

handler = make_handler(
    create_app(),
    consumers={
        "PlanApproved": "strata_runtime.consumers:on_plan_approved",
        "TaskReady": "strata_runtime.executor:on_task_event",
        "TaskContinued": "strata_runtime.executor:on_task_event",
        "ApprovalDecided": "strata_runtime.consumers:on_approval_decided",
        "SuspensionChanged": "strata_runtime.consumers:on_suspension_changed",
    },
    schedules={"reap_runs": "strata_runtime.consumers:reap_runs"},
)
