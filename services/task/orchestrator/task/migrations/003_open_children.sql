-- The subtasks of a parent that have not ended: "does this parent still have open work?" is
-- asked on every change near a running parent, and without this index it walks past every
-- subtask that already ended (thousands, late in a big session). The predicate is the one the
-- repository's queries spell out (OPEN_CHILD in repository.py), so the planner matches them.
CREATE INDEX tasks_open_children ON {schema}.tasks (parent_id)
    WHERE status NOT IN ('completed', 'failed', 'cancelled', 'skipped');
