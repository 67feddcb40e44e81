-- L11 integration: inbound webhooks. A tenant's endpoint (POST /v1/hooks/{endpoint_id}, public) verifies the
-- sender's signature (Strata's own scheme, GitHub's or Slack's) and turns the payload into a goal through its mapping;
-- every delivery that arrives is recorded.

-- An endpoint. Its id is the URL's and is looked up before the tenant is known (the platform's own connection), so
-- it is the primary key on its own. The secrets are kept to verify signatures and never shown after creation; while
-- a rotation's overlap lasts the previous secret verifies too.
CREATE TABLE inbound_webhooks (
    endpoint_id                uuid PRIMARY KEY,
    tenant_id                  uuid NOT NULL,
    name                       text NOT NULL,
    description                text NOT NULL DEFAULT '',
    scheme                     text NOT NULL CHECK (scheme IN ('strata', 'github', 'slack')),
    secret                     text NOT NULL,
    secret_source              text NOT NULL CHECK (secret_source IN ('generated', 'supplied')),
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    secret_rotated_at          timestamptz,
    mapping                    jsonb NOT NULL,             -- {text (a template), constraints, strategy}
    filter                     jsonb NOT NULL DEFAULT '[]', -- conditions a delivery must all meet
    enabled                    boolean NOT NULL DEFAULT true,
    version                    integer NOT NULL DEFAULT 1,
    created_by                 text NOT NULL,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX inbound_webhooks_name ON inbound_webhooks (tenant_id, name);
CREATE INDEX inbound_webhooks_created ON inbound_webhooks (tenant_id, created_at DESC, endpoint_id DESC);
SELECT strata_protect_tenant_table('inbound_webhooks');

-- What arrived at an endpoint. A verified delivery is one record per sender delivery id (X-GitHub-Delivery, Slack's
-- event_id, Strata-Delivery-Id; else the body's hash): a resent delivery counts another attempt on it and submits no
-- second goal. Unverified ones (a bad signature, a stale timestamp) are recorded apart, the newest few per endpoint,
-- so nobody holding only the URL can take a delivery id before its sender. Payloads are not kept: their size and
-- hash are, with the goal text rendered from them.
CREATE TABLE inbound_webhook_deliveries (
    tenant_id          uuid NOT NULL,
    delivery_id        uuid NOT NULL,
    endpoint_id        uuid NOT NULL,
    verified           boolean NOT NULL,
    dedupe_key         text NOT NULL,
    sender_delivery_id text,
    event              text NOT NULL DEFAULT '',
    outcome            text NOT NULL CHECK (outcome IN ('processing', 'accepted', 'ignored', 'rejected', 'failed')),
    reason             text,
    goal_id            uuid,
    goal_text          text,
    content_type       text NOT NULL DEFAULT '',
    body_bytes         integer NOT NULL,
    body_sha256        text NOT NULL,
    attempts           integer NOT NULL DEFAULT 1,
    claimed_until      timestamptz,       -- while processing: a duplicate waits until then, then may take over
    created_at         timestamptz NOT NULL DEFAULT now(),   -- its first arrival
    last_received_at   timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, delivery_id)
);
CREATE UNIQUE INDEX inbound_webhook_deliveries_sender
    ON inbound_webhook_deliveries (tenant_id, endpoint_id, dedupe_key) WHERE verified;
CREATE INDEX inbound_webhook_deliveries_created
    ON inbound_webhook_deliveries (tenant_id, endpoint_id, created_at DESC, delivery_id DESC);
CREATE INDEX inbound_webhook_deliveries_rejected
    ON inbound_webhook_deliveries (tenant_id, endpoint_id, created_at DESC) WHERE NOT verified;
SELECT strata_protect_tenant_table('inbound_webhook_deliveries');
