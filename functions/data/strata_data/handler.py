"""L01 data layer: the Lambda entry point (HTTP, the event archive, the DLQ, scheduled jobs, migrations)."""

from strata.handler import ALL_EVENTS, make_handler
from strata_data import consumers, jobs, retention
from strata_data.app import create_app

handler = make_handler(
    create_app(),
    consumers={ALL_EVENTS: consumers.archive_event},
    schedules={
        "sweep_outbox": jobs.sweep_outbox,
        "maintain_event_log": jobs.maintain_event_log,
        "expire_sessions": jobs.expire_sessions,
        "apply_retention": retention.apply_retention,
    },
    commands={"migrate": jobs.migrate},
    queue_consumer=consumers.keep_dead_letter,
)
