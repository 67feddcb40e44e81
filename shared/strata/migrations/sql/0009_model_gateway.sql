-- L04 model gateway: the catalogue gains what routing and metering need; every call is metered in model_usage;
-- budgets cap spend per tenant, run or task (Redis holds reservations; these rows and model_usage are the truth).
ALTER TABLE models
    ADD COLUMN name              text,
    ADD COLUMN input_usd_per_mtok  numeric(12, 6) NOT NULL DEFAULT 0 CHECK (input_usd_per_mtok >= 0),
    ADD COLUMN output_usd_per_mtok numeric(12, 6) NOT NULL DEFAULT 0 CHECK (output_usd_per_mtok >= 0),
    ADD COLUMN cached_usd_per_mtok numeric(12, 6) NOT NULL DEFAULT 0 CHECK (cached_usd_per_mtok >= 0),
    ADD COLUMN latency_class     text NOT NULL DEFAULT 'standard' CHECK (latency_class IN ('fast', 'standard', 'slow')),
    ADD COLUMN quality           real NOT NULL DEFAULT 0.5 CHECK (quality BETWEEN 0 AND 1),
    ADD COLUMN enabled           boolean NOT NULL DEFAULT true,
    ADD COLUMN version           integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at        timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN deleted_at        timestamptz;
UPDATE models SET name = provider || '/' || provider_model WHERE name IS NULL;
ALTER TABLE models ALTER COLUMN name SET NOT NULL;
ALTER TABLE models DROP CONSTRAINT models_tenant_id_provider_provider_model_key;
CREATE UNIQUE INDEX models_tenant_name ON models (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE model_usage (
    usage_id       uuid NOT NULL,
    tenant_id      uuid NOT NULL,
    model_name     text NOT NULL,
    provider       text NOT NULL,
    provider_model text NOT NULL,
    purpose        text NOT NULL DEFAULT '',
    run_id         uuid,
    task_id        text,
    input_tokens   integer NOT NULL CHECK (input_tokens >= 0),
    output_tokens  integer NOT NULL CHECK (output_tokens >= 0),
    cached_tokens  integer NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
    cost_micro_usd bigint NOT NULL CHECK (cost_micro_usd >= 0),
    latency_ms     integer NOT NULL CHECK (latency_ms >= 0),
    cache_hit      boolean NOT NULL DEFAULT false,
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (usage_id)
);
CREATE INDEX model_usage_tenant_at ON model_usage (tenant_id, at DESC);
CREATE INDEX model_usage_run ON model_usage (tenant_id, run_id) WHERE run_id IS NOT NULL;

CREATE TABLE budgets (
    budget_id       uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    scope           text NOT NULL CHECK (scope IN ('tenant', 'run', 'task')),
    scope_id        text NOT NULL,
    period          text NOT NULL CHECK (period IN ('day', 'month', 'total')),
    limit_micro_usd bigint NOT NULL CHECK (limit_micro_usd > 0),
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX budgets_scope ON budgets (tenant_id, scope, scope_id, period) WHERE deleted_at IS NULL;

SELECT strata_protect_tenant_table(t::regclass, 'SELECT, INSERT, UPDATE')
FROM unnest(ARRAY['model_usage', 'budgets']) AS t;
