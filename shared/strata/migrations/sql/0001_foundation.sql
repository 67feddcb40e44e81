-- The foundation schema. Every table carries tenant_id; the owning layer is named above each table,
-- and only the owner writes it.

-- L01 data: event bookkeeping shared by every producer and consumer.
CREATE TABLE outbox (
    event_id     uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    source       text NOT NULL,
    detail_type  text NOT NULL,
    detail       jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE published_at IS NULL;

CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- L01 data: the archive of every event on the bus, partitioned by month of occurrence.
CREATE TABLE event_log (
    event_id       uuid NOT NULL,
    tenant_id      uuid NOT NULL,
    source         text NOT NULL,
    detail_type    text NOT NULL,
    correlation_id text NOT NULL,
    causation_id   text,
    occurred_at    timestamptz NOT NULL,
    archived_at    timestamptz NOT NULL DEFAULT now(),
    detail         jsonb NOT NULL,
    PRIMARY KEY (occurred_at, event_id)
) PARTITION BY RANGE (occurred_at);
CREATE TABLE event_log_default PARTITION OF event_log DEFAULT;
CREATE INDEX event_log_tenant_time ON event_log (tenant_id, occurred_at DESC);
CREATE INDEX event_log_correlation ON event_log (tenant_id, correlation_id);

-- L01 data: agents.
CREATE TABLE agents (
    agent_id     uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    name         text NOT NULL,
    did          text NOT NULL UNIQUE,
    capabilities jsonb NOT NULL DEFAULT '[]',
    status       text NOT NULL DEFAULT 'active',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- L02 runtime: runs of approved plans.
CREATE TABLE runs (
    run_id      uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    plan_id     uuid NOT NULL,
    status      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_tenant_created ON runs (tenant_id, created_at DESC);

-- L03 tool execution: the tool registry.
CREATE TABLE tools (
    tool_id      uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    input_schema jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- L04 model gateway: the model catalogue.
CREATE TABLE models (
    model_id       uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    provider       text NOT NULL,
    provider_model text NOT NULL,
    context_window integer NOT NULL CHECK (context_window > 0),
    capabilities   jsonb NOT NULL DEFAULT '[]',
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, provider, provider_model)
);

-- L05 planning: submitted goals.
CREATE TABLE goals (
    goal_id     uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    text        text NOT NULL,
    status      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX goals_tenant_created ON goals (tenant_id, created_at DESC);

-- L06 evaluation: scores of tasks and runs.
CREATE TABLE evaluations (
    evaluation_id uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    subject_type  text NOT NULL,
    subject_id    uuid NOT NULL,
    score         double precision NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evaluations_tenant_created ON evaluations (tenant_id, created_at DESC);

-- L07 learning: feedback on runs and tasks.
CREATE TABLE feedback (
    feedback_id  uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    subject_type text NOT NULL,
    subject_id   uuid NOT NULL,
    rating       smallint,
    comment      text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_tenant_created ON feedback (tenant_id, created_at DESC);

-- L08 supervision: Cedar policies, versioned per tenant.
CREATE TABLE policies (
    policy_id   uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    name        text NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    cedar       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name, version)
);

-- L09 API gateway: tenants and their API keys (salted hashes only).
CREATE TABLE tenants (
    tenant_id   uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    status      text NOT NULL DEFAULT 'active',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_id      uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    name        text NOT NULL,
    prefix      text NOT NULL UNIQUE,
    salt        text NOT NULL,
    digest      text NOT NULL,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC);

-- L11 integration: outbound webhooks.
CREATE TABLE webhooks (
    webhook_id  uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    url         text NOT NULL,
    event_types text[] NOT NULL,
    status      text NOT NULL DEFAULT 'active',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_tenant_created ON webhooks (tenant_id, created_at DESC);
