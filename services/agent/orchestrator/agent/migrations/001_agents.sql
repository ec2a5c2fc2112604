-- Agents: the whole aggregate in `body`; the columns beside it exist for filters, ordering,
-- the unique live name and optimistic locking. Load and liveness live in Redis, not here.
CREATE TABLE {schema}.agents (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    agent_type    text NOT NULL,
    status        text NOT NULL,
    tier          text NOT NULL,
    -- Primary and secondary together, for "holds every one of these" filters.
    capabilities  text[] NOT NULL,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    body          jsonb NOT NULL
);

-- A name is taken while its agent is not DEREGISTERED; registering it again is ALREADY_EXISTS.
CREATE UNIQUE INDEX agents_live_name ON {schema}.agents (name) WHERE status <> 'deregistered';
CREATE INDEX agents_listing ON {schema}.agents (name, id);
CREATE INDEX agents_status ON {schema}.agents (status);
CREATE INDEX agents_capabilities ON {schema}.agents USING gin (capabilities);

-- RecordTaskResult applies each (task, fencing token) once.
CREATE TABLE {schema}.task_results (
    task_id        text NOT NULL,
    fencing_token  bigint NOT NULL,
    agent_id       uuid NOT NULL REFERENCES {schema}.agents (id),
    applied_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, fencing_token)
);
