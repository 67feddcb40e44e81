-- L11 integration: sagas. A saga's tenant is the operator's tenant that started it; the tenant it acts on is
-- `subject_tenant_id` (so erasing a tenant leaves the record of its erasure with the operator). Every state change
-- of the saga and of each step is appended to saga_transitions in the transaction that makes it.

CREATE TABLE sagas (
    tenant_id         uuid NOT NULL,
    saga_id           uuid NOT NULL,
    kind              text NOT NULL,
    subject_tenant_id uuid,
    status            text NOT NULL CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'failed')),
    input             jsonb NOT NULL,
    outputs           jsonb NOT NULL DEFAULT '{}',
    current_step      integer NOT NULL DEFAULT 0,
    error             text,
    requested_by      text NOT NULL,
    correlation_id    text NOT NULL,
    lease_owner       text,
    lease_until       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    PRIMARY KEY (tenant_id, saga_id)
);
CREATE INDEX sagas_created ON sagas (tenant_id, created_at DESC, saga_id DESC);
CREATE INDEX sagas_unfinished ON sagas (lease_until) WHERE status IN ('running', 'compensating');
SELECT strata_protect_tenant_table('sagas');

CREATE TABLE saga_steps (
    tenant_id      uuid NOT NULL,
    saga_id        uuid NOT NULL,
    step_index     integer NOT NULL,
    name           text NOT NULL,
    status         text NOT NULL CHECK (status IN (
                       'pending', 'running', 'succeeded', 'failed',
                       'compensating', 'compensated', 'compensation_failed', 'not_compensable')),
    attempts       integer NOT NULL DEFAULT 0,
    compensation_attempts integer NOT NULL DEFAULT 0,
    output         jsonb,
    error          text,
    started_at     timestamptz,
    finished_at    timestamptz,
    compensated_at timestamptz,
    PRIMARY KEY (tenant_id, saga_id, step_index)
);
SELECT strata_protect_tenant_table('saga_steps');

CREATE TABLE saga_transitions (
    tenant_id   uuid NOT NULL,
    saga_id     uuid NOT NULL,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    step_index  integer,               -- NULL: the saga's own status
    from_status text,
    to_status   text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, saga_id, seq)
);
SELECT strata_protect_tenant_table('saga_transitions');
