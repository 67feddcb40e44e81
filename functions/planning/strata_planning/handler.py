"""L05 planning: the Lambda entry point (HTTP routes, planning each submitted goal, and following each goal's plan
through supervision and its run, reopened runs included)."""

from strata.handler import make_handler
from strata_planning.app import create_app

PROGRESS = "strata_planning.progress:on_run_event"
handler = make_handler(
    create_app(),
    consumers={
        "GoalSubmitted": "strata_planning.planner:on_goal_submitted",
        "PlanRejected": "strata_planning.progress:on_plan_rejected",
        "RunStarted": PROGRESS,
        "RunCompleted": PROGRESS,
        "RunFailed": PROGRESS,
        "RunCancelled": PROGRESS,
        "RunReopened": PROGRESS,
    },
)
