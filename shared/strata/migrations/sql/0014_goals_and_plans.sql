-- L05 planning: goals carry their constraints, who submitted them, their planning outcome; plans are versioned
-- (a replan is a new version) and signed over their canonical JSON.
ALTER TABLE goals
    ADD COLUMN constraints  jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN strategy     text NOT NULL DEFAULT 'hybrid' CHECK (strategy IN ('template', 'llm', 'hybrid')),
    ADD COLUMN submitted_by text NOT NULL DEFAULT '',
    ADD COLUMN reasons      jsonb NOT NULL DEFAULT '[]',   -- why planning refused the goal
    ADD COLUMN plan_id      uuid,
    ADD COLUMN updated_at   timestamptz NOT NULL DEFAULT now();

CREATE TABLE plans (
    plan_id                  uuid PRIMARY KEY,
    tenant_id                uuid NOT NULL,
    goal_id                  uuid NOT NULL,
    version                  integer NOT NULL CHECK (version >= 1),
    strategy                 text NOT NULL CHECK (strategy IN ('template', 'llm', 'hybrid')),
    template_id              uuid,
    body                     jsonb NOT NULL,
    signature                text NOT NULL,
    estimated_cost_micro_usd bigint NOT NULL DEFAULT 0 CHECK (estimated_cost_micro_usd >= 0),
    supersedes_version       integer,
    created_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, goal_id, version)
);
CREATE INDEX plans_goal ON plans (tenant_id, goal_id, version DESC);
SELECT strata_protect_tenant_table('plans');
