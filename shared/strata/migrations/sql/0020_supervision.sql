-- L08 supervision: Cedar policies with their versions, every decision, human approvals, the kill switch and the
-- hash-chained audit log.

-- A tenant's policies: the current state of each (one row), and every version it has had (append-only). The
-- tenant's `policy_revision` moves on with every change of its policies or suspensions, so a decision can name the
-- exact policy set that made it and a cached policy set knows when it is stale.
-- (0001 made `policies` one row per version; it becomes one row per policy, its versions in `policy_versions`.)
ALTER TABLE policies
    DROP CONSTRAINT policies_tenant_id_name_version_key,
    ADD COLUMN description text NOT NULL DEFAULT '',
    ADD COLUMN statements  jsonb NOT NULL DEFAULT '[]',  -- per Cedar statement: effect, annotations, context read
    ADD COLUMN enabled     boolean NOT NULL DEFAULT true,
    ADD COLUMN changed_by  text NOT NULL DEFAULT '',
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN deleted_at  timestamptz;
CREATE UNIQUE INDEX policies_name ON policies (tenant_id, name) WHERE deleted_at IS NULL;
CREATE INDEX policies_tenant_created ON policies (tenant_id, created_at DESC, policy_id DESC);

CREATE TABLE policy_versions (
    tenant_id   uuid NOT NULL,
    policy_id   uuid NOT NULL,
    version     integer NOT NULL,
    change      text NOT NULL CHECK (change IN ('created', 'updated', 'rolled_back', 'deleted')),
    name        text NOT NULL,
    description text NOT NULL,
    cedar       text NOT NULL,
    statements  jsonb NOT NULL,
    enabled     boolean NOT NULL,
    changed_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, policy_id, version)
);
SELECT strata_protect_tenant_table('policy_versions', 'SELECT, INSERT');

CREATE TABLE policy_revisions (
    tenant_id   uuid PRIMARY KEY,
    revision    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
SELECT strata_protect_tenant_table('policy_revisions');

-- The kill switch: a whole tenant or one agent suspended until the suspension is lifted.
CREATE TABLE suspensions (
    tenant_id     uuid NOT NULL,
    suspension_id uuid NOT NULL,
    scope         text NOT NULL CHECK (scope IN ('tenant', 'agent')),
    agent_id      uuid,
    reason        text NOT NULL,
    suspended_by  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    lifted_at     timestamptz,
    lifted_by     text,
    PRIMARY KEY (tenant_id, suspension_id),
    CHECK ((scope = 'agent') = (agent_id IS NOT NULL))
);
CREATE UNIQUE INDEX suspensions_active ON suspensions (tenant_id, scope, coalesce(agent_id::text, ''))
    WHERE lifted_at IS NULL;
SELECT strata_protect_tenant_table('suspensions');

-- Every decision, with the request it answered and the policies that decided it.
CREATE TABLE decisions (
    tenant_id      uuid NOT NULL,
    decision_id    uuid NOT NULL,
    action         text NOT NULL,
    principal_type text NOT NULL,
    principal_id   text NOT NULL,
    resource_type  text NOT NULL,
    resource_id    text NOT NULL,
    context        jsonb NOT NULL,
    subject_type   text,                          -- what an approval would be about: plan | tool_call
    subject_id     text,
    outcome        text NOT NULL CHECK (outcome IN ('allow', 'deny', 'approval_required')),
    policies       jsonb NOT NULL,                -- the deciding policies: policy_id, name, version, statement, effect
    reasons        text[] NOT NULL,
    approval_id    uuid,
    revision       bigint NOT NULL,               -- the tenant's policy revision the decision was made under
    correlation_id text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, decision_id)
);
CREATE INDEX decisions_tenant_created ON decisions (tenant_id, created_at DESC, decision_id DESC);
CREATE INDEX decisions_action ON decisions (tenant_id, action, created_at DESC);
SELECT strata_protect_tenant_table('decisions', 'SELECT, INSERT');

-- Human approvals: what is asked and why, who may approve (a quorum of a group), the deadline of the current
-- level, and the escalation levels after it. One approval per subject (asking again finds it).
CREATE TABLE approvals (
    tenant_id      uuid NOT NULL,
    approval_id    uuid NOT NULL,
    subject_type   text NOT NULL CHECK (subject_type IN ('plan', 'tool_call')),
    subject_id     text NOT NULL,
    what           text NOT NULL,
    why            text NOT NULL,
    requested_by   text NOT NULL,                 -- the principal the work runs for: it cannot approve it
    decision_id    uuid NOT NULL,                 -- the decision that asked for it
    details        jsonb NOT NULL,                -- what the paused work needs to resume (plan, goal, run, task)
    levels         jsonb NOT NULL,                -- [{approvers, quorum, timeout_s}], the first the initial level
    level          integer NOT NULL DEFAULT 0,
    deadline       timestamptz NOT NULL,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    decided_by     text[] NOT NULL DEFAULT '{}',
    comment        text NOT NULL DEFAULT '',
    correlation_id text NOT NULL DEFAULT '',
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    decided_at     timestamptz,
    PRIMARY KEY (tenant_id, approval_id)
);
CREATE UNIQUE INDEX approvals_subject ON approvals (tenant_id, subject_type, subject_id);
CREATE INDEX approvals_tenant_status ON approvals (tenant_id, status, created_at DESC, approval_id DESC);
CREATE INDEX approvals_deadline ON approvals (deadline) WHERE status = 'pending';
SELECT strata_protect_tenant_table('approvals');

CREATE TABLE approval_votes (
    tenant_id    uuid NOT NULL,
    approval_id  uuid NOT NULL,
    level        integer NOT NULL,
    principal_id text NOT NULL,
    vote         text NOT NULL CHECK (vote IN ('approve', 'reject')),
    comment      text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, approval_id, level, principal_id)
);
SELECT strata_protect_tenant_table('approval_votes', 'SELECT, INSERT');

-- The audit log: per tenant a hash chain, each entry hashing the previous entry's hash with its own canonical text
-- (stored verbatim, so anyone can recompute it), optionally signed (HMAC-SHA256 over the hash). The application
-- role may only append: no UPDATE or DELETE is granted on it.
CREATE TABLE audit_log (
    tenant_id   uuid NOT NULL,
    seq         bigint NOT NULL CHECK (seq >= 1),
    kind        text NOT NULL,
    entry       text NOT NULL,                    -- canonical JSON: what happened, who, when
    prev_hash   text NOT NULL,
    hash        text NOT NULL,
    signature   text,
    key_id      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq)
);
SELECT strata_protect_tenant_table('audit_log', 'SELECT, INSERT');

CREATE TABLE audit_heads (
    tenant_id   uuid PRIMARY KEY,
    seq         bigint NOT NULL,
    hash        text NOT NULL
);
SELECT strata_protect_tenant_table('audit_heads');

-- L02: the principal a run works for (the goal's submitter: a tool task's calls are made on its behalf) and a task
-- that waits for a human's approval of one of its tool calls.
ALTER TABLE runs ADD COLUMN submitted_by text NOT NULL DEFAULT '';
ALTER TABLE task_executions DROP CONSTRAINT task_executions_status_check;
ALTER TABLE task_executions ADD CONSTRAINT task_executions_status_check
    CHECK (status IN ('pending', 'queued', 'ready', 'running', 'awaiting_approval', 'completed', 'failed', 'blocked',
                      'cancelled'));
ALTER TABLE task_executions ADD COLUMN approval_id uuid;
CREATE INDEX task_executions_approval ON task_executions (approval_id) WHERE approval_id IS NOT NULL;

-- L03: the decision that let each call through.
ALTER TABLE tool_calls ADD COLUMN decision_id uuid;
