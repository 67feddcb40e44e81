-- L01 agents carry what the runtime (L02) runs them with: a system prompt, the model (a catalogue name or
-- requirements for the gateway's router), the tools they may call (NULL: every tool of the tenant), a step bound.
ALTER TABLE agents
    ADD COLUMN system_prompt text NOT NULL DEFAULT '',
    ADD COLUMN model         jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN tools         text[],
    ADD COLUMN max_steps     integer NOT NULL DEFAULT 20 CHECK (max_steps BETWEEN 1 AND 1000);
