-- L02 runtime: a run of an approved plan, its tasks and their steps.
--
-- A run's tasks are copied from the signed plan when the run starts, so the runtime never reads another layer's
-- tables. A task's checkpoint is its row here (attempt, the next step to take, its lease) plus the steps it has
-- recorded: each step stores only what it added (a model turn, the results of its tool calls), so a resumed task
-- rebuilds its conversation from its steps and the stored state grows with the work done, never quadratically.
ALTER TABLE runs
    ADD COLUMN goal_id         uuid,
    ADD COLUMN plan_version    integer NOT NULL DEFAULT 1,
    ADD COLUMN signature       text NOT NULL DEFAULT '',
    ADD COLUMN max_parallelism integer CHECK (max_parallelism IS NULL OR max_parallelism >= 1),
    ADD COLUMN deadline        timestamptz,
    ADD COLUMN allowed_tools   jsonb,                     -- NULL: every tool the tenant has enabled
    ADD COLUMN task_count      integer NOT NULL DEFAULT 0,
    ADD COLUMN tasks_done      integer NOT NULL DEFAULT 0,
    ADD COLUMN error           text,
    ADD COLUMN requested_by    text NOT NULL DEFAULT '',  -- who paused, resumed or cancelled it last
    ADD COLUMN input_tokens    bigint NOT NULL DEFAULT 0,
    ADD COLUMN output_tokens   bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_micro_usd  bigint NOT NULL DEFAULT 0,
    ADD COLUMN started_at      timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN finished_at     timestamptz,
    ADD CONSTRAINT runs_status CHECK (status IN ('running', 'paused', 'completed', 'failed', 'cancelled'));
CREATE UNIQUE INDEX runs_plan ON runs (tenant_id, plan_id);
CREATE INDEX runs_tenant_status ON runs (tenant_id, status, created_at DESC);

CREATE TABLE task_executions (
    tenant_id      uuid NOT NULL,
    run_id         uuid NOT NULL,
    task_id        text NOT NULL,
    definition     jsonb NOT NULL,                 -- the plan's task, as signed
    depends_on     text[] NOT NULL DEFAULT '{}',
    waiting_on     integer NOT NULL CHECK (waiting_on >= 0),  -- dependencies not completed yet
    status         text NOT NULL CHECK (status IN ('pending', 'queued', 'ready', 'running', 'completed', 'failed',
                                                   'blocked', 'cancelled')),
    attempt        integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    next_step      integer NOT NULL DEFAULT 0 CHECK (next_step >= 0),
    input          jsonb,                          -- bound from the dependencies' outputs when it becomes ready
    output         jsonb,
    error          jsonb,                          -- {"type": ..., "message": ..., "retryable": ...}
    not_before     timestamptz,                    -- a retry's backoff
    dispatched_at  timestamptz,                    -- when its last TaskReady/TaskContinued was emitted
    lease_owner    text,
    lease_until    timestamptz,
    invocations    integer NOT NULL DEFAULT 0,     -- how many invocations worked on it (continuations, resumes)
    input_tokens   bigint NOT NULL DEFAULT 0,
    output_tokens  bigint NOT NULL DEFAULT 0,
    cost_micro_usd bigint NOT NULL DEFAULT 0,
    model_ms       double precision NOT NULL DEFAULT 0,
    tool_ms        double precision NOT NULL DEFAULT 0,
    first_started_at timestamptz,
    started_at     timestamptz,
    finished_at    timestamptz,
    PRIMARY KEY (tenant_id, run_id, task_id)
);
-- what the reaper looks for: work nobody holds (an expired lease, a lost event)
CREATE INDEX task_executions_open ON task_executions (status, lease_until)
    WHERE status IN ('ready', 'running');
SELECT strata_protect_tenant_table('task_executions');

CREATE TABLE task_steps (
    tenant_id   uuid NOT NULL,
    run_id      uuid NOT NULL,
    task_id     text NOT NULL,
    attempt     integer NOT NULL,
    step        integer NOT NULL CHECK (step >= 0),
    kind        text NOT NULL CHECK (kind IN ('model', 'tools', 'tool', 'output')),
    detail      jsonb NOT NULL,
    input_tokens   integer NOT NULL DEFAULT 0,
    output_tokens  integer NOT NULL DEFAULT 0,
    cost_micro_usd bigint NOT NULL DEFAULT 0,
    duration_ms double precision NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, run_id, task_id, attempt, step)
);
SELECT strata_protect_tenant_table('task_steps');
