"""L05 planning: the Lambda entry point (HTTP routes, and planning each submitted goal)."""

from strata.handler import make_handler
from strata_planning.app import create_app

handler = make_handler(create_app(), consumers={"GoalSubmitted": "strata_planning.planner:on_goal_submitted"})
