-- L09: tenant settings (browser origins allowed to call the API, a version for If-Match), and the request log:
-- one row per request that reached a function, plus daily usage per tenant, credential, route and status class.
ALTER TABLE tenants
    ADD COLUMN cors_origins text[] NOT NULL DEFAULT '{}',
    ADD COLUMN version      integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at   timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT tenants_status CHECK (status IN ('active', 'suspended'));

CREATE TABLE request_log (
    request_id    text NOT NULL,
    tenant_id     uuid NOT NULL,
    principal_id  text NOT NULL,
    route         text NOT NULL,
    method        text NOT NULL,
    path          text NOT NULL,
    status        smallint NOT NULL,
    latency_ms    real NOT NULL,
    bytes_in      integer NOT NULL,
    bytes_out     integer NOT NULL,
    at            timestamptz NOT NULL,
    PRIMARY KEY (request_id)
);
CREATE INDEX request_log_tenant_at ON request_log (tenant_id, at DESC);
CREATE INDEX request_log_at ON request_log (at);

CREATE TABLE usage_daily (
    tenant_id        uuid NOT NULL,
    day              date NOT NULL,
    principal_id     text NOT NULL,
    route            text NOT NULL,
    status_class     text NOT NULL CHECK (status_class IN ('2xx', '3xx', '4xx', '5xx')),
    requests         bigint NOT NULL,
    bytes_in         bigint NOT NULL,
    bytes_out        bigint NOT NULL,
    latency_ms_total double precision NOT NULL,
    latency_ms_max   real NOT NULL,
    PRIMARY KEY (tenant_id, day, principal_id, route, status_class)
);

-- Only L09's flush job (the owner role) writes these; tenants read their own rows.
SELECT strata_protect_tenant_table(t::regclass, 'SELECT') FROM unnest(ARRAY['request_log', 'usage_daily']) AS t;
