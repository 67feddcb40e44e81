"""L06 evaluation: the Lambda entry point (HTTP routes; scoring every finished task and run; regression runs'
cases submitted and, past their timeout, expired)."""

from strata.handler import make_handler
from strata_evaluation.app import create_app

handler = make_handler(
    create_app(),
    consumers={
        "TaskCompleted": "strata_evaluation.scoring:on_task_completed",
        "TaskFailed": "strata_evaluation.scoring:on_task_failed",
        "RunCompleted": "strata_evaluation.scoring:on_run_completed",
        "RunFailed": "strata_evaluation.scoring:on_run_failed",
        "RunCancelled": "strata_evaluation.scoring:on_run_cancelled",
        "GoalRejected": "strata_evaluation.scoring:on_goal_rejected",
        "PlanRejected": "strata_evaluation.scoring:on_plan_rejected",
        "EvalRunRequested": "strata_evaluation.eval_runs:on_eval_run_requested",
    },
    schedules={"expire_eval_runs": "strata_evaluation.eval_runs:expire_due"},
)
