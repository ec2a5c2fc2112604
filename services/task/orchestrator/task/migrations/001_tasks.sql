-- Tasks: the whole aggregate in `body`; the columns beside it serve filters, ordering,
-- optimistic locking, the lease reaper and the graph, which loads a whole session's columns in
-- one query without reading any body.
CREATE TABLE {schema}.tasks (
    id                 uuid PRIMARY KEY,
    -- Creation order: listings, sibling order and the graph's last tie-break.
    seq                bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    session_id         uuid NOT NULL,
    parent_id          uuid REFERENCES {schema}.tasks (id),
    depth              integer NOT NULL,
    title              text NOT NULL,
    status             text NOT NULL,
    hold               text NOT NULL,
    priority           text NOT NULL,
    assigned_agent_id  text,
    expected_hours     double precision NOT NULL,
    sigma_hours        double precision NOT NULL,
    started_at         timestamptz,
    completed_at       timestamptz,
    -- Set while ASSIGNED or IN_PROGRESS; the reaper requeues rows whose time has passed.
    lease_expires_at   timestamptz,
    version            bigint NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    body               jsonb NOT NULL
);

CREATE INDEX tasks_session ON {schema}.tasks (session_id, seq);
CREATE INDEX tasks_parent ON {schema}.tasks (parent_id, seq) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_status ON {schema}.tasks (status, seq);
CREATE INDEX tasks_agent ON {schema}.tasks (assigned_agent_id)
    WHERE assigned_agent_id IS NOT NULL;
CREATE INDEX tasks_lease ON {schema}.tasks (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;

-- successor_id waits for predecessor_id; both tasks of session_id, at most one edge per pair.
CREATE TABLE {schema}.dependencies (
    successor_id     uuid NOT NULL REFERENCES {schema}.tasks (id),
    predecessor_id   uuid NOT NULL REFERENCES {schema}.tasks (id),
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    session_id       uuid NOT NULL,
    dependency_type  text NOT NULL,
    lag_hours        double precision,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (successor_id, predecessor_id),
    CHECK (successor_id <> predecessor_id)
);

CREATE INDEX dependencies_predecessor ON {schema}.dependencies (predecessor_id);
CREATE INDEX dependencies_session ON {schema}.dependencies (session_id);
