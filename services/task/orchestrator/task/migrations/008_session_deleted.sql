-- Whether the session was deleted (soft), as its events tell it: a deleted session never runs
-- again, so it takes no new tasks.
ALTER TABLE {schema}.sessions ADD COLUMN deleted boolean NOT NULL DEFAULT false;
