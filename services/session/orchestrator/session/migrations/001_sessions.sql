-- Sessions: the whole aggregate in `body`; the columns beside it exist for filters, ordering,
-- optimistic locking and the timeout sweeper.
CREATE TABLE {schema}.sessions (
    id            uuid PRIMARY KEY,
    status        text NOT NULL,
    session_type  text NOT NULL,
    priority      text NOT NULL,
    tags          text[] NOT NULL DEFAULT '{}',
    parent_id     uuid,
    created_by    text NOT NULL DEFAULT '',
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    -- When a RUNNING session passes max_duration_seconds; NULL when not running.
    deadline_at   timestamptz,
    deleted_at    timestamptz,
    body          jsonb NOT NULL
);

CREATE INDEX sessions_listing ON {schema}.sessions (created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX sessions_status ON {schema}.sessions (status) WHERE deleted_at IS NULL;
CREATE INDEX sessions_tags ON {schema}.sessions USING gin (tags);
CREATE INDEX sessions_parent ON {schema}.sessions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX sessions_deadline ON {schema}.sessions (deadline_at)
    WHERE deadline_at IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE {schema}.checkpoints (
    session_id  uuid NOT NULL REFERENCES {schema}.sessions (id),
    sequence    bigint NOT NULL CHECK (sequence > 0),
    data        jsonb NOT NULL,
    created_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (session_id, sequence)
);

-- RecordSessionUsage is idempotent per report id.
CREATE TABLE {schema}.usage_reports (
    session_id  uuid NOT NULL REFERENCES {schema}.sessions (id),
    report_id   text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, report_id)
);
