-- L01 dead letters: every message of the events DLQ, kept in Postgres so it can be listed, inspected and
-- replayed per tenant. Events that name no valid tenant belong to the nil tenant (visible to no tenant's key).
CREATE TABLE dead_letters (
    dead_letter_id uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    message_id     text NOT NULL UNIQUE,
    event_id       text NOT NULL DEFAULT '',
    source         text NOT NULL DEFAULT '',
    detail_type    text NOT NULL DEFAULT '',
    rule_arn       text NOT NULL DEFAULT '',
    target_arn     text NOT NULL DEFAULT '',
    error_code     text NOT NULL DEFAULT '',
    error_message  text NOT NULL DEFAULT '',
    retry_attempts integer NOT NULL DEFAULT 0,
    event          jsonb NOT NULL,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'replayed')),
    replay_count   integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at    timestamptz
);
CREATE INDEX dead_letters_tenant_created ON dead_letters (tenant_id, created_at DESC);
SELECT strata_protect_tenant_table('dead_letters', 'SELECT, INSERT, UPDATE');
