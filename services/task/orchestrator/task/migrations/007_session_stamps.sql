-- Which transaction last wrote a session's tasks or dependencies: its id (pg_current_xact_id),
-- kept by statement triggers, so no writer can forget it. A replica that keeps a session's
-- graph in memory checks the stamp under the session's lock: the stamp it left itself means
-- nobody else wrote since, and its copy is current.
CREATE TABLE {schema}.session_stamps (
    session_id  uuid PRIMARY KEY,
    stamp       bigint NOT NULL
);

CREATE FUNCTION {schema}.stamp_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.session_stamps (session_id, stamp)
    SELECT DISTINCT session_id, pg_current_xact_id()::text::bigint FROM written
    ON CONFLICT (session_id) DO UPDATE SET stamp = EXCLUDED.stamp;
    RETURN NULL;
END $$;

-- A trigger with a transition table takes one event: one trigger per event and table.
CREATE TRIGGER tasks_inserted AFTER INSERT ON {schema}.tasks
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION {schema}.stamp_sessions();
CREATE TRIGGER tasks_updated AFTER UPDATE ON {schema}.tasks
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION {schema}.stamp_sessions();
CREATE TRIGGER tasks_deleted AFTER DELETE ON {schema}.tasks
    REFERENCING OLD TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION {schema}.stamp_sessions();
CREATE TRIGGER dependencies_inserted AFTER INSERT ON {schema}.dependencies
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION {schema}.stamp_sessions();
CREATE TRIGGER dependencies_updated AFTER UPDATE ON {schema}.dependencies
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION {schema}.stamp_sessions();
CREATE TRIGGER dependencies_deleted AFTER DELETE ON {schema}.dependencies
    REFERENCING OLD TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION {schema}.stamp_sessions();
