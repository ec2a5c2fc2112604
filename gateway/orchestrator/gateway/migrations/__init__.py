"""The gateway's schema (`gateway`): the API keys. Applied by `orchestrator.common.db.migrate`."""
