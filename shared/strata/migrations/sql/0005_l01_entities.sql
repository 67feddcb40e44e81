-- L01 entities: agents gain a version, a description, metadata and soft delete; documents (versioned, full-text
-- searchable), namespaced configuration (versioned) and sessions arrive.
ALTER TABLE agents ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE agents ADD COLUMN description text NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';
ALTER TABLE agents ADD COLUMN deleted_at timestamptz;
ALTER TABLE agents ADD CONSTRAINT agents_status CHECK (status IN ('active', 'paused', 'retired'));
-- a deleted agent's name can be used again
ALTER TABLE agents DROP CONSTRAINT agents_tenant_id_name_key;
CREATE UNIQUE INDEX agents_live_name ON agents (tenant_id, name) WHERE deleted_at IS NULL;
CREATE INDEX agents_tenant_created ON agents (tenant_id, created_at DESC);

CREATE TABLE documents (
    document_id  uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    title        text NOT NULL,
    content      text NOT NULL,
    content_type text NOT NULL DEFAULT 'text/plain',
    metadata     jsonb NOT NULL DEFAULT '{}',
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    search       tsvector GENERATED ALWAYS AS (
                     setweight(to_tsvector('english', coalesce(title, '')), 'A')
                     || setweight(to_tsvector('english', coalesce(content, '')), 'B')) STORED
);
CREATE INDEX documents_tenant_created ON documents (tenant_id, created_at DESC);
CREATE INDEX documents_search ON documents USING gin (search);

CREATE TABLE document_versions (
    document_id uuid NOT NULL REFERENCES documents (document_id),
    version     integer NOT NULL,
    tenant_id   uuid NOT NULL,
    title       text NOT NULL,
    content     text NOT NULL,
    metadata    jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, version)
);

CREATE TABLE configurations (
    configuration_id uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    namespace        text NOT NULL,
    key              text NOT NULL,
    value            jsonb NOT NULL,
    version          integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);
CREATE UNIQUE INDEX configurations_live_key ON configurations (tenant_id, namespace, key) WHERE deleted_at IS NULL;
CREATE INDEX configurations_tenant_created ON configurations (tenant_id, created_at DESC);

CREATE TABLE configuration_versions (
    configuration_id uuid NOT NULL REFERENCES configurations (configuration_id),
    version          integer NOT NULL,
    tenant_id        uuid NOT NULL,
    value            jsonb NOT NULL,
    deleted          boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (configuration_id, version)
);

CREATE TABLE sessions (
    session_id  uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    agent_id    uuid REFERENCES agents (agent_id),
    state       jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed', 'expired')),
    version     integer NOT NULL DEFAULT 1,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz
);
CREATE INDEX sessions_tenant_created ON sessions (tenant_id, created_at DESC);
CREATE INDEX sessions_expiring ON sessions (expires_at) WHERE status = 'active';

SELECT strata_protect_tenant_table(t::regclass, 'SELECT, INSERT, UPDATE')
FROM unnest(ARRAY['documents', 'document_versions', 'configurations', 'configuration_versions', 'sessions']) AS t;
