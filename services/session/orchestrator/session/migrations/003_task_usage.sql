-- The usage of each task as the session's totals last counted it (a task's usage grows with
-- each of its runs). A task event carrying more adds only the difference, so every run counts
-- as soon as it ends, once, even when events are redelivered.
CREATE TABLE {schema}.task_usage (
    task_id             uuid PRIMARY KEY,
    session_id          uuid NOT NULL,
    input_tokens        bigint NOT NULL DEFAULT 0,
    output_tokens       bigint NOT NULL DEFAULT 0,
    reasoning_tokens    bigint NOT NULL DEFAULT 0,
    cache_read_tokens   bigint NOT NULL DEFAULT 0,
    cache_write_tokens  bigint NOT NULL DEFAULT 0,
    cost_usd            double precision NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
