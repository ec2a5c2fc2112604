-- A session's task counts as the task events told them (the progress consumer keeps them). They
-- are copied to the session itself when a task starts or ends, so creating and scheduling tasks
-- does not write the session.
CREATE TABLE {schema}.task_progress (
    session_id       uuid PRIMARY KEY,
    tasks_total      integer NOT NULL DEFAULT 0,
    tasks_completed  integer NOT NULL DEFAULT 0,
    tasks_failed     integer NOT NULL DEFAULT 0,
    tasks_skipped    integer NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
