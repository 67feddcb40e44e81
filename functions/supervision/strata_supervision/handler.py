"""L08 supervision: the Lambda entry point (HTTP routes; the plan gate on every new plan)."""

from strata.handler import make_handler
from strata_supervision.app import create_app

handler = make_handler(create_app(), consumers={"PlanCreated": "strata_supervision.plan_gate:on_plan_created"})
