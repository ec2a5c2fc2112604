-- Sessions the choreography runs: what the task service knows of each from the session events
-- it consumed. The scheduler assigns only tasks of a session listed here as running.
CREATE TABLE {schema}.sessions (
    session_id          uuid PRIMARY KEY,
    status              text NOT NULL,
    -- 0 = no limit.
    max_parallel_tasks  integer NOT NULL DEFAULT 0,
    -- The session's version in the event that wrote this row: older events change nothing.
    version             bigint NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sessions_running ON {schema}.sessions (status);
CREATE INDEX tasks_ready_leaves ON {schema}.tasks (seq) WHERE status = 'ready';
