"""L08 supervision: the Lambda entry point (HTTP routes; the plan gate on every new plan; the approvals' deadlines
on a schedule)."""

from strata.handler import make_handler
from strata_supervision.app import create_app

handler = make_handler(
    create_app(),
    consumers={"PlanCreated": "strata_supervision.plan_gate:on_plan_created"},
    schedules={"expire_approvals": "strata_supervision.approvals:expire_due"},
)
