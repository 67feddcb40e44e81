-- L11 integration: scheduled goals. The row is the source of truth; EventBridge Scheduler holds a copy of what
-- makes it fire (expression, time zone, window, state), named by schedule_id in the stage's schedule group, whose
-- target is L11 itself (the fire_schedule command), which submits the row's goal to L05.
-- sync_status says whether Scheduler holds the row's current version: 'pending' while a write is on its way there
-- (or after one failed half way), 'deleting' while a deletion is; L11's sync job finishes what a write left undone.
CREATE TABLE schedules (
    tenant_id       uuid NOT NULL,
    schedule_id     uuid NOT NULL,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    expression      text NOT NULL,                 -- canonical cron(...), rate(...) or at(...)
    timezone        text NOT NULL DEFAULT 'UTC',   -- IANA name the expression is evaluated in
    start_at        timestamptz,
    end_at          timestamptz,
    rate_anchor     timestamptz NOT NULL,          -- rate(): times are rate_anchor + n * period (start_at, else creation)
    goal            jsonb NOT NULL,                -- the POST /v1/goals body it submits (text, constraints, strategy, plan)
    submits_as      text NOT NULL,                 -- who last set the goal: goals are submitted on their behalf
    state           text NOT NULL CHECK (state IN ('enabled', 'paused')),
    sync_status     text NOT NULL CHECK (sync_status IN ('pending', 'synced', 'deleting')),
    sync_changed_at timestamptz NOT NULL DEFAULT now(),
    version         integer NOT NULL DEFAULT 1,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, schedule_id)
);
CREATE UNIQUE INDEX schedules_name ON schedules (tenant_id, name);
CREATE INDEX schedules_created ON schedules (tenant_id, created_at DESC, schedule_id DESC);
CREATE INDEX schedules_unsynced ON schedules (sync_changed_at) WHERE sync_status <> 'synced';
SELECT strata_protect_tenant_table('schedules');

-- One row per firing: unique per (schedule, scheduled time), so a firing delivered twice submits one goal. The
-- request is the goal body as first sent, so a retried submission repeats it exactly (its Idempotency-Key too).
CREATE TABLE schedule_runs (
    tenant_id       uuid NOT NULL,
    schedule_id     uuid NOT NULL,
    scheduled_time  timestamptz NOT NULL,
    fired_at        timestamptz NOT NULL DEFAULT now(),   -- when the first invocation arrived
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 1,
    execution_id    text,                                 -- Scheduler's <aws.scheduler.execution-id>
    outcome         text NOT NULL CHECK (outcome IN ('submitting', 'submitted', 'failed')),
    goal_id         uuid,
    reason          text,
    request         jsonb NOT NULL,
    PRIMARY KEY (tenant_id, schedule_id, scheduled_time),
    FOREIGN KEY (tenant_id, schedule_id) REFERENCES schedules (tenant_id, schedule_id) ON DELETE CASCADE
);
SELECT strata_protect_tenant_table('schedule_runs');
