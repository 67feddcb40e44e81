-- L07 learning: feedback on runs and tasks, training examples drawn from runs that passed their quality gates,
-- versioned datasets with reproducible splits, their fine-tuning exports and customisation jobs.

-- 0001 made `feedback` a bare rating. Feedback names the run (and optionally the task) it is about, a label and a
-- correction (the output it should have been), and who gave it.
ALTER TABLE feedback
    ADD COLUMN run_id     uuid,
    ADD COLUMN task_id    text,
    ADD COLUMN label      text,
    ADD COLUMN correction jsonb,
    ADD COLUMN given_by   text NOT NULL DEFAULT '';
CREATE INDEX feedback_run ON feedback (tenant_id, run_id);

-- A training example: an agent task's conversation (chat messages, ending in the answer) with its lineage. The
-- content hash deduplicates: the same conversation is one example however often it was produced.
CREATE TABLE training_examples (
    tenant_id       uuid NOT NULL,
    example_id      uuid NOT NULL,
    source          text NOT NULL CHECK (source IN ('run', 'correction')),
    run_id          uuid NOT NULL,
    task_id         text NOT NULL,
    goal_id         uuid,
    agent_id        uuid,
    feedback_id     uuid,
    messages        jsonb NOT NULL,
    output          jsonb,
    score           double precision,
    labels          text[] NOT NULL DEFAULT '{}',
    content_hash    text NOT NULL,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'excluded')),
    excluded_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, example_id)
);
CREATE UNIQUE INDEX training_examples_content ON training_examples (tenant_id, content_hash);
CREATE INDEX training_examples_run ON training_examples (tenant_id, run_id, task_id);
CREATE INDEX training_examples_created ON training_examples (tenant_id, created_at DESC, example_id DESC);
SELECT strata_protect_tenant_table('training_examples');

-- A dataset: which examples it takes (a filter) and how it splits them (ratios, seed, stratum); each version is a
-- snapshot of its examples with their splits, never changed afterwards.
CREATE TABLE datasets (
    tenant_id   uuid NOT NULL,
    dataset_id  uuid NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    filter      jsonb NOT NULL,
    splits      jsonb NOT NULL,
    seed        integer NOT NULL,
    stratify_by text NOT NULL CHECK (stratify_by IN ('none', 'agent', 'label')),
    version     integer NOT NULL DEFAULT 0,   -- the newest snapshot
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    PRIMARY KEY (tenant_id, dataset_id)
);
CREATE UNIQUE INDEX datasets_name ON datasets (tenant_id, name) WHERE deleted_at IS NULL;
CREATE INDEX datasets_created ON datasets (tenant_id, created_at DESC, dataset_id DESC);
SELECT strata_protect_tenant_table('datasets');

CREATE TABLE dataset_versions (
    tenant_id  uuid NOT NULL,
    dataset_id uuid NOT NULL,
    version    integer NOT NULL,
    counts     jsonb NOT NULL,        -- split -> examples
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, dataset_id, version)
);
SELECT strata_protect_tenant_table('dataset_versions', 'SELECT, INSERT');

-- Membership of a dataset version, with the example's split.
CREATE TABLE dataset_examples (
    tenant_id  uuid NOT NULL,
    dataset_id uuid NOT NULL,
    version    integer NOT NULL,
    example_id uuid NOT NULL,
    split      text NOT NULL CHECK (split IN ('train', 'validation', 'test')),
    PRIMARY KEY (tenant_id, dataset_id, version, example_id)
);
CREATE INDEX dataset_examples_split ON dataset_examples (tenant_id, dataset_id, version, split);
SELECT strata_protect_tenant_table('dataset_examples', 'SELECT, INSERT');

-- An export of a dataset version in a fine-tuning format: one JSONL object per split in S3.
CREATE TABLE dataset_exports (
    tenant_id  uuid NOT NULL,
    export_id  uuid NOT NULL,
    dataset_id uuid NOT NULL,
    version    integer NOT NULL,
    format     text NOT NULL CHECK (format IN ('openai_chat', 'bedrock_conversation')),
    files      jsonb NOT NULL,        -- split -> {uri, records, bytes, sha256}
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, export_id)
);
CREATE INDEX dataset_exports_version ON dataset_exports (tenant_id, dataset_id, version, created_at DESC);
SELECT strata_protect_tenant_table('dataset_exports');

-- A model customisation job submitted to Bedrock for an export.
CREATE TABLE fine_tune_jobs (
    tenant_id     uuid NOT NULL,
    job_id        uuid NOT NULL,
    dataset_id    uuid NOT NULL,
    version       integer NOT NULL,
    export_id     uuid NOT NULL,
    provider      text NOT NULL CHECK (provider IN ('bedrock')),
    job_name      text NOT NULL,
    job_arn       text NOT NULL,
    base_model    text NOT NULL,
    custom_model  text NOT NULL,
    status        text NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}',
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, job_id)
);
CREATE INDEX fine_tune_jobs_created ON fine_tune_jobs (tenant_id, created_at DESC, job_id DESC);
SELECT strata_protect_tenant_table('fine_tune_jobs');
