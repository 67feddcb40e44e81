-- L06 evaluation: every completed task and run scored (deterministic checks and an LLM judge), the metrics each
-- agent's quality score and the anomaly detector read, alerts, the tenant's evaluation settings, and evaluation
-- datasets with their regression runs.

-- 0001 made `evaluations` a bare score. A task's evaluation (subject_type 'task', subject_id its run) names the
-- task; a run's (subject_type 'run') is 'pending' from RunCompleted until every task of the run is evaluated.
ALTER TABLE evaluations
    ADD COLUMN run_id         uuid,
    ADD COLUMN task_id        text,
    ADD COLUMN attempt        integer,
    ADD COLUMN agent_id       uuid,
    ADD COLUMN goal_id        uuid,
    ADD COLUMN status         text NOT NULL DEFAULT 'done' CHECK (status IN ('pending', 'done')),
    ADD COLUMN passed         boolean NOT NULL DEFAULT true,
    ADD COLUMN scores         jsonb NOT NULL DEFAULT '{}',   -- dimension -> [0, 1]
    ADD COLUMN reasons        jsonb NOT NULL DEFAULT '{}',   -- dimension -> why it scored what it did
    ADD COLUMN checks         jsonb NOT NULL DEFAULT '[]',   -- every assertion with its outcome
    ADD COLUMN judge          jsonb,                         -- the judge's model, verdict, tokens and cost
    ADD COLUMN output         jsonb,
    ADD COLUMN task_count     integer,
    ADD COLUMN denied_calls   integer NOT NULL DEFAULT 0,
    ADD COLUMN duration_ms    integer NOT NULL DEFAULT 0,
    ADD COLUMN cost_micro_usd bigint NOT NULL DEFAULT 0,
    ADD COLUMN evaluated_at   timestamptz;
CREATE UNIQUE INDEX evaluations_subject ON evaluations (tenant_id, subject_type, subject_id, coalesce(task_id, ''));
CREATE INDEX evaluations_agent ON evaluations (tenant_id, agent_id, created_at DESC) WHERE agent_id IS NOT NULL;

-- Samples of what the platform measured, per subject ('agent:<id>', 'tool:<name>', 'tenant'): a task's duration,
-- cost, tokens, score, success. Quality scores and anomaly baselines are computed over a rolling window of these.
CREATE TABLE metrics (
    tenant_id  uuid NOT NULL,
    name       text NOT NULL,
    subject    text NOT NULL,
    value      double precision NOT NULL,
    source     text NOT NULL,            -- what it was measured on: '<run>/<task>/<attempt>' (a redelivery adds nothing)
    anomalous  boolean NOT NULL DEFAULT false,  -- found out of line: kept out of later baselines
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name, subject, source)
);
CREATE INDEX metrics_series ON metrics (tenant_id, name, subject, at DESC);
SELECT strata_protect_tenant_table('metrics');

-- A subject's quality score when it was computed (the history charts read).
CREATE TABLE quality_scores (
    tenant_id    uuid NOT NULL,
    score_id     uuid NOT NULL,
    subject      text NOT NULL,
    overall      double precision NOT NULL CHECK (overall BETWEEN 0 AND 100),
    assessment   text NOT NULL CHECK (assessment IN ('good', 'warning', 'critical', 'insufficient_data')),
    dimensions   jsonb NOT NULL,
    samples      integer NOT NULL,
    completeness double precision NOT NULL,
    window_s     integer NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, score_id)
);
CREATE INDEX quality_scores_subject ON quality_scores (tenant_id, subject, computed_at DESC);
SELECT strata_protect_tenant_table('quality_scores');

-- What was raised: an anomaly on a metric, a failed regression gate. At most one open alert per dedup key; while it
-- is open further anomalous samples only count, and a key is not raised again within the throttle period.
CREATE TABLE alerts (
    tenant_id    uuid NOT NULL,
    alert_id     uuid NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('anomaly', 'regression')),
    severity     text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    dedup_key    text NOT NULL,
    subject      text NOT NULL,
    metric       text NOT NULL,
    value        double precision NOT NULL,
    baseline     double precision,
    message      text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    occurrences  integer NOT NULL DEFAULT 1,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    changed_by   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    PRIMARY KEY (tenant_id, alert_id)
);
CREATE UNIQUE INDEX alerts_open_key ON alerts (tenant_id, dedup_key) WHERE status <> 'resolved';
CREATE INDEX alerts_key_created ON alerts (tenant_id, dedup_key, created_at DESC);
CREATE INDEX alerts_tenant_created ON alerts (tenant_id, created_at DESC, alert_id DESC);
SELECT strata_protect_tenant_table('alerts');

-- A tenant's evaluation settings (absent: the defaults in strata_evaluation.settings).
CREATE TABLE evaluation_settings (
    tenant_id  uuid PRIMARY KEY,
    settings   jsonb NOT NULL,
    version    integer NOT NULL DEFAULT 1,
    changed_by text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT strata_protect_tenant_table('evaluation_settings');

-- Evaluation datasets: cases (an input with an expected output, assertions or a rubric) an agent is run over.
CREATE TABLE eval_datasets (
    tenant_id     uuid NOT NULL,
    dataset_id    uuid NOT NULL,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    instructions  text NOT NULL DEFAULT '',
    output_schema jsonb,
    rubric        text,
    cases         jsonb NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    PRIMARY KEY (tenant_id, dataset_id)
);
CREATE UNIQUE INDEX eval_datasets_name ON eval_datasets (tenant_id, name) WHERE deleted_at IS NULL;
CREATE INDEX eval_datasets_created ON eval_datasets (tenant_id, created_at DESC, dataset_id DESC);
SELECT strata_protect_tenant_table('eval_datasets');

-- A regression run: one agent (at the version it had) over one dataset version through the real runtime, each case
-- a goal with a given one-task plan; scored, and compared with a baseline run of the same dataset.
CREATE TABLE eval_runs (
    tenant_id       uuid NOT NULL,
    eval_run_id     uuid NOT NULL,
    dataset_id      uuid NOT NULL,
    dataset_version integer NOT NULL,
    agent_id        uuid NOT NULL,
    agent_version   integer NOT NULL,
    baseline_id     uuid,
    max_drop        double precision NOT NULL,
    min_score       double precision,
    timeout_s       integer NOT NULL,
    status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
    cases_total     integer NOT NULL,
    cases_done      integer NOT NULL DEFAULT 0,
    score           double precision,
    pass_rate       double precision,
    baseline_score  double precision,
    delta           double precision,
    gate            text CHECK (gate IN ('passed', 'failed')),
    gate_reasons    jsonb NOT NULL DEFAULT '[]',
    cost_micro_usd  bigint NOT NULL DEFAULT 0,
    requested_by    text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (tenant_id, eval_run_id)
);
CREATE INDEX eval_runs_created ON eval_runs (tenant_id, created_at DESC, eval_run_id DESC);
SELECT strata_protect_tenant_table('eval_runs');

CREATE TABLE eval_run_cases (
    tenant_id   uuid NOT NULL,
    eval_run_id uuid NOT NULL,
    case_id     text NOT NULL,
    position    integer NOT NULL,
    definition  jsonb NOT NULL,          -- the case as it was run (the dataset may change later)
    goal_id     uuid,
    run_id      uuid,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'passed', 'failed', 'error')),
    score       double precision,
    scores      jsonb NOT NULL DEFAULT '{}',
    reasons     jsonb NOT NULL DEFAULT '{}',
    output      jsonb,
    error       text,
    cost_micro_usd bigint NOT NULL DEFAULT 0,
    finished_at timestamptz,
    PRIMARY KEY (tenant_id, eval_run_id, case_id)
);
CREATE UNIQUE INDEX eval_run_cases_goal ON eval_run_cases (tenant_id, goal_id);
CREATE INDEX eval_runs_running ON eval_runs (created_at) WHERE status = 'running';
SELECT strata_protect_tenant_table('eval_run_cases');
