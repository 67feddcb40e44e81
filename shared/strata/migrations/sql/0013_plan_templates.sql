-- L05 planning: parameterised plan templates matched to goals' text (strata_planning.templates).
CREATE TABLE plan_templates (
    template_id uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    patterns    jsonb NOT NULL,          -- phrases with {placeholders}
    parameters  jsonb NOT NULL,          -- a JSON Schema (type object) for the placeholders
    body        jsonb NOT NULL,          -- a plan (strata.plans.PlanBody) with {{placeholder}} slots
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE UNIQUE INDEX plan_templates_tenant_name ON plan_templates (tenant_id, name) WHERE deleted_at IS NULL;
CREATE INDEX plan_templates_tenant_created ON plan_templates (tenant_id, created_at DESC);
SELECT strata_protect_tenant_table('plan_templates');
