"""L01 data layer: the Lambda entry point (HTTP, the event archive and the DLQ as queue batches, scheduled jobs,
migrations).

Everything but the HTTP app is named as "module:function" and imported on its first invocation.
"""

from strata.handler import make_handler
from strata_data.app import create_app

handler = make_handler(
    create_app(),
    schedules={
        "sweep_outbox": "strata_data.jobs:sweep_outbox",
        "maintain_event_log": "strata_data.jobs:maintain_event_log",
        "apply_retention": "strata_data.retention:apply_retention",
        "expire_sessions": "strata_data.jobs:expire_sessions",
    },
    commands={"migrate": "strata_data.jobs:migrate"},
    queue_consumers={
        "STRATA_EVENT_ARCHIVE_QUEUE_ARN": "strata_data.consumers:archive_record",
        "STRATA_EVENTS_DLQ_ARN": "strata_data.consumers:keep_dead_letter",
    },
)
