-- How the session's root task last ended, as the task events told it ('completed' or
-- 'failed'; NULL while it has not ended, or since it was reopened). Kept even when the session
-- had already ended: work in flight may finish the root after a timeout, and a retry of that
-- session then has nothing left to run.
ALTER TABLE {schema}.task_progress ADD COLUMN root_status text;
