-- L01 retention: how long each tenant's event log is kept, and a record of every pruning (what was archived
-- to object storage, where, and what was removed). Only event_log is ever pruned; live run state never is.
CREATE TABLE retention_settings (
    tenant_id      uuid PRIMARY KEY,
    event_log_days integer NOT NULL CHECK (event_log_days BETWEEN 7 AND 3650),
    archive        boolean NOT NULL DEFAULT true,
    version        integer NOT NULL DEFAULT 1,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE retention_runs (
    retention_run_id uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    cutoff           timestamptz NOT NULL,
    archived_rows    integer NOT NULL,
    deleted_rows     integer NOT NULL,
    archive_keys     text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX retention_runs_tenant_created ON retention_runs (tenant_id, created_at DESC);

SELECT strata_protect_tenant_table(t::regclass, 'SELECT, INSERT, UPDATE')
FROM unnest(ARRAY['retention_settings', 'retention_runs']) AS t;
