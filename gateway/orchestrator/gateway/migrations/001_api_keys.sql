-- API keys: the secret itself is never stored, only its SHA-256 (the secret is 256 random bits,
-- so a plain hash cannot be brute-forced; a slow hash would only slow every lookup).
CREATE TABLE {schema}.api_keys (
    id              text PRIMARY KEY,              -- the public part of the key, shown in lists
    name            text NOT NULL,
    secret_sha256   bytea NOT NULL,
    scopes          text[] NOT NULL,
    rate_limit      double precision,              -- requests per second; null = gateway default
    burst           integer,                       -- null = gateway default
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    last_used_at    timestamptz,                   -- to the minute, not per request
    revoked_at      timestamptz,
    CHECK (scopes <@ ARRAY['read', 'write', 'admin']::text[] AND cardinality(scopes) > 0),
    CHECK (rate_limit IS NULL OR rate_limit >= 0),
    CHECK (burst IS NULL OR burst >= 1)
);
CREATE INDEX api_keys_created_at ON {schema}.api_keys (created_at);
