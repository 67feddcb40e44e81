-- L03 tool execution: each tenant's settings of a tool (the tools themselves are defined in code, or registered
-- in `tools`), and the ledger of tool calls: one row per (run, task, step, call id), so a repeated call returns
-- the recorded result instead of running again.
CREATE TABLE tool_settings (
    tenant_id         uuid NOT NULL,
    tool_name         text NOT NULL,
    enabled           boolean NOT NULL DEFAULT true,
    requires_approval boolean,                       -- NULL: the tool's own default
    limits            jsonb NOT NULL DEFAULT '{}',   -- e.g. {"timeout_s": 5, "max_output_bytes": 100000}
    config            jsonb NOT NULL DEFAULT '{}',   -- e.g. http_request's {"allowed_hosts": ["api.example.com"]}
    version           integer NOT NULL DEFAULT 1,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tool_name)
);
SELECT strata_protect_tenant_table('tool_settings');

CREATE TABLE tool_calls (
    tenant_id    uuid NOT NULL,
    run_id       uuid NOT NULL,
    task_id      text NOT NULL,
    step         integer NOT NULL CHECK (step >= 0),
    call_id      text NOT NULL,
    tool_name    text NOT NULL,
    tool_version integer NOT NULL,
    input        jsonb NOT NULL,
    status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    output       jsonb,
    error        jsonb,                              -- {"kind": ..., "message": ...}
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    lease_until  timestamptz NOT NULL,               -- a running call past this was interrupted
    PRIMARY KEY (tenant_id, run_id, task_id, step, call_id)
);
CREATE INDEX tool_calls_started ON tool_calls (tenant_id, started_at DESC);
SELECT strata_protect_tenant_table('tool_calls');
