-- L05 planning: a goal may come with its submitter's own plan (strategy 'given'), and plan templates may be learned
-- (L07 proposes them from good runs; a person promotes a proposed one to active), with a count of their use.
ALTER TABLE goals
    DROP CONSTRAINT goals_strategy_check,
    ADD CONSTRAINT goals_strategy_check CHECK (strategy IN ('template', 'llm', 'hybrid', 'given')),
    ADD COLUMN given_plan jsonb;                -- the submitter's plan (strategy 'given'), checked when planned

ALTER TABLE plans
    DROP CONSTRAINT plans_strategy_check,
    ADD CONSTRAINT plans_strategy_check CHECK (strategy IN ('template', 'llm', 'hybrid', 'given'));

ALTER TABLE plan_templates
    ADD COLUMN origin       text NOT NULL DEFAULT 'authored' CHECK (origin IN ('authored', 'learned')),
    ADD COLUMN lineage      jsonb NOT NULL DEFAULT '{}',   -- learned: the run, goal, plan and score it came from
    ADD COLUMN status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'proposed')),
    ADD COLUMN used_count   integer NOT NULL DEFAULT 0 CHECK (used_count >= 0),
    ADD COLUMN last_used_at timestamptz;
