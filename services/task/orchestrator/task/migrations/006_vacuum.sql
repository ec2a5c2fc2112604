-- Every task row is updated a few times in its life (ready, assigned, running, done), and its
-- status is indexed, so each update leaves dead index entries behind. Scans of the hot statuses
-- (the leases, the ready leaves) wade through them until a vacuum clears them: vacuum this table
-- after a few hundred dead rows rather than after a fifth of the table.
ALTER TABLE {schema}.tasks SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 200,
    autovacuum_analyze_scale_factor = 0.02
);

-- Most tasks are leaves with no subtasks, while a session's root may have thousands: averaged,
-- "the subtasks of task X" looks like a thousand rows, and the planner reads the whole table
-- for every leaf it loads. Tell it what matters: a parent_id value is rare (about two rows per
-- value), so the lookup goes through tasks_parent, which is right for the root too.
ALTER TABLE {schema}.tasks ALTER COLUMN parent_id SET (n_distinct = -0.5);
ANALYZE {schema}.tasks;
