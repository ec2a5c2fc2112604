-- The session's budgets, as its events tell them (0 = none): the scheduler assigns no task of a
-- session whose tasks have spent a budget already, without waiting for the session service to
-- pause it (which it does, with the reason, as soon as it counts the same usage).
ALTER TABLE {schema}.sessions ADD COLUMN token_budget bigint NOT NULL DEFAULT 0;
ALTER TABLE {schema}.sessions ADD COLUMN cost_budget_usd double precision NOT NULL DEFAULT 0;
