-- The tasks holding a lease (assigned or running): few at any time, read on every scheduler
-- tick (each session's and agent's load). The predicate is spelled as the queries spell it.
CREATE INDEX tasks_leased ON {schema}.tasks (session_id, assigned_agent_id)
    WHERE status IN ('assigned', 'in_progress');
