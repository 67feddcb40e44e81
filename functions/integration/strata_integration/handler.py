"""L11 integration: the Lambda entry point (HTTP routes; webhook deliveries; scheduled goals fired by EventBridge
Scheduler; sagas resumed on a schedule)."""

from strata.handler import make_handler
from strata_integration.app import create_app

handler = make_handler(
    create_app(),
    consumers={},
    schedules={
        "resume_sagas": "strata_integration.sagas.jobs:resume_sagas",
        "sweep_webhook_deliveries": "strata_integration.webhooks.consumers:sweep_deliveries",
        "sync_schedules": "strata_integration.schedules.service:sync_unsynced",
    },
    commands={"fire_schedule": "strata_integration.schedules.firing:fire"},
    queue_consumers={
        "STRATA_WEBHOOK_EVENT_QUEUE_ARN": "strata_integration.webhooks.consumers:queue_event",
        "STRATA_WEBHOOK_DELIVERY_QUEUE_ARN": "strata_integration.webhooks.consumers:deliver",
    },
)
