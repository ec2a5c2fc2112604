-- Contexts: the document in `data`, the rest in columns for lookups, locking and expiry.
CREATE TABLE {schema}.contexts (
    id                   uuid PRIMARY KEY,
    scope                text NOT NULL,
    owner_id             text NOT NULL DEFAULT '',
    name                 text NOT NULL DEFAULT '',
    data                 jsonb NOT NULL,
    -- Grows by one with every update or merge that changes the data; the optimistic lock.
    version              bigint NOT NULL CHECK (version > 0),
    cloned_from_id       uuid,
    cloned_from_version  bigint NOT NULL DEFAULT 0,
    -- On clones: the data the clone and its origin last agreed on (the base of diffs, merges).
    base                 jsonb,
    expires_at           timestamptz,
    created_by           text NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    deleted_at           timestamptz,
    -- Digest of the create or clone request, so a retry with the same id can be recognised.
    request_digest       text NOT NULL
);

CREATE UNIQUE INDEX contexts_name ON {schema}.contexts (scope, owner_id, name)
    WHERE deleted_at IS NULL;
CREATE INDEX contexts_expiry ON {schema}.contexts (expires_at)
    WHERE expires_at IS NOT NULL AND deleted_at IS NULL;

-- Other scopes and owners a context is shared with. A row of its own, so sharing never
-- contends for the context's version.
CREATE TABLE {schema}.shares (
    context_id  uuid NOT NULL REFERENCES {schema}.contexts (id),
    scope       text NOT NULL,
    owner_id    text NOT NULL,
    shared_by   text NOT NULL DEFAULT '',
    shared_at   timestamptz NOT NULL,
    PRIMARY KEY (context_id, scope, owner_id)
);
CREATE INDEX shares_owner ON {schema}.shares (scope, owner_id);

-- Every change updates and merges applied, in order. The key makes a version's changes
-- impossible to write twice. Values are SQL NULL where the path was absent, JSON null where
-- it held null.
CREATE TABLE {schema}.history (
    context_id  uuid NOT NULL REFERENCES {schema}.contexts (id),
    version     bigint NOT NULL,
    seq         int NOT NULL,
    path        text NOT NULL,
    old_value   jsonb,
    new_value   jsonb,
    changed_by  text NOT NULL DEFAULT '',
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (context_id, version, seq)
);
