"""L11 integration: the Lambda entry point (HTTP routes; webhook deliveries; scheduled goals fired by EventBridge
Scheduler; sagas resumed on a schedule)."""

from strata.handler import make_handler
from strata_integration.app import create_app

handler = make_handler(
    create_app(),
    consumers={},
    schedules={},
    commands={},
    queue_consumers={},
)
