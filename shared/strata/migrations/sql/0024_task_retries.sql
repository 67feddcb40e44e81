-- L02 runtime: an operator may retry a failed task of a failed run (POST /v1/runs/{run_id}/tasks/{task_id}/retry).
-- The retry gets the plan's whole attempt budget again: `attempt_base` is how many attempts were made before the
-- last such retry, and the task's max_attempts counts only the attempts after it.
ALTER TABLE task_executions
    ADD COLUMN attempt_base integer NOT NULL DEFAULT 0 CHECK (attempt_base >= 0);
