-- L05 planning: a goal follows its run (planned -> running -> completed | failed | cancelled), and a plan that
-- supervision rejected rejects its goal.
ALTER TABLE goals ADD COLUMN run_id uuid;
