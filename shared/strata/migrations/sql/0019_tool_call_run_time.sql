-- A tool call's own running time, measured around the tool (the ledger's transactions and validation not in it):
-- what a call's duration_ms reports, and what a run's overhead is measured against. NULL for a call that never
-- ran to an answer here (interrupted), whose duration falls back to its record's times.
ALTER TABLE tool_calls ADD COLUMN run_ms double precision CHECK (run_ms >= 0);
