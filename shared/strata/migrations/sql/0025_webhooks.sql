-- L11 integration: outbound webhooks. A subscription (0001's `webhooks`) gains its signing secret (and the one it
-- replaced, still signing until its overlap ends), field filters, a version for If-Match, and the bookkeeping that
-- disables an endpoint that keeps failing. Each event a subscription takes becomes one delivery (unique per webhook
-- and event: a duplicate event delivers nothing more), retried with backoff and dead-lettered after its last try;
-- each try is kept as an attempt.

ALTER TABLE webhooks
    ADD COLUMN description                text NOT NULL DEFAULT '',
    ADD COLUMN filters                    jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN secret                     text,
    ADD COLUMN previous_secret            text,
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD COLUMN secret_rotated_at          timestamptz,
    ADD COLUMN version                    integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at                 timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN disabled_reason            text,
    ADD COLUMN consecutive_dead_letters   integer NOT NULL DEFAULT 0 CHECK (consecutive_dead_letters >= 0),
    ADD COLUMN last_delivery_at           timestamptz,
    ADD COLUMN last_success_at            timestamptz;
-- A subscription made before secrets existed gets one (its owner reads it by rotating).
UPDATE webhooks SET secret = 'whsec_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
    WHERE secret IS NULL;
ALTER TABLE webhooks ALTER COLUMN secret SET NOT NULL;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_status CHECK (status IN ('active', 'disabled'));
-- The event consumer's lookup: a tenant's active subscriptions.
CREATE INDEX webhooks_active ON webhooks (tenant_id) WHERE status = 'active';

CREATE TABLE webhook_deliveries (
    tenant_id        uuid NOT NULL,
    delivery_id      uuid NOT NULL,
    webhook_id       uuid NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    payload          jsonb NOT NULL,        -- the body sent (the same bytes' content on every attempt)
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'dead_lettered')),
    attempt_count    integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    -- attempts made before the last redelivery: the current round has made attempt_count - attempt_base
    attempt_base     integer NOT NULL DEFAULT 0 CHECK (attempt_base >= 0 AND attempt_base <= attempt_count),
    redeliveries     integer NOT NULL DEFAULT 0 CHECK (redeliveries >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    leased_until     timestamptz,           -- an attempt in flight (no second sender until it passes)
    swept_at         timestamptz,           -- when the sweeper last queued it again (a lost queue message)
    last_status_code integer,
    last_error       text,
    delivered_at     timestamptz,
    dead_lettered_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, delivery_id),
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (tenant_id, webhook_id, created_at DESC, delivery_id DESC);
CREATE INDEX webhook_deliveries_webhook_status
    ON webhook_deliveries (tenant_id, webhook_id, status, created_at DESC, delivery_id DESC);
-- The sweeper's scan, across tenants: pending deliveries by when they are due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
SELECT strata_protect_tenant_table('webhook_deliveries');

CREATE TABLE webhook_delivery_attempts (
    tenant_id        uuid NOT NULL,
    delivery_id      uuid NOT NULL,
    attempt          integer NOT NULL CHECK (attempt >= 1),
    started_at       timestamptz NOT NULL,
    duration_ms      double precision NOT NULL CHECK (duration_ms >= 0),
    status_code      integer,               -- null: no answer (refused, unreachable, timed out)
    error            text,                  -- null: a 2xx answer
    response_excerpt text,                  -- the answer's first bytes, bounded by a setting
    signed_with      integer NOT NULL,      -- how many secrets signed it (2 during a rotation's overlap)
    PRIMARY KEY (tenant_id, delivery_id, attempt),
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries (tenant_id, delivery_id) ON DELETE CASCADE
);
SELECT strata_protect_tenant_table('webhook_delivery_attempts', 'SELECT, INSERT, DELETE');
